//! One accepted connection's lifecycle (TCP, or a Unix socket for `address =
//! "unix:/path"`): hyper's HTTP/1.1 or HTTP/2 state machine with Lunet's limits,
//! from accept to close.
//!
//! The [`transport`] first makes the connection ready (the TLS handshake, or telling
//! an HTTP/2 preface from HTTP/1), within `headerTimeout` from the accept. HTTP/2
//! connections run each stream as its own local task (hyper's executor is
//! [`LocalExec`]), at most [`MAX_STREAMS`] at once, with a header list of at most
//! `maxHeaderSize` plus [`H2_HEADER_SLACK`] (hyper's h2 answers a larger one with
//! 431; `service` refuses one over `maxHeaderSize` itself), and no keep-alive PINGs of
//! ours: an HTTP/2 connection with no stream in flight for `idleTimeout` is closed
//! (the client's PINGs do not keep it open: see [`watchdog`]).
//!
//! hyper refuses any request head beyond its read buffer (`maxHeaderSize` plus room
//! for the request line, at least [`BUFFER_BYTES`]), and the [`watchdog`] closes
//! a connection whose head takes longer than `headerTimeout` (telling the client 408
//! when part of a head arrived) or that sits idle for `idleTimeout`. A client that
//! vanishes mid-body just ends its connection task.
//!
//! When the server stops, an HTTP/2 connection sends GOAWAY (hyper's graceful
//! shutdown): no new streams, and the streams in flight finish until the server's
//! deadline. An HTTP/1 connection with no request (idle, or writing a response
//! whose handler has returned) is shut down gracefully, so a response being written
//! is finished; one in the middle of a head or a body is closed at once; one whose
//! handler runs answers with `Connection: close` when it returns. Whatever is still
//! open at the server's deadline (`shutdownTimeout`) is closed.
//!
//! What happens to each request (the header and body limits, the handler call, the
//! response) is [`super::service`]'s.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::Server;
use super::drain::StopSignal;
use super::peer::{InFlight, Peer};
use super::response::Body;
use super::service::handle;
use super::transport::{self, Accepted, Protocol, Transport};
use super::watchdog::{self, Activity, Expired, Progress, Watched};

/// The least an HTTP/1 connection's buffers may hold (hyper's `max_buf_size`; larger
/// when `maxHeaderSize` asks for more): the read buffer, so a hard cap on a request
/// head, and what hyper queues for one write. hyper's own default (8 KiB + 400 KiB):
/// a streamed response goes out in writes of that size, as from hyper alone (at
/// 256 KiB it took 75% more writes, each with the kernel's per-write cost).
pub(crate) const BUFFER_BYTES: usize = 8 * 1024 + 400 * 1024;

/// The most streams an HTTP/2 client may have open at once on one connection.
pub(crate) const MAX_STREAMS: u32 = 256;

/// What an HTTP/2 header list may hold beyond `maxHeaderSize` before hyper's h2
/// refuses it (it counts 32 bytes per field on top of names and values).
pub(crate) const H2_HEADER_SLACK: usize = 16 * 1024;

/// Runs the tasks hyper's HTTP/2 server spawns (one per stream) on this thread.
#[derive(Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

/// What a client whose head timed out is told before the connection closes.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Serves one connection until it closes, the watchdog gives up on it, or the
/// server stops and it has drained. The connection keeps the process alive while it
/// is open, so a response in flight when the server stops is still delivered.
/// `remote` is the client's address; a Unix socket's client has none, and its
/// requests have `ip = "unix"` and `port = 0`.
pub(crate) async fn serve(stream: Accepted, remote: Option<SocketAddr>, server: Rc<Server>) {
    let _keep_alive = server.scheduler.keep_alive();
    let _open = server.drain.open();
    let mut stop = server.drain.stop_signal();
    let ip = match remote {
        Some(remote) => remote.ip().to_canonical().to_string(),
        None => "unix".to_string(),
    };
    let Ok(ip) = server.lua.create_string(ip) else {
        return;
    };
    let raw = RawSocket::of(&stream);
    let peer = Rc::new(Peer {
        server,
        ip,
        port: remote.map_or(0, |remote| remote.port()),
        activity: Activity::default(),
        progress: Progress::default(),
        recent: Default::default(),
    });
    let limits = peer.server.limits;
    let watching = watchdog::watch(&peer.progress, &peer.activity, &limits);
    tokio::pin!(watching);
    // Pinned here, not in the `select!`, so the socket stays open while the 408 is
    // written behind its back.
    let established = transport::establish(stream, peer.server.tls.as_ref(), peer.progress.clone());
    tokio::pin!(established);
    let (io, protocol) = tokio::select! {
        established = established.as_mut() => match established {
            Some(established) => established,
            None => return,
        },
        expired = watching.as_mut() => {
            // Only plain HTTP/1 can be told (bytes written behind TLS's back would
            // be garbage to the client).
            if expired == (Expired::Head { begun: true }) && peer.server.tls.is_none() {
                raw.write_now(REQUEST_TIMEOUT);
            }
            return;
        }
        () = &mut stop => return,
    };
    match protocol {
        Protocol::Http1 => serve_http1(&peer, io, &raw, watching, stop).await,
        Protocol::Http2 => serve_http2(&peer, io, watching, stop).await,
    }
}

