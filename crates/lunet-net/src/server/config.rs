//! Reading `net.serve`'s arguments: the port, and a handler function or a
//! `ServeConfig` table (`address`, `handleRequest`, `handleWebSocket`,
//! `acceptWebSocket`, `tls`, `reusePort`, and the [`Limits`] fields).
//!
//! The address may be an IPv4 or IPv6 literal (with or without brackets), `localhost`,
//! and may carry an `http://` prefix; it defaults to `127.0.0.1`. `unix:<path>` serves
//! on a Unix domain socket at that path instead (the port is then ignored). Every bad value is an
//! error naming the field, with an example of what is accepted. What the limits do is
//! the business of the modules that enforce them (`watchdog`, `connection`,
//! `service`, the WebSocket upgrade).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use lunet_runtime::args;
use mlua::{Error, Function, Result, Table, Value};

/// A checked `net.serve` configuration.
pub(crate) struct ServeConfig {
    pub(crate) port: u16,
    pub(crate) address: IpAddr,
    /// `address = "unix:<path>"`: the Unix socket to serve on instead of a TCP port.
    pub(crate) unix: Option<std::path::PathBuf>,
    pub(crate) handle_request: Option<Function>,
    pub(crate) handle_websocket: Option<Function>,
    /// `acceptWebSocket`: decides, before the upgrade, whether to accept a WebSocket
    /// handshake and with which subprotocol (see `upgrade`).
    pub(crate) accept_websocket: Option<Function>,
    pub(crate) limits: Limits,
    /// `streamRequestBody`: handlers get the request body as a `BodyStream`.
    pub(crate) stream_request_body: bool,
    /// `reusePort`: bind with `SO_REUSEPORT`, to share the port with other processes.
    pub(crate) reuse_port: bool,
    /// `tls`: serve HTTPS (and HTTP/2 by ALPN) with this configuration.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

/// What one server lets a peer make it spend: `ServeConfig`'s limit fields.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Limits {
    /// `maxBodySize`: the largest request body, after content decoding (413).
    pub(crate) max_body: usize,
    /// `maxHeaderSize`: the most header bytes, names and values (431).
    pub(crate) max_header: usize,
    /// `headerTimeout`: how long a request head may take once it has begun.
    pub(crate) header_timeout: Duration,
    /// `bodyTimeout`: how long a body being read may go without a byte (408).
    pub(crate) body_timeout: Duration,
    /// `idleTimeout`: how long a connection may do nothing (no request, no progress
    /// writing a response) before it is closed.
    pub(crate) idle_timeout: Duration,
    /// `shutdownTimeout`: how long `stop()` and a signal wait for work in flight.
    pub(crate) shutdown_timeout: Duration,
    /// `maxMessageSize`: the largest WebSocket message (close 1009).
    pub(crate) max_message: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 64 << 20,
            max_header: 32 << 10,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            max_message: 64 << 20,
        }
    }
}

/// The most bytes a size limit may be set to: Luau's string limit, since a body or a
/// message becomes one string.
const MAX_SIZE: i64 = lunet_runtime::codec::compression::MAX_STRING_LEN as i64;

impl Limits {
    /// The defaults, with the fields `table` sets.
    fn from_table(table: &Table) -> Result<Limits> {
        let mut limits = Limits::default();
        let size = |field: &str, value: &mut usize| -> Result<()> {
            if let Some(size) = args::optional_integer_in(&table.get(field)?, field, 1..=MAX_SIZE)?
            {
                *value = size;
            }
            Ok(())
        };
        size("maxBodySize", &mut limits.max_body)?;
        size("maxHeaderSize", &mut limits.max_header)?;
        size("maxMessageSize", &mut limits.max_message)?;
        let time = |field: &str, value: &mut Duration| -> Result<()> {
            if let Some(seconds) = args::optional_seconds(&table.get(field)?, field)? {
                *value = seconds;
            }
            Ok(())
        };
        time("headerTimeout", &mut limits.header_timeout)?;
        time("bodyTimeout", &mut limits.body_timeout)?;
        time("idleTimeout", &mut limits.idle_timeout)?;
        time("shutdownTimeout", &mut limits.shutdown_timeout)?;
        Ok(limits)
    }
}

const ADDRESS_EXAMPLES: &str = "expected an IP address such as '127.0.0.1', '0.0.0.0', '::1', '[::1]' or 'localhost', optionally prefixed with 'http://'";

