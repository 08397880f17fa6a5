//! WebSocket control: `acceptWebSocket` deciding upgrades (with the request, a
//! subprotocol, refusals), `handleWebSocket(socket, request)`, `socket.protocol`,
//! `next()`'s frame type, and `net.socket`'s `headers`, `protocols` and `timeout`,
//! against real tokio-tungstenite clients and servers on loopback.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request as HandshakeRequest, Response as HandshakeResponse,
};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use common::{peer_runtime, run_luau, spawn_luau, spawn_server};

/// Every network wait of a Rust client here.
const LIMIT: Duration = Duration::from_secs(20);

/// A server whose `acceptWebSocket` does what the `mode` query parameter says and
/// remembers what it saw; `handleWebSocket` sends that, what it got itself and the
/// socket's protocol as its first message, then echoes `<kind>:<message>`, and at
/// the end reports how many values `next()` returned.
const SERVER: &str = r#"(function()
local seen
return {
    acceptWebSocket = function(request)
        local mode = request.query.mode
        seen = request.method .. " " .. request.path .. " id=" .. tostring(request.query.id)
            .. " token=" .. tostring(request.headers["x-token"])
            .. " raw=" .. tostring(#request.rawHeaders > 0)
            .. " body=" .. show(request.body)
            .. " ip=" .. tostring(request.ip) .. " port=" .. tostring(type(request.port))
        if mode == "refuse" then
            return false
        elseif mode == "custom" then
            return { status = 401, headers = { ["x-why"] = "no token" }, body = "token required" }
        elseif mode == "text" then
            return "go away"
        elseif mode == "wait" then
            task.wait(0.05)
            return true
        elseif mode == "error" then
            error("acceptWebSocket broke")
        elseif mode == "nil" then
            return nil
        elseif mode == "pick" then
            return true, request.headers["x-pick"]
        end
        return true
    end,
    handleWebSocket = function(socket, request)
        socket:send("seen by accept: " .. tostring(seen)
            .. " | handler: " .. request.method .. " " .. request.path
            .. " token=" .. tostring(request.headers["x-token"])
            .. " | protocol=" .. tostring(socket.protocol))
        local ends
        while true do
            local got = table.pack(socket:next())
            if got[1] == nil then
                ends = got.n
                break
            end
            socket:send(got[2] .. ":" .. got[1] .. ":" .. tostring(got.n))
        end
        local after = table.pack(socket:next())
        testkit.ready("ended with " .. ends .. " value(s), then " .. after.n .. " " .. tostring(after[1]))
    end,
}
end)()"#;

