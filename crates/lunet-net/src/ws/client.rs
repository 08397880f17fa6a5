//! `net.socket(url)` (also `net.ws.connect`): connects a WebSocket client.
//!
//! Accepts `ws://` and `wss://` URLs; `wss` uses the shared trust store. Refused or
//! unreachable servers, TLS failures, and servers that answer without upgrading are
//! errors naming the URL and the cause.

use mlua::{Error, Function, Lua, Result, Value};
use tokio_tungstenite::Connector;

use lunet_runtime::args;

use super::WebSocket;
use crate::connect_limit::{CONNECT_TIMEOUT, within_connect_limit};
use crate::error::error_chain;

fn parse_url(value: &Value) -> Result<url::Url> {
    let text = args::string(value, "url")?.to_string_lossy();
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
    lunet_runtime::create_checked_async_function(lua, "net.socket", |lua, value: Value| {
        super::socket::prepare(lua)?;
        let url = parse_url(&value)?;
        Ok(async move {
            let connector = match url.scheme() {
                "wss" => Connector::Rustls(crate::tls::stream_client_config()),
                _ => Connector::Plain,
            };
            let handshake = tokio_tungstenite::connect_async_tls_with_config(
                url.as_str(),
                Some(super::config()),
                true,
                Some(connector),
            );
            let Some(opened) = within_connect_limit(handshake).await else {
                return Err(Error::runtime(format!(
                    "net.socket failed to connect to {url}: the connection and handshake took longer than {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            };
            let (stream, _response) = opened.map_err(|e| {
                Error::runtime(format!(
                    "net.socket failed to connect to {url}: {}",
                    error_chain(&e)
                ))
            })?;
            Ok(WebSocket::new(stream))
        })
    })
}
