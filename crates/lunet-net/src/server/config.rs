//! Reading `net.serve`'s arguments: the port, and a handler function or a
//! `ServeConfig` table (`address`, `handleRequest`, `handleWebSocket`).
//!
//! The address may be an IPv4 or IPv6 literal (with or without brackets), `localhost`,
//! and may carry an `http://` prefix; it defaults to `127.0.0.1`. Every bad value is an
//! error naming the field, with an example of what is accepted.

use std::net::{IpAddr, Ipv4Addr};

use lunet_runtime::args;
use mlua::{Error, Function, Result, Value};

/// A checked `net.serve` configuration.
pub(crate) struct ServeConfig {
    pub(crate) port: u16,
    pub(crate) address: IpAddr,
    pub(crate) handle_request: Option<Function>,
    pub(crate) handle_websocket: Option<Function>,
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

/// The listening port; the error keeps the hint that 0 picks a free port.
fn parse_port(value: &Value) -> Result<u16> {
    args::integer_in(value, "port", 0..=65535).map_err(|_| {
        args::out_of_range(
            "port",
            "an integer from 0 to 65535 (0 picks a free port)",
            value,
        )
    })
}

impl ServeConfig {
    pub(crate) fn from_args(port: Value, handler: Value) -> Result<ServeConfig> {
        let port = parse_port(&port)?;
        let mut config = ServeConfig {
            port,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            handle_request: None,
            handle_websocket: None,
        };
        match handler {
            Value::Function(f) => config.handle_request = Some(f),
            Value::Table(t) => {
                config.handle_request =
                    args::optional_function(&t.get("handleRequest")?, "handleRequest")?;
                config.handle_websocket =
                    args::optional_function(&t.get("handleWebSocket")?, "handleWebSocket")?;
                if let Some(address) = args::optional_string(&t.get("address")?, "address")? {
                    config.address = parse_address(&address.to_string_lossy())?;
                }
                if config.handle_request.is_none() && config.handle_websocket.is_none() {
                    return Err(Error::runtime(
                        "Invalid config - net.serve needs a handleRequest or handleWebSocket function",
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