/// A client request for `path` on `port` with extra headers.
fn handshake(port: u16, path: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    request
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, giving back the socket and the handshake response, or the error.
fn connect(
    rt: &tokio::runtime::Runtime,
    request: http::Request<()>,
) -> Result<
    (
        Client,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
> {
    rt.block_on(async {
        tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("the handshake did not finish in time")
    })
}

/// The status and body of a refused handshake.
fn refusal(
    result: Result<(Client, impl std::fmt::Debug), WsError>,
) -> (u16, String, http::HeaderMap) {
    match result {
        Err(WsError::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
            response.headers().clone(),
        ),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

async fn next_text(ws: &mut Client) -> String {
    match tokio::time::timeout(LIMIT, ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Closes from the client side and reads until the server's reply ends the stream.
async fn close(ws: &mut Client) {
    ws.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(LIMIT, ws.next()).await {}
}

#[test]
fn accept_websocket_sees_the_request_and_picks_a_subprotocol() {
    let (script, port) = spawn_server(SERVER);
    let rt = peer_runtime();

    let (mut ws, response) = connect(
        &rt,
        handshake(
            port,
            "/chat?mode=pick&id=7",
            &[
                ("x-token", "secret"),
                ("sec-websocket-protocol", "alpha, beta"),
                ("x-pick", "beta"),
            ],
        ),
    )
    .expect("the upgrade is accepted");
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "beta",
        "the chosen subprotocol is answered"
    );
    rt.block_on(async {
        let first = next_text(&mut ws).await;
        assert_eq!(
            first,
            "seen by accept: GET /chat id=7 token=secret raw=true body=\"\" ip=127.0.0.1 port=number \
             | handler: GET /chat token=secret | protocol=beta",
        );
        ws.send(Message::text("hello")).await.unwrap();
        assert_eq!(next_text(&mut ws).await, "text:hello:2", "a text frame");
        ws.send(Message::binary(b"bytes".to_vec())).await.unwrap();
        assert_eq!(next_text(&mut ws).await, "binary:bytes:2", "a binary frame");
        close(&mut ws).await;
    });
    assert_eq!(
        script.ready(),
        "ended with 1 value(s), then 1 nil",
        "next() gives a lone nil at the end, to a waiting thread and after"
    );

    // Accepted without a subprotocol: none is answered, and socket.protocol is nil.
    let (mut ws, response) =
        connect(&rt, handshake(port, "/?mode=accept", &[])).expect("the upgrade is accepted");
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    rt.block_on(async {
        assert!(next_text(&mut ws).await.ends_with("| protocol=nil"));
        close(&mut ws).await;
    });
    script.ready();

    // A yielding acceptWebSocket.
    let (mut ws, _) = connect(&rt, handshake(port, "/?mode=wait", &[]))
        .expect("a yielding acceptWebSocket accepts");
    rt.block_on(close(&mut ws));
    script.ready();
    assert_eq!(script.finish(), 0);
}

#[test]
fn accept_websocket_refuses() {
    let (script, port) = spawn_server(SERVER);
    let rt = peer_runtime();

    let (status, body, _) = refusal(connect(&rt, handshake(port, "/?mode=refuse", &[])));
    assert_eq!(
        (status, body.as_str()),
        (403, "Forbidden\n"),
        "false refuses with 403"
    );

    let (status, body, headers) = refusal(connect(&rt, handshake(port, "/?mode=custom", &[])));
    assert_eq!(
        (status, body.as_str()),
        (401, "token required"),
        "a response refuses with itself"
    );
    assert_eq!(headers.get("x-why").unwrap(), "no token");

    let (status, body, _) = refusal(connect(&rt, handshake(port, "/?mode=text", &[])));
    assert_eq!(
        (status, body.as_str()),
        (200, "go away"),
        "a string is a response"
    );

    let (status, _, _) = refusal(connect(&rt, handshake(port, "/?mode=error", &[])));
    assert_eq!(status, 500, "an error in acceptWebSocket answers 500");

    let (status, _, _) = refusal(connect(&rt, handshake(port, "/?mode=nil", &[])));
    assert_eq!(status, 500, "returning nothing is an error");

    // A subprotocol the client did not offer.
    let offered = [("sec-websocket-protocol", "alpha"), ("x-pick", "gamma")];
    let (status, _, _) = refusal(connect(&rt, handshake(port, "/?mode=pick", &offered)));
    assert_eq!(status, 500, "a subprotocol not offered fails the upgrade");
    let (status, _, _) = refusal(connect(
        &rt,
        handshake(port, "/?mode=pick", &[("x-pick", "alpha")]),
    ));
    assert_eq!(status, 500, "a subprotocol when none was offered fails too");

    // The server still serves after all that.
    let (mut ws, _) = connect(&rt, handshake(port, "/?mode=accept", &[])).expect("accepted");
    rt.block_on(close(&mut ws));
    script.ready();
    assert_eq!(script.finish(), 0);
}

/// An upgrade waiting in `acceptWebSocket` counts as in flight: stopping the server
/// waits for it (within shutdownTimeout), and it is answered 503 rather than
/// upgraded by a stopping server, or dropped with the process.
#[test]
fn stopping_while_accept_websocket_runs_answers_503() {
    let (script, port) = spawn_server(
        r#"{
        acceptWebSocket = function(request)
            testkit.ready("deciding")
            task.wait(0.3)
            return true
        end,
        handleWebSocket = function(socket) end,
    }"#,
    );
    let rt = peer_runtime();
    let client = rt.spawn(async move {
        let request = handshake(port, "/", &[]);
        match tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(request)).await {
            Ok(Err(WsError::Http(response))) => Ok(response.status().as_u16()),
            Ok(Err(other)) => Err(other.to_string()),
            Ok(Ok(_)) => Err("upgraded".to_string()),
            Err(_) => Err("the handshake did not finish in time".to_string()),
        }
    });
    assert_eq!(script.ready(), "deciding");
    let started = Instant::now();
    assert_eq!(script.finish(), 0, "the script stops its server");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the process waited for acceptWebSocket"
    );
    assert_eq!(rt.block_on(client).unwrap(), Ok(503));
}

#[test]
fn accept_websocket_must_be_a_function() {
    run_luau(
        r#"
-- A server that starts anyway is stopped, so a failing check does not hang.
local function refused(config, needle, what)
    local ok, result = pcall(net.serve, 0, config)
    if ok then
        result.stop()
        error(what .. ": net.serve accepted the config", 2)
    end
    contains(tostring(result), needle, what)
end
refused({ handleWebSocket = function() end, acceptWebSocket = "yes" },
    "Invalid acceptWebSocket - expected function, got string", "bad acceptWebSocket")
refused({ handleRequest = function() end, acceptWebSocket = function() end },
    "acceptWebSocket needs a handleWebSocket", "acceptWebSocket alone")
"#,
        &[],
    );
}

/// What the handshake server below saw of each request.
#[derive(Default)]
struct Seen {
    headers: Vec<(String, String)>,
}

/// A tokio-tungstenite server that records each handshake's headers and answers the
/// subprotocol the path names (`/pick/<name>`), or none.
fn handshake_server(seen: Arc<Mutex<Seen>>) -> (tokio::runtime::Runtime, u16) {
    let rt = peer_runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                #[allow(
                    clippy::result_large_err,
                    reason = "the signature tungstenite's handshake callback has"
                )]
                let callback = |request: &HandshakeRequest,
                                mut response: HandshakeResponse|
                 -> Result<HandshakeResponse, ErrorResponse> {
                    let mut seen = seen.lock().unwrap();
                    for (name, value) in request.headers() {
                        seen.headers
                            .push((name.to_string(), value.to_str().unwrap_or("?").to_string()));
                    }
                    if let Some(name) = request.uri().path().strip_prefix("/pick/") {
                        response.headers_mut().insert(
                            "sec-websocket-protocol",
                            HeaderValue::from_str(name).unwrap(),
                        );
                    }
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let _ = ws.send(Message::text("a text")).await;
                let _ = ws.send(Message::binary(b"some bytes".to_vec())).await;
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_close() {
                        break;
                    }
                }
            });
        }
    });
    (rt, port)
}

