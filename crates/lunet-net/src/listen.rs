//! Binding listening TCP sockets, shared by `net.serve` and `net.tcp.listen`:
//! the error a script sees when it cannot listen, and sharing a port between
//! workers.
//!
//! With `SO_REUSEPORT` (asked by `reusePort = true`, and always under
//! `lunet run --workers N` with N > 1), several sockets listen on one port and the
//! kernel spreads new connections over them. Under workers, each worker runs the
//! same script and so makes the same binds in the same order: the n-th bind to port 0
//! of every worker gets the port the first worker to make it was given, so all of them
//! end up on one port, as `workers.md` asks. Accepting and serving is not this
//! module's business.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use lunet_runtime::args;
use lunet_runtime::workers::Worker;
use mlua::{Error, Lua, Result, Value};
use tokio::net::{TcpListener, TcpSocket};

/// The ports workers were given for their binds to port 0: (address, the bind's
/// ordinal among a worker's port-0 binds) -> port.
static SHARED_PORTS: Mutex<Vec<(IpAddr, usize, u16)>> = Mutex::new(Vec::new());

/// How many binds to port 0 this VM has made (its ordinal for the next one).
struct PortZeroBinds(Cell<usize>);

/// Binds and listens on `address` for `who` (`net.serve`, ...): with `SO_REUSEPORT`
/// when `reuse_port` or when this VM is one of several workers. A failure is an error
/// naming `who`, the address and the cause.
pub(crate) fn bind_tcp(
    lua: &Lua,
    address: SocketAddr,
    reuse_port: bool,
    who: &str,
) -> Result<TcpListener> {
    let workers = Worker::of(lua).has_siblings();
    if !(workers && address.port() == 0) {
        return bind(address, reuse_port || workers, who);
    }
    let counted = lua
        .app_data_ref::<PortZeroBinds>()
        .map(|binds| binds.0.replace(binds.0.get() + 1));
    let ordinal = counted.unwrap_or_else(|| {
        lua.set_app_data(PortZeroBinds(Cell::new(1)));
        0
    });
    // Held while binding, so two workers making the same bind at once agree.
    let mut shared = SHARED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let known = shared
        .iter()
        .find(|(ip, n, _)| *ip == address.ip() && *n == ordinal)
        .map(|(_, _, port)| *port);
    match known {
        Some(port) => bind(SocketAddr::new(address.ip(), port), true, who),
        None => {
            let listener = bind(address, true, who)?;
            let port = listener.local_addr()?.port();
            shared.push((address.ip(), ordinal, port));
            Ok(listener)
        }
    }
}

/// A listening port: 0 to 65535, where 0 asks the system for a free one.
pub(crate) fn parse_port(value: &Value) -> Result<u16> {
    args::integer_in(value, "port", 0..=65535).map_err(|_| {
        args::out_of_range(
            "port",
            "an integer from 0 to 65535 (0 picks a free port)",
            value,
        )
    })
}

/// Why binding failed, in words (for `<who> cannot listen on <address>: <cause>`;
/// UDP's bind says it the same way).
pub(crate) fn bind_error_cause(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "the address is already in use".to_string(),
        std::io::ErrorKind::AddrNotAvailable => {
            "the address is not available on this machine".to_string()
        }
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Binds with `SO_REUSEADDR` (a port left in TIME_WAIT by a previous run can be
/// reused) and listens with a backlog of 1024.
fn bind(address: SocketAddr, reuse_port: bool, who: &str) -> Result<TcpListener> {
    let fail = |e: std::io::Error| {
        Error::runtime(format!(
            "{who} cannot listen on {address}: {}",
            bind_error_cause(&e)
        ))
    };
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(fail)?;
    socket.set_reuseaddr(true).map_err(fail)?;
    if reuse_port {
        set_reuse_port(&socket).map_err(fail)?;
    }
    socket.bind(address).map_err(fail)?;
    socket.listen(1024).map_err(fail)
}

#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
fn set_reuse_port(socket: &TcpSocket) -> std::io::Result<()> {
    socket.set_reuseport(true)
}

#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
fn set_reuse_port(_: &TcpSocket) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "SO_REUSEPORT (reusePort, --workers) is not supported on this platform",
    ))
}
