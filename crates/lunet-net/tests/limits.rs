//! `net.serve`'s limits and shutdown, driven by hostile and slow raw TCP clients and
//! tungstenite: `ServeConfig`'s size and time limits (set small here so the tests run
//! in a second or two), bad limit values, and `stop()` draining idle, stalled and
//! busy connections and WebSockets within `shutdownTimeout`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{peer_runtime, read_to_close, run_luau, spawn_luau, spawn_server};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A handler with a slow route, a route that never finishes, and an echo.
const HANDLER: &str = r#"function(request)
    if request.path == "/slow" then
        task.wait(0.6)
        return "slow done"
    elseif request.path == "/forever" then
        task.wait(3600)
        return "never"
    end
    return "echo " .. #request.body
end"#;

fn connect(port: u16) -> TcpStream {
    common::raw_client(port, Duration::from_secs(10))
}

fn config(fields: &str) -> String {
    format!("{{ handleRequest = {HANDLER}, {fields} }}")
}

fn within(elapsed: Duration, low_ms: u64, high_ms: u64, what: &str) {
    assert!(
        (Duration::from_millis(low_ms)..Duration::from_millis(high_ms)).contains(&elapsed),
        "{what}: took {elapsed:?}, expected {low_ms}..{high_ms} ms"
    );
}

#[test]
fn header_timeout_closes_an_unfinished_head_with_408() {
    let (script, port) = spawn_server(&config("headerTimeout = 0.5"));
    let mut partial = connect(port);
    let started = Instant::now();
    partial
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // Trickling more of the head, a byte every 100 ms, does not extend the deadline
    // (were each byte to restart it, the connection would outlive the trickle).
    let mut trickle = partial.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(100));
            if trickle.write_all(b"x").is_err() {
                break;
            }
        }
    });
    let (text, closed_at) = read_to_close(&mut partial, started);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "408 when part of a head arrived: {text:?}"
    );
    within(
        closed_at,
        450,
        1000,
        "an unfinished head is closed at headerTimeout, however it trickles",
    );
    trickler.join().unwrap();

    // A connection that sends nothing at all is closed at headerTimeout too, without
    // a 408 (it asked for nothing).
    let mut never_spoke = connect(port);
    let (text, closed_at) = read_to_close(&mut never_spoke, Instant::now());
    assert_eq!(text, "", "nothing arrived, so no 408");
    within(
        closed_at,
        450,
        1500,
        "a connection that never sends is closed at headerTimeout",
    );

    // A complete request within the limit is answered.
    let mut fine = connect(port);
    fine.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (text, _) = read_to_close(&mut fine, Instant::now());
    assert!(text.ends_with("echo 0"), "{text}");
    assert_eq!(script.finish(), 0);
}

/// A plain-port client that starts the HTTP/2 prior-knowledge preface and stalls
/// inside it (the server waits for all 24 bytes before it picks HTTP/1 or HTTP/2) is
/// closed at headerTimeout, as a stalled HTTP/1 head is; others are served meanwhile.
#[test]
fn header_timeout_closes_a_client_stalled_in_the_h2c_preface() {
    let (script, port) = spawn_server(&config("headerTimeout = 0.5"));
    let mut stalled = connect(port);
    let started = Instant::now();
    stalled.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    let mut fine = connect(port);
    fine.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (text, _) = read_to_close(&mut fine, Instant::now());
    assert!(text.ends_with("echo 0"), "served meanwhile: {text}");
    let (text, closed_at) = read_to_close(&mut stalled, started);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "nothing, or a 408: {text:?}"
    );
    within(
        closed_at,
        450,
        1500,
        "a client stalled in the h2c preface is closed at headerTimeout",
    );
    assert_eq!(script.finish(), 0);
}

#[test]
fn idle_timeout_closes_silent_keep_alive_connections() {
    let (script, port) = spawn_server(&config("idleTimeout = 0.5"));
    let mut silent = connect(port);
    silent
        .write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut chunk = [0u8; 1024];
    let n = silent.read(&mut chunk).unwrap();
    assert!(String::from_utf8_lossy(&chunk[..n]).ends_with("echo 0"));
    let answered = Instant::now();
    let (text, closed_at) = read_to_close(&mut silent, answered);
    assert_eq!(text, "", "an idle connection is closed without a response");
    within(
        closed_at,
        450,
        1500,
        "an idle keep-alive connection is closed at idleTimeout",
    );
    assert_eq!(script.finish(), 0);
}