/// The hyper service of one connection: each request through [`handle`], kept in
/// flight meanwhile. (A macro, so that each builder polls the closure's future
/// inline, as before HTTP/2: an `async fn` here measured ten more copies of the
/// request's future per request.) `http1`: the stopping server's responses carry
/// `Connection: close` (HTTP/2 has no such header: it gets GOAWAY instead).
/// `http2`: each request's future is boxed: hyper spawns each HTTP/2 stream as a
/// task and moves its future (about 1.5 KB, most of it `handle`'s state) several
/// times on the way, where a box moves a pointer (callgrind: -530 instructions per
/// HTTP/2 request); HTTP/1 polls its one future in place, and the box measured
/// +860 there.
macro_rules! service {
    ($peer:expr, http1) => {
        service!(@with $peer, true, |future| future)
    };
    ($peer:expr, http2) => {
        service!(@with $peer, false, Box::pin)
    };
    (@with $peer:expr, $http1:expr, $wrap:expr) => {{
        let service_peer = $peer.clone();
        service_fn(move |request| {
            let peer = service_peer.clone();
            ($wrap)(async move {
                let in_flight = InFlight::new(&peer);
                let mut response = handle(&peer, request).await;
                // A streaming response stays in flight until its body ends, and
                // so does a large whole one on HTTP/2 (see `whole`).
                match response.body_mut() {
                    Body::Stream(stream) => stream.hold(in_flight),
                    Body::Full(whole) if !$http1 => whole.slice(in_flight),
                    Body::Full(_) => drop(in_flight),
                }
                if $http1 && peer.server.drain.stopping() {
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, Infallible>(response)
            })
        })
    }};
}

async fn serve_http1(
    peer: &Rc<Peer>,
    io: Watched<Transport>,
    raw: &RawSocket,
    mut watching: Pin<&mut impl Future<Output = Expired>>,
    stop: StopSignal,
) {
    let tls = peer.server.tls.is_some();
    let service = service!(peer, http1);
    let limits = peer.server.limits;
    // No timer in hyper: its header-read timeout is replaced by the watchdog.
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(BUFFER_BYTES.max(limits.max_header + 64 * 1024))
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    // Biased (the connection first, as every wake is most likely for it): no random
    // start to draw each time the connection's task is polled.
    tokio::select! {
        biased;
        _ = connection.as_mut() => return,
        expired = watching.as_mut() => {
            if expired == (Expired::Head { begun: true }) && !tls {
                raw.write_now(REQUEST_TIMEOUT);
            }
            return;
        }
        () = stop => {}
    }
    let activity = &peer.activity;
    if activity.reading_body.get() || activity.head_begun(&peer.progress) {
        // Nothing was handed to a handler: nothing to finish.
        return;
    }
    // With no handler running, hyper's graceful shutdown closes an idle connection at
    // once and finishes a response it is still writing. (With a handler running it
    // would drop that response, so then the response is sent with `Connection:
    // close` instead.) A streaming response whose head went out before the stop has
    // no `Connection: close`: the connection is shut down once its body ended.
    let deadline = peer
        .server
        .drain
        .deadline()
        .unwrap_or_else(tokio::time::Instant::now);
    loop {
        let at_rest = activity.at_rest.notified();
        if activity.in_flight.get() == 0 {
            connection.as_mut().graceful_shutdown();
            break;
        }
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = watching.as_mut() => return,
            () = tokio::time::sleep_until(deadline) => return,
            () = at_rest => {}
        }
    }
    tokio::select! {
        _ = connection => {}
        _ = watching => {}
        () = tokio::time::sleep_until(deadline) => {}
    }
}

async fn serve_http2(
    peer: &Rc<Peer>,
    io: Watched<Transport>,
    mut watching: Pin<&mut impl Future<Output = Expired>>,
    stop: StopSignal,
) {
    peer.activity.multiplexed.set(true);
    let service = service!(peer, http2);
    let limits = peer.server.limits;
    let header_list = limits.max_header.saturating_add(H2_HEADER_SLACK);
    let connection = hyper::server::conn::http2::Builder::new(LocalExec)
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(u32::try_from(header_list).unwrap_or(u32::MAX))
        .keep_alive_interval(None)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    // Biased, as for HTTP/1.
    tokio::select! {
        biased;
        _ = connection.as_mut() => return,
        _ = watching.as_mut() => return,
        () = stop => {}
    }
    // GOAWAY: no new streams; those in flight finish, until the deadline.
    connection.as_mut().graceful_shutdown();
    let deadline = peer
        .server
        .drain
        .deadline()
        .unwrap_or_else(tokio::time::Instant::now);
    tokio::select! {
        _ = connection => {}
        _ = watching => {}
        () = tokio::time::sleep_until(deadline) => {}
    }
}

/// The connection's socket as the OS knows it, for the one write made behind
/// hyper's back: the 408 to a client whose head timed out.
struct RawSocket {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
}

impl RawSocket {
    fn of(stream: &Accepted) -> RawSocket {
        #[cfg(not(unix))]
        let _ = stream;
        RawSocket {
            #[cfg(unix)]
            fd: match stream {
                Accepted::Tcp(tcp) => std::os::fd::AsRawFd::as_raw_fd(tcp),
                Accepted::Unix(unix) => std::os::fd::AsRawFd::as_raw_fd(unix),
            },
        }
    }

    /// Writes what fits of `bytes` now, without waiting (the socket is
    /// non-blocking); a full send buffer means the client is not reading anyway.
    ///
    /// Must be called while the stream this was made from is open (its connection
    /// not yet dropped), so the descriptor is still the connection's.
    fn write_now(&self, bytes: &[u8]) {
        #[cfg(unix)]
        {
            use std::io::Write;
            use std::os::fd::BorrowedFd;
            // SAFETY: `serve` (and `serve_http1`) call this while what owns the
            // stream (the pending `transport::establish` future, or the hyper
            // connection) is alive and pinned in their frame, so the descriptor is
            // open and is this connection's for the whole call.
            let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            if let Ok(owned) = fd.try_clone_to_owned() {
                let _ = std::net::TcpStream::from(owned).write(bytes);
            }
        }
        #[cfg(not(unix))]
        let _ = bytes;
    }
}
