//! `net.serve` speaking HTTP/2 with prior knowledge (h2c) on a plain port: many
//! streams on one connection, `request.httpVersion`, the limits applied per stream,
//! no HTTP/1-only response headers, `stop()` sending GOAWAY, the idle timeout, and
//! the concurrent stream limit. The client is hyper's HTTP/2 client over a plain TCP
//! stream, or (to go past the stream limit, which hyper's client respects) frames
//! written by hand.

mod common;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{RunningScript, peer_runtime, spawn_luau};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::{Read, Write};

type Body = BoxBody<Bytes, Infallible>;

/// Answers `<httpVersion> <method> <body length>`; `/slow` waits 0.3 s first,
/// `/headers` returns HTTP/1-only headers, `/request` describes the request's
/// host, query and headers, `/stop` stops the server, `/stream` streams 16 KiB
/// chunks of one letter each (a, b, c, ...) forever, `/big` answers 1 MiB at once.
const SERVER: &str = r#"
local testkit = require("@lune/testkit")
local handle
handle = net.serve(0, {
    maxBodySize = 1000,
    maxHeaderSize = 1000,
    bodyTimeout = 0.5,
    idleTimeout = tonumber(process.args[1]) or 60,
    handleRequest = function(request)
        if request.path == "/slow" then task.wait(0.3) end
        if request.path == "/stop" then handle.stop() end
        if request.path == "/stream" then
            -- chunk n: 16 KiB of the nth letter (a to z, then a again)
            local n = 0
            return { body = function()
                n += 1
                return string.rep(string.char(97 + (n - 1) % 26), 16384)
            end }
        end
        if request.path == "/big" then
            return string.rep("y", 1048576)
        end
        if request.path == "/request" then
            local raw = {}
            for _, line in request.rawHeaders do
                table.insert(raw, line.name .. "=" .. line.value)
            end
            return `host={request.headers.host} a={table.concat(request.query.a, ",")}`
                .. ` two={request.headers["x-two"]} cookie={request.headers.cookie}`
                .. ` raw={table.concat(raw, ";")}`
        end
        if request.path == "/headers" then
            return { headers = {
                connection = "keep-alive",
                ["keep-alive"] = "timeout=5",
                ["transfer-encoding"] = "chunked",
                upgrade = "websocket",
                ["x-kept"] = "yes",
            }, body = "headers" }
        end
        return request.httpVersion .. " " .. request.method .. " " .. #request.body
    end,
})
testkit.ready(handle.port)
testkit.finished()
if process.args[2] ~= "stopped" then handle.stop() end
"#;

fn server(args: &[&str]) -> (RunningScript, u16) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let script = spawn_luau(SERVER, &args);
    let port = script.ready().parse().unwrap();
    (script, port)
}

/// An HTTP/2 connection with prior knowledge, and the task driving it.
async fn h2c(
    port: u16,
) -> (
    SendRequest<Body>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    h2c_pinging(port, None).await
}

/// [`h2c`], whose client sends a PING every `ping` (also while no stream is open),
/// as keep-alive clients do.
async fn h2c_pinging(
    port: u16,
    ping: Option<Duration>,
) -> (
    SendRequest<Body>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    if let Some(ping) = ping {
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(ping)
            .keep_alive_while_idle(true);
    }
    let (sender, connection) = builder.handshake(TokioIo::new(tcp)).await.unwrap();
    (sender, tokio::spawn(connection))
}

/// No PINGs, and a PING every 100 ms: an HTTP/2 control frame (answered with a
/// write) is not progress for the idle timeout.
const PINGS: [Option<Duration>; 2] = [None, Some(Duration::from_millis(100))];

fn request(method: &str, path: &str, body: Body) -> http::Request<Body> {
    http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1{path}"))
        .body(body)
        .unwrap()
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// Sends `request` and waits (at most 20 s) for the response's head.
async fn send(
    sender: &mut SendRequest<Body>,
    request: http::Request<Body>,
) -> http::Response<hyper::body::Incoming> {
    tokio::time::timeout(Duration::from_secs(20), sender.send_request(request))
        .await
        .expect("a response in time")
        .expect("a response")
}

async fn text(
    sender: &mut SendRequest<Body>,
    request: http::Request<Body>,
) -> (http::response::Parts, String) {
    let response = send(sender, request).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts, String::from_utf8_lossy(&body).into_owned())
}

