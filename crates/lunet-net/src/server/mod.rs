//! `net.serve`: an HTTP/1.1 and HTTP/2 server, plain or over TLS, whose requests
//! are handled by Luau functions.
//!
//! [`config`] reads the arguments and limits; this module binds the socket (a TCP
//! port, or a Unix socket for `address = "unix:/path"`, whose file is removed when
//! the server stops) synchronously, so a port in use is an immediate error, runs the
//! accept loop as a local task that keeps the process alive, and returns the handle
//! `{ ip, port, stop }`. [`connection`] runs each connection's lifecycle with hyper
//! (keep-alive, the [`watchdog`]'s timeouts, the graceful stop) over the
//! [`transport`] (TLS, and which HTTP the client speaks); [`service`] takes each request from
//! hyper to the Luau handler and back, with [`request`] and [`response`] converting
//! between HTTP and Luau, and [`upgrade`] turning WebSocket handshakes into
//! `WebSocket` objects, [`stream`] running a handler's function body as a
//! streaming response, and [`whole`] sending the other bodies; [`peer`] is what they share about a connection.
//! [`drain`] holds what stopping involves (`stop()`, or SIGINT/SIGTERM through the
//! runtime's `shutdown`). Each request runs in its own Luau thread via the
//! scheduler's `call`, so a handler that yields holds up nothing else. A handler
//! error is answered with 500 and printed with its stack trace; the server keeps
//! serving.

mod common_strings;
pub(crate) mod config;
mod connection;
mod drain;
mod peer;
mod recent;
mod request;
mod response;
mod service;
mod stream;
mod transport;
mod upgrade;
mod watchdog;
mod whole;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Error, FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue, Result, Table, Value};
use tokio::net::TcpListener;

use config::{Limits, ServeConfig};
use drain::Drain;
use lunet_runtime::shutdown::Shutdown;
use lunet_runtime::{CallOutcome, KeepAlive, Scheduler};
use transport::Accepted;

/// What every connection of one server shares.
pub(crate) struct Server {
    pub(crate) lua: Lua,
    pub(crate) scheduler: Rc<Scheduler>,
    pub(crate) handle_request: Option<Function>,
    pub(crate) handle_websocket: Option<Function>,
    /// `acceptWebSocket`, run before each WebSocket upgrade (see [`upgrade`]).
    pub(crate) accept_websocket: Option<Function>,
    /// Build each request table and call `handle_request` with it (see [`request`]).
    pub(crate) request_builders: request::RequestBuilders,
    pub(crate) limits: Limits,
    /// `streamRequestBody`: `request.body` is a `BodyStream` read as the handler asks.
    pub(crate) stream_request_body: bool,
    pub(crate) drain: Rc<Drain>,
    /// `tls`: every connection is TLS, with this configuration.
    pub(crate) tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl Server {
    /// Runs `handler(args...)` in a new Luau thread and waits for its outcome: the
    /// handler's first return value.
    pub(crate) async fn run_handler<R: FromLuaMulti + 'static>(
        &self,
        handler: &Function,
        args: impl IntoLuaMulti,
    ) -> Result<R> {
        match self.scheduler.call(&self.lua, handler, args)? {
            CallOutcome::Done(result) => result,
            CallOutcome::Pending(thread, receiver) => {
                // Known to the drain while it runs, so a stopped server's deadline
                // can cancel it.
                let _running = self.drain.running(thread);
                receiver.await.unwrap_or_else(|_| {
                    Err(Error::runtime(
                        "the handler's thread was cancelled before it returned",
                    ))
                })
            }
        }
    }

    /// Prints a handler failure (with its Luau stack trace) to stderr, unless the
    /// server gave up on its handlers at its shutdown deadline (the failure is then
    /// that cancellation).
    pub(crate) fn report_handler_error(&self, handler: &str, what: &str, error: &Error) {
        if self.drain.abandoned() {
            return;
        }
        let message = lunet_runtime::report::error_with_trace(error);
        eprintln!(
            "net.serve: {handler} failed for {what}: {}",
            message.trim_end()
        );
    }
}

/// What a server accepts connections from: a TCP port, or a Unix socket (whose file
/// is removed when the server stops).
enum Listening {
    Tcp(TcpListener),
    Unix(tokio::net::UnixListener, crate::unix::SocketFile),
}

