//! One accepted TCP connection's lifecycle: hyper's HTTP/1.1 state machine with
//! Lunet's limits, from accept to close.
//!
//! hyper refuses any request head beyond its read buffer of [`READ_BUFFER_BYTES`], and
//! a connection that makes no progress for [`stall::STALL_PERIOD`] (an unfinished
//! request head, a silent keep-alive client, a client that stopped reading) is
//! closed. A client that vanishes mid-body just ends its connection task. When the
//! server stops, an idle connection closes at once, one whose response is being
//! written finishes writing it, and one whose handler is still running answers with
//! `Connection: close` and then closes.
//!
//! What happens to each request (the header and body limits, the handler call, the
//! response) is [`super::service`]'s; this module only counts requests in flight,
//! for the stall check and the graceful stop.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mlua::LuaString;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::Server;
use super::service::handle;
use super::stall::{self, Progress, Watched};

/// hyper's per-connection read buffer, a hard cap on a request head.
pub(crate) const READ_BUFFER_BYTES: usize = 256 * 1024;

/// What a connection knows about its peer, computed once per connection, and its
/// state for a graceful stop.
struct Peer {
    server: Rc<Server>,
    ip: LuaString,
    port: u16,
    /// Requests being handled on this connection (more than one when pipelined).
    in_flight: Cell<usize>,
    /// Set when the server stops: responses then carry `Connection: close`.
    stopping: Cell<bool>,
    /// Writes that made progress, for [`stall::stalled`].
    progress: Progress,
}

/// Counts a request as in flight for as long as it lives.
struct InFlight<'a>(&'a Peer);

impl<'a> InFlight<'a> {
    fn new(peer: &'a Peer) -> Self {
        peer.in_flight.set(peer.in_flight.get() + 1);
        InFlight(peer)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// Serves one connection until it closes or the server stops. The connection keeps
/// the process alive while it is open, so a response in flight when the server stops
/// is still delivered.
pub(crate) async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    server: Rc<Server>,
    mut stop: watch::Receiver<bool>,
) {
    let _keep_alive = server.scheduler.keep_alive();
    let _ = stream.set_nodelay(true);
    let Ok(ip) = server
        .lua
        .create_string(remote.ip().to_canonical().to_string())
    else {
        return;
    };
    let peer = Rc::new(Peer {
        server,
        ip,
        port: remote.port(),
        in_flight: Cell::new(0),
        stopping: Cell::new(false),
        progress: Progress::default(),
    });
    let service_peer = peer.clone();
    let service = service_fn(move |request| {
        let peer = service_peer.clone();
        async move {
            let _in_flight = InFlight::new(&peer);
            let mut response = handle(&peer.server, &peer.ip, peer.port, request).await;
            if peer.stopping.get() {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, Infallible>(response)
        }
    });
    // No timer: hyper's header-read timeout is replaced by `stall` (see there).
    let stream = Watched::new(stream, peer.progress.clone());
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(READ_BUFFER_BYTES)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let busy = || peer.in_flight.get() > 0;
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stall::stalled(&peer.progress, busy, stall::STALL_PERIOD) => {}
        _ = super::stop_requested(&mut stop) => {
            peer.stopping.set(true);
            // With no handler running, hyper's graceful shutdown closes an idle
            // connection at once and finishes a response it is still writing. (With a
            // handler running it would drop that response, so then the response is
            // sent with `Connection: close` instead.) Either way the response is
            // delivered, unless its client stalls, which would otherwise keep a
            // stopped server's process alive.
            if peer.in_flight.get() == 0 {
                connection.as_mut().graceful_shutdown();
            }
            tokio::select! {
                _ = connection => {}
                _ = stall::stalled(&peer.progress, busy, stall::STALL_PERIOD) => {}
            }
        }
    }
}