/// The HTTP/2 preface of a prior-knowledge client may arrive in pieces: the server
/// waits for all 24 bytes before it decides, then speaks HTTP/2 (its first frame is
/// SETTINGS), where a first piece alone would also fit an HTTP/1 request line.
#[test]
fn an_h2c_preface_split_across_reads_is_still_http2() {
    let (script, port) = server(&[]);
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut stream = common::raw_client(port, Duration::from_secs(10));
    stream.set_nodelay(true).unwrap();
    for piece in [&preface[..3], &preface[3..16], &preface[16..]] {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    // The client's SETTINGS (empty), as RFC 9113 3.4 has it follow the preface.
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(head[3], 4, "a SETTINGS frame first, got {head:?}");
    assert_eq!(&head[5..9], &[0, 0, 0, 0], "on stream 0");
    drop(stream);
    assert_eq!(script.finish(), 0);
}

#[test]
fn h2c_serves_a_hundred_concurrent_streams_on_one_connection() {
    let (script, port) = server(&[]);
    peer_runtime().block_on(async {
        let (sender, _connection) = h2c(port).await;
        let start = Instant::now();
        let streams = (0..100).map(|i| {
            let mut sender = sender.clone();
            async move {
                let (method, body) = if i % 2 == 0 {
                    ("GET", "")
                } else {
                    ("POST", "abc")
                };
                let (parts, text) = text(&mut sender, request(method, "/slow", full(body))).await;
                assert_eq!(parts.status, 200);
                assert_eq!(parts.version, http::Version::HTTP_2);
                assert_eq!(text, format!("2 {method} {}", body.len()));
            }
        });
        futures_util::future::join_all(streams).await;
        // Each handler waits 0.3 s: one after the other would take 30 s.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the streams ran side by side: {:?}",
            start.elapsed()
        );
    });
    assert_eq!(script.finish(), 0);
}

/// Handlers see the same request table on HTTP/2: `headers.host` (from
/// `:authority`, RFC 9113 8.3.1), one `cookie` joined with "; " (8.2.3; one line in
/// `rawHeaders` too, as an HTTP/1.1 hop would pass it on), a repeated
/// query key as an array, a repeated header joined with ", " and kept apart in
/// `rawHeaders`.
#[test]
fn an_h2_request_has_host_query_and_headers_as_on_http1() {
    let (script, port) = server(&[]);
    peer_runtime().block_on(async {
        let (mut sender, _connection) = h2c(port).await;
        let mut request = request("GET", "/request?a=1&a=2", full(""));
        request.headers_mut().append("x-two", "1".parse().unwrap());
        request.headers_mut().append("x-two", "2".parse().unwrap());
        // Browsers send each cookie as its own field on HTTP/2.
        request
            .headers_mut()
            .append("cookie", "a=1".parse().unwrap());
        request
            .headers_mut()
            .append("cookie", "b=2".parse().unwrap());
        let (parts, text) = text(&mut sender, request).await;
        assert_eq!(parts.status, 200, "{text}");
        assert!(
            text.starts_with("host=127.0.0.1 a=1,2 two=1, 2 cookie=a=1; b=2 raw="),
            "{text}"
        );
        assert!(text.contains("x-two=1;x-two=2"), "{text}");
        let raw = text.split(" raw=").nth(1).unwrap_or_default();
        assert!(
            raw.contains("cookie=a=1; b=2") && !raw.contains("cookie=b=2"),
            "{text}"
        );
        // `Host` is added after the client's own header lines.
        assert!(text.ends_with(";host=127.0.0.1"), "{text}");
        // A request with its own `Host` keeps it, and gets no second one.
        let mut own_host = self::request("GET", "/request?a=1&a=2", full(""));
        own_host
            .headers_mut()
            .insert("host", "example.test".parse().unwrap());
        let (parts, answer) = self::text(&mut sender, own_host).await;
        assert_eq!(parts.status, 200, "{answer}");
        assert!(answer.starts_with("host=example.test "), "{answer}");
        assert!(
            answer.ends_with(" raw=host=example.test") && !answer.contains("127.0.0.1"),
            "{answer}"
        );
        // The connection remembers its requests' Host (see server/recent.rs): one
        // without its own gets `:authority` again, as often as it comes.
        for _ in 0..2 {
            let again = self::request("GET", "/request?a=1&a=2", full(""));
            let (parts, answer) = self::text(&mut sender, again).await;
            assert_eq!(parts.status, 200, "{answer}");
            assert!(
                answer.starts_with("host=127.0.0.1 ") && answer.ends_with(" raw=host=127.0.0.1"),
                "{answer}"
            );
        }
    });
    assert_eq!(script.finish(), 0);
}