/// A handler slower than every timeout is never cut off: its client is answered.
#[test]
fn slow_handlers_outlive_every_timeout() {
    let (script, port) = spawn_server(&config(
        "headerTimeout = 0.2, bodyTimeout = 0.2, idleTimeout = 0.2",
    ));
    let mut slow = connect(port);
    slow.write_all(
        b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    )
    .unwrap();
    let (text, took) = read_to_close(&mut slow, Instant::now());
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("slow done"),
        "{text:?}"
    );
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert_eq!(script.finish(), 0);
}

#[test]
fn body_timeout_answers_408_to_a_stalled_body_but_not_a_slow_one() {
    let (script, port) = spawn_server(&config("bodyTimeout = 0.5"));
    let mut stalled = connect(port);
    let started = Instant::now();
    stalled
        .write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        .unwrap();
    let (text, closed_at) = read_to_close(&mut stalled, started);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "a stalled body gets 408: {text:?}"
    );
    within(
        closed_at,
        450,
        1500,
        "a stalled body is refused at bodyTimeout",
    );

    // A body that keeps arriving, a byte every 200 ms, is read to its end.
    let mut slow = connect(port);
    slow.write_all(
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    for byte in b"abcdef" {
        std::thread::sleep(Duration::from_millis(200));
        slow.write_all(&[*byte]).unwrap();
    }
    let (text, _) = read_to_close(&mut slow, Instant::now());
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("echo 6"),
        "{text:?}"
    );
    assert_eq!(script.finish(), 0);
}

#[test]
fn body_and_header_sizes_are_configurable() {
    let (script, port) = spawn_server(&config("maxBodySize = 100, maxHeaderSize = 300"));
    let exchange = |request: Vec<u8>| {
        let mut stream = connect(port);
        stream.write_all(&request).unwrap();
        read_to_close(&mut stream, Instant::now()).0
    };
    let body = |size: usize| {
        let mut request = format!(
            "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        request.extend(std::iter::repeat_n(b'a', size));
        request
    };
    let text = exchange(body(100));
    assert!(
        text.ends_with("echo 100"),
        "a body at the limit is read: {text}"
    );
    let text = exchange(body(101));
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "one byte more is refused: {text}"
    );
    let chunked = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n65\r\n"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'a', 101))
        .chain(b"\r\n0\r\n\r\n".iter().copied())
        .collect();
    let text = exchange(chunked);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "a chunked body past the limit: {text}"
    );
    let header = |size: usize| {
        format!(
            "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "h".repeat(size)
        )
        .into_bytes()
    };
    let text = exchange(header(200));
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "headers under the limit: {text}"
    );
    let text = exchange(header(400));
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "headers over the limit: {text}"
    );
    assert_eq!(script.finish(), 0);
}

#[test]
fn bad_limit_values_are_errors_naming_the_field() {
    run_luau(
        r#"
local function serveWith(field, value)
    return function()
        net.serve(0, { handleRequest = function() return "" end, [field] = value })
    end
end
for _, field in { "maxBodySize", "maxHeaderSize", "maxMessageSize" } do
    errors(serveWith(field, -1), "Invalid " .. field .. " - expected", field .. " negative")
    errors(serveWith(field, 0.5), "Invalid " .. field, field .. " fraction")
    errors(serveWith(field, "big"), "Invalid " .. field .. " - expected", field .. " string")
    errors(serveWith(field, 0 / 0), "Invalid " .. field, field .. " NaN")
end
for _, field in { "headerTimeout", "bodyTimeout", "idleTimeout", "shutdownTimeout" } do
    errors(serveWith(field, -1), "Invalid " .. field .. " - expected a number of seconds", field .. " negative")
    errors(serveWith(field, 0), "Invalid " .. field, field .. " zero")
    errors(serveWith(field, 0 / 0), "Invalid " .. field, field .. " NaN")
    errors(serveWith(field, "soon"), "Invalid " .. field, field .. " string")
end
local handle = net.serve(0, {
    handleRequest = function() return "" end,
    maxBodySize = 1024, maxHeaderSize = 4096, maxMessageSize = 1024,
    headerTimeout = 1, bodyTimeout = 1, idleTimeout = 1, shutdownTimeout = 1,
})
handle.stop()
"#,
        &[],
    );
}

