//! WebSockets both ways: `net.socket` against a tokio-tungstenite server, and
//! `net.serve`'s `handleWebSocket` against a tokio-tungstenite client.

mod common;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::{peer_runtime, peers, run_luau, spawn_server};

#[test]
fn socket_client_messages_close_codes_and_errors() {
    let ws = peers::websocket(None);
    let http = peers::http(None);
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run_luau(
        r#"
local url, httpUrl, closedPort = process.args[1], process.args[2], process.args[3]
check(net.ws.connect == net.socket, "net.ws.connect is net.socket")
local s = net.socket(url)
eq(s.closeCode, nil, "closeCode is nil while open")
s:send("text message")
eq(s:next(), "text message", "a text message round trips")
s:send(buffer.fromstring("\0\1\2\255"), true)
eq(s:next(), "\0\1\2\255", "a binary message comes back as a string")
s:send("string sent as binary", true)
eq(s:next(), "string sent as binary", "asBinary sends a string as a binary frame")
local function kind(message, asBinary)
    s:send("kind?")
    s:send(message, asBinary)
    return s:next()
end
eq(kind("plain"), "text", "a string is sent as a text frame")
eq(kind("plain", true), "binary", "a string with asBinary is sent as a binary frame")
eq(kind(buffer.fromstring("h\u{e9}llo")), "text", "a buffer of UTF-8 is sent as a text frame")
eq(kind(buffer.fromstring("\255\0")), "binary", "a buffer that is not UTF-8 is sent as a binary frame")
eq(kind(buffer.fromstring("abc"), true), "binary", "a buffer with asBinary is sent as a binary frame")
errors(function() s:send("\255") end, "not valid UTF-8", "a string that is not UTF-8 needs asBinary")
s:send("big:16777216")
local big = s:next()
eq(#big, 16777216, "a 16 MiB message arrives whole")
eq(string.byte(big, 252), 0, "a 16 MiB message keeps its content")
local huge = string.rep("abcdefgh", 2 * 1024 * 1024)
s:send(huge)
eq(s:next(), huge, "a 16 MiB message can be sent")
s:send("flood:1000")
for i = 1, 1000 do
    eq(s:next(), tostring(i), "message " .. i .. " of 1000 arrives in order")
end
local got
task.spawn(function() got = s:next() end)
s:send("sent while another thread waits in next()")
task.wait(0.2)
eq(got, "sent while another thread waits in next()", "one thread may send while another waits in next()")
local first, second
task.spawn(function() first = s:next() end)
task.spawn(function() second = s:next() end)
s:send("one")
s:send("two")
task.wait(0.2)
eq(first, "one", "the first thread to wait in next() gets the first message")
eq(second, "two", "the second thread to wait in next() gets the second message")
task.cancel(task.spawn(function()
    s:next()
    error("a thread cancelled while waiting in next() was resumed")
end))
s:send("after cancel")
eq(s:next(), "after cancel", "a thread cancelled in next() does not swallow the next message")
local closedWaiter = coroutine.create(function() s:next() end)
coroutine.resume(closedWaiter)
coroutine.close(closedWaiter)
s:send("after coroutine.close")
eq(s:next(), "after coroutine.close", "a thread closed while in next() does not swallow the next message")
s:send("flood:1000")
task.wait(0.3)
for i = 1, 1000 do
    eq(s:next(), tostring(i), "message " .. i .. " of 1000 left unread for a while arrives in order")
end
s:send("ping")
eq(s:next(), "pong-received", "pings are answered")
s:close(4001)
eq(s.closeCode, 4001, "a local close sets closeCode at once")
errors(function() s:send("x") end, "closed", "send after close errors")
eq(s:next(), nil, "next after close returns nil")
errors(function() s:close() end, "closed", "closing twice is an error")

local unread = net.socket(url)
unread:send("flood:1000")
task.wait(0.3)
local closeStarted = os.clock()
unread:close()
check(os.clock() - closeStarted < 1, "close() with 1,000 messages left unread completes the closing handshake without waiting out its timeout")
eq(unread:next(), nil, "next() after close returns nil even with messages left unread")

local peerClose = net.socket(url)
peerClose:send("close:4002")
eq(peerClose:next(), nil, "next returns nil once the peer closes")
eq(peerClose.closeCode, 4002, "closeCode is the peer's code")
errors(function() peerClose:send("x") end, "closed", "send after a peer close errors")

local noCode = net.socket(url)
noCode:send("close-none")
eq(noCode:next(), nil, "a close without code ends next()")
eq(noCode.closeCode, 1005, "a close frame without code gives 1005")

local dropped = net.socket(url)
dropped:send("drop")
eq(dropped:next(), nil, "a dropped connection ends next()")
eq(dropped.closeCode, 1006, "a connection lost without a close frame gives 1006")

local v = net.socket(url)
errors(function() v:close(999) end, "1000 to 4999", "a close code below 1000 is rejected")
errors(function() v:close(5000) end, "1000 to 4999", "a close code above 4999 is rejected")
errors(function() v:close("x") end, "Invalid close code - expected an integer from 1000 to 4999, got string", "a close code must be a number")
errors(function() v:send(42) end, "expected string or buffer, got number", "send rejects a number")
errors(function() v.send("no self") end, "must be called on a WebSocket", "a method without self is a clear error")
v:close()
eq(v.closeCode, 1000, "close() defaults to 1000")

errors(function() net.socket("ws://127.0.0.1:" .. closedPort) end, "Connection refused", "a refused connection says so")
errors(function() net.socket(httpUrl .. "/echo") end, "net.socket failed", "a server that does not upgrade is an error")
errors(function() net.socket("http://127.0.0.1/") end, "unsupported scheme 'http'", "only ws and wss are accepted")
errors(function() net.socket(5) end, "expected string, got number", "the url must be a string")
"#,
        &[
            format!("ws://{}", ws.addr),
            http.http_url().replace("http://", "ws://"),
            closed_port.to_string(),
        ],
    );
}

/// A WebSocket echo server's config: `close-me` makes it close with 4100 and report
/// what a later send says; every socket reports its close code when it ends.
const WS_SERVER: &str = r#"{
    handleRequest = function() return "plain http too" end,
    handleWebSocket = function(socket)
        while true do
            local message = socket:next()
            if message == nil then break end
            if message == "close-me" then
                socket:close(4100)
                local ok, err = pcall(socket.send, socket, "too late")
                testkit.ready("after close: " .. tostring(socket.closeCode) .. " " .. tostring(err))
            else
                socket:send(message, string.byte(message, 1) == 0)
            end
        end
        testkit.ready("closeCode " .. tostring(socket.closeCode))
    end,
}"#;