/// A function body streams over HTTP/2 as DATA frames, its chunks' bytes intact and
/// in order (the connection's 64 KiB window splits the fourth chunk, which hyper
/// holds, lent from its Luau string, until the window opens).
#[test]
fn a_streaming_response_arrives_over_h2() {
    let (script, port) = server(&[]);
    peer_runtime().block_on(async {
        let (mut sender, _connection) = h2c(port).await;
        let response = send(&mut sender, request("GET", "/stream", full(""))).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let mut body = response.into_body();
        let mut received = Vec::new();
        while received.len() < 30 * 16384 {
            let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
                .await
                .expect("the next frame in time")
                .expect("the stream goes on")
                .unwrap();
            received.extend_from_slice(&frame.into_data().unwrap());
        }
        for (at, &byte) in received.iter().enumerate() {
            let letter = b'a' + (at / 16384 % 26) as u8;
            assert_eq!(byte as char, letter as char, "byte {at}");
        }
    });
    assert_eq!(script.finish(), 0);
}

#[test]
fn http_version_is_reported_for_http1_requests_on_the_same_port() {
    let (script, port) = server(&[]);
    for (version, expected) in [("HTTP/1.0", "1.0 GET 0"), ("HTTP/1.1", "1.1 GET 0")] {
        let mut stream = common::raw_client(port, Duration::from_secs(10));
        write!(
            stream,
            "GET / {version}\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.ends_with(expected), "{version}: {answer}");
    }
    // A request line that starts like the HTTP/2 preface but is not one is HTTP/1.
    let mut stream = common::raw_client(port, Duration::from_secs(10));
    stream
        .write_all(b"PRI /x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.ends_with("1.1 PRI 0"), "{answer}");
    assert_eq!(script.finish(), 0);
}

#[test]
fn limits_apply_to_each_stream() {
    let (script, port) = server(&[]);
    peer_runtime().block_on(async {
        let (mut sender, _connection) = h2c(port).await;
        let (parts, _) = text(&mut sender, request("POST", "/", full(vec![b'x'; 2000]))).await;
        assert_eq!(parts.status, 413, "maxBodySize");
        let mut big_header = request("GET", "/", full(""));
        big_header
            .headers_mut()
            .insert("x-big", "y".repeat(1500).parse().unwrap());
        let (parts, _) = text(&mut sender, big_header).await;
        assert_eq!(parts.status, 431, "maxHeaderSize");
        // `:authority` counts as the `Host` a handler sees: 600 of it and a 500-byte
        // header are over the 1000 bytes, the same header with a short one is not.
        let header = || "y".repeat(500).parse::<http::HeaderValue>().unwrap();
        let mut long_authority = http::Request::get(format!("http://{}/", "a".repeat(600)))
            .body(full(""))
            .unwrap();
        long_authority.headers_mut().insert("x-big", header());
        let (parts, _) = text(&mut sender, long_authority).await;
        assert_eq!(parts.status, 431, "maxHeaderSize with a long :authority");
        let mut short_authority = request("GET", "/", full(""));
        short_authority.headers_mut().insert("x-big", header());
        let (parts, _) = text(&mut sender, short_authority).await;
        assert_eq!(parts.status, 200, "the same header with a short :authority");

        // One stream's body stalls; another on the same connection is answered
        // meanwhile, and the stalled one gets 408 at bodyTimeout.
        let (chunks, receiver) = tokio::sync::mpsc::channel::<Bytes>(1);
        let stalling = StreamBody::new(futures_util::stream::unfold(receiver, |mut r| async {
            r.recv()
                .await
                .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), r))
        }));
        chunks.send(Bytes::from_static(b"first")).await.unwrap();
        let start = Instant::now();
        let mut stalled_sender = sender.clone();
        let stalled = tokio::spawn(async move {
            text(&mut stalled_sender, request("POST", "/", stalling.boxed())).await
        });
        let (parts, answer) = text(&mut sender, request("GET", "/", full(""))).await;
        assert_eq!((parts.status.as_u16(), answer.as_str()), (200, "2 GET 0"));
        let (parts, _) = stalled.await.unwrap();
        let took = start.elapsed();
        assert_eq!(parts.status, 408, "bodyTimeout");
        assert!(
            (Duration::from_millis(450)..Duration::from_secs(5)).contains(&took),
            "at the body timeout: {took:?}"
        );
        drop(chunks);
        // The connection still serves.
        let (parts, _) = text(&mut sender, request("GET", "/", full(""))).await;
        assert_eq!(parts.status, 200);
    });
    assert_eq!(script.finish(), 0);
}

