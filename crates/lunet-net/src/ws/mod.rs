//! WebSockets: the `WebSocket` object shared by `net.serve`'s `handleWebSocket` and
//! `net.socket`, and the `net.socket` client itself.
//!
//! `socket::WebSocket` wraps any tokio-tungstenite stream; `client` connects one
//! from a `ws://` or `wss://` URL. The server's upgrade lives in `server::upgrade`.
//! Only [`config`] is public outside the crate, so tests and peers can speak to Lunet
//! with the same protocol limits.

pub(crate) mod client;
pub(crate) mod socket;
mod writer;

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
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(Some(MAX_MESSAGE_SIZE))
        .max_frame_size(Some(MAX_MESSAGE_SIZE))
}
