//! Decoding a response body by its `Content-Encoding` (gzip, deflate, br, zstd, and
//! lists of them), for `net.request` with `decompress` on.
//!
//! A body is decoded only when every listed coding is one we know; otherwise it is
//! left exactly as received. Once decoded, `Content-Encoding` and `Content-Length`
//! no longer describe the body and are removed. The codecs themselves live in
//! `lunet_runtime::compression`, shared with `serde` and the server.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use lunet_runtime::compression::{Codec, decompress};

/// The codings to undo, in the order they were applied, or None when the body is
/// not encoded (or uses a coding we do not know).
fn codings(headers: &HeaderMap) -> Option<Vec<Codec>> {
    let mut codecs = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        for token in value.to_str().ok()?.split(',') {
            let token = token.trim();
            if token.is_empty() || token.eq_ignore_ascii_case("identity") {
                continue;
            }
            codecs.push(Codec::from_content_encoding(token)?);
        }
    }
    (!codecs.is_empty()).then_some(codecs)
}

/// Decodes `body` in place of the encoded one and fixes `headers` to match.
pub fn decode_body(headers: &mut HeaderMap, body: Bytes) -> std::io::Result<Bytes> {
    if body.is_empty() {
        return Ok(body);
    }
    let Some(codecs) = codings(headers) else {
        return Ok(body);
    };
    let mut decoded = body.to_vec();
    for codec in codecs.iter().rev() {
        decoded = decompress(*codec, &decoded)?;
    }
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    Ok(Bytes::from(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lunet_runtime::compression::compress;

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