#[test]
fn http1_only_response_headers_are_not_sent_on_http2() {
    let (script, port) = server(&[]);
    peer_runtime().block_on(async {
        let (mut sender, _connection) = h2c(port).await;
        // (hyper's h2 client refuses a response carrying any of them as malformed.)
        let (parts, body) = text(&mut sender, request("GET", "/headers", full(""))).await;
        assert_eq!(parts.status, 200);
        assert_eq!(body, "headers");
        for name in ["connection", "keep-alive", "transfer-encoding", "upgrade"] {
            assert!(!parts.headers.contains_key(name), "{name}: {parts:?}");
        }
        assert_eq!(parts.headers["x-kept"], "yes");
    });
    assert_eq!(script.finish(), 0);
}

#[test]
fn stop_sends_goaway_and_lets_streams_in_flight_finish() {
    let (script, port) = server(&["60", "stopped"]);
    peer_runtime().block_on(async {
        let (mut sender, connection) = h2c(port).await;
        let mut slow_sender = sender.clone();
        let slow = tokio::spawn(async move {
            let answer = text(&mut slow_sender, request("GET", "/slow", full(""))).await;
            (answer, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (parts, answer) = text(&mut sender, request("GET", "/stop", full(""))).await;
        assert_eq!((parts.status.as_u16(), answer.as_str()), (200, "2 GET 0"));
        let stopped = Instant::now();
        let ((parts, answer), finished) = slow.await.unwrap();
        assert_eq!(
            (parts.status.as_u16(), answer.as_str()),
            (200, "2 GET 0"),
            "the stream in flight finishes"
        );
        assert!(finished > stopped);
        let refused = sender.send_request(request("GET", "/", full(""))).await;
        assert!(refused.is_err(), "no new stream after GOAWAY: {refused:?}");
        tokio::time::timeout(Duration::from_secs(5), connection)
            .await
            .expect("the server closes the connection once drained")
            .unwrap()
            .ok();
    });
    // The stopped server lets the script end.
    assert_eq!(script.finish(), 0);
}

#[test]
fn an_idle_h2_connection_is_closed_at_the_idle_timeout() {
    for ping in PINGS {
        an_idle_h2_connection_is_closed(ping);
    }
}

fn an_idle_h2_connection_is_closed(ping: Option<Duration>) {
    let (script, port) = server(&["0.5"]);
    peer_runtime().block_on(async {
        let (mut sender, connection) = h2c_pinging(port, ping).await;
        let (parts, _) = text(&mut sender, request("GET", "/", full(""))).await;
        assert_eq!(parts.status, 200);
        let start = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), connection)
            .await
            .expect("the idle connection is closed")
            .unwrap()
            .ok();
        let took = start.elapsed();
        assert!(
            (Duration::from_millis(400)..Duration::from_secs(5)).contains(&took),
            "closed at the idle timeout (pings {ping:?}): {took:?}"
        );
    });
    assert_eq!(script.finish(), 0);
}

#[test]
fn an_h2_client_that_stops_reading_a_stream_is_closed_at_the_idle_timeout() {
    // A streamed body, and a whole one large enough to go out in slices.
    for path in ["/stream", "/big"] {
        for ping in PINGS {
            an_h2_client_that_stops_reading_is_closed(path, ping);
        }
    }
}

fn an_h2_client_that_stops_reading_is_closed(path: &str, ping: Option<Duration>) {
    let (script, port) = server(&["0.5"]);
    peer_runtime().block_on(async {
        let (mut sender, connection) = h2c_pinging(port, ping).await;
        let response = send(&mut sender, request("GET", path, full(""))).await;
        assert_eq!(response.status(), 200);
        // The body is never read: the flow-control window fills and the stream waits.
        let start = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), connection)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the connection whose client stopped reading {path} is closed (pings {ping:?})"
                )
            })
            .unwrap()
            .ok();
        assert!(
            start.elapsed() >= Duration::from_millis(400),
            "not before the idle timeout: {:?}",
            start.elapsed()
        );
        drop(response);
    });
    assert_eq!(script.finish(), 0);
}

