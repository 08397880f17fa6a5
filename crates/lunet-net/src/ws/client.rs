//! `net.socket(url, options?)` (also `net.ws.connect`): connects a WebSocket client.
//!
//! Accepts `ws://` and `wss://` URLs; `wss` uses the shared trust store. `options`
//! may give `headers` (sent with the handshake; values as for `net.request`, and the
//! headers the handshake itself sets are refused), `protocols` (an array of
//! subprotocol names offered in `Sec-WebSocket-Protocol`) and `timeout` (seconds the
//! connection and handshake may take, by default the 30 s connect limit). Refused or
//! unreachable servers, TLS failures, servers that answer without upgrading, and
//! servers that answer a subprotocol that was not offered (or, tungstenite being
//! strict, none at all when some were) are errors naming the URL and the cause.

use std::time::Duration;

use http::HeaderMap;
use http::header::{
    CONNECTION, HeaderValue, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use mlua::{Error, Function, Lua, Result, Value};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError, SubProtocolError};

use lunet_runtime::args;

use super::WebSocket;
use super::subprotocol;
use crate::connect_limit::CONNECT_TIMEOUT;
use crate::convert::header_map;
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

/// `net.socket`'s checked options.
#[derive(Default)]
struct Options {
    headers: HeaderMap,
    protocols: Vec<String>,
    timeout: Option<Duration>,
}

/// The protocols option: an array of distinct subprotocol names.
fn parse_protocols(value: &Value) -> Result<Vec<String>> {
    const EXPECTED: &str = "an array of subprotocol names (such as { \"chat.v2\" })";
    let Some(list) = args::optional_table(value, "protocols")? else {
        return Ok(Vec::new());
    };
    let mut protocols: Vec<String> = Vec::new();
    for (index, item) in list.sequence_values::<Value>().enumerate() {
        let item = item?;
        let field = format!("protocols[{}]", index + 1);
        let name = args::string(&item, &field)?;
        let name = name.as_bytes();
        if !subprotocol::is_token(&name) {
            return Err(args::invalid(
                &field,
                "a subprotocol name (letters, digits and !#$%&'*+-.^_`|~, no spaces or commas)",
                format!("'{}'", String::from_utf8_lossy(&name)),
            ));
        }
        // A token is ASCII.
        let name = String::from_utf8_lossy(&name).into_owned();
        if protocols.contains(&name) {
            return Err(args::invalid(
                "protocols",
                "each subprotocol once",
                format!("'{name}' twice"),
            ));
        }
        protocols.push(name);
    }
    let mut entries = 0;
    list.for_each(|_: Value, _: Value| {
        entries += 1;
        Ok(())
    })?;
    if entries != protocols.len() {
        return Err(args::invalid(
            "protocols",
            EXPECTED,
            "a table with keys other than 1..n",
        ));
    }
    Ok(protocols)
}

/// The headers the handshake sets itself, which a script may not give.
const HANDSHAKE_HEADERS: [(http::header::HeaderName, &str); 6] = [
    (CONNECTION, ""),
    (UPGRADE, ""),
    (SEC_WEBSOCKET_KEY, ""),
    (SEC_WEBSOCKET_VERSION, ""),
    (
        SEC_WEBSOCKET_PROTOCOL,
        " (offer subprotocols with the protocols option)",
    ),
    (
        SEC_WEBSOCKET_EXTENSIONS,
        " (no WebSocket extension is supported)",
    ),
];

fn parse_headers(value: &Value) -> Result<HeaderMap> {
    let headers = header_map(value, "headers")?;
    for (name, hint) in &HANDSHAKE_HEADERS {
        if headers.contains_key(name) {
            return Err(Error::runtime(format!(
                "Invalid headers - '{name}' is set by the WebSocket handshake{hint}"
            )));
        }
    }
    Ok(headers)
}

fn parse_options(value: &Value) -> Result<Options> {
    let Some(table) = args::optional_table(value, "options")? else {
        return Ok(Options::default());
    };
    Ok(Options {
        headers: parse_headers(&table.get("headers")?)?,
        protocols: parse_protocols(&table.get("protocols")?)?,
        timeout: args::optional_seconds(&table.get("timeout")?, "timeout")?,
    })
}

/// The handshake request: the URL's, with the script's headers and the offer.
fn handshake_request(url: &url::Url, options: Options) -> Result<http::Request<()>> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::runtime(format!("Invalid url '{url}' - {}", error_chain(&e))))?;
    let headers = request.headers_mut();
    // Each name the script gave replaces the request's own (such as `host`).
    headers.extend(options.headers);
    if !options.protocols.is_empty() {
        let offer = HeaderValue::from_str(&options.protocols.join(", "))
            .map_err(|_| Error::runtime("Invalid protocols - not a valid header value"))?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, offer);
    }
    Ok(request)
}

/// Why a handshake failed, in words naming what the script offered when the server's
/// subprotocol answer was the problem.
fn handshake_failure(error: &WsError, offered: &[String]) -> String {
    let offer = offered.join(", ");
    match error {
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(kind)) => match kind {
            SubProtocolError::InvalidSubProtocol => {
                format!("the server chose a subprotocol that was not offered (offered: {offer})")
            }
            SubProtocolError::NoSubProtocol => {
                format!("the server chose none of the offered subprotocols ({offer})")
            }
            SubProtocolError::ServerSentSubProtocolNoneRequested => {
                "the server chose a subprotocol although none was offered".to_string()
            }
        },
        other => error_chain(other),
    }
}

pub(crate) fn create_socket_function(lua: &Lua) -> Result<Function> {
    lunet_runtime::create_checked_async_function(
        lua,
        "net.socket",
        |lua, (value, options): (Value, Value)| {
            super::socket::prepare(lua)?;
            let url = parse_url(&value)?;
            let options = parse_options(&options)?;
            let limit = options.timeout.unwrap_or(CONNECT_TIMEOUT);
            let offered = options.protocols.clone();
            let request = handshake_request(&url, options)?;
            let kinds = super::received::Kinds::of(lua)?;
            Ok(async move {
                let connector = match url.scheme() {
                    "wss" => Connector::Rustls(crate::tls::stream_client_config()),
                    _ => Connector::Plain,
                };
                let handshake = tokio_tungstenite::connect_async_tls_with_config(
                    request,
                    Some(super::config()),
                    true,
                    Some(connector),
                );
                let Ok(opened) = tokio::time::timeout(limit, handshake).await else {
                    return Err(Error::runtime(format!(
                        "net.socket failed to connect to {url}: the connection and handshake took longer than {} s",
                        lunet_runtime::format_number(limit.as_secs_f64())
                    )));
                };
                let (stream, response) = opened.map_err(|e| {
                    Error::runtime(format!(
                        "net.socket failed to connect to {url}: {}",
                        handshake_failure(&e, &offered)
                    ))
                })?;
                // tungstenite has checked that the answer is one of the offers.
                let protocol = response
                    .headers()
                    .get(SEC_WEBSOCKET_PROTOCOL)
                    .and_then(|value| value.to_str().ok())
                    .map(|value| value.trim().to_string());
                Ok(WebSocket::new(stream, protocol, kinds))
            })
        },
    )
}
