//! Decoding a response body by its `Content-Encoding` (gzip, deflate, br, zstd, and
//! lists of them), for `net.request` with `decompress` on.
//!
//! A body is decoded only when every listed coding is one we know; otherwise it is
//! left exactly as received. Once decoded, `Content-Encoding` and `Content-Length`
//! no longer describe the body and are removed. The codecs themselves live in
//! `lunet_runtime::codec::compression`, shared with `serde` and the server.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use lunet_runtime::codec::compression::{content_codings, decompress_all};

/// Decodes `body` in place of the encoded one and fixes `headers` to match.
pub(crate) fn decode_body(headers: &mut HeaderMap, body: Bytes) -> std::io::Result<Bytes> {
    if body.is_empty() {
        return Ok(body);
    }
    let values = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .map(|v| v.as_bytes());
    let codecs = match content_codings(values) {
        Ok(codecs) if !codecs.is_empty() => codecs,
        _ => return Ok(body),
    };
    let decoded = decompress_all(&codecs, &body)?;
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    Ok(Bytes::from(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lunet_runtime::codec::compression::{Codec, compress};

    #[test]
    fn stacked_codings_are_undone_in_reverse_order() {
        let text = b"stacked codings, stacked codings";
        let gzipped = compress(Codec::Gzip, text, None).unwrap();
        let both = compress(Codec::Brotli, &gzipped, None).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "gzip, br".parse().unwrap());
        headers.insert(CONTENT_LENGTH, both.len().into());
        let body = decode_body(&mut headers, Bytes::from(both)).unwrap();
        assert_eq!(&body[..], text);
        assert!(headers.is_empty());
    }

    #[test]
    fn unknown_codings_leave_body_and_headers_alone() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "compress".parse().unwrap());
        let body = decode_body(&mut headers, Bytes::from_static(b"raw")).unwrap();
        assert_eq!(&body[..], b"raw");
        assert!(headers.contains_key(CONTENT_ENCODING));
    }
}