/// A whole (not streamed) response larger than the client's flow-control window,
/// read slowly but steadily, arrives whole although it takes longer than
/// `idleTimeout`: the client taking it is progress, as on HTTP/1.
#[test]
fn a_large_response_to_a_slow_h2_reader_is_not_cut_off_at_the_idle_timeout() {
    let (script, port) = server(&["0.5"]);
    peer_runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // Windows of one frame: the server sends only as fast as this client reads.
        let (mut sender, connection) =
            hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(16384)
                .initial_connection_window_size(16384)
                .handshake(TokioIo::new(tcp))
                .await
                .unwrap();
        let _connection = tokio::spawn(connection);
        let response = send(&mut sender, request("GET", "/big", full(""))).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-length"], "1048576");
        let mut body = response.into_body();
        let (start, mut received) = (Instant::now(), 0);
        while let Some(frame) = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the next frame in time")
        {
            let frame = frame.unwrap_or_else(|error| {
                panic!(
                    "cut off after {received} bytes, {:?}: {error}",
                    start.elapsed()
                )
            });
            received += frame.into_data().map_or(0, |data| data.len());
            // About 400 KiB/s: 2.6 s for the whole body, five idle timeouts.
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        assert_eq!(received, 1048576);
        assert!(
            start.elapsed() > Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    });
    assert_eq!(script.finish(), 0);
}

/// One HTTP/2 frame as read off the wire: its type, stream and payload.
struct RawFrame {
    kind: u8,
    stream: u32,
    payload: Vec<u8>,
}

fn read_frame(stream: &mut std::net::TcpStream) -> RawFrame {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).expect("a frame header");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).expect("a frame payload");
    RawFrame {
        kind: head[3],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    }
}

/// Appends one HTTP/2 frame to `out`.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, id: u32, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    out.extend_from_slice(&[len[1], len[2], len[3], kind, flags]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A client that opens more streams than the server's SETTINGS allow (256, RFC 9113
/// 5.1.2) gets the one past the limit refused with RST_STREAM(REFUSED_STREAM); the
/// 256 it may have are all answered, and the connection stays up. The client is
/// written frame by frame: hyper's and h2's clients queue streams past the limit
/// instead of sending them.
#[test]
fn a_stream_past_the_concurrent_stream_limit_is_refused() {
    const SETTINGS: u8 = 0x4;
    const HEADERS: u8 = 0x1;
    const RST_STREAM: u8 = 0x3;
    const GOAWAY: u8 = 0x7;
    let (script, port) = server(&[]);
    let mut stream = common::raw_client(port, Duration::from_secs(10));
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut hello, SETTINGS, 0, 0, &[]);
    stream.write_all(&hello).unwrap();
    // The server's SETTINGS come first; it applies its stream limit once acknowledged.
    let settings = read_frame(&mut stream);
    assert_eq!(settings.kind, SETTINGS, "a SETTINGS frame first");
    let limit = settings
        .payload
        .chunks_exact(6)
        .find(|entry| entry[..2] == [0, 3])
        .map(|entry| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]));
    assert_eq!(limit, Some(256), "SETTINGS_MAX_CONCURRENT_STREAMS");
    // The acknowledgement, then GET /slow on 257 streams, in one write (each handler
    // waits 0.3 s, so the first 256 are all open when the last arrives): :method GET
    // and :scheme http from HPACK's static table, :path and :authority as literals.
    let mut block = vec![0x82, 0x86, 0x04, 5];
    block.extend_from_slice(b"/slow");
    block.extend_from_slice(&[0x01, 1, b'x']);
    let ids: Vec<u32> = (0..257).map(|i| 2 * i + 1).collect();
    let mut burst = Vec::new();
    frame(&mut burst, SETTINGS, 0x1, 0, &[]);
    for &id in &ids {
        // END_STREAM | END_HEADERS
        frame(&mut burst, HEADERS, 0x5, id, &block);
    }
    stream.write_all(&burst).unwrap();
    let mut answered = std::collections::BTreeSet::new();
    let mut refused = Vec::new();
    while answered.len() + refused.len() < ids.len() {
        let frame = read_frame(&mut stream);
        match frame.kind {
            HEADERS => {
                answered.insert(frame.stream);
            }
            RST_STREAM => refused.push((frame.stream, frame.payload.clone())),
            GOAWAY => panic!("the connection was closed: GOAWAY {:?}", frame.payload),
            _ => {}
        }
    }
    assert_eq!(
        refused,
        [(513, 7u32.to_be_bytes().to_vec())],
        "the 257th stream is refused with REFUSED_STREAM (0x7)"
    );
    assert_eq!(answered.len(), 256, "the other 256 are answered");
    assert!(!answered.contains(&513));
    drop(stream);
    assert_eq!(script.finish(), 0);
}
