//! Real peers on loopback for `@lune/net` tests: an HTTP server with test routes
//! (plain or TLS, HTTP/1.1 and HTTP/2), a WebSocket server with scripted behaviours,
//! and a TCP echo server (plain or TLS). Each runs on its own tokio runtime and stops
//! when dropped.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::peer_runtime;

/// A running peer; dropping it shuts its runtime down.
pub struct Peer {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Peer {
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

fn bind(runtime: &tokio::runtime::Runtime, addr: &str) -> TcpListener {
    runtime
        .block_on(TcpListener::bind(addr))
        .expect("bind a loopback port")
}

/// A peer on `address` that runs `session` in its own task for each accepted
/// connection, with the client's address.
fn tcp_sessions<F, Fut>(address: &str, session: F) -> Peer
where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = peer_runtime();
    let listener = bind(&runtime, address);
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        loop {
            if let Ok((stream, client)) = listener.accept().await {
                tokio::spawn(session(stream, client));
            }
        }
    });
    Peer {
        addr,
        runtime: Some(runtime),
    }
}

fn compress(coding: &str, data: &[u8]) -> Vec<u8> {
    use lunet_runtime::codec::compression::{Codec, compress};
    let codec = match coding {
        "gzip" => Codec::Gzip,
        "deflate" => Codec::Zlib,
        "br" => Codec::Brotli,
        "zstd" => Codec::Zstd,
        other => panic!("unknown coding {other}"),
    };
    compress(codec, data, None).unwrap()
}

pub const COMPRESSED_TEXT: &str = "hello compressed world, hello compressed world";

fn respond(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

fn redirect(status: u16, location: &str) -> Response<Full<Bytes>> {
    let mut response = respond(status, "");
    response
        .headers_mut()
        .insert("location", HeaderValue::from_str(location).unwrap());
    response
}

async fn route(request: Request<Incoming>, port: u16, client: SocketAddr) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["echo"] => {
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let json = serde_json::json!({
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "query": parts.uri.query().unwrap_or(""),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
                "bodyLength": body.len(),
                "version": format!("{:?}", parts.version),
            });
            let mut response = respond(200, json.to_string());
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            response
        }
        ["raw"] => respond(200, body),
        // Which connection carried the request: the client's port.
        ["client-port"] => respond(200, client.port().to_string()),
        ["close"] => {
            let mut response = respond(200, client.port().to_string());
            response
                .headers_mut()
                .insert("connection", HeaderValue::from_static("close"));
            response
        }
        ["status", code] => {
            let code: u16 = code.parse().unwrap_or(500);
            respond(code, format!("status {code}"))
        }
        ["encoded", coding] => {
            let mut response = respond(200, compress(coding, COMPRESSED_TEXT.as_bytes()));
            response
                .headers_mut()
                .insert("content-encoding", HeaderValue::from_str(coding).unwrap());
            response
        }
        ["redirect", n] => {
            let n: u32 = n.parse().unwrap_or(0);
            if n == 0 {
                respond(200, "redirect done")
            } else {
                redirect(302, &format!("/redirect/{}", n - 1))
            }
        }
        ["loop"] => redirect(302, "/loop"),
        ["see-other"] => redirect(303, "/echo"),
        ["moved"] => redirect(301, "/echo"),
        ["temporary"] => redirect(307, "/echo"),
        ["permanent"] => redirect(308, "/echo"),
        ["relative"] => redirect(302, "echo?kept=yes"),
        ["cross-origin"] => redirect(302, &format!("http://localhost:{port}/echo")),
        ["same-origin"] => redirect(302, &format!("http://127.0.0.1:{port}/echo")),
        ["slow"] => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            respond(200, "slow")
        }
        ["headers"] => {
            let mut response = respond(200, "headers");
            let headers = response.headers_mut();
            headers.append("set-cookie", HeaderValue::from_static("a=1"));
            headers.append("set-cookie", HeaderValue::from_static("b=2"));
            headers.insert(
                "x-binary",
                HeaderValue::from_bytes(&[0x66, 0xff, 0x6f]).unwrap(),
            );
            headers.insert("x-single", HeaderValue::from_static("one"));
            response
        }
        ["big"] => respond(
            200,
            (0..10 * 1024 * 1024)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>(),
        ),
        ["binary"] => respond(200, (0..=255u8).cycle().take(1024).collect::<Vec<u8>>()),
        ["empty"] => respond(204, ""),
        _ => respond(404, "not found"),
    }
}

