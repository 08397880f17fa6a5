//! `net.tcp.connect(host, port, config?)`: plain and TLS TCP streams.
//!
//! `config` is `true` (TLS) or `{ tls?, ttl? }`. The host may be a DNS name or an IP
//! literal (IPv6 with or without brackets); TLS uses SNI and the shared trust store.
//! The stream has `localIp`, `localPort`, `remoteIp`, `remotePort`, and the methods
//! `read(size?)` (yields until data arrives, returns at most `size` bytes, nil at end
//! of stream), `write(data)` (writes all of a string or buffer) and `close()`
//! (shuts the stream down; later writes are errors). Reads and writes use separate
//! halves, so one thread may read while another writes.

use std::cell::Cell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use bytes::{BufMut, BytesMut};
use mlua::{
    Error, Function, Lua, LuaString, MetaMethod, Result, Table, UserData, UserDataFields,
    UserDataMethods, Value,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use lunet_runtime::args;

use crate::connect_limit::{CONNECT_TIMEOUT, within_connect_limit};
use crate::error::error_chain;
use crate::object::{self, Object, This};

/// How many bytes `read()` returns at most when no size is given.
pub(crate) const DEFAULT_READ_SIZE: usize = 64 * 1024;

type Reader = Pin<Box<dyn AsyncRead>>;
type Writer = Pin<Box<dyn AsyncWrite>>;

/// The read half with the buffer reads go through (kept between reads, so a read
/// neither allocates nor zero-fills).
struct ReadHalf {
    reader: Reader,
    buffer: BytesMut,
}

/// A stream's state, shared by its userdata and the futures of its calls in progress.
pub(crate) struct Inner {
    reader: Mutex<ReadHalf>,
    writer: Mutex<Writer>,
    closed: Cell<bool>,
    local: SocketAddr,
    remote: SocketAddr,
}

/// A connected TCP (or TLS) stream as a Luau userdata.
pub(crate) struct Stream {
    inner: Rc<Inner>,
}

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

fn parse_host(value: &Value) -> Result<String> {
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
    Ok(Stream {
        inner: Rc::new(Inner {
            reader: Mutex::new(ReadHalf {
                reader,
                buffer: BytesMut::new(),
            }),
            writer: Mutex::new(writer),
            closed: Cell::new(false),
            local,
            remote,
        }),
    })
}

/// What `write` sends: a Luau string as is, or a copy of a buffer.
enum Data {
    String(LuaString),
    Bytes(bytes::Bytes),
}

/// The method functions, created once per VM and shared by every stream.
fn build_methods(lua: &Lua) -> Result<Table> {
    let table = lua.create_table()?;
    let read = lunet_runtime::create_checked_async_function(
        lua,
        "TcpStream:read",
        |lua, (this, size): (This<Stream>, Value)| {
            let lua = lua.clone();
            let inner = this.get("read")?;
            let size = args::optional_integer_in::<usize>(&size, "size", 1..=i64::MAX)?
                .unwrap_or(DEFAULT_READ_SIZE)
                .min(16 << 20);
            Ok(async move {
                if inner.closed.get() {
                    return Ok(Value::Nil);
                }
                let mut half = inner.reader.lock().await;
                let ReadHalf { reader, buffer } = &mut *half;
                buffer.clear();
                // Reads up to the default size reuse the stream's buffer; a larger
                // one gets its own, so one big read does not pin a big buffer.
                let mut own = BytesMut::new();
                let buffer = if size <= DEFAULT_READ_SIZE {
                    buffer
                } else {
                    &mut own
                };
                buffer.reserve(size);
                let n = reader
                    .read_buf(&mut (&mut *buffer).limit(size))
                    .await
                    .map_err(|e| Error::runtime(format!("TcpStream:read failed: {e}")))?;
                if n == 0 {
                    return Ok(Value::Nil);
                }
                Ok(Value::String(lua.create_string(&buffer[..n])?))
            })
        },
    )?;
    let write = lunet_runtime::create_checked_async_function(
        lua,
        "TcpStream:write",
        |_lua, (this, data): (This<Stream>, Value)| {
            let inner = this.get("write")?;
            let data = match data {
                // Strings are immutable: write straight from Luau's copy (the handle
                // keeps it alive). Anything else is a buffer, which may change while
                // the write waits, so it is copied now (or the wrong type, reported
                // as such).
                Value::String(s) => Data::String(s),
                other => Data::Bytes(args::bytes(&other, "data")?),
            };
            Ok(async move {
                if inner.closed.get() {
                    return Err(Error::runtime("cannot write: the TcpStream is closed"));
                }
                let mut writer = inner.writer.lock().await;
                let result = match &data {
                    Data::String(s) => writer.write_all(&s.as_bytes()).await,
                    Data::Bytes(b) => writer.write_all(b).await,
                };
                result.map_err(|e| Error::runtime(format!("TcpStream:write failed: {e}")))?;
                writer
                    .flush()
                    .await
                    .map_err(|e| Error::runtime(format!("TcpStream:write failed: {e}")))
            })
        },
    )?;
    let close = lunet_runtime::create_checked_async_function(
        lua,
        "TcpStream:close",
        |_lua, this: This<Stream>| {
            let inner = this.get("close")?;
            Ok(async move {
                if inner.closed.replace(true) {
                    return Ok(());
                }
                let mut writer = inner.writer.lock().await;
                let _ = writer.shutdown().await;
                Ok(())
            })
        },
    )?;
    table.raw_set("read", read)?;
    table.raw_set("write", write)?;
    table.raw_set("close", close)?;
    Ok(table)
}

impl Object for Stream {
    const NAME: &'static str = "TcpStream";
    const VARIABLE: &'static str = "stream";
    type Shared = Rc<Inner>;

    fn shared(&self) -> Rc<Inner> {
        self.inner.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }

    fn property(&self, lua: &Lua, key: &[u8]) -> Result<Value> {
        let inner = &self.inner;
        Ok(match key {
            b"localIp" => {
                Value::String(lua.create_string(inner.local.ip().to_canonical().to_string())?)
            }
            b"localPort" => Value::Integer(inner.local.port().into()),
            b"remoteIp" => {
                Value::String(lua.create_string(inner.remote.ip().to_canonical().to_string())?)
            }
            b"remotePort" => Value::Integer(inner.remote.port().into()),
            _ => Value::Nil,
        })
    }
}

impl UserData for Stream {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }

    fn add_methods<M: UserDataMethods<Self>>(registry: &mut M) {
        registry.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!(
                "TcpStream({} -> {})",
                this.inner.local, this.inner.remote
            ))
        });
    }
}

/// Builds the `net.tcp.connect` function.
pub(crate) fn create_connect_function(lua: &Lua) -> Result<Function> {
    object::methods::<Stream>(lua)?;
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