/// Parses a server address as scripts write it.
pub(crate) fn parse_address(text: &str) -> Result<IpAddr> {
    let trimmed = text.trim();
    let bare = trimmed.strip_prefix("http://").unwrap_or(trimmed);
    let bare = bare.strip_suffix('/').unwrap_or(bare);
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let unbracketed = bare
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .unwrap_or(bare);
    unbracketed
        .parse()
        .map_err(|_| Error::runtime(format!("Invalid address '{text}' - {ADDRESS_EXAMPLES}")))
}

impl ServeConfig {
    pub(crate) fn from_args(port: Value, handler: Value) -> Result<ServeConfig> {
        let port = crate::listen::parse_port(&port)?;
        let mut config = ServeConfig {
            port,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            unix: None,
            handle_request: None,
            handle_websocket: None,
            accept_websocket: None,
            limits: Limits::default(),
            stream_request_body: false,
            reuse_port: false,
            tls: None,
        };
        match handler {
            Value::Function(f) => config.handle_request = Some(f),
            Value::Table(t) => {
                config.handle_request =
                    args::optional_function(&t.get("handleRequest")?, "handleRequest")?;
                config.handle_websocket =
                    args::optional_function(&t.get("handleWebSocket")?, "handleWebSocket")?;
                config.accept_websocket =
                    args::optional_function(&t.get("acceptWebSocket")?, "acceptWebSocket")?;
                if let Some(address) = args::optional_string(&t.get("address")?, "address")? {
                    let text = address.to_string_lossy();
                    match text.strip_prefix("unix:") {
                        Some("") => {
                            return Err(args::invalid(
                                "address",
                                "a socket path after 'unix:'",
                                "'unix:'",
                            ));
                        }
                        Some(path) => config.unix = Some(path.into()),
                        None => config.address = parse_address(&text)?,
                    }
                }
                config.limits = Limits::from_table(&t)?;
                config.stream_request_body =
                    args::optional_boolean(&t.get("streamRequestBody")?, "streamRequestBody")?
                        .unwrap_or(false);
                config.reuse_port =
                    args::optional_boolean(&t.get("reusePort")?, "reusePort")?.unwrap_or(false);
                if let Some(tls) = args::optional_table(&t.get("tls")?, "tls")? {
                    if config.unix.is_some() {
                        return Err(Error::runtime(
                            "Invalid tls - TLS is served on TCP ports only, not on a unix: address",
                        ));
                    }
                    config.tls = Some(crate::tls::server::config_from_table(
                        &tls,
                        &crate::tls::server::HTTP_ALPN,
                    )?);
                }
                if config.handle_request.is_none() && config.handle_websocket.is_none() {
                    return Err(Error::runtime(
                        "Invalid config - net.serve needs a handleRequest or handleWebSocket function",
                    ));
                }
                if config.accept_websocket.is_some() && config.handle_websocket.is_none() {
                    return Err(Error::runtime(
                        "Invalid config - acceptWebSocket needs a handleWebSocket function to hand the accepted sockets to",
                    ));
                }
            }
            other => return Err(args::wrong("handler", "function or table", &other)),
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults are the table in `limits.md` and README's "Limits and shutdown".
    #[test]
    fn default_limits_are_the_documented_ones() {
        let limits = Limits::default();
        assert_eq!(limits.max_body, 64 * 1024 * 1024);
        assert_eq!(limits.max_header, 32 * 1024);
        assert_eq!(limits.header_timeout, Duration::from_secs(30));
        assert_eq!(limits.body_timeout, Duration::from_secs(30));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(limits.max_message, 64 * 1024 * 1024);
        let lua = mlua::Lua::new();
        let table = lua.create_table().unwrap();
        assert_eq!(
            Limits::from_table(&table).unwrap(),
            limits,
            "an empty config"
        );
    }

    #[test]
    fn address_forms() {
        assert_eq!(parse_address("127.0.0.1").unwrap().to_string(), "127.0.0.1");
        assert_eq!(
            parse_address("http://0.0.0.0").unwrap().to_string(),
            "0.0.0.0"
        );
        assert_eq!(parse_address("[::1]").unwrap().to_string(), "::1");
        assert_eq!(parse_address("http://[::1]").unwrap().to_string(), "::1");
        assert_eq!(parse_address("::").unwrap().to_string(), "::");
        assert_eq!(parse_address("localhost").unwrap().to_string(), "127.0.0.1");
        let err = parse_address("example.com").unwrap_err().to_string();
        assert!(err.contains("127.0.0.1"), "{err}");
    }
}
