//! `@lune/net` for Luau hosts built on the Lunet runtime.
//!
//! The library table has `request`, `socket`, `serve`, `urlEncode`, `urlDecode`, and
//! the submodules `http = { request, serve, stream }`, `tcp = { connect, listen }`,
//! `udp = { bind }`, `unix = { connect, listen }`, `ws = { connect }`;
//! every table is read-only. Each concern has its own module:
//!
//! - `client`: `net.request`, an HTTP(S) client on hyper with its own keep-alive pool;
//! - `server`: `net.serve`, a hyper HTTP/1.1 server running one Luau thread per
//!   request, with the WebSocket upgrade;
//! - [`ws`]: the WebSocket object both sides share, and `net.socket`;
//! - `tcp`: `net.tcp.connect` and `net.tcp.listen`, plain and TLS streams and
//!   listeners (the stream object is shared with Unix sockets);
//! - `udp`: `net.udp.bind` and the `UdpSocket` object;
//! - `unix`: `net.unix.connect` / `net.unix.listen`, and Unix socket files;
//! - `body`: reading a request or response body within a limit, undoing its
//!   content codings as it arrives; `BodyStream` (a body read piece by piece, with
//!   its line and Server-Sent Events iterators); request bodies a function produces;
//! - the objects (WebSocket, TcpStream, TcpListener, UdpSocket, BodyStream) use the
//!   runtime's `lunet_runtime::object` for their method lookup;
//! - `convert`: Luau values to and from HTTP headers and bodies;
//! - `error`: the error type of connections and how it is worded for scripts;
//! - [`tls`]: the one trust store and the TLS client configurations;
//! - `url`: the `urlEncode` and `urlDecode` functions.
//!
//! Other crates use only [`create`] (the library table), [`TYPES`] (for
//! `lunet setup`), [`tls::install_crypto_provider`] and [`ws::config`] (for tests and
//! peers that speak to Lunet with the same settings); everything else is
//! `pub(crate)`. I/O functions yield only their calling Luau thread, through the
//! runtime's [`lunet_runtime::create_async_function`]; this crate never touches the
//! scheduler's internals. Arguments are checked with [`lunet_runtime::args`], so
//! every bad value reads `Invalid <field> - expected <what>, got <what was given>`.

mod body;
mod client;
mod connect_limit;
mod convert;
mod error;
mod listen;
mod server;
mod tcp;
pub mod tls;
mod udp;
mod unix;
mod url;
pub mod ws;

use mlua::{Lua, Result, Table, Value};

/// The Luau type definitions of `@lune/net`, as `(file name, text)`, for
/// `lunet setup`.
pub const TYPES: &[(&str, &str)] = &[("net.luau", include_str!("../types/net.luau"))];

fn frozen(lua: &Lua, entries: Vec<(&str, Value)>) -> Result<Table> {
    let table = lua.create_table_with_capacity(0, entries.len())?;
    for (name, value) in entries {
        table.raw_set(name, value)?;
    }
    table.set_readonly(true);
    Ok(table)
}

/// Builds the `@lune/net` library table.
pub fn create(lua: &Lua) -> Result<Value> {
    tls::install_crypto_provider();
    let (request, stream) = client::create_functions(lua)?;
    let request = Value::Function(request);
    let serve = Value::Function(server::create_serve_function(lua)?);
    let socket = Value::Function(ws::client::create_socket_function(lua)?);
    let connect = Value::Function(tcp::connect::create_connect_function(lua)?);
    let listen = Value::Function(tcp::listener::create_listen_function(lua)?);
    let (unix_connect, unix_listen) = unix::create_functions(lua)?;
    let udp = frozen(
        lua,
        vec![("bind", Value::Function(udp::create_bind_function(lua)?))],
    )?;
    let unix = frozen(
        lua,
        vec![
            ("connect", Value::Function(unix_connect)),
            ("listen", Value::Function(unix_listen)),
        ],
    )?;
    let http = frozen(
        lua,
        vec![
            ("request", request.clone()),
            ("serve", serve.clone()),
            ("stream", Value::Function(stream)),
        ],
    )?;
    let tcp = frozen(lua, vec![("connect", connect), ("listen", listen)])?;
    let ws = frozen(lua, vec![("connect", socket.clone())])?;
    let net = frozen(
        lua,
        vec![
            ("request", request),
            ("serve", serve),
            ("socket", socket),
            (
                "urlEncode",
                Value::Function(url::create_encode_function(lua)?),
            ),
            (
                "urlDecode",
                Value::Function(url::create_decode_function(lua)?),
            ),
            ("http", Value::Table(http)),
            ("tcp", Value::Table(tcp)),
            ("udp", Value::Table(udp)),
            ("unix", Value::Table(unix)),
            ("ws", Value::Table(ws)),
        ],
    )?;
    Ok(Value::Table(net))
}
