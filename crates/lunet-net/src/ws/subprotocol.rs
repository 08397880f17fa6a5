//! WebSocket subprotocols (RFC 6455 section 1.9): the `Sec-WebSocket-Protocol`
//! offer a client makes and the one name a server picks from it.
//!
//! A subprotocol name is an HTTP token (RFC 9110 section 5.6.2: visible ASCII
//! without separators), so it can sit in a comma-separated header. The client's
//! offer is every name in every `Sec-WebSocket-Protocol` line; a server may only
//! answer one of those. This module checks names and reads offers; `net.socket`
//! ([`super::client`]) makes the offer, `net.serve`'s upgrade picks, and
//! tungstenite checks, on the client, that the answer was offered.

use http::HeaderMap;
use http::header::SEC_WEBSOCKET_PROTOCOL;

/// Whether `name` can be a subprotocol: a non-empty HTTP token.
pub(crate) fn is_token(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// The subprotocols a client's handshake offers, in order (names that are not
/// tokens are left out: they can never be picked).
pub(crate) fn offered(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|name| is_token(name.as_bytes()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token(b"chat.v2"));
        assert!(is_token(b"graphql-transport-ws"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a,b"));
        assert!(!is_token(b"caf\xc3\xa9"));
    }

    #[test]
    fn offers_span_lines_and_commas() {
        let mut headers = HeaderMap::new();
        headers.append(SEC_WEBSOCKET_PROTOCOL, "a, b".parse().unwrap());
        headers.append(SEC_WEBSOCKET_PROTOCOL, "c,,bad name".parse().unwrap());
        assert_eq!(offered(&headers), ["a", "b", "c"]);
        assert!(offered(&HeaderMap::new()).is_empty());
    }
}
