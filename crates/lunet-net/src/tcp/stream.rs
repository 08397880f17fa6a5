//! The stream object scripts read and write: `TcpStream`, as `net.tcp.connect`,
//! `TcpListener:accept()` and `net.unix` hand it out.
//!
//! One implementation for every kind of byte stream: a plain TCP connection, TLS over
//! TCP (either side) and a Unix domain socket are all boxed tokio `AsyncRead` and
//! `AsyncWrite` halves, so reads, writes, their bounds and `close()` behave the same
//! whatever is underneath. The stream has `localIp`, `localPort`, `remoteIp`,
//! `remotePort` (TCP) or `path` (Unix), and the methods `read(size?)` (yields until
//! data arrives, returns at most `size` bytes, at most 16 MiB, nil at end of stream),
//! `write(data)` (writes all of a string or buffer) and `close()` (shuts the stream
//! down; later writes are errors). Reads and writes use separate halves, so one
//! thread may read while another writes. Nothing is read ahead of the script: the
//! only buffer is the one a `read()` fills. How a stream is opened (connect, accept,
//! TLS) is the business of `connect`, `listener` and `crate::unix`.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;

use bytes::{BufMut, BytesMut};
use mlua::{
    Error, Lua, LuaString, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods,
    Value,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, Notify};

use lunet_runtime::args;

use crate::convert::LuaBytes;
use lunet_runtime::object::{self, Object, This};

/// How many bytes `read()` returns at most when no size is given.
pub(crate) const DEFAULT_READ_SIZE: usize = 64 * 1024;

pub(crate) type Reader = Pin<Box<dyn AsyncRead>>;
pub(crate) type Writer = Pin<Box<dyn AsyncWrite>>;

/// Where a stream's two ends are.
pub(crate) enum Endpoints {
    /// A TCP connection (plain or TLS).
    Ip {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// A Unix domain socket connection, with the path of the socket file.
    Unix { path: PathBuf },
}

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
    /// Woken by `close()`: a read or write waiting on the peer ends then.
    closing: Notify,
    endpoints: Endpoints,
}

/// A connected stream (TCP, TLS or Unix) as a Luau userdata.
pub(crate) struct Stream {
    inner: Rc<Inner>,
}

impl Stream {
    /// A stream over the halves of an open connection.
    pub(crate) fn new(reader: Reader, writer: Writer, endpoints: Endpoints) -> Stream {
        Stream {
            inner: Rc::new(Inner {
                reader: Mutex::new(ReadHalf {
                    reader,
                    buffer: BytesMut::new(),
                }),
                writer: Mutex::new(writer),
                closed: Cell::new(false),
                closing: Notify::new(),
                endpoints,
            }),
        }
    }

    /// Makes sure the method table exists (call once when the library is built).
    pub(crate) fn prepare(lua: &Lua) -> Result<()> {
        object::methods::<Stream>(lua).map(|_| ())
    }
}

/// What `write` sends: a Luau string as is, or a copy of a buffer.
enum Data {
    String(LuaString),
    Bytes(bytes::Bytes),
}

/// How long `close()` waits to say goodbye to a peer that is not reading.
const CLOSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The method functions, created once per VM and shared by every stream.
fn build_methods(lua: &Lua) -> Result<Table> {
    let table = lua.create_table()?;
    let read = lunet_runtime::create_checked_async_function(
        lua,
        "TcpStream:read",
        |_lua, (this, size): (This<Stream>, Value)| {
            let inner = this.get("read")?;
            let size = args::optional_integer_in::<usize>(&size, "size", 1..=i64::MAX)?
                .unwrap_or(DEFAULT_READ_SIZE)
                .min(16 << 20);
            Ok(async move {
                let closing = inner.closing.notified();
                if inner.closed.get() {
                    return Ok(None);
                }
                let reading = async {
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
                        return Ok(None);
                    }
                    // Pushed straight onto the Luau stack; once it has been, the
                    // shared buffer's next `reserve` takes its room back.
                    Ok(Some(LuaBytes(buffer.split_to(n).freeze())))
                };
                // Closed while waiting: the end of the stream, as after close().
                tokio::select! {
                    read = reading => read,
                    () = closing => Ok(None),
                }
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
                let closing = inner.closing.notified();
                if inner.closed.get() {
                    return Err(Error::runtime("cannot write: the TcpStream is closed"));
                }
                let writing = async {
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
                };
                // Closed while the peer was not taking the data: the write ends.
                tokio::select! {
                    written = writing => written,
                    () = closing => Err(Error::runtime("cannot write: the TcpStream is closed")),
                }
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
                // Waiting reads and writes end first (releasing the writer); the
                // goodbye (FIN, or TLS's close_notify, which needs the peer to take
                // it) is given a bounded time.
                inner.closing.notify_waiters();
                let _ = tokio::time::timeout(CLOSE_LIMIT, async {
                    let mut writer = inner.writer.lock().await;
                    writer.shutdown().await
                })
                .await;
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
        let ip = |address: &SocketAddr| -> Result<Value> {
            Ok(Value::String(
                lua.create_string(address.ip().to_canonical().to_string())?,
            ))
        };
        Ok(match (&self.inner.endpoints, key) {
            (Endpoints::Ip { local, .. }, b"localIp") => ip(local)?,
            (Endpoints::Ip { local, .. }, b"localPort") => Value::Integer(local.port().into()),
            (Endpoints::Ip { remote, .. }, b"remoteIp") => ip(remote)?,
            (Endpoints::Ip { remote, .. }, b"remotePort") => Value::Integer(remote.port().into()),
            (Endpoints::Unix { path }, b"path") => {
                Value::String(lua.create_string(path.as_os_str().as_encoded_bytes())?)
            }
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
            Ok(match &this.inner.endpoints {
                Endpoints::Ip { local, remote } => format!("TcpStream({local} -> {remote})"),
                Endpoints::Unix { path } => format!("TcpStream(unix:{})", path.display()),
            })
        });
    }
}
