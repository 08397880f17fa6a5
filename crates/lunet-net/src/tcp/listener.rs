//! `net.tcp.listen(port | { address?, port?, tls? })` and the `TcpListener` object,
//! which `net.unix.listen` hands out too.
//!
//! ```luau
//! local listener = net.tcp.listen({ address = "::", port = 0 })
//! print(listener.ip, listener.port) -- the port the system picked
//! local stream = listener:accept() -- a TcpStream, exactly as from net.tcp.connect
//! listener:close()
//! ```
//!
//! The socket is bound when `listen` returns (a port in use is an immediate error).
//! `accept()` yields only its calling thread until a connection arrives; what it
//! returns is a [`Stream`] with the same bounds as a connected one. With `tls`, the
//! TLS handshakes run concurrently (at most [`MAX_HANDSHAKES`], each within
//! [`HANDSHAKE_TIMEOUT`]) while a thread waits in `accept()`, so a client that never
//! finishes its handshake holds up nobody; a failed handshake is dropped and accept
//! waits for the next connection. Connections nobody accepts wait in the kernel's
//! backlog, never in memory here.
//!
//! An open listener keeps the process alive; `close()` (or the listener being
//! garbage collected, once the script can no longer reach it) closes the socket, ends
//! that, makes every pending `accept()` fail with "closed", and removes a Unix
//! listener's socket file. How a Unix listener is bound (and a stale socket file
//! replaced) is `crate::unix`'s business.

use std::cell::RefCell;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use mlua::{
    Error, Function, Lua, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods,
    Value,
};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use lunet_runtime::{KeepAlive, Scheduler, args};

use super::stream::{Endpoints, Stream};
use crate::unix::SocketFile;
use lunet_runtime::object::{self, Object, This};

/// How many TLS handshakes a listener runs at once; further connections wait in the
/// kernel's backlog until one ends.
pub(crate) const MAX_HANDSHAKES: usize = 64;

/// How long an accepted connection's TLS handshake may take before it is dropped.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket a listener accepts from.
pub(crate) enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Where a listener listens.
enum Address {
    Ip(SocketAddr),
    Unix(SocketFile),
}

type Handshake = Pin<Box<dyn Future<Output = Option<Stream>>>>;

/// A listener's state, shared by its userdata and the `accept()` calls in progress.
pub(crate) struct Inner {
    /// The socket while the listener is open.
    socket: RefCell<Option<Rc<Socket>>>,
    /// Wakes the pending `accept()` calls when the listener closes.
    closing: Notify,
    /// Holds the process open while the listener is.
    keep_alive: RefCell<Option<KeepAlive>>,
    address: Address,
    tls: Option<TlsAcceptor>,
    /// TLS handshakes in progress; one accepting thread at a time drives them.
    handshakes: tokio::sync::Mutex<FuturesUnordered<Handshake>>,
}

impl Inner {
    /// Closes the socket (dropping queued connections), wakes the pending accepts and
    /// lets the process end; removes a Unix listener's socket file. Idempotent.
    fn close(&self) {
        if self.socket.borrow_mut().take().is_none() {
            return;
        }
        if let Address::Unix(file) = &self.address {
            file.remove();
        }
        // An accept driving the handshakes holds their lock, and drops them itself
        // when it sees the close.
        self.drop_handshakes();
        self.keep_alive.borrow_mut().take();
        self.closing.notify_waiters();
    }

    /// Ends the TLS handshakes in progress (with the listener), unless an accept
    /// holds them.
    fn drop_handshakes(&self) {
        if let Ok(mut handshakes) = self.handshakes.try_lock() {
            handshakes.clear();
        }
    }

    fn closed_error(&self) -> Error {
        Error::runtime(format!(
            "TcpListener:accept failed: the listener on {} is closed",
            self.describe()
        ))
    }

    fn describe(&self) -> String {
        match &self.address {
            Address::Ip(address) => address.to_string(),
            Address::Unix(file) => format!("unix:{}", file.path().display()),
        }
    }

