//! One accepted TCP connection: hyper's HTTP/1.1 state machine with Lunet's limits,
//! and the per-request path from hyper request to Luau handler and back.
//!
//! Limits that keep bad clients from hurting the server: request heads larger than
//! [`MAX_HEAD_BYTES`] are answered with 431 by hyper, a head not received within
//! [`HEAD_READ_TIMEOUT`] closes the connection, and bodies over [`MAX_BODY_BYTES`] get
//! 413. A client that vanishes mid-body just ends its connection task. When the
//! server stops, each connection finishes its in-flight request and closes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use mlua::{MultiValue, Value};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::response::{self, Body};
use super::{Server, request, upgrade};
use lunet_runtime::compression::{Codec, decompress};

/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The largest request body accepted (after which the answer is 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How long a client may take to send a request head.
pub const HEAD_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What a connection knows about its peer, computed once per connection.
struct Peer {
    server: Rc<Server>,
    ip: String,
    port: u16,
}

/// Serves one connection until it closes or the server stops.
pub async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    server: Rc<Server>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let peer = Rc::new(Peer {
        server,
        ip: remote.ip().to_canonical().to_string(),
        port: remote.port(),
    });
    let service = service_fn(move |request| {
        let peer = peer.clone();
        async move { Ok::<_, Infallible>(handle(&peer, request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Reads the whole body within the size limit, decoding any content coding.
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
        return Err(response::plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large\n",
        ));
    }
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            if error.is::<http_body_util::LengthLimitError>() {
                return Err(response::plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Payload Too Large\n",
                ));
            }
            return Err(response::plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: the body could not be read\n",
            ));
        }
    };
    let coding = parts
        .headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("identity"));
    let Some(coding) = coding else {
        return Ok((parts, bytes));
    };
    let Some(codec) = Codec::from_content_encoding(coding) else {
        return Err(response::plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Encoding (supported: gzip, deflate, br, zstd)\n",
        ));
    };
    match decompress(codec, &bytes) {
        Ok(decoded) if decoded.len() <= MAX_BODY_BYTES => Ok((parts, Bytes::from(decoded))),
        Ok(_) => Err(response::plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large\n",
        )),
        Err(_) => Err(response::plain(
            StatusCode::BAD_REQUEST,
            "Bad Request: the body does not match its Content-Encoding\n",
        )),
    }
}

async fn handle(peer: &Peer, request: Request<Incoming>) -> Response<Body> {
    let server = &peer.server;
    if let Some(ws_handler) = &server.handle_websocket
        && upgrade::is_upgrade_request(&request)
    {
        return upgrade::accept(server, ws_handler.clone(), request);
    }
    let Some(handler) = server.handle_request.clone() else {
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
    let (parts, body) = match read_body(request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let lua = &server.lua;
    let table = match request::request_table(lua, &parts, &body, &peer.ip, peer.port) {
        Ok(table) => table,
        Err(error) => {
            super::report_handler_error("handleRequest", &describe(&parts), &error);
            return response::plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
        }
    };
    drop(body);
    let args = MultiValue::from_vec(vec![Value::Table(table)]);
    let result = server
        .run_handler(handler, args)
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