fn header<'a>(seen: &'a Seen, name: &str) -> Vec<&'a str> {
    seen.headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn net_socket_sends_headers_and_offers_subprotocols() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (_rt, port) = handshake_server(seen.clone());
    run_luau(
        r#"
local base = "ws://127.0.0.1:" .. process.args[1]
local socket = net.socket(base .. "/pick/beta", {
    headers = { ["x-token"] = "secret", ["x-list"] = { "one", "two" }, ["user-agent"] = "lunet-test" },
    protocols = { "alpha", "beta" },
    timeout = 5,
})
eq(socket.protocol, "beta", "the subprotocol the server picked")
local message, kind = socket:next()
eq(message, "a text", "first message")
eq(kind, "text", "its frame type")
message, kind = socket:next()
eq(message, "some bytes", "second message")
eq(kind, "binary", "its frame type")
socket:close()
local after = table.pack(socket:next())
eq(after.n, 1, "next() after close returns one value")
eq(after[1], nil, "nil")

local plain = net.socket(base .. "/plain")
eq(plain.protocol, nil, "no subprotocol without an offer")
plain:close()

errors(function()
    net.socket(base .. "/pick/gamma", { protocols = { "alpha", "beta" } })
end, "not offered (offered: alpha, beta)", "a subprotocol that was not offered")
errors(function()
    net.socket(base .. "/pick/gamma")
end, "although none was offered", "a subprotocol when none was offered")
"#,
        &[port.to_string()],
    );
    let seen = seen.lock().unwrap();
    assert_eq!(header(&seen, "x-token"), ["secret"]);
    assert_eq!(header(&seen, "x-list"), ["one", "two"]);
    assert_eq!(header(&seen, "user-agent"), ["lunet-test"]);
    let offers = header(&seen, "sec-websocket-protocol");
    assert_eq!(
        offers.first(),
        Some(&"alpha, beta"),
        "the offer: {offers:?}"
    );
}

