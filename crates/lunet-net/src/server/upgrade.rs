//! The server side of the WebSocket handshake (RFC 6455 section 4.2).
//!
//! A request is an upgrade when it is a GET with `Upgrade: websocket`, a `Connection`
//! header listing `upgrade`, and a `Sec-WebSocket-Key`. A version other than 13 gets
//! `426` with `Sec-WebSocket-Version: 13`, as the RFC requires.
//!
//! With `acceptWebSocket`, the server first runs it with the upgrade request (the
//! table `handleRequest` gets, see [`super::request`]) in its own Luau thread, as a
//! handler: it may yield, counts as a request in flight when the server stops, and
//! an error in it is reported and answered with 500. It returns `true` to accept
//! (optionally followed by the subprotocol, which must be one the client offered in
//! `Sec-WebSocket-Protocol`, else 500 and a reported error), `false` to refuse with
//! 403, or a response (what `handleRequest` may return) to refuse with; anything
//! else (nil included) is an error. Without it every valid handshake is accepted.
//!
//! An accepted handshake is answered with `101 Switching Protocols` (and the chosen
//! subprotocol), unless the server began stopping meanwhile (503); once hyper hands
//! over the connection, it becomes a [`WebSocket`] (with the server's
//! `maxMessageSize` and `protocol`) passed with the upgrade request to
//! `handleWebSocket(socket, request)` in its own Luau thread, and the server's drain
//! closes it with 1001 when the server stops.

use bytes::Bytes;
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use lunet_runtime::args;
use mlua::{Error, Function, MultiValue, Value};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::peer::Peer;
use super::request::HandlerArgs;
use super::response::{self, Body, Returned};
use crate::ws::WebSocket;
use crate::ws::received::Kinds;
use crate::ws::subprotocol;

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

/// What `acceptWebSocket` decided.
enum Decision {
    /// Upgrade, with this subprotocol.
    Accept(Option<String>),
    /// Answer this instead.
    Refuse(Response<Body>),
}

/// How reports name an upgrade request.
fn describe(parts: &Parts) -> String {
    format!("the WebSocket upgrade of {}", parts.uri)
}

/// Reads `acceptWebSocket`'s return values (see the module documentation).
fn read_decision(values: MultiValue, parts: &Parts) -> mlua::Result<Decision> {
    let mut values = values.into_iter();
    let first = values.next().unwrap_or(Value::Nil);
    match first {
        Value::Boolean(true) => {
            let chosen = values.next().unwrap_or(Value::Nil);
            let Some(chosen) = args::optional_string(&chosen, "subprotocol")? else {
                return Ok(Decision::Accept(None));
            };
            let chosen = chosen.to_string_lossy();
            let offered = subprotocol::offered(&parts.headers);
            if !offered.contains(&chosen.as_str()) {
                let offer = if offered.is_empty() {
                    "the client offered none".to_string()
                } else {
                    format!("offered: {}", offered.join(", "))
                };
                return Err(Error::runtime(format!(
                    "acceptWebSocket chose the subprotocol '{chosen}', which the client did not offer ({offer})"
                )));
            }
            Ok(Decision::Accept(Some(chosen)))
        }
        Value::Boolean(false) => Ok(Decision::Refuse(response::plain(
            StatusCode::FORBIDDEN,
            "Forbidden\n",
        ))),
        // A response: a string or a `{ status?, headers?, body? }` table.
        value @ (Value::String(_) | Value::Table(_)) => {
            response::from_handler(Returned::from_value(value)).map(Decision::Refuse)
        }
        other => Err(Error::runtime(format!(
            "acceptWebSocket returned {}; expected true (optionally with a subprotocol) to accept, \
             or false or a response (a string or a table) to refuse",
            lunet_runtime::type_name(&other)
        ))),
    }
}

/// Runs `acceptWebSocket` with the upgrade request, as a handler; its error is
/// reported and refuses with 500.
async fn decide(peer: &Peer, accept_websocket: &Function, parts: &Parts) -> Decision {
    let server = &peer.server;
    let args = HandlerArgs {
        handler: accept_websocket,
        parts,
        body: &[],
        stream: None,
        socket: None,
        ip: &peer.ip,
        port: peer.port,
        builders: &server.request_builders,
        recent: Some(&peer.recent),
    };
    let decided = server
        .run_handler::<MultiValue>(server.request_builders.get(parts.version), args)
        .await
        .and_then(|values| read_decision(values, parts));
    match decided {
        Ok(Decision::Refuse(mut response)) => {
            if let Body::Stream(stream) = response.body_mut() {
                stream.start(server, describe(parts));
            }
            Decision::Refuse(response)
        }
        Ok(accept) => accept,
        Err(error) => {
            server.report_handler_error("acceptWebSocket", &describe(parts), &error);
            Decision::Refuse(response::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error\n",
            ))
        }
    }
}

/// Answers the handshake (after asking `acceptWebSocket`, if the server has one)
/// and, once upgraded, runs `handler` with the socket and the upgrade request.
pub(crate) async fn accept(
    peer: &Peer,
    handler: Function,
    mut request: Request<Incoming>,
) -> Response<Body> {
    let version_ok = request
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        let mut response = response::plain(
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
    let (parts, _body) = request.into_parts();
    let server = peer.server.clone();
    let protocol = match &server.accept_websocket {
        None => None,
        Some(accept_websocket) => match decide(peer, accept_websocket, &parts).await {
            Decision::Accept(protocol) => protocol,
            Decision::Refuse(response) => return response,
        },
    };
    // `acceptWebSocket` may have yielded while the server began stopping: no new
    // socket then.
    if server.drain.stopping() {
        return response::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: the server is stopping\n",
        );
    }
    let protocol_header = protocol
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok());
    let ip = peer.ip.clone();
    let port = peer.port;
    let kinds = match Kinds::of(&server.lua) {
        Ok(kinds) => kinds,
        Err(error) => {
            eprintln!("net.serve: cannot prepare WebSocket messages: {error}");
            return response::plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
        }
    };
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
        let socket = WebSocket::new(stream, protocol, kinds);
        // Closed with 1001 when the server stops.
        let closer = socket.closer();
        let closing = server.drain.websocket(closer.clone());
        if server.drain.stopping() {
            // It stopped while the 101 was on its way.
            closer.going_away();
        }
        let lua = server.lua.clone();
        let socket = match lua.create_userdata(socket) {
            Ok(socket) => socket,
            Err(error) => {
                eprintln!("net.serve: cannot create the WebSocket object: {error}");
                return;
            }
        };
        let args = HandlerArgs {
            handler: &handler,
            parts: &parts,
            body: &[],
            stream: None,
            socket: Some(&socket),
            ip: &ip,
            port,
            builders: &server.request_builders,
            recent: None,
        };
        let outcome = server
            .run_handler::<()>(server.request_builders.get(parts.version), args)
            .await;
        if let Err(error) = outcome {
            server.report_handler_error(
                "handleWebSocket",
                &format!("the WebSocket connection of {}", parts.uri),
                &error,
            );
        }
        drop(closing);
        // The socket counts as open (for a draining server) until its connection has
        // ended, so a stopping process does not exit before its close frame is out.
        closer.finished().await;
    });
    let mut response = Response::new(Body::bytes(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&key) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol_header {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}