#[test]
fn serve_websocket_echo_and_close_codes() {
    let (script, port) = spawn_server(WS_SERVER);
    let url = format!("ws://127.0.0.1:{port}");
    let rt = peer_runtime();
    let config = Some(lunet_net::ws::config());
    let connect = || {
        rt.block_on(tokio_tungstenite::connect_async_with_config(
            url.as_str(),
            config,
            true,
        ))
        .expect("the WebSocket handshake succeeds")
        .0
    };

    let mut ws = connect();
    rt.block_on(async {
        ws.send(Message::text("hello")).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text("hello"),
            "text echo"
        );
        // Pings are answered by the server itself (behaviour.md), with their payload,
        // while the handler waits in next().
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .unwrap();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("the pong arrives");
        assert_eq!(
            answer.unwrap().unwrap(),
            Message::Pong(b"are you there".to_vec().into()),
            "a ping is answered with a pong carrying its payload"
        );
        let binary = vec![0u8, 1, 2, 255];
        ws.send(Message::binary(binary.clone())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(binary),
            "binary echo as binary"
        );
        let large = "L".repeat(16 * 1024 * 1024);
        ws.send(Message::text(large.clone())).await.unwrap();
        assert_eq!(
            ws.next()
                .await
                .unwrap()
                .unwrap()
                .into_text()
                .unwrap()
                .as_str(),
            large,
            "16 MiB echo"
        );
        ws.close(None).await.unwrap();
        // Drain until the server's close reply ends the stream.
        while let Some(Ok(_)) = ws.next().await {}
    });
    assert_eq!(
        script.ready(),
        "closeCode 1005",
        "a client close without code gives the server 1005"
    );

    let mut ws = connect();
    rt.block_on(async {
        ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await
        .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    assert_eq!(
        script.ready(),
        "closeCode 1000",
        "the client's 1000 reaches the server"
    );

    let mut ws = connect();
    rt.block_on(async {
        ws.close(Some(CloseFrame {
            code: CloseCode::from(4321),
            reason: "custom".into(),
        }))
        .await
        .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    assert_eq!(
        script.ready(),
        "closeCode 4321",
        "a custom close code reaches the server"
    );

    let ws = connect();
    drop(ws);
    assert_eq!(
        script.ready(),
        "closeCode 1006",
        "a vanished client gives 1006"
    );

    let mut ws = connect();
    let close = rt.block_on(async {
        ws.send(Message::text("close-me")).await.unwrap();
        let mut close = None;
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                close = frame.map(|f| u16::from(f.code));
            }
        }
        close
    });
    assert_eq!(
        close,
        Some(4100),
        "the server's close code reaches the client"
    );
    let after = script.ready();
    assert!(after.starts_with("after close: 4100 "), "{after}");
    assert!(
        after.contains("closed"),
        "send after close errors with 'closed': {after}"
    );
    assert_eq!(
        script.ready(),
        "closeCode 4100",
        "next() returns nil after a local close"
    );

    let plain = rt.block_on(async {
        lunet_net::tls::install_crypto_provider();
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_eq!(
        plain, "plain http too",
        "plain requests go to handleRequest"
    );
    assert_eq!(script.finish(), 0);
}

#[test]
fn lunet_client_to_lunet_server() {
    run_luau(
        r#"
local received = {}
local handle = net.serve(0, {
    handleWebSocket = function(socket)
        for message in function() return socket:next() end do
            table.insert(received, message)
            socket:send("echo " .. message)
        end
    end,
})
local client = net.socket("ws://127.0.0.1:" .. handle.port)
for i = 1, 50 do
    client:send("m" .. i)
    eq(client:next(), "echo m" .. i, "round trip " .. i)
end
client:close()
task.wait(0.1)
eq(#received, 50, "the server saw every message")
handle.stop()
"#,
        &[],
    );
}

#[test]
fn messages_sent_right_before_the_script_ends_are_all_delivered() {
    let (counts, received) = std::sync::mpsc::channel();
    let peer = peers::websocket_with(move |mut ws| {
        let counts = counts.clone();
        async move {
            let mut count = 0usize;
            while let Some(Ok(message)) = ws.next().await {
                if message.is_text() {
                    count += 1;
                }
            }
            let _ = counts.send(count);
        }
    });
    // No close and no wait: the queued messages alone keep the process running
    // until they are written.
    run_luau(
        r#"
local s = net.socket(process.args[1])
for i = 1, 5000 do
    s:send("message " .. i)
end
"#,
        &[format!("ws://{}", peer.addr)],
    );
    let count = received
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the server saw the connection end");
    assert_eq!(count, 5000, "every queued message was written before exit");
}

#[test]
fn close_gives_up_on_a_peer_that_stopped_reading() {
    // The peer completes the handshake and then never reads again, so the socket
    // buffers fill and the messages (and the close frame) can never all be written.
    let peer = peers::websocket_with(|ws| async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        drop(ws);
    });
    let started = std::time::Instant::now();
    run_luau(
        r#"
local s = net.socket(process.args[1])
local chunk = string.rep("x", 1024 * 1024)
local sent, sendError = 0, nil
task.spawn(function()
    local ok, err = pcall(function()
        for _ = 1, 64 do
            s:send(chunk)
            sent += 1
        end
    end)
    sendError = if ok then "no error" else tostring(err)
end)
task.wait(0.5)
check(sent < 64, "send waits once the queue is full and the peer does not read (sent " .. sent .. ")")
local before = os.clock()
s:close()
local took = os.clock() - before
check(took < 4, "close() returned after the handshake timeout, took " .. took .. " s")
eq(s.closeCode, 1000, "the local close code stands")
task.wait(0.1)
check(sendError ~= nil and string.find(sendError, "closed") ~= nil, "a send waiting for room fails once the connection is dropped: " .. tostring(sendError))
errors(function() s:send("x") end, "closed", "send after close errors")
"#,
        &[format!("ws://{}", peer.addr)],
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "the script ended once close() gave up; the unwritable messages did not keep it alive"
    );
}

#[test]
fn the_first_close_code_wins_when_both_sides_close_at_once() {
    // On "now", the peer sends its own close frame (4999) without waiting, so the two
    // close frames cross: the script's 4001 is set first and must stay.
    let peer = peers::websocket_with(|mut ws| async move {
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() {
                let _ = ws
                    .close(Some(CloseFrame {
                        code: CloseCode::from(4999),
                        reason: "".into(),
                    }))
                    .await;
            }
        }
    });
    run_luau(
        r#"
local s = net.socket(process.args[1])
s:send("now")
s:close(4001)
eq(s.closeCode, 4001, "a local close code is not replaced by the peer's")
task.wait(0.2)
eq(s.closeCode, 4001, "nor later, once the connection has ended")
eq(s:next(), nil, "next returns nil after the close")
"#,
        &[format!("ws://{}", peer.addr)],
    );
}

/// A binary frame header announcing one byte more than Lunet accepts by default
/// (64 MiB). The payload never needs to follow: the size is checked on the header.
fn oversized_frame_header(masked: bool) -> Vec<u8> {
    let mut header = vec![0x82u8, if masked { 0x80 | 127 } else { 127 }];
    header.extend_from_slice(&((64u64 << 20) + 1).to_be_bytes());
    if masked {
        header.extend_from_slice(&[1, 2, 3, 4]);
    }
    header
}

/// The code of the close frame `ws` receives before its connection ends, if any.
async fn close_code_received<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut code = None;
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Close(frame) = message {
            code = frame.map(|f| u16::from(f.code));
        }
    }
    code
}