#[test]
fn net_socket_gives_up_after_its_timeout() {
    // Accepts TCP connections and never answers the handshake.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            held.push(stream);
            if held.len() == 1 {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let started = Instant::now();
    run_luau(
        r#"
errors(function()
    net.socket("ws://127.0.0.1:" .. process.args[1], { timeout = 0.3 })
end, "took longer than 0.3 s", "the timeout")
"#,
        &[port.to_string()],
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the script gave up after its timeout, not the 30 s default"
    );
    drop(held);
}

#[test]
fn net_socket_options_are_checked() {
    run_luau(
        r#"
local url = "ws://127.0.0.1:1"
errors(function() net.socket(url, 5) end, "Invalid options - expected table, got number", "options")
errors(function() net.socket(url, { headers = 1 }) end, "Invalid headers - expected table, got number", "headers")
errors(function() net.socket(url, { headers = { ["x-a"] = true } }) end, "Invalid headers value for 'x-a'", "header value")
errors(function() net.socket(url, { headers = { connection = "close" } }) end, "'connection' is set by the WebSocket handshake", "a handshake header")
errors(function() net.socket(url, { headers = { ["Sec-WebSocket-Protocol"] = "a" } }) end, "protocols option", "the offer header")
errors(function() net.socket(url, { protocols = "a" }) end, "Invalid protocols - expected table, got string", "protocols")
errors(function() net.socket(url, { protocols = { 1 } }) end, "Invalid protocols[1] - expected string, got number", "a protocol")
errors(function() net.socket(url, { protocols = { "a b" } }) end, "Invalid protocols[1] - expected a subprotocol name", "a bad name")
errors(function() net.socket(url, { protocols = { "a", "a" } }) end, "Invalid protocols - expected each subprotocol once", "a repeat")
errors(function() net.socket(url, { protocols = { x = "a" } }) end, "Invalid protocols - expected an array", "not an array")
errors(function() net.socket(url, { timeout = 0 }) end, "Invalid timeout - expected a number of seconds greater than 0, got 0", "timeout")
errors(function() net.socket(url, { timeout = "1" }) end, "Invalid timeout", "timeout type")
"#,
        &[],
    );
}

/// Lunet to Lunet: the client's offer reaches acceptWebSocket, both sockets know
/// the protocol, and one-argument handlers still work.
#[test]
fn lunet_client_and_server_agree_on_a_subprotocol() {
    let script = spawn_luau(
        r#"
local handle = net.serve(0, {
    acceptWebSocket = function(request)
        eq(request.headers["sec-websocket-protocol"], "v1, v2", "the offer")
        return true, "v2"
    end,
    handleWebSocket = function(socket)
        socket:send("server protocol " .. tostring(socket.protocol))
        socket:next()
    end,
})
-- The server is stopped before any check, so a failing one does not hang.
local ok, client = pcall(net.socket, "ws://127.0.0.1:" .. handle.port, { protocols = { "v1", "v2" } })
local clientProtocol, message = nil, nil
if ok then
    clientProtocol = client.protocol
    message = client:next()
    client:close()
end
handle.stop()
check(ok, "connected: " .. tostring(client))
eq(clientProtocol, "v2", "client protocol")
eq(message, "server protocol v2", "server protocol")
"#,
        &[],
    );
    assert_eq!(script.wait(), 0);
}
