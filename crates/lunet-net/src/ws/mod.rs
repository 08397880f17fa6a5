//! WebSockets: the `WebSocket` object shared by `net.serve`'s `handleWebSocket` and
//! `net.socket`, and the `net.socket` client itself.
//!
//! [`socket::WebSocket`] wraps any tokio-tungstenite stream; [`client`] connects one
//! from a `ws://` or `wss://` URL. The server's upgrade lives in `server::upgrade`.

pub mod client;
pub mod socket;

pub use socket::WebSocket;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The largest message or frame either side accepts (64 MiB).
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// The protocol settings both sides use.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_SIZE))
        .max_frame_size(Some(MAX_MESSAGE_SIZE))
}
