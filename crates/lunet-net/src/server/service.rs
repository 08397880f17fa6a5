//! The per-request path of `net.serve`: from a hyper request to the Luau handler and
//! back to a response.
//!
//! Limits that keep bad clients from hurting the server (the server's `Limits`):
//! request headers larger than `maxHeaderSize` are answered with 431, bodies over
//! `maxBodySize` (declared, received, or once decoded) with 413, and a body that
//! stops arriving for `bodyTimeout` with 408 (the watchdog tells us; on HTTP/2, each
//! stream's body is timed on its own); a body in a
//! `Content-Encoding` we cannot undo gets 415. A WebSocket handshake goes to [`super::upgrade`]; a server
//! without `handleRequest` answers other requests with 426. A handler error is
//! answered with 500 and printed with its stack trace.
//!
//! This module does not own the connection (accepting, keep-alive, stalls and the
//! graceful stop are [`super::connection`]'s) nor the conversions between HTTP and
//! Luau ([`super::request`], [`super::response`]).

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::{Body as _, Incoming};
use lunet_runtime::codec::compression::{Codec, content_codings};

use super::peer::Peer;
use super::response::{self, Body};
use super::watchdog::{FrameCounted, body_stalled};
use super::{request, upgrade};
use std::rc::Rc;

use mlua::Function;

use super::Server;
use crate::body::decode::Decoder;
use crate::body::stream::{BodyStream, Source};
use crate::body::{self, BodyError};

/// A refusal that also closes the connection (what follows on it is not trusted).
fn refuse(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = response::plain(status, text);
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// The request's content codings, or the 415 that refuses one we cannot undo.
fn codings(parts: &http::request::Parts) -> Result<Vec<Codec>, Box<Response<Body>>> {
    let values = parts.headers.get_all(http::header::CONTENT_ENCODING).iter();
    content_codings(values.map(|v| v.as_bytes())).map_err(|_| {
        Box::new(response::plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Encoding (supported: gzip, deflate, br, zstd)\n",
        ))
    })
}

/// Reads the whole body within the size limit, decoding any content coding as it
/// arrives (the limit applies to the received and to the decoded bytes).
async fn read_body(
    peer: &Peer,
    request: Request<Incoming>,
) -> Result<(http::request::Parts, Bytes), Response<Body>> {
    let limit = peer.server.limits.max_body;
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n"));
    }
    let codecs = codings(&parts).map_err(|refused| *refused)?;
    // Decoded as it arrives: a small compressed body cannot make us hold, or spend
    // the event loop on, more than the limit.
    let stalled = || {
        refuse(
            StatusCode::REQUEST_TIMEOUT,
            "Request Timeout: the body stopped arriving\n",
        )
    };
    let read = if parts.version == http::Version::HTTP_2 {
        // Streams run side by side: each times its own body.
        let frames = std::cell::Cell::new(0);
        let counted = FrameCounted {
            inner: body,
            frames: &frames,
        };
        // Biased, the read first: a body that has all arrived (most do, with their
        // head) is read without the stall timer ever being started.
        tokio::select! {
            biased;
            read = body::read_decoded(counted, &codecs, limit) => read,
            () = body_stalled(&frames, peer.server.limits.body_timeout) => return Err(stalled()),
        }
    } else {
        let activity = &peer.activity;
        activity.reading_body.set(true);
        // Biased for the same reason: no waiter registered for a body already here.
        let read = tokio::select! {
            biased;
            read = body::read_decoded(body, &codecs, limit) => read,
            () = activity.body_expired.notified() => return Err(stalled()),
        };
        activity.reading_body.set(false);
        read
    };
    match read {
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

/// Answers one request on `peer`'s connection: refuses oversized headers, hands a
/// WebSocket handshake to [`upgrade`], reads the body, and runs `handleRequest` in
/// its own Luau thread.
pub(crate) async fn handle(peer: &Peer, request: Request<Incoming>) -> Response<Body> {
    let server = &peer.server;
    if request::header_bytes(request.version(), request.uri(), request.headers())
        > server.limits.max_header
    {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large\n",
        );
    }
    if let Some(ws_handler) = &server.handle_websocket
        && upgrade::is_upgrade_request(&request)
    {
        // Boxed: its state (with `acceptWebSocket`'s wait) would otherwise enlarge
        // every request's future.
        return Box::pin(upgrade::accept(peer, ws_handler.clone(), request)).await;
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
    if server.stream_request_body {
        return Box::pin(handle_streaming(peer, handler, request)).await;
    }
    // A request without a body (most of them) skips reading one; the body reader is
    // boxed so that its state does not enlarge every request's future, which hyper
    // moves around several times per request.
    let (parts, body) = if request.body().is_end_stream() {
        (request.into_parts().0, Bytes::new())
    } else {
        match Box::pin(read_body(peer, request)).await {
            Ok(read) => read,
            Err(response) => return response,
        }
    };
    let args = request::HandlerArgs {
        handler,
        parts: &parts,
        body: &body,
        stream: None,
        socket: None,
        ip: &peer.ip,
        port: peer.port,
        builders: &server.request_builders,
        recent: Some(&peer.recent),
    };
    let result = server
        .run_handler(server.request_builders.get(parts.version), args)
        .await
        .and_then(response::from_handler);
    respond(server, &parts, result)
}

/// The handler's result as the response, or a 500 for its error (reported).
fn respond(
    server: &Rc<Server>,
    parts: &http::request::Parts,
    result: mlua::Result<Response<Body>>,
) -> Response<Body> {
    match result {
        Ok(mut response) => {
            if let Body::Stream(stream) = response.body_mut() {
                stream.start(server, describe(parts));
            }
            response
        }
        Err(error) => {
            server.report_handler_error("handleRequest", &describe(parts), &error);
            response::plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
        }
    }
}

/// With `streamRequestBody`: the handler gets the body as a `BodyStream`, decoded
/// as it reads (within `maxBodySize`, each wait within `bodyTimeout`). Whatever it
/// left unread when it returns (or, for a streaming response, when that ends) is
/// dropped: hyper then discards a little of it or closes the connection.
async fn handle_streaming(
    peer: &Peer,
    handler: &Function,
    request: Request<Incoming>,
) -> Response<Body> {
    let server = &peer.server;
    let (parts, body) = request.into_parts();
    let codecs = match codings(&parts) {
        Ok(codecs) => codecs,
        Err(refused) => return *refused,
    };
    let stream = BodyStream::new(Source {
        decoder: Decoder::new(body, codecs),
        on_end: None,
        label: describe(&parts),
        what: "request body",
        idle: Some(server.limits.body_timeout),
        limit: Some((server.limits.max_body, "maxBodySize")),
    });
    let handle = stream.handle();
    let result = match server.lua.create_userdata(stream) {
        Ok(stream) => {
            let args = request::HandlerArgs {
                handler,
                parts: &parts,
                body: &[],
                stream: Some(&stream),
                socket: None,
                ip: &peer.ip,
                port: peer.port,
                builders: &server.request_builders,
                recent: Some(&peer.recent),
            };
            server
                .run_handler(server.request_builders.get(parts.version), args)
                .await
                .and_then(response::from_handler)
        }
        Err(error) => Err(error),
    };
    let mut response = respond(server, &parts, result);
    match response.body_mut() {
        // A streaming response may go on reading the request body.
        Body::Stream(stream) => stream.close_at_end(handle),
        Body::Full(_) => handle.close(),
    }
    response
}

fn describe(parts: &http::request::Parts) -> String {
    format!("{} {}", parts.method, parts.uri)
}
