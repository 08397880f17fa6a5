//! The server side of the WebSocket handshake (RFC 6455 section 4.2).
//!
//! A request is an upgrade when it is a GET with `Upgrade: websocket`, a `Connection`
//! header listing `upgrade`, and a `Sec-WebSocket-Key`. A version other than 13 gets
//! `426` with `Sec-WebSocket-Version: 13`, as the RFC requires. A valid handshake is
//! answered with `101 Switching Protocols`; once hyper hands over the connection, it
//! becomes a [`WebSocket`] (with the server's `maxMessageSize`) passed to
//! `handleWebSocket` in its own Luau thread, and the server's drain closes it with
//! 1001 when the server stops.

use std::rc::Rc;

use bytes::Bytes;
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mlua::Function;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::Server;
use super::response::Body;
use crate::ws::WebSocket;

fn header_has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Whether `request` asks to upgrade to a WebSocket.
pub(crate) fn is_upgrade_request(request: &Request<Incoming>) -> bool {
    request.method() == Method::GET
        && header_has_token(request.headers(), UPGRADE, "websocket")
        && header_has_token(request.headers(), CONNECTION, "upgrade")
        && request.headers().contains_key(SEC_WEBSOCKET_KEY)
}

/// Answers the handshake and, once upgraded, runs `handler` with the socket.
pub(crate) fn accept(
    server: &Rc<Server>,
    handler: Function,
    mut request: Request<Incoming>,
) -> Response<Body> {
    let version_ok = request
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        let mut response = super::response::plain(
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported WebSocket version: this server speaks version 13\n",
        );
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let key = request
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let on_upgrade = hyper::upgrade::on(&mut request);
    let server = server.clone();
    let open = server.drain.open();
    tokio::task::spawn_local(async move {
        let _open = open;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let stream = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(crate::ws::config_with_max_message_size(
                server.limits.max_message,
            )),
        )
        .await;
        let socket = WebSocket::new(stream);
        // Closed with 1001 when the server stops.
        let closer = socket.closer();
        let closing = server.drain.websocket(closer.clone());
        let lua = server.lua.clone();
        let socket = match lua.create_userdata(socket) {
            Ok(socket) => socket,
            Err(error) => {
                eprintln!("net.serve: cannot create the WebSocket object: {error}");
                return;
            }
        };
        let outcome = server.run_handler::<()>(&handler, socket).await;
        if let Err(error) = outcome {
            server.report_handler_error("handleWebSocket", "WebSocket connection", &error);
        }
        drop(closing);
        // The socket counts as open (for a draining server) until its connection has
        // ended, so a stopping process does not exit before its close frame is out.
        closer.finished().await;
    });
    let mut response = Response::new(Full::new(Bytes::new()).into());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&key) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}
