//! One accepted TCP connection: hyper's HTTP/1.1 state machine with Lunet's limits,
//! and the per-request path from hyper request to Luau handler and back.
//!
//! Limits that keep bad clients from hurting the server: request headers larger than
//! [`MAX_HEADER_BYTES`] are answered with 431 (hyper also refuses any head beyond its
//! read buffer of [`READ_BUFFER_BYTES`]), a connection that makes no progress for
//! [`stall::STALL_PERIOD`] (an unfinished request head, a silent keep-alive client, a
//! client that stopped reading) is closed, and bodies over [`MAX_BODY_BYTES`] get
//! 413. A client that vanishes mid-body just ends its connection task. When the
//! server stops, an idle connection closes at once, one whose response is being
//! written finishes writing it, and one whose handler is still running answers with
//! `Connection: close` and then closes.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mlua::LuaString;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::response::{self, Body};
use super::stall::{self, Progress, Watched};
use super::{Server, request, upgrade};
use crate::body::{self, BodyError};
use lunet_runtime::codec::compression::content_codings;

/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// hyper's per-connection read buffer, a hard cap on a request head.
pub const READ_BUFFER_BYTES: usize = 256 * 1024;
/// The largest request body accepted (after which the answer is 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

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
pub async fn serve(
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
            let mut response = handle(&peer, request).await;
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

/// A refusal that also closes the connection (what follows on it is not trusted).
fn refuse(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = response::plain(status, text);
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// Reads the whole body within the size limit, decoding any content coding as it
/// arrives (the limit applies to the received and to the decoded bytes).
async fn read_body(
    request: Request<Incoming>,
) -> Result<(http::request::Parts, Bytes), Response<Body>> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n"));
    }
    let values = parts.headers.get_all(http::header::CONTENT_ENCODING).iter();
    let Ok(codecs) = content_codings(values.map(|v| v.as_bytes())) else {
        return Err(response::plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Encoding (supported: gzip, deflate, br, zstd)\n",
        ));
    };
    // Decoded as it arrives: a small compressed body cannot make us hold, or spend
    // the event loop on, more than the limit.
    match body::read_decoded(body, &codecs, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(BodyError::TooLarge) => {
            Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n"))
        }
        Err(BodyError::Corrupt(_)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: the body does not match its Content-Encoding\n",
        )),
        Err(BodyError::Read(_)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: the body could not be read\n",
        )),
    }
}

fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

async fn handle(peer: &Peer, request: Request<Incoming>) -> Response<Body> {
    let server = &peer.server;
    if header_bytes(request.headers()) > MAX_HEADER_BYTES {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large\n",
        );
    }
    if let Some(ws_handler) = &server.handle_websocket
        && upgrade::is_upgrade_request(&request)
    {
        return upgrade::accept(server, ws_handler.clone(), request);
    }
    let Some(handler) = &server.handle_request else {
        let mut response = response::plain(
            StatusCode::UPGRADE_REQUIRED,
            "Upgrade Required: this server only accepts WebSocket connections\n",
        );
        response.headers_mut().insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        );
        return response;
    };
    // A request without a body (most of them) skips reading one; the body reader is
    // boxed so that its state does not enlarge every request's future, which hyper
    // moves around several times per request.
    let (parts, body) = if request.body().is_end_stream() {
        (request.into_parts().0, Bytes::new())
    } else {
        match Box::pin(read_body(request)).await {
            Ok(read) => read,
            Err(response) => return response,
        }
    };
    let args = request::HandlerArgs {
        handler,
        parts: &parts,
        body: &body,
        ip: &peer.ip,
        port: peer.port,
    };
    let result = server
        .run_handler(&server.request_builder, args)
        .await
        .and_then(response::from_handler);
    match result {
        Ok(response) => response,
        Err(error) => {
            super::report_handler_error("handleRequest", &describe(&parts), &error);
            response::plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
        }
    }
}

fn describe(parts: &http::request::Parts) -> String {
    format!("{} {}", parts.method, parts.uri)
}