/// The HTTP test server: HTTP/1.1 (and HTTP/2 over TLS when `tls` offers h2).
pub fn http(tls: Option<Arc<ServerConfig>>) -> Peer {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tcp_sessions("127.0.0.1:0", move |stream, client| {
        let acceptor = acceptor.clone();
        async move {
            // The routes that redirect across origins need the server's own port.
            let Ok(local) = stream.local_addr() else {
                return;
            };
            let port = local.port();
            let service = service_fn(move |request| async move {
                Ok::<_, Infallible>(route(request, port, client).await)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        }
    })
}

/// What a [`proxy`] was asked, one line per request: `CONNECT <authority> <auth>`
/// or `<METHOD> <target> <auth>`, where `<auth>` is the `Proxy-Authorization` header
/// or `-`.
pub type ProxyLog = Arc<Mutex<Vec<String>>>;

/// An HTTP proxy. `CONNECT host:port` opens a tunnel to 127.0.0.1:port whatever the
/// host (so names that only the proxy "resolves" work), except for `refuse.test`,
/// which gets 407. Any other request is answered by the proxy itself with JSON
/// describing what it received (`method`, `target`, `host`, `proxyAuthorization`,
/// `body`), so forwarded requests are seen exactly as the proxy saw them.
pub fn proxy() -> (Peer, ProxyLog) {
    let log = ProxyLog::default();
    let peer_log = log.clone();
    let peer = tcp_sessions("127.0.0.1:0", move |stream, _client| {
        let log = peer_log.clone();
        async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let log = log.clone();
                async move { Ok::<_, Infallible>(proxy_request(request, &log).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        }
    });
    (peer, log)
}

async fn proxy_request(request: Request<Incoming>, log: &ProxyLog) -> Response<Full<Bytes>> {
    let auth = request
        .headers()
        .get("proxy-authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let target = request.uri().to_string();
    let line = format!(
        "{} {target} {}",
        request.method(),
        auth.as_deref().unwrap_or("-")
    );
    log.lock().unwrap().push(line);
    if request.method() == http::Method::CONNECT {
        let authority = request.uri().authority().cloned();
        let Some(authority) = authority else {
            return respond(400, "CONNECT needs host:port");
        };
        if authority.host() == "refuse.test" {
            return respond(407, "");
        }
        let port = authority.port_u16().unwrap_or(443);
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(request).await else {
                return;
            };
            let Ok(mut target) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            let mut upgraded = TokioIo::new(upgraded);
            let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut target).await;
        });
        return respond(200, "");
    }
    let host = request
        .headers()
        .get("host")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let method = request.method().to_string();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = serde_json::json!({
        "method": method,
        "target": target,
        "host": host,
        "proxyAuthorization": auth,
        "body": String::from_utf8_lossy(&body),
    });
    respond(200, json.to_string())
}

/// A server that accepts connections and resets them at once (SO_LINGER 0).
pub fn resetting() -> Peer {
    tcp_sessions("127.0.0.1:0", |stream, _| async move {
        drop(socket2_linger(stream.into_std().unwrap()));
    })
}

fn socket2_linger(stream: std::net::TcpStream) -> std::net::TcpStream {
    // Read the request first so the client is mid-response when the reset arrives.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 1024];
    let _ = std::io::Read::read(&mut &stream, &mut buf);
    // SO_LINGER with a zero timeout makes close() send RST.
    use std::os::fd::AsRawFd;
    let linger = [1i32, 0i32];
    unsafe {
        libc_setsockopt(stream.as_raw_fd(), linger);
    }
    stream
}

unsafe extern "C" {
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
}

unsafe fn libc_setsockopt(fd: i32, linger: [i32; 2]) {
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    unsafe {
        setsockopt(fd, SOL_SOCKET, SO_LINGER, linger.as_ptr().cast(), 8);
    }
}

/// A server that answers every request with a fixed raw HTTP response and closes.
pub fn raw_http(response: &'static [u8]) -> Peer {
    tcp_sessions("127.0.0.1:0", move |mut stream, _| async move {
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let _ = stream.write_all(response).await;
        let _ = stream.shutdown().await;
    })
}

/// An HTTP/1.1 server that answers one request per connection with keep-alive (no
/// `Connection: close`), its body the client's port, then closes the connection
/// after `idle`, the way servers drop idle keep-alive connections.
pub fn closing_idle(idle: Duration) -> Peer {
    tcp_sessions("127.0.0.1:0", move |mut stream, client| async move {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let body = client.port().to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        tokio::time::sleep(idle).await;
        let _ = stream.shutdown().await;
    })
}

/// A keep-alive HTTP/1.1 server that leaves some requests hanging: `/hang` is read
/// and never answered, `/hang-body` gets a response head and 3 of its 10 body bytes;
/// either then waits until the client closes (or resets) the connection. Every other
/// path is answered at once (keep-alive) with `<hanging>/<closed>`: how many hanging
/// requests are waiting, and how many of their connections the client has closed.
/// The counts are also returned, for the test.
pub fn hanging() -> (Peer, Arc<HangCounts>) {
    use std::sync::atomic::Ordering;
    let counts = Arc::new(HangCounts::default());
    let session_counts = counts.clone();
    let peer = tcp_sessions("127.0.0.1:0", move |mut stream, _| {
        let counts = session_counts.clone();
        async move {
            let (hanging, closed) = (&counts.hanging, &counts.closed);
            let mut buf = [0u8; 4096];
            loop {
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let hang = if head.starts_with(b"GET /hang-body ") {
                    let partial = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc";
                    stream.write_all(partial).await.is_ok()
                } else {
                    head.starts_with(b"GET /hang ")
                };
                if hang {
                    hanging.fetch_add(1, Ordering::SeqCst);
                    // Nothing more is expected: wait for EOF or a reset.
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    hanging.fetch_sub(1, Ordering::SeqCst);
                    closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                let body = format!(
                    "{}/{}",
                    hanging.load(Ordering::SeqCst),
                    closed.load(Ordering::SeqCst)
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    });
    (peer, counts)
}

/// What [`hanging`] has seen.
#[derive(Default)]
pub struct HangCounts {
    /// Hanging requests whose connection is still open.
    pub hanging: std::sync::atomic::AtomicUsize,
    /// Hanging requests whose connection the client closed.
    pub closed: std::sync::atomic::AtomicUsize,
}

/// A plain WebSocket server that hands each accepted connection to `session`, for
/// tests that need a peer behaving in one particular way.
pub fn websocket_with<F, Fut>(session: F) -> Peer
where
    F: Fn(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let session = Arc::new(session);
    tcp_sessions("127.0.0.1:0", move |stream, _| {
        let session = session.clone();
        async move {
            if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                session(ws).await;
            }
        }
    })
}

/// The WebSocket test server. It echoes messages (text as text, binary as binary)
/// and obeys text commands: `close:<code>` closes with that code, `close-none` closes
/// without a code, `drop` drops the connection without a close frame, `flood:<n>`
/// sends n numbered text messages, `big:<n>` sends an n-byte binary message,
/// `ping` sends a ping and answers `pong-received` once the pong arrives, and `kind?`
/// answers the next message with its frame type (`text` or `binary`) instead of
/// echoing it.
pub fn websocket(tls: Option<Arc<ServerConfig>>) -> Peer {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tcp_sessions("127.0.0.1:0", move |stream, _| {
        let acceptor = acceptor.clone();
        async move {
            let config = Some(lunet_net::ws::config());
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await
                        && let Ok(ws) =
                            tokio_tungstenite::accept_async_with_config(tls, config).await
                    {
                        ws_session(ws).await;
                    }
                }
                None => {
                    if let Ok(ws) =
                        tokio_tungstenite::accept_async_with_config(stream, config).await
                    {
                        ws_session(ws).await;
                    }
                }
            }
        }
    })
}

async fn ws_session<S>(mut ws: tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut report_kind = false;
    while let Some(Ok(message)) = ws.next().await {
        if std::mem::take(&mut report_kind) {
            let kind = match message {
                Message::Text(_) => "text",
                Message::Binary(_) => "binary",
                _ => "other",
            };
            let _ = ws.send(Message::text(kind)).await;
            continue;
        }
        match message {
            Message::Text(text) => {
                let text = text.as_str();
                if text == "kind?" {
                    report_kind = true;
                } else if let Some(code) = text.strip_prefix("close:") {
                    let code: u16 = code.parse().unwrap();
                    let _ = ws
                        .close(Some(CloseFrame {
                            code: CloseCode::from(code),
                            reason: "bye".into(),
                        }))
                        .await;
                } else if text == "close-none" {
                    let _ = ws.close(None).await;
                } else if text == "drop" {
                    return;
                } else if let Some(n) = text.strip_prefix("flood:") {
                    for i in 1..=n.parse::<u32>().unwrap() {
                        if ws.send(Message::text(i.to_string())).await.is_err() {
                            return;
                        }
                    }
                } else if let Some(n) = text.strip_prefix("big:") {
                    let data: Vec<u8> = (0..n.parse::<usize>().unwrap())
                        .map(|i| (i % 251) as u8)
                        .collect();
                    let _ = ws.send(Message::binary(data)).await;
                } else if text == "ping" {
                    let _ = ws
                        .send(Message::Ping(Bytes::from_static(b"are you there")))
                        .await;
                    while let Some(Ok(reply)) = ws.next().await {
                        if let Message::Pong(payload) = reply {
                            let answer = if &payload[..] == b"are you there" {
                                "pong-received"
                            } else {
                                "bad-pong"
                            };
                            let _ = ws.send(Message::text(answer)).await;
                            break;
                        }
                    }
                } else {
                    let _ = ws.send(Message::text(text)).await;
                }
            }
            Message::Binary(data) => {
                let _ = ws.send(Message::binary(data)).await;
            }
            Message::Close(_) => {}
            _ => {}
        }
    }
}

/// A TCP echo server (plain or TLS): echoes bytes until the client closes.
pub fn tcp_echo(tls: Option<Arc<ServerConfig>>, address: &str) -> Peer {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tcp_sessions(address, move |stream, _| {
        let acceptor = acceptor.clone();
        async move {
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let (mut r, mut w) = tokio::io::split(tls);
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                        let _ = w.shutdown().await;
                    }
                }
                None => {
                    let (mut r, mut w) = stream.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                }
            }
        }
    })
}

