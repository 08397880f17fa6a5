//! Reading a response body for `net.request`: whole, within [`MAX_RESPONSE_BODY`]
//! (the most a Luau string can hold), and decoded by its `Content-Encoding` (gzip,
//! deflate, br, zstd, and lists of them) while it arrives when `decompress` is on.
//!
//! A body is decoded only when every listed coding is one we know; otherwise it is
//! left exactly as received. Once decoded, `Content-Encoding` and `Content-Length`
//! no longer describe the body and are removed. The streaming, the limits and the
//! codecs are `crate::body`'s; this module only picks the codings and the limit and
//! words the errors for `net.request`. For `net.http.stream` it makes the streaming
//! decoder instead ([`stream_decoder`]), with the same choice of codings.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use hyper::body::Body;
use lunet_runtime::codec::compression::{Codec, content_codings};

use crate::body::{self, BodyError};
use crate::error::BoxError;

/// The largest response body `net.request` reads, received or decoded: Luau's
/// string limit (1 GiB), since the body becomes one string.
pub(crate) const MAX_RESPONSE_BODY: usize = lunet_runtime::codec::compression::MAX_STRING_LEN;

/// Reads `body` whole within `limit`, decoded when `decompress` is on and every coding
/// in `headers` is known (`headers` then lose `Content-Encoding` and
/// `Content-Length`). The error is worded to follow "net.request failed for
/// <method> <url>: ".
pub(crate) async fn read_body<B>(
    headers: &mut HeaderMap,
    body: B,
    decompress: bool,
    limit: usize,
) -> Result<Bytes, BoxError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let codecs = if decompress {
        codings(headers)
    } else {
        Vec::new()
    };
    match body::read_decoded(body, &codecs, limit).await {
        Ok(bytes) => {
            if !codecs.is_empty() {
                headers.remove(CONTENT_ENCODING);
                headers.remove(CONTENT_LENGTH);
            }
            Ok(bytes)
        }
        Err(BodyError::TooLarge) => Err(too_large(limit).into()),
        Err(BodyError::Corrupt(error)) => {
            Err(format!("cannot decode the response body: {error}").into())
        }
        Err(BodyError::Read(error)) => Err(error),
    }
}

/// A streaming decoder of `body` (see [`crate::body::Decoder`]), undoing its codings
/// when `decompress` is on and every coding in `headers` is known (`headers` then
/// lose `Content-Encoding` and `Content-Length`, as for [`read_body`]).
pub(crate) fn stream_decoder<B>(headers: &mut HeaderMap, body: B, decompress: bool) -> body::Decoder
where
    B: Body<Data = Bytes> + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let codecs = if decompress {
        codings(headers)
    } else {
        Vec::new()
    };
    if !codecs.is_empty() {
        headers.remove(CONTENT_ENCODING);
        headers.remove(CONTENT_LENGTH);
    }
    body::Decoder::new(body, codecs)
}

/// The codings `headers` list, or none when any of them is unknown.
fn codings(headers: &HeaderMap) -> Vec<Codec> {
    let values = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .map(|v| v.as_bytes());
    content_codings(values).unwrap_or_default()
}

fn too_large(limit: usize) -> String {
    if limit == MAX_RESPONSE_BODY {
        "the response body would be larger than 1 GiB, the most a Luau string can hold".to_string()
    } else {
        format!("the response body would be larger than {limit} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use lunet_runtime::codec::compression::compress;

    fn read(
        headers: &mut HeaderMap,
        body: Vec<u8>,
        decompress: bool,
        limit: usize,
    ) -> Result<Bytes, BoxError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read_body(
                headers,
                Full::new(Bytes::from(body)),
                decompress,
                limit,
            ))
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse_order() {
        let text = b"stacked codings, stacked codings";
        let gzipped = compress(Codec::Gzip, text, None).unwrap();
        let both = compress(Codec::Brotli, &gzipped, None).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "gzip, br".parse().unwrap());
        headers.insert(CONTENT_LENGTH, both.len().into());
        let body = read(&mut headers, both, true, MAX_RESPONSE_BODY).unwrap();
        assert_eq!(&body[..], text);
        assert!(headers.is_empty());
    }

    #[test]
    fn unknown_codings_or_decompress_off_leave_body_and_headers_alone() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "compress".parse().unwrap());
        let body = read(&mut headers, b"raw".to_vec(), true, 10).unwrap();
        assert_eq!(&body[..], b"raw");
        assert!(headers.contains_key(CONTENT_ENCODING));
        let gzipped = compress(Codec::Gzip, b"text", None).unwrap();
        headers.insert(CONTENT_ENCODING, "gzip".parse().unwrap());
        let body = read(&mut headers, gzipped.clone(), false, 100).unwrap();
        assert_eq!(body, gzipped);
        assert!(headers.contains_key(CONTENT_ENCODING));
    }

    #[test]
    fn bodies_past_the_limit_fail_naming_it() {
        let zeros = vec![0u8; 1 << 20];
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "br".parse().unwrap());
        let bomb = compress(Codec::Brotli, &zeros, None).unwrap();
        let error = read(&mut headers, bomb, true, 1000).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the response body would be larger than 1000 bytes"
        );
        let error = read(&mut HeaderMap::new(), zeros, false, 1000).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the response body would be larger than 1000 bytes",
            "an undecoded body has the same limit"
        );
        assert_eq!(
            too_large(MAX_RESPONSE_BODY),
            "the response body would be larger than 1 GiB, the most a Luau string can hold"
        );
        headers.insert(CONTENT_ENCODING, "gzip".parse().unwrap());
        let error = read(&mut headers, b"not gzip".to_vec(), true, 1000).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot decode the response body: "),
            "{error}"
        );
    }
}
