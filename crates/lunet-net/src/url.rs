//! `net.urlEncode` / `net.urlDecode`: percent-encoding of strings.
//!
//! Encoding turns every byte except `A-Z a-z 0-9 - _ . ~` into `%XX` (so a space is
//! `%20`). Decoding replaces `%XX` sequences only (`+` stays `+`; a `%` not followed
//! by two hex digits stays as it is). Unless `binary` is true, input and output must
//! be valid UTF-8, and an error says which is not.

use lunet_runtime::args;
use mlua::{Error, Function, Lua, Result, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};

/// Everything except RFC 3986's unreserved characters.
const ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    percent_encode(bytes, ENCODE_SET).to_string()
}

/// Percent-decodes `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Vec<u8> {
    percent_decode(bytes).collect()
}

pub(crate) fn create_encode_function(lua: &Lua) -> Result<Function> {
    lunet_runtime::create_function(lua, |_, (s, binary): (Value, Option<bool>)| {
        let s = args::string(&s, "input")?;
        let bytes = s.as_bytes();
        if !binary.unwrap_or(false) && std::str::from_utf8(&bytes).is_err() {
            return Err(Error::runtime(
                "net.urlEncode: the string is not valid UTF-8 (pass binary = true to encode raw bytes)",
            ));
        }
        Ok(encode(&bytes))
    })
}

pub(crate) fn create_decode_function(lua: &Lua) -> Result<Function> {
    lunet_runtime::create_function(lua, |lua, (s, binary): (Value, Option<bool>)| {
        let s = args::string(&s, "input")?;
        let bytes = s.as_bytes();
        let binary = binary.unwrap_or(false);
        if !binary && std::str::from_utf8(&bytes).is_err() {
            return Err(Error::runtime(
                "net.urlDecode: the string is not valid UTF-8 (pass binary = true to decode raw bytes)",
            ));
        }
        let decoded = decode(&bytes);
        if !binary && std::str::from_utf8(&decoded).is_err() {
            return Err(Error::runtime(
                "net.urlDecode: the decoded bytes are not valid UTF-8 (pass binary = true to get raw bytes)",
            ));
        }
        lua.create_string(decoded)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(encode(b"a b+c/~-_."), "a%20b%2Bc%2F~-_.");
        assert_eq!(encode("é".as_bytes()), "%C3%A9");
    }

    #[test]
    fn decodes_percent_only() {
        assert_eq!(decode(b"a%20b+c"), b"a b+c");
        assert_eq!(decode(b"100%"), b"100%");
        assert_eq!(decode(b"%zz"), b"%zz");
    }

    #[test]
    fn round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(decode(encode(&all).as_bytes()), all);
    }
}
