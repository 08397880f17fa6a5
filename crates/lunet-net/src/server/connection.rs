//! One accepted TCP connection's lifecycle: hyper's HTTP/1.1 state machine with
//! Lunet's limits, from accept to close.
//!
//! hyper refuses any request head beyond its read buffer (`maxHeaderSize` plus room
//! for the request line, at least [`READ_BUFFER_BYTES`]), and the [`watchdog`] closes
//! a connection whose head takes longer than `headerTimeout` (telling the client 408
//! when part of a head arrived) or that sits idle for `idleTimeout`. A client that
//! vanishes mid-body just ends its connection task.
//!
//! When the server stops: a connection with no request (idle, or writing a response
//! whose handler has returned) is shut down gracefully, so a response being written
//! is finished; one in the middle of a head or a body is closed at once; one whose
//! handler runs answers with `Connection: close` when it returns. Whatever is still
//! open at the server's deadline (`shutdownTimeout`) is closed.
//!
//! What happens to each request (the header and body limits, the handler call, the
//! response) is [`super::service`]'s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Server;
use super::peer::{InFlight, Peer};
use super::response::Body;
use super::service::handle;
use super::watchdog::{self, Activity, Expired, Progress, Watched};

/// hyper's smallest per-connection read buffer, a hard cap on a request head (it is
/// larger when `maxHeaderSize` asks for more).
pub(crate) const READ_BUFFER_BYTES: usize = 256 * 1024;

/// What a client whose head timed out is told before the connection closes.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Serves one connection until it closes, the watchdog gives up on it, or the
/// server stops and it has drained. The connection keeps the process alive while it
/// is open, so a response in flight when the server stops is still delivered.
/// `remote` is the client's address; a Unix socket's client has none, and its
/// requests have `ip = "unix"` and `port = 0`.
pub(crate) async fn serve<S>(stream: S, remote: Option<SocketAddr>, server: Rc<Server>)
where
    S: AsyncRead + AsyncWrite + AsRawSocket + Send + Unpin + 'static,
{
    let _keep_alive = server.scheduler.keep_alive();
    let _open = server.drain.open();
    let stop = server.drain.stop_signal();
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
    });
    let service_peer = peer.clone();
    let service = service_fn(move |request| {
        let peer = service_peer.clone();
        async move {
            let in_flight = InFlight::new(&peer);
            let mut response = handle(&peer, request).await;
            // A streaming response stays in flight until its body ends.
            if let Body::Stream(stream) = response.body_mut() {
                stream.hold(in_flight);
            } else {
                drop(in_flight);
            }
            if peer.server.drain.stopping() {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, Infallible>(response)
        }
    });
    let limits = peer.server.limits;
    // No timer in hyper: its header-read timeout is replaced by the watchdog.
    let stream = Watched::new(stream, peer.progress.clone());
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(READ_BUFFER_BYTES.max(limits.max_header + 64 * 1024))
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let watching = watchdog::watch(&peer.progress, &peer.activity, &limits);
    tokio::pin!(watching);
    tokio::select! {
        _ = connection.as_mut() => return,
        expired = watching.as_mut() => {
            if expired == (Expired::Head { begun: true }) {
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

/// The connection's socket as the OS knows it, for the one write made behind
/// hyper's back: the 408 to a client whose head timed out.
struct RawSocket {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
}

/// A connection's socket with an OS descriptor (TCP or Unix).
#[cfg(unix)]
pub(crate) trait AsRawSocket: std::os::fd::AsRawFd {}
#[cfg(unix)]
impl<S: std::os::fd::AsRawFd> AsRawSocket for S {}
#[cfg(not(unix))]
pub(crate) trait AsRawSocket {}
#[cfg(not(unix))]
impl<S> AsRawSocket for S {}

impl RawSocket {
    fn of<S: AsRawSocket>(stream: &S) -> RawSocket {
        #[cfg(not(unix))]
        let _ = stream;
        RawSocket {
            #[cfg(unix)]
            fd: std::os::fd::AsRawFd::as_raw_fd(stream),
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
            // SAFETY: `serve` calls this while the hyper connection that owns the
            // stream (and so the descriptor) is alive and pinned in its frame, so the
            // descriptor is open and is this connection's for the whole call.
            let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            if let Ok(owned) = fd.try_clone_to_owned() {
                let _ = std::net::TcpStream::from(owned).write(bytes);
            }
        }
        #[cfg(not(unix))]
        let _ = bytes;
    }
}
