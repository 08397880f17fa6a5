//! The `UdpSocket` object: `send(data, host?, port?)`, `receive()`, `connect(host,
//! port)`, `close()`, and the fields `ip` and `port` (where it is bound).
//!
//! Nothing is read ahead of the script: `receive()` reads one datagram, when called,
//! into a 64 KiB buffer (the largest UDP payload fits), so a flood of datagrams
//! waits in the kernel's socket buffer (which drops what does not fit), never in
//! memory here. An open socket keeps the process alive; `close()` (or the socket
//! being garbage collected once unreachable) closes it, ends that, and makes every
//! pending `receive()` fail with "closed". How the socket is bound is
//! [`super`]'s business.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;
use mlua::{
    Error, Lua, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods, Value,
};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use lunet_runtime::{KeepAlive, Scheduler, args};

use crate::convert::LuaBytes;
use crate::tcp::connect::parse_host;
use lunet_runtime::object::{self, Object, This};

/// The receive buffer: a UDP datagram carries at most 65,507 bytes over IPv4 and
/// 65,527 over IPv6.
pub(crate) const RECEIVE_BUFFER: usize = 64 * 1024;

/// The largest datagram payload over IPv4 (65,535 minus the IP and UDP headers).
pub(crate) const MAX_DATAGRAM_V4: usize = 65_507;
/// The largest datagram payload over IPv6 (without jumbograms).
pub(crate) const MAX_DATAGRAM_V6: usize = 65_527;

/// A socket's state, shared by its userdata and the calls in progress.
pub(crate) struct Inner {
    /// The socket while it is open.
    socket: RefCell<Option<Rc<UdpSocket>>>,
    /// Wakes the pending calls when the socket closes.
    closing: Notify,
    /// Holds the process open while the socket is.
    keep_alive: RefCell<Option<KeepAlive>>,
    local: SocketAddr,
    /// Set by `connect`: where `send(data)` without a host goes.
    connected: Cell<bool>,
    /// A receive buffer between receives (taken by the receive using it).
    spare: Cell<Option<BytesMut>>,
}

impl Inner {
    fn close(&self) {
        if self.socket.borrow_mut().take().is_none() {
            return;
        }
        self.keep_alive.borrow_mut().take();
        self.closing.notify_waiters();
    }

    /// The open socket, or an error for `method` saying it is closed.
    fn socket(&self, method: &str) -> Result<Rc<UdpSocket>> {
        self.socket
            .borrow()
            .clone()
            .ok_or_else(|| self.closed_error(method))
    }

    fn closed_error(&self, method: &str) -> Error {
        Error::runtime(format!(
            "UdpSocket:{method} failed: the socket on {} is closed",
            self.local
        ))
    }

    /// The largest payload this socket's address family carries.
    fn max_datagram(&self) -> usize {
        if self.local.is_ipv4() {
            MAX_DATAGRAM_V4
        } else {
            MAX_DATAGRAM_V6
        }
    }
}

