//! `net.tcp.connect(host, port, config?)`: opening a plain or TLS TCP stream.
//!
//! `config` is `true` (TLS) or `{ tls?, ttl? }`. The host may be a DNS name or an IP
//! literal (IPv6 with or without brackets); TLS uses SNI and the shared trust store.
//! Opening (the TCP connect and the TLS handshake) gives up after the connect limit.
//! What the stream then does is [`super::stream`]'s.

use mlua::{Error, Function, Lua, Result, Value};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use lunet_runtime::args;

use super::stream::{Endpoints, Reader, Stream, Writer};
use crate::connect_limit::{CONNECT_TIMEOUT, within_connect_limit};
use crate::error::error_chain;

struct ConnectOptions {
    tls: bool,
    ttl: Option<u32>,
}

fn parse_options(value: Value) -> Result<ConnectOptions> {
    match value {
        Value::Nil | Value::Boolean(false) => Ok(ConnectOptions {
            tls: false,
            ttl: None,
        }),
        Value::Boolean(true) => Ok(ConnectOptions {
            tls: true,
            ttl: None,
        }),
        Value::Table(t) => Ok(ConnectOptions {
            tls: args::optional_boolean(&t.get("tls")?, "config.tls")?.unwrap_or(false),
            ttl: args::optional_integer_in(&t.get("ttl")?, "config.ttl", 1..=255)?,
        }),
        other => Err(args::wrong(
            "config",
            "boolean or table { tls?, ttl? }",
            &other,
        )),
    }
}

pub(crate) fn parse_host(value: &Value) -> Result<String> {
    let host = args::string(value, "host")?.to_string_lossy();
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        return Err(Error::runtime(format!(
            "Invalid host '{host}' - expected a DNS name or an IP address"
        )));
    }
    Ok(host.to_string())
}

async fn connect(host: String, port: u16, options: ConnectOptions) -> Result<Stream> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let fail = |e: &(dyn std::error::Error + 'static)| {
        Error::runtime(format!(
            "net.tcp.connect failed for {target}: {}",
            error_chain(e)
        ))
    };
    // The TCP connect and the TLS handshake together, within the connect limit.
    let opening = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| fail(&e))?;
        let _ = tcp.set_nodelay(true);
        if let Some(ttl) = options.ttl {
            tcp.set_ttl(ttl).map_err(|e| fail(&e))?;
        }
        let local = tcp.local_addr().map_err(|e| fail(&e))?;
        let remote = tcp.peer_addr().map_err(|e| fail(&e))?;
        let (reader, writer): (Reader, Writer) = if options.tls {
            let name = ServerName::try_from(host.clone()).map_err(|e| fail(&e))?;
            let connector = tokio_rustls::TlsConnector::from(crate::tls::stream_client_config());
            let stream = connector.connect(name, tcp).await.map_err(|e| fail(&e))?;
            let (r, w) = tokio::io::split(stream);
            (Box::pin(r), Box::pin(w))
        } else {
            let (r, w) = tcp.into_split();
            (Box::pin(r), Box::pin(w))
        };
        Ok::<_, Error>((reader, writer, local, remote))
    };
    let Some(opened) = within_connect_limit(opening).await else {
        return Err(Error::runtime(format!(
            "net.tcp.connect failed for {target}: connecting took longer than {} s",
            CONNECT_TIMEOUT.as_secs()
        )));
    };
    let (reader, writer, local, remote) = opened?;
    Ok(Stream::new(reader, writer, Endpoints::Ip { local, remote }))
}

/// Builds the `net.tcp.connect` function.
pub(crate) fn create_connect_function(lua: &Lua) -> Result<Function> {
    Stream::prepare(lua)?;
    lunet_runtime::create_checked_async_function(
        lua,
        "net.tcp.connect",
        |_lua, (host, port, config): (Value, Value, Value)| {
            let host = parse_host(&host)?;
            let port = args::integer_in::<u16>(&port, "port", 1..=65535)?;
            let options = parse_options(config)?;
            Ok(connect(host, port, options))
        },
    )
}