    /// The next connection, as a stream (TLS done, when the listener has TLS).
    async fn accept(&self, socket: &Socket) -> Stream {
        let mut handshakes = self.handshakes.lock().await;
        loop {
            let room = handshakes.len() < MAX_HANDSHAKES;
            tokio::select! {
                Some(done) = handshakes.next(), if !handshakes.is_empty() => {
                    if let Some(stream) = done {
                        return stream;
                    }
                }
                accepted = accept_one(socket, &self.address), if room => match accepted {
                    Accepted::Stream(stream) => return stream,
                    Accepted::Tcp(tcp, remote) => match &self.tls {
                        Some(acceptor) => {
                            handshakes.push(Box::pin(handshake(acceptor.clone(), tcp, remote)));
                        }
                        None => return tcp_stream(tcp, remote),
                    },
                    // Out of file descriptors and similar: back off instead of
                    // spinning, and go on once descriptors are free again.
                    Accepted::Failed => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
    }
}

/// What one `accept` on the socket gave.
enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Stream(Stream),
    Failed,
}

async fn accept_one(socket: &Socket, address: &Address) -> Accepted {
    match (socket, address) {
        (Socket::Tcp(listener), _) => match listener.accept().await {
            Ok((tcp, remote)) => Accepted::Tcp(tcp, remote),
            Err(_) => Accepted::Failed,
        },
        (Socket::Unix(listener), Address::Unix(file)) => match listener.accept().await {
            Ok((unix, _)) => Accepted::Stream(crate::unix::unix_stream(unix, file.path())),
            Err(_) => Accepted::Failed,
        },
        (Socket::Unix(_), Address::Ip(_)) => unreachable!("a Unix listener has a socket file"),
    }
}

/// An accepted plain TCP connection as a stream.
fn tcp_stream(tcp: TcpStream, remote: SocketAddr) -> Stream {
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().unwrap_or(remote);
    let (reader, writer) = tcp.into_split();
    Stream::new(
        Box::pin(reader),
        Box::pin(writer),
        Endpoints::Ip { local, remote },
    )
}

/// The server side of a TLS handshake within [`HANDSHAKE_TIMEOUT`]; `None` when it
/// failed or took too long.
async fn handshake(acceptor: TlsAcceptor, tcp: TcpStream, remote: SocketAddr) -> Option<Stream> {
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().ok()?;
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .ok()?
        .ok()?;
    let (reader, writer) = tokio::io::split(tls);
    Some(Stream::new(
        Box::pin(reader),
        Box::pin(writer),
        Endpoints::Ip { local, remote },
    ))
}

/// A listening socket as a Luau userdata. Dropping it (the garbage collector
/// collecting an unreachable listener) closes it.
pub(crate) struct Listener {
    inner: Rc<Inner>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl Listener {
    fn new(lua: &Lua, socket: Socket, address: Address, tls: Option<TlsAcceptor>) -> Listener {
        Listener {
            inner: Rc::new(Inner {
                socket: RefCell::new(Some(Rc::new(socket))),
                closing: Notify::new(),
                keep_alive: RefCell::new(Some(Scheduler::of(lua).keep_alive_while_reachable())),
                address,
                tls,
                handshakes: tokio::sync::Mutex::new(FuturesUnordered::new()),
            }),
        }
    }

    /// A listener on a bound Unix socket (see `crate::unix`).
    pub(crate) fn unix(lua: &Lua, socket: UnixListener, file: SocketFile) -> Result<Listener> {
        object::methods::<Listener>(lua)?;
        Stream::prepare(lua)?;
        Ok(Listener::new(
            lua,
            Socket::Unix(socket),
            Address::Unix(file),
            None,
        ))
    }
}

fn build_methods(lua: &Lua) -> Result<Table> {
    let table = lua.create_table()?;
    let accept = lunet_runtime::create_checked_async_function(
        lua,
        "TcpListener:accept",
        |_lua, this: This<Listener>| {
            let inner = this.get("accept")?;
            Ok(async move {
                // Made before the check, so a close from here on wakes it.
                let closing = inner.closing.notified();
                let Some(socket) = inner.socket.borrow().clone() else {
                    return Err(inner.closed_error());
                };
                tokio::select! {
                    () = closing => {
                        inner.drop_handshakes();
                        Err(inner.closed_error())
                    }
                    stream = inner.accept(&socket) => Ok(stream),
                }
            })
        },
    )?;
    let close = lunet_runtime::create_function(lua, |_lua, this: This<Listener>| {
        this.get("close")?.close();
        Ok(())
    })?;
    table.raw_set("accept", accept)?;
    table.raw_set("close", close)?;
    Ok(table)
}

impl Object for Listener {
    const NAME: &'static str = "TcpListener";
    const VARIABLE: &'static str = "listener";
    type Shared = Rc<Inner>;

    fn shared(&self) -> Rc<Inner> {
        self.inner.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }

    fn property(&self, lua: &Lua, key: &[u8]) -> Result<Value> {
        Ok(match (&self.inner.address, key) {
            (Address::Ip(address), b"ip") => {
                Value::String(lua.create_string(address.ip().to_canonical().to_string())?)
            }
            (Address::Ip(address), b"port") => Value::Integer(address.port().into()),
            (Address::Unix(file), b"path") => {
                Value::String(lua.create_string(file.path().as_os_str().as_encoded_bytes())?)
            }
            _ => Value::Nil,
        })
    }
}

impl UserData for Listener {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }

    fn add_methods<M: UserDataMethods<Self>>(registry: &mut M) {
        registry.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("TcpListener({})", this.inner.describe()))
        });
    }
}

/// `port` or `{ address?, port?, ... }`: the address to bind (127.0.0.1 and port 0
/// unless given) and the table, for the caller's other fields.
pub(crate) fn parse_address_and_port(
    value: &Value,
    expected: &str,
) -> Result<(SocketAddr, Option<Table>)> {
    match value {
        Value::Integer(_) | Value::Number(_) => Ok((
            SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                crate::listen::parse_port(value)?,
            ),
            None,
        )),
        Value::Table(table) => {
            let port = match table.get::<Value>("port")? {
                Value::Nil => 0,
                port => crate::listen::parse_port(&port)?,
            };
            let ip = match args::optional_string(&table.get("address")?, "address")? {
                Some(address) => crate::server::config::parse_address(&address.to_string_lossy())?,
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            Ok((SocketAddr::new(ip, port), Some(table.clone())))
        }
        other => Err(args::wrong("port", expected, other)),
    }
}

/// Builds the `net.tcp.listen` function.
pub(crate) fn create_listen_function(lua: &Lua) -> Result<Function> {
    object::methods::<Listener>(lua)?;
    Stream::prepare(lua)?;
    lunet_runtime::create_function(lua, |lua, config: Value| {
        let (address, table) = parse_address_and_port(
            &config,
            "a port number or a table { address?, port?, tls? }",
        )?;
        let tls = match &table {
            Some(table) => match table.get::<Value>("tls")? {
                Value::Nil => None,
                Value::Table(tls) => Some(TlsAcceptor::from(
                    crate::tls::server::config_from_table(&tls, &[])?,
                )),
                other => return Err(args::wrong("tls", "a table { cert, key }", &other)),
            },
            None => None,
        };
        let listener = crate::listen::bind_tcp(lua, address, false, "net.tcp.listen")?;
        let local = listener.local_addr()?;
        Ok(Listener::new(
            lua,
            Socket::Tcp(listener),
            Address::Ip(local),
            tls,
        ))
    })
}
