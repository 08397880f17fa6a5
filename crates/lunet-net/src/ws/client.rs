//! `net.socket(url)` (also `net.ws.connect`): connects a WebSocket client.
//!
//! Accepts `ws://` and `wss://` URLs; `wss` uses the shared trust store. Refused or
//! unreachable servers, TLS failures, and servers that answer without upgrading are
//! errors naming the URL and the cause.

use mlua::{Error, Function, Lua, Result, Value};
use tokio_tungstenite::Connector;

use super::WebSocket;
use crate::error::error_chain;

fn parse_url(value: &Value) -> Result<url::Url> {
    let text = match value {
        Value::String(s) => s.to_string_lossy(),
        other => {
            return Err(Error::runtime(format!(
                "Invalid url - expected string, got {}",
                lunet_runtime::type_name(other)
            )));
        }
    };
    let url = url::Url::parse(&text)
        .map_err(|e| Error::runtime(format!("Invalid url '{text}' - {e}")))?;
    match url.scheme() {
        "ws" | "wss" => Ok(url),
        other => Err(Error::runtime(format!(
            "Invalid url '{text}' - unsupported scheme '{other}' (expected ws or wss)"
        ))),
    }
}

pub(crate) fn create_socket_function(lua: &Lua) -> Result<Function> {
    lunet_runtime::create_async_function(lua, "net.socket", |lua, value: Value| {
        let url = parse_url(&value);
        let prepared = super::socket::prepare(lua);
        async move {
            prepared?;
            let url = url?;
            let connector = match url.scheme() {
                "wss" => Connector::Rustls(crate::tls::stream_client_config()),
                _ => Connector::Plain,
            };
            let (stream, _response) = tokio_tungstenite::connect_async_tls_with_config(
                url.as_str(),
                Some(super::config()),
                true,
                Some(connector),
            )
            .await
            .map_err(|e| {
                Error::runtime(format!(
                    "net.socket failed to connect to {url}: {}",
                    error_chain(&e)
                ))
            })?;
            Ok(WebSocket::new(stream))
        }
    })
}