/// A bound UDP socket as a Luau userdata. Dropping it (the garbage collector
/// collecting an unreachable socket) closes it.
pub(crate) struct Socket {
    inner: Rc<Inner>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl Socket {
    pub(crate) fn new(lua: &Lua, socket: UdpSocket, local: SocketAddr) -> Socket {
        Socket {
            inner: Rc::new(Inner {
                socket: RefCell::new(Some(Rc::new(socket))),
                closing: Notify::new(),
                keep_alive: RefCell::new(Some(Scheduler::of(lua).keep_alive_while_reachable())),
                local,
                connected: Cell::new(false),
                spare: Cell::new(None),
            }),
        }
    }
}

/// The first address `host` resolves to in the socket's family (an IPv4 socket
/// cannot send to an IPv6 address, nor the other way round).
async fn resolve(host: &str, port: u16, local: SocketAddr, method: &str) -> Result<SocketAddr> {
    let fail = |cause: String| {
        Error::runtime(format!(
            "UdpSocket:{method} failed for {host} port {port}: {cause}"
        ))
    };
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut found = false;
    for address in addresses {
        found = true;
        match (address, local) {
            (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => {
                return Ok(address);
            }
            // A socket on the IPv6 wildcard (`::`) is dual-stack: it also talks to
            // IPv4 peers (whose datagrams `receive` reports by their IPv4 address),
            // through the IPv4-mapped form. One on a particular IPv6 address is not.
            (SocketAddr::V4(v4), SocketAddr::V6(_)) if local.ip().is_unspecified() => {
                return Ok(SocketAddr::new(
                    std::net::IpAddr::V6(v4.ip().to_ipv6_mapped()),
                    v4.port(),
                ));
            }
            _ => {}
        }
    }
    Err(fail(if found {
        format!(
            "it has no {} address (the socket is bound to {local})",
            if local.is_ipv4() { "IPv4" } else { "IPv6" }
        )
    } else {
        "the name has no address".to_string()
    }))
}

/// The `host` and `port` arguments of `send` and `connect`.
fn parse_target(host: &Value, port: &Value) -> Result<(String, u16)> {
    Ok((
        parse_host(host)?,
        args::integer_in::<u16>(port, "port", 1..=65535)?,
    ))
}

fn build_methods(lua: &Lua) -> Result<Table> {
    let table = lua.create_table()?;
    let send = lunet_runtime::create_checked_async_function(
        lua,
        "UdpSocket:send",
        |_lua, (this, data, host, port): (This<Socket>, Value, Value, Value)| {
            let inner = this.get("send")?;
            let data = args::bytes(&data, "data")?;
            if data.len() > inner.max_datagram() {
                return Err(args::invalid(
                    "data",
                    &format!(
                        "at most {} bytes (the largest UDP datagram over {})",
                        inner.max_datagram(),
                        if inner.local.is_ipv4() {
                            "IPv4"
                        } else {
                            "IPv6"
                        }
                    ),
                    format!("{} bytes", data.len()),
                ));
            }
            let target = match host {
                Value::Nil if !inner.connected.get() => {
                    return Err(args::invalid(
                        "host",
                        "a string (the UdpSocket is not connected: pass a host and a port, or call connect first)",
                        "nil",
                    ));
                }
                // A port without a host would be silently ignored: say so instead.
                Value::Nil if !port.is_nil() => {
                    return Err(args::invalid(
                        "host",
                        "a string with the port (a connected UdpSocket takes neither)",
                        "nil",
                    ));
                }
                Value::Nil => None,
                host => Some(parse_target(&host, &port)?),
            };
            let socket = inner.socket("send")?;
            Ok(async move {
                let closing = inner.closing.notified();
                let sending = async {
                    let sent = match &target {
                        Some((host, port)) => {
                            let address = resolve(host, *port, inner.local, "send").await?;
                            socket.send_to(&data, address).await
                        }
                        None => socket.send(&data).await,
                    };
                    sent.map(|_| ()).map_err(|e| {
                        let to = match &target {
                            Some((host, port)) => format!(" to {host} port {port}"),
                            None => String::new(),
                        };
                        Error::runtime(format!("UdpSocket:send failed{to}: {e}"))
                    })
                };
                tokio::select! {
                    () = closing => Err(inner.closed_error("send")),
                    sent = sending => sent,
                }
            })
        },
    )?;
    let receive = lunet_runtime::create_checked_async_function(
        lua,
        "UdpSocket:receive",
        |_lua, this: This<Socket>| {
            let inner = this.get("receive")?;
            let socket = inner.socket("receive")?;
            Ok(async move {
                let closing = inner.closing.notified();
                let mut buffer = inner
                    .spare
                    .take()
                    .unwrap_or_else(|| BytesMut::with_capacity(RECEIVE_BUFFER));
                buffer.clear();
                // Takes back the room of the last datagram once Luau has copied it.
                buffer.reserve(RECEIVE_BUFFER);
                let received = tokio::select! {
                    () = closing => return Err(inner.closed_error("receive")),
                    received = socket.recv_buf_from(&mut buffer) => received,
                };
                let outcome = match received {
                    Ok((n, from)) => Ok((LuaBytes(buffer.split_to(n).freeze()), from)),
                    Err(e) => Err(Error::runtime(format!("UdpSocket:receive failed: {e}"))),
                };
                // The buffer is kept for the next receive, whatever happened.
                inner.spare.set(Some(buffer));
                let (data, from) = outcome?;
                Ok((
                    data,
                    from.ip().to_canonical().to_string(),
                    i64::from(from.port()),
                ))
            })
        },
    )?;
    let connect = lunet_runtime::create_checked_async_function(
        lua,
        "UdpSocket:connect",
        |_lua, (this, host, port): (This<Socket>, Value, Value)| {
            let inner = this.get("connect")?;
            let (host, port) = parse_target(&host, &port)?;
            let socket = inner.socket("connect")?;
            Ok(async move {
                let address = resolve(&host, port, inner.local, "connect").await?;
                socket.connect(address).await.map_err(|e| {
                    Error::runtime(format!(
                        "UdpSocket:connect failed for {host} port {port}: {e}"
                    ))
                })?;
                inner.connected.set(true);
                Ok(())
            })
        },
    )?;
    let close = lunet_runtime::create_function(lua, |_lua, this: This<Socket>| {
        this.get("close")?.close();
        Ok(())
    })?;
    table.raw_set("send", send)?;
    table.raw_set("receive", receive)?;
    table.raw_set("connect", connect)?;
    table.raw_set("close", close)?;
    Ok(table)
}

impl Object for Socket {
    const NAME: &'static str = "UdpSocket";
    const VARIABLE: &'static str = "socket";
    type Shared = Rc<Inner>;

    fn shared(&self) -> Rc<Inner> {
        self.inner.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }

    fn property(&self, lua: &Lua, key: &[u8]) -> Result<Value> {
        let local = &self.inner.local;
        Ok(match key {
            b"ip" => Value::String(lua.create_string(local.ip().to_canonical().to_string())?),
            b"port" => Value::Integer(local.port().into()),
            _ => Value::Nil,
        })
    }
}

impl UserData for Socket {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }

    fn add_methods<M: UserDataMethods<Self>>(registry: &mut M) {
        registry.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("UdpSocket({})", this.inner.local))
        });
    }
}