/// A TCP server that writes `greeting` to each client in `chunks`-sized pieces with
/// short pauses, then closes (for partial reads and end of stream).
pub fn tcp_greeter(greeting: &'static [u8], chunk: usize) -> Peer {
    tcp_sessions("127.0.0.1:0", move |mut stream, _| async move {
        for piece in greeting.chunks(chunk) {
            let _ = stream.write_all(piece).await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stream.shutdown().await;
    })
}

/// Writes to stdout without the test harness capturing it (for debugging peers).
pub fn debug(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// What the [`streaming`] peer observed, and the signal scripts send it.
#[derive(Default)]
pub struct StreamState {
    /// Notified by `/signal`.
    signal: tokio::sync::Notify,
    /// `/endless` saw the client go away.
    closed: std::sync::atomic::AtomicBool,
    /// Bytes of `/big` handed to hyper so far.
    sent: std::sync::atomic::AtomicUsize,
    /// `/upload` received its first chunk.
    first_chunk: std::sync::atomic::AtomicBool,
}

type StreamedBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A response whose body is what `produce` sends through the channel it gets (each
/// send is one frame; the channel holds one frame, so a blocked connection blocks
/// the sender).
fn streamed<F, Fut>(headers: &[(&'static str, &'static str)], produce: F) -> Response<StreamedBody>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(1);
    tokio::spawn(produce(sender));
    let frames = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let data = receiver.recv().await?;
        Some((Ok(hyper::body::Frame::data(data)), receiver))
    });
    let mut response = Response::new(http_body_util::StreamBody::new(frames).boxed_unsync());
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response
}

