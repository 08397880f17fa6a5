//! The ceiling for WebSocket servers and the peer for WebSocket clients: a raw
//! tokio-tungstenite server on one thread.
//!
//! Usage: ws-echo-server <port> [echo|sink]
//!
//! `echo` (the default) sends every text and binary message back. `sink` is the peer
//! for one-way client throughput: it reads binary messages and drops them, and
//! echoes text messages, so a client that ends a burst of binary messages with a text
//! one learns, from its echo, that the server has read the whole burst.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let port: u16 = lunet_bench::arg(1, 8081);
    let sink = lunet_bench::arg(2, String::from("echo")) == "sink";
    lunet_bench::current_thread().block_on(lunet_bench::accept_loop(
        port,
        move |stream| async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
                let echo = message.is_text() || (message.is_binary() && !sink);
                if echo && ws.send(message).await.is_err() {
                    break;
                }
            }
        },
    ));
}