/// Accepts connections until the server stops, then waits for it to drain. While
/// it runs, a SIGINT or SIGTERM stops the server and the process exits once it has
/// drained (see the runtime's `shutdown`).
async fn accept_loop(listener: Listening, server: Rc<Server>, keep_alive: KeepAlive) {
    let drain = server.drain.clone();
    let _on_signal = Shutdown::of(&server.lua).on_signal(move || {
        let drain = drain.clone();
        async move {
            drain.begin();
            let deadline = drain.deadline().unwrap_or_else(tokio::time::Instant::now);
            // Past the deadline, what is left has been cancelled or cut; a moment
            // more lets the cancelled handlers' connections close.
            tokio::select! {
                () = drain.finished() => {}
                () = tokio::time::sleep_until(deadline + Duration::from_millis(100)) => {}
            }
        }
    });
    let stop = server.drain.stop_signal();
    tokio::pin!(stop);
    loop {
        let accepted = async {
            match &listener {
                Listening::Tcp(tcp) => tcp.accept().await.map(|(stream, remote)| {
                    tokio::task::spawn_local(connection::serve(
                        Accepted::Tcp(stream),
                        Some(remote),
                        server.clone(),
                    ));
                }),
                Listening::Unix(unix, _) => unix.accept().await.map(|(stream, _)| {
                    tokio::task::spawn_local(connection::serve(
                        Accepted::Unix(stream),
                        None,
                        server.clone(),
                    ));
                }),
            }
        };
        tokio::select! {
            accepted = accepted => {
                // Out of file descriptors and similar: back off instead of spinning,
                // and go on accepting once descriptors are free again.
                if accepted.is_err() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            () = &mut stop => break,
        }
    }
    if let Listening::Unix(_, file) = &listener {
        file.remove();
    }
    drop(listener);
    drop(keep_alive);
    // Still registered for signals while connections drain: a signal now waits for
    // them too.
    server.drain.finished().await;
}

/// Where a server listens, as its handle tells the script.
enum Local {
    Ip(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Local::Ip(address) => address.fmt(f),
            Local::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

fn create_handle(lua: &Lua, local: Local, drain: Rc<Drain>) -> Result<Table> {
    let handle = lua.create_table_with_capacity(0, 4)?;
    match &local {
        Local::Ip(address) => {
            handle.raw_set("ip", address.ip().to_string())?;
            handle.raw_set("port", address.port())?;
        }
        // A Unix socket server: `ip` is the address as given, the port 0.
        Local::Unix(path) => {
            handle.raw_set("ip", local.to_string())?;
            handle.raw_set("port", 0)?;
            handle.raw_set(
                "path",
                lua.create_string(path.as_os_str().as_encoded_bytes())?,
            )?;
        }
    }
    let stop_fn = lunet_runtime::create_function(lua, move |_, _: MultiValue| {
        if !drain.begin() {
            return Err(Error::runtime(format!(
                "the server on {local} is already stopped"
            )));
        }
        Ok(())
    })?;
    handle.raw_set("stop", stop_fn)?;
    Ok(handle)
}

/// Builds the `net.serve` function.
pub(crate) fn create_serve_function(lua: &Lua) -> Result<Function> {
    lunet_runtime::create_function(lua, |lua, (port, handler): (Value, Value)| {
        let config = ServeConfig::from_args(port, handler)?;
        crate::ws::socket::prepare(lua)?;
        let (listener, local) = match &config.unix {
            Some(path) => {
                let (listener, file) = crate::unix::bind(path, "net.serve")?;
                (Listening::Unix(listener, file), Local::Unix(path.clone()))
            }
            None => {
                let listener = crate::listen::bind_tcp(
                    lua,
                    SocketAddr::new(config.address, config.port),
                    config.reuse_port,
                    "net.serve",
                )?;
                let local = listener.local_addr()?;
                (Listening::Tcp(listener), Local::Ip(local))
            }
        };
        let scheduler = Scheduler::of(lua);
        let drain = Drain::new(scheduler.clone(), config.limits.shutdown_timeout);
        let server = Rc::new(Server {
            lua: lua.clone(),
            scheduler: scheduler.clone(),
            handle_request: config.handle_request,
            handle_websocket: config.handle_websocket,
            accept_websocket: config.accept_websocket,
            request_builders: request::RequestBuilders::new(lua)?,
            limits: config.limits,
            stream_request_body: config.stream_request_body,
            drain: drain.clone(),
            tls: config.tls,
        });
        tokio::task::spawn_local(accept_loop(listener, server, scheduler.keep_alive()));
        create_handle(lua, local, drain)
    })
}