#[test]
fn a_message_over_the_limit_closes_net_socket_with_1009() {
    let (codes_tx, codes) = std::sync::mpsc::channel();
    let peer = peers::websocket_with(move |mut ws| {
        let codes = codes_tx.clone();
        async move {
            use tokio::io::AsyncWriteExt;
            if ws
                .get_mut()
                .write_all(&oversized_frame_header(false))
                .await
                .is_ok()
            {
                let _ = codes.send(close_code_received(&mut ws).await);
            }
        }
    });
    run_luau(
        r#"
local s = net.socket(process.args[1])
eq(s:next(), nil, "next() returns nil once a message over the limit closed the socket")
eq(s.closeCode, 1009, "closeCode is 1009 (Message Too Big)")
errors(function() s:send("x") end, "closed (close code 1009)", "send after a 1009 close errors")
errors(function() s:close() end, "closed", "close after a 1009 close errors")
"#,
        &[format!("ws://{}", peer.addr)],
    );
    let code = codes
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the peer saw its connection end");
    assert_eq!(code, Some(1009), "the peer is sent close code 1009");
}

#[test]
fn a_message_over_the_limit_closes_a_served_socket_with_1009() {
    let (script, port) = spawn_server(WS_SERVER);
    let url = format!("ws://127.0.0.1:{port}");
    let rt = peer_runtime();
    let code = rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            use tokio::io::AsyncWriteExt;
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .expect("the WebSocket handshake succeeds");
            ws.send(Message::text("before")).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("before"));
            let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_mut() else {
                panic!("a ws:// connection is plain TCP");
            };
            tcp.write_all(&oversized_frame_header(true)).await.unwrap();
            close_code_received(&mut ws).await
        })
        .await
        .expect("the server answered in time")
    });
    assert_eq!(code, Some(1009), "the client is sent close code 1009");
    assert_eq!(
        script.ready(),
        "closeCode 1009",
        "the handler's next() returns nil and closeCode is 1009"
    );
    assert_eq!(script.finish(), 0);
}