fn whole(body: impl Into<Bytes>) -> Response<StreamedBody> {
    Response::new(Full::new(body.into()).boxed_unsync())
}

/// Waits for `/signal` (at most 10 s); false if it never came.
async fn signalled(state: &StreamState) -> bool {
    tokio::time::timeout(Duration::from_secs(10), state.signal.notified())
        .await
        .is_ok()
}

async fn stream_route(
    request: Request<Incoming>,
    state: Arc<StreamState>,
) -> Response<StreamedBody> {
    use std::sync::atomic::Ordering;
    let path = request.uri().path().to_string();
    match path.as_str() {
        "/signal" => {
            state.signal.notify_one();
            whole("ok")
        }
        // "one", then (once signalled) "two" and "three".
        "/chunks" => streamed(&[], |tx| async move {
            let _ = tx.send(Bytes::from_static(b"one")).await;
            let next = if signalled(&state).await {
                "two"
            } else {
                "never signalled"
            };
            let _ = tx.send(Bytes::from_static(next.as_bytes())).await;
            let _ = tx.send(Bytes::from_static(b"three")).await;
        }),
        "/sse" => streamed(&[("content-type", "text/event-stream")], |tx| async move {
            let pieces: [&'static [u8]; 9] = [
                b"\xEF\xBB",
                b"\xBFdata: fir",
                b"st\r",
                b"\nid: 1\r\n",
                b"retry: 250\r\n\r\n",
                b": keep-alive\n\n",
                b"event: up",
                b"date\ndata: a\rdata: b\n\n",
                b"data: unfinished",
            ];
            for piece in pieces {
                let _ = tx.send(Bytes::from_static(piece)).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }),
        // Two gzip members, the second once signalled.
        "/gzip" => streamed(&[("content-encoding", "gzip")], |tx| async move {
            let _ = tx.send(compress("gzip", b"hello ").into()).await;
            let next: &[u8] = if signalled(&state).await {
                b"world"
            } else {
                b"never signalled"
            };
            let _ = tx.send(compress("gzip", next).into()).await;
        }),
        "/endless" => streamed(&[], |tx| async move {
            let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
            while tx.send(chunk.clone()).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            state.closed.store(true, Ordering::SeqCst);
        }),
        "/closed" => whole(if state.closed.load(Ordering::SeqCst) {
            "yes"
        } else {
            "no"
        }),
        // 64 MiB in 64 KiB chunks, counting what hyper took.
        "/big" => streamed(&[], |tx| async move {
            let chunk = Bytes::from((0..64 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            for _ in 0..1024 {
                if tx.send(chunk.clone()).await.is_err() {
                    return;
                }
                state.sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        }),
        // 1 GiB in 64 KiB chunks: more than a script could hold, were it buffered.
        "/gib" => streamed(&[], |tx| async move {
            let chunk = Bytes::from((0..64 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            for _ in 0..16 * 1024 {
                if tx.send(chunk.clone()).await.is_err() {
                    return;
                }
            }
        }),
        "/sent" => whole(state.sent.load(Ordering::SeqCst).to_string()),
        // The body's frames joined by "|", then ";" and whether it came chunked and
        // the HTTP version.
        "/upload" => {
            let chunked = request
                .headers()
                .get("transfer-encoding")
                .is_some_and(|v| v == "chunked");
            let version = format!("{:?}", request.version());
            let mut body = request.into_body();
            let mut frames = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    state.first_chunk.store(true, Ordering::SeqCst);
                    frames.push(String::from_utf8_lossy(&data).into_owned());
                }
            }
            whole(format!("{};{chunked};{version}", frames.join("|")))
        }
        "/got-first" => whole(if state.first_chunk.load(Ordering::SeqCst) {
            "yes"
        } else {
            "no"
        }),
        "/temporary" => {
            let mut response = whole("");
            *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            response
                .headers_mut()
                .insert("location", HeaderValue::from_static("/upload"));
            response
        }
        _ => {
            let mut response = whole("not found");
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// A server whose responses stream (see [`stream_route`]): HTTP/1.1, and HTTP/2 over
/// TLS when `tls` offers h2.
pub fn streaming(tls: Option<Arc<ServerConfig>>) -> (Peer, Arc<StreamState>) {
    let state = Arc::new(StreamState::default());
    let shared = state.clone();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let peer = tcp_sessions("127.0.0.1:0", move |stream, _client| {
        let acceptor = acceptor.clone();
        let state = shared.clone();
        async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(stream_route(request, state).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        }
    });
    (peer, state)
}
