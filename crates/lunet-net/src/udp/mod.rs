//! `net.udp.bind(port | { address?, port? })`: a UDP socket bound on the address
//! (127.0.0.1 unless given; `"::"` or `"0.0.0.0"` for every interface) and port (0
//! picks a free one). The socket is bound when `bind` returns, so a port in use is
//! an immediate error. What the socket does is [`socket`]'s.

pub(crate) mod socket;

use mlua::{Error, Function, Lua, Result, Value};

use crate::listen::bind_error_cause;
use crate::tcp::listener::parse_address_and_port;
use lunet_runtime::object;
use socket::Socket;

/// Builds the `net.udp.bind` function.
pub(crate) fn create_bind_function(lua: &Lua) -> Result<Function> {
    object::methods::<Socket>(lua)?;
    lunet_runtime::create_function(lua, |lua, config: Value| {
        let (address, _) =
            parse_address_and_port(&config, "a port number or a table { address?, port? }")?;
        let fail = |e: std::io::Error| {
            Error::runtime(format!(
                "net.udp.bind cannot bind {address}: {}",
                bind_error_cause(&e)
            ))
        };
        let socket = std::net::UdpSocket::bind(address).map_err(fail)?;
        socket.set_nonblocking(true).map_err(fail)?;
        let socket = tokio::net::UdpSocket::from_std(socket).map_err(fail)?;
        let local = socket.local_addr().map_err(fail)?;
        Ok(Socket::new(lua, socket, local))
    })
}