/// `stop()` closes idle and stalled connections at once, lets a running handler
/// finish and answer with `Connection: close`, and the script then ends.
#[test]
fn stop_drains_idle_stalled_and_busy_connections() {
    let (script, port) = spawn_server(&config("shutdownTimeout = 5"));
    let idle = connect(port);
    let mut mid_head = connect(port);
    mid_head.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let mut mid_body = connect(port);
    mid_body
        .write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123")
        .unwrap();
    let busy = std::thread::spawn(move || {
        let mut stream = connect(port);
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_to_close(&mut stream, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(150));
    let stopped = Instant::now();
    let ended = std::thread::spawn(move || script.finish());
    for (name, mut stream) in [
        ("idle", idle),
        ("mid-head", mid_head),
        ("mid-body", mid_body),
    ] {
        let (_, closed_at) = read_to_close(&mut stream, stopped);
        within(
            closed_at,
            0,
            300,
            &format!("a {name} connection is closed at once"),
        );
    }
    // While the busy handler still runs, the stopped server accepts no one.
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a draining server refuses new connections"
    );
    let (text, _) = busy.join().unwrap();
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "the running handler answers: {text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.ends_with("slow done"), "{text}");
    assert_eq!(ended.join().unwrap(), 0, "the script ends once drained");
    within(
        stopped.elapsed(),
        0,
        2000,
        "draining took the handler's time, not the deadline",
    );
}

/// A handler that never returns cannot hold a stopped server open past
/// `shutdownTimeout`: its connection is closed and the script ends.
#[test]
fn stop_gives_up_on_handlers_at_the_shutdown_timeout() {
    let (script, port) = spawn_server(&config("shutdownTimeout = 0.5"));
    let mut forever = connect(port);
    forever
        .write_all(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Another stuck handler whose client already left: nothing waits for it, and
    // it must not hold the process open past the deadline either.
    let mut left = connect(port);
    left.write_all(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    drop(left);
    std::thread::sleep(Duration::from_millis(50));
    let stopped = Instant::now();
    let ended = std::thread::spawn(move || script.finish());
    let (_, closed_at) = read_to_close(&mut forever, stopped);
    within(
        closed_at,
        400,
        2000,
        "the stuck handler's connection is closed at the deadline",
    );
    assert_eq!(
        ended.join().unwrap(),
        0,
        "the script ends after the deadline"
    );
    within(
        stopped.elapsed(),
        400,
        3000,
        "both stuck handlers are given up on at the deadline",
    );
}

/// Server-side WebSockets are closed with 1001 (going away) by `stop()`, and a message
/// larger than `maxMessageSize` closes the socket with 1009 (message too big).
#[test]
fn websockets_get_1001_on_stop_and_1009_past_max_message_size() {
    let script = spawn_luau(
        r#"
local testkit = require("@lune/testkit")
local handle = net.serve(0, {
    maxMessageSize = 1024,
    handleWebSocket = function(socket)
        while true do
            local message = socket:next()
            if message == nil then break end
            socket:send(message)
        end
    end,
})
testkit.ready(handle.port)
testkit.finished()
handle.stop()
"#,
        &[],
    );
    let port: u16 = script.ready().parse().unwrap();
    let url = format!("ws://127.0.0.1:{port}");
    let rt = peer_runtime();
    let connect = || {
        rt.block_on(tokio_tungstenite::connect_async(url.as_str()))
            .expect("the WebSocket handshake succeeds")
            .0
    };
    let mut big = connect();
    let close = rt.block_on(async {
        big.send(Message::text("a".repeat(1024))).await.unwrap();
        assert_eq!(
            big.next().await.unwrap().unwrap(),
            Message::text("a".repeat(1024))
        );
        big.send(Message::text("a".repeat(1025))).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), big.next()).await
    });
    match close {
        Ok(Some(Ok(Message::Close(Some(frame))))) => {
            assert_eq!(frame.code, CloseCode::Size, "1009 past maxMessageSize")
        }
        other => panic!("expected a 1009 close frame, got {other:?}"),
    }
    drop(big);

    let mut open = connect();
    rt.block_on(async {
        open.send(Message::text("hi")).await.unwrap();
        assert_eq!(open.next().await.unwrap().unwrap(), Message::text("hi"));
    });
    let stopped = Instant::now();
    let ended = std::thread::spawn(move || script.finish());
    let close =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), open.next()).await });
    match close {
        Ok(Some(Ok(Message::Close(Some(frame))))) => {
            assert_eq!(frame.code, CloseCode::Away, "1001 when the server stops")
        }
        other => panic!("expected a 1001 close frame, got {other:?}"),
    }
    // Answering the close frame completes the handshake; the script then ends.
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = open.next().await {}
        })
        .await;
    });
    assert_eq!(
        ended.join().unwrap(),
        0,
        "the script ends once the socket closed"
    );
    within(
        stopped.elapsed(),
        0,
        1500,
        "from stop() to the end, without waiting out the 2 s close timeout",
    );
}