/// The process's resident memory, in bytes.
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

#[test]
fn unread_messages_hold_back_the_peer_and_bound_memory() {
    // The measurement runs in a process of its own: other tests in this binary
    // allocate tens of MiB at the same time, which would blur resident memory.
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unread_messages_memory_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run this test binary again");
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    // The child bounds every wait of its own; this only guards against a hang.
    let output = done
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the child test ended in time")
        .expect("the child test ran");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the child test failed:\n{report}");
    assert!(
        report.contains("1 passed"),
        "the child test ran exactly once:\n{report}"
    );
}

#[test]
#[ignore = "run in its own process by unread_messages_hold_back_the_peer_and_bound_memory"]
fn unread_messages_memory_child() {
    use std::sync::Arc;
    use std::time::Duration;
    const MESSAGE: usize = 1 << 20;
    const OFFERED: u32 = 200;

    let go = Arc::new(tokio::sync::Notify::new());
    let (events_tx, events) = std::sync::mpsc::channel::<String>();
    let peer = {
        let go = go.clone();
        peers::websocket_with(move |mut ws| {
            let go = go.clone();
            let events = events_tx.clone();
            async move {
                go.notified().await;
                let mut blocked = false;
                for i in 0..OFFERED {
                    let mut data = vec![(i % 251) as u8; MESSAGE];
                    data[..4].copy_from_slice(&i.to_le_bytes());
                    let mut send = std::pin::pin!(ws.send(Message::binary(data)));
                    if !blocked
                        && tokio::time::timeout(Duration::from_millis(500), &mut send)
                            .await
                            .is_err()
                    {
                        blocked = true;
                        let _ = events.send(format!("blocked at {i}"));
                    }
                    if send.await.is_err() {
                        let _ = events.send(format!("send {i} failed"));
                        return;
                    }
                }
                let _ = events.send("all sent".to_string());
                while let Some(Ok(_)) = ws.next().await {}
            }
        })
    };
    let script = common::spawn_luau(
        r#"
local testkit = require("@lune/testkit")
local s = net.socket(process.args[1])
testkit.ready("connected")
testkit.finished()
for i = 0, 199 do
    local message = s:next()
    eq(#message, 1024 * 1024, "message " .. i .. " is whole")
    eq(buffer.readu32(buffer.fromstring(message), 0), i, "message " .. i .. " arrives in order")
end
s:close()
"#,
        &[format!("ws://{}", peer.addr)],
    );
    assert_eq!(script.ready(), "connected");
    let before = resident_bytes();
    go.notify_one();
    let first = events
        .recv_timeout(Duration::from_secs(30))
        .expect("the peer reports");
    let at: u32 = first
        .strip_prefix("blocked at ")
        .unwrap_or_else(|| {
            panic!("the peer's sends must block while the script reads nothing: {first}")
        })
        .parse()
        .unwrap();
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "the peer blocked at message {at}; resident memory grew {} KiB",
        grown / 1024
    );
    assert!(
        at < OFFERED / 2,
        "the peer was held back well before its {OFFERED} MiB were all sent (at {at})"
    );
    assert!(
        grown < 64 << 20,
        "memory grew {} MiB while {OFFERED} MiB were offered; the unread bound is 16 MiB",
        grown >> 20
    );
    assert_eq!(
        script.finish(),
        0,
        "once the script reads, every message arrives in order"
    );
    assert_eq!(
        events
            .recv_timeout(Duration::from_secs(30))
            .expect("the peer reports"),
        "all sent",
        "the peer's sends resume once the script reads"
    );
}
