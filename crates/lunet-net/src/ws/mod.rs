//! WebSockets: the `WebSocket` object shared by `net.serve`'s `handleWebSocket` and
//! `net.socket`, and the `net.socket` client itself.
//!
//! `socket::WebSocket` wraps any tokio-tungstenite stream (`received` is what its
//! `next()` returns); `client` connects one from a `ws://` or `wss://` URL, and
//! `subprotocol` checks names and reads offers for both sides. The server's upgrade
//! lives in `server::upgrade`.
//! Only [`config`] is public outside the crate, so tests and peers can speak to Lunet
//! with the same protocol limits. A server with its own `maxMessageSize` makes its
//! streams with [`config_with_max_message_size`]; the socket reads its limit from the
//! stream, so [`WebSocket::new`] needs no separate size argument.

pub(crate) mod client;
pub(crate) mod received;
pub(crate) mod socket;
pub(crate) mod subprotocol;
mod writer;

pub(crate) use socket::Closer;
pub(crate) use socket::WebSocket;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The largest message or frame either side accepts (64 MiB).
pub(crate) const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// How much one read from the connection asks for. tungstenite zero-fills this much
/// of its read buffer before every read, so its 128 KiB default costs more in memset
/// than it saves in syscalls for the small messages most scripts exchange (it was a
/// fifth of the echo server's CPU); 16 KiB also keeps idle connections small.
pub(crate) const READ_BUFFER_SIZE: usize = 16 << 10;

/// The protocol settings both sides use.
pub fn config() -> WebSocketConfig {
    config_with_max_message_size(MAX_MESSAGE_SIZE)
}

/// The protocol settings with another message (and frame) size limit, for a server's
/// `maxMessageSize`. A larger message closes the socket with 1009 (see
/// [`socket`]'s documentation).
pub(crate) fn config_with_max_message_size(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}
