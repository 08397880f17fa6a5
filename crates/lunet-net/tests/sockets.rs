//! `net.tcp.listen`, `net.udp.bind`, `net.unix` and `net.serve` on a Unix socket,
//! against real peers: tokio and std sockets in Rust, a rustls client for TLS, raw
//! HTTP/1.1 over a Unix stream. Each script hands its port or path to the test with
//! `testkit.ready`, and every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{peer_runtime, run_luau, spawn_luau};

const LIMIT: Duration = Duration::from_secs(10);

/// A Luau echo server on `net.tcp.listen(<config>)` that serves `clients`
/// connections (each echoes until its client closes), then closes the listener.
fn echo_server(config: &str, clients: usize) -> String {
    format!(
        r#"
local testkit = require("@lune/testkit")
local listener = net.tcp.listen({config})
check(listener.port > 0, "port 0 reports the port the system picked")
testkit.ready(listener.port)
local served = 0
for i = 1, {clients} do
    local stream = listener:accept()
    check(stream.remotePort > 0 and stream.localPort == listener.port, "an accepted stream's ports")
    task.spawn(function()
        while true do
            local data = stream:read()
            if data == nil then break end
            stream:write(data)
        end
        stream:close()
        served += 1
    end)
end
while served < {clients} do task.wait(0.01) end
listener:close()
"#
    )
}

#[test]
fn tcp_listener_echoes_to_100_concurrent_clients() {
    let script = spawn_luau(&echo_server("0", 100), &[]);
    let port: u16 = script.ready().parse().unwrap();
    peer_runtime().block_on(async {
        let clients = (0..100).map(|i| {
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let message = format!("client {i} says hello").repeat(100);
                stream.write_all(message.as_bytes()).await.unwrap();
                let mut echoed = vec![0; message.len()];
                tokio::time::timeout(LIMIT, stream.read_exact(&mut echoed))
                    .await
                    .expect("the echo within 10 s")
                    .unwrap();
                assert_eq!(
                    echoed,
                    message.as_bytes(),
                    "client {i} gets its own bytes back"
                );
            })
        });
        for client in clients.collect::<Vec<_>>() {
            client.await.unwrap();
        }
    });
    assert_eq!(script.wait(), 0, "the script failed; see stderr");
}

#[test]
fn tcp_listener_on_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let script = spawn_luau(
        &echo_server(r#"{ address = "::1", port = 0 }"#, 1).replace(
            "testkit.ready(listener.port)",
            "eq(listener.ip, \"::1\", \"listener.ip\")\ntestkit.ready(listener.port)",
        ),
        &[],
    );
    let port: u16 = script.ready().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("::1", port)).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(b"over six").unwrap();
    let mut echoed = [0; 8];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"over six");
    drop(stream);
    assert_eq!(script.wait(), 0);
}

#[test]
fn tcp_listener_with_tls_serves_while_a_silent_client_waits() {
    lunet_net::tls::install_crypto_provider();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, &key_pem).unwrap();
    // The certificate as PEM text, the key as a path.
    let script = spawn_luau(
        &echo_server(
            "{ port = 0, tls = { cert = process.args[1], key = process.args[2] } }",
            1,
        ),
        &[cert_pem, key_path.to_string_lossy().into_owned()],
    );
    let port: u16 = script.ready().parse().unwrap();
    // A client that connects and never starts its handshake holds up nobody.
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    peer_runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        // Well within the listener's 10 s handshake limit, which is what a silent
        // client would cost if handshakes ran one at a time.
        let mut tls = tokio::time::timeout(Duration::from_secs(3), connector.connect(name, tcp))
            .await
            .expect("the handshake within 3 s although another client is silent")
            .unwrap();
        tls.write_all(b"secret").await.unwrap();
        let mut echoed = [0; 6];
        tokio::time::timeout(LIMIT, tls.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&echoed, b"secret");
        tls.shutdown().await.unwrap();
    });
    drop(silent);
    assert_eq!(script.wait(), 0);
}

#[test]
fn tcp_listen_rejects_bad_arguments_naming_the_field() {
    run_luau(
        r#"
errors(function() net.tcp.listen("x") end, "Invalid port - expected a port number or a table", "a string")
errors(function() net.tcp.listen(70000) end, "Invalid port - expected an integer from 0 to 65535", "a port out of range")
errors(function() net.tcp.listen({ port = -1 }) end, "Invalid port", "a negative port in a table")
errors(function() net.tcp.listen({ address = "nowhere" }) end, "Invalid address 'nowhere'", "a bad address")
errors(function() net.tcp.listen({ address = 5 }) end, "Invalid address - expected string", "an address of the wrong type")
errors(function() net.tcp.listen({ tls = true }) end, "Invalid tls - expected a table { cert, key }", "tls of the wrong type")
errors(function() net.tcp.listen({ tls = { cert = "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n" } }) end, "Invalid tls.", "tls without a good cert or a key")
errors(function() net.tcp.listen({ tls = { key = 1 } }) end, "Invalid tls.cert - expected PEM text or the path of a PEM file, got nil", "tls without a cert")
errors(function() net.serve(0, { address = "unix:", handleRequest = function() end }) end, "Invalid address - expected a socket path after 'unix:'", "net.serve with an empty Unix path")
errors(function() net.serve(0, { address = "unix:/tmp/lunet-never.sock", tls = { cert = "c.pem", key = "k.pem" }, handleRequest = function() end }) end, "Invalid tls - TLS is served on TCP ports only", "net.serve with tls on a Unix path")
errors(function() net.udp.bind("x") end, "Invalid port - expected a port number or a table { address?, port? }, got string", "udp.bind with a string")
errors(function() net.udp.bind({ address = "::1", port = 65536 }) end, "Invalid port", "udp.bind with a port out of range")
errors(function() net.tcp.listen = nil end, "readonly", "net.tcp is read-only")
errors(function() net.udp.bind = nil end, "readonly", "net.udp is read-only")
errors(function() net.unix.listen = nil end, "readonly", "net.unix is read-only")
local first = net.tcp.listen(0)
errors(function() net.tcp.listen(first.port) end, "already in use", "a port in use")
errors(function() first.accept() end, "must be called on a TcpListener", "a method without self")
eq(first.noSuchField, nil, "an unknown field is nil")
first:close()
first:close() -- closing twice is harmless
errors(function() first:accept() end, "closed", "accept after close")
"#,
        &[],
    );
}

#[test]
fn close_wakes_threads_waiting_in_accept_and_receive() {
    run_luau(
        r#"
local listener = net.tcp.listen(0)
local udp = net.udp.bind(0)
local errors_seen = {}
for _, wait in { function() return listener:accept() end, function() return udp:receive() end } do
    task.spawn(function()
        local ok, err = pcall(wait)
        check(not ok, "a wait on a closed socket fails")
        table.insert(errors_seen, tostring(err))
    end)
end
task.wait(0.05)
eq(#errors_seen, 0, "both threads wait")
listener:close()
udp:close()
task.wait(0.05)
eq(#errors_seen, 2, "close() woke both waiting threads")
contains(errors_seen[1], "closed", "accept's error")
contains(errors_seen[2], "closed", "receive's error")
errors(function() udp:send("x", "127.0.0.1", 9) end, "closed", "send after close")
"#,
        &[],
    );
}

#[test]
fn udp_datagrams_up_to_the_largest_come_back_whole() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let script = spawn_luau(
        r#"
local testkit = require("@lune/testkit")
local udp = net.udp.bind({ address = "127.0.0.1", port = 0 })
eq(udp.ip, "127.0.0.1", "udp.ip")
testkit.ready(udp.port)
-- Unconnected: echo three datagrams to whoever sent them.
for _ = 1, 3 do
    local data, ip, port = udp:receive()
    eq(ip, "127.0.0.1", "the sender's ip")
    udp:send(data, ip, port)
end
-- Connected: send() without a host goes to the connected peer; a name resolves.
local peerPort = tonumber(process.args[1])
udp:connect("localhost", peerPort)
udp:send("connected")
udp:send(buffer.fromstring("a buffer"))
errors(function() udp:send(string.rep("x", 65508)) end, "Invalid data - expected at most 65507 bytes", "one byte past the IPv4 maximum")
errors(function() udp:send(42) end, "Invalid data", "a number")
errors(function() udp:send("x", "127.0.0.1") end, "Invalid port", "a host without a port")
errors(function() udp:send("x", "", 9) end, "Invalid host", "an empty host")
errors(function() udp:send("x", nil, 9) end, "Invalid host - expected a string with the port", "a port without a host")
errors(function() udp.receive() end, "must be called on a UdpSocket", "a method without self")
udp:close()
local unconnected = net.udp.bind(0)
errors(function() unconnected:send("x") end, "Invalid host - expected a string (the UdpSocket is not connected", "send without a host on an unconnected socket")
unconnected:close()
"#,
        &[peer.local_addr().unwrap().port().to_string()],
    );
    let port: u16 = script.ready().parse().unwrap();
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut buffer = vec![0; 70_000];
    for size in [1, 1_000, 65_507] {
        let datagram: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        peer.send_to(&datagram, target).unwrap();
        let (n, from) = peer.recv_from(&mut buffer).unwrap();
        assert_eq!(from, target);
        assert_eq!(n, size, "a {size}-byte datagram comes back as one datagram");
        assert_eq!(&buffer[..n], &datagram[..]);
    }
    for expected in [&b"connected"[..], b"a buffer"] {
        let (n, from) = peer.recv_from(&mut buffer).unwrap();
        assert_eq!(from, target);
        assert_eq!(&buffer[..n], expected);
    }
    assert_eq!(script.wait(), 0);
}

#[test]
fn udp_flood_waits_in_the_kernel_not_in_memory() {
    // 20,000 datagrams (20 MB) arrive while nobody receives; the socket reads only
    // what it is asked for, so what the script gets is what fitted the kernel's
    // receive buffer (208 KiB by default on Linux; the rest was dropped by the
    // kernel), where a reader that queued in the background would hand over all.
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Twice as many 1000-byte datagrams as the host's default receive buffer holds
    // bytes for (each takes more than its size there): hosts tuned for QUIC have
    // buffers of several MiB.
    let rmem_default: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_default")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(212_992);
    let receive_bound = (rmem_default / 1000 * 2).max(1000);
    if receive_bound >= 20_000 {
        // The kernel would hold the whole flood: nothing here to bound.
        eprintln!(
            "skipped: this host's receive buffer ({rmem_default} bytes) holds the whole flood"
        );
        return;
    }
    let script = spawn_luau(
        r#"
local testkit = require("@lune/testkit")
local udp = net.udp.bind(0)
testkit.ready(udp.port)
testkit.finished()
local received = 0
while true do
    local data = udp:receive()
    if data == "last" then break end
    eq(#data, 1000, "a flood datagram")
    received += 1
end
-- ~100 fit a default 208 KiB buffer; a background reader would take most of the 20,000.
local bound = tonumber(process.args[1])
check(received < bound, `the kernel dropped what did not fit its buffer: {received} (bound {bound})`)
udp:close()
"#,
        &[receive_bound.to_string()],
    );
    let port: u16 = script.ready().parse().unwrap();
    let datagram = [7u8; 1000];
    for _ in 0..20_000 {
        let _ = peer.send_to(&datagram, ("127.0.0.1", port));
    }
    // Room for the last one: the script drains the buffer as it reads.
    let finished = std::thread::spawn(move || script.finish());
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(10));
        let _ = peer.send_to(b"last", ("127.0.0.1", port));
        if finished.is_finished() {
            break;
        }
    }
    assert_eq!(finished.join().unwrap(), 0);
}

#[test]
fn unix_streams_echo_both_ways_and_the_socket_file_is_managed() {
    let dir = tempfile::tempdir().unwrap();
    let listen_path = dir.path().join("lunet.sock");
    let stale_path = dir.path().join("stale.sock");
    let live_path = dir.path().join("live.sock");
    let plain_path = dir.path().join("plain.txt");
    let peer_path = dir.path().join("peer.sock");
    // A stale socket file (its listener is gone), a live one, and a regular file.
    drop(std::os::unix::net::UnixListener::bind(&stale_path).unwrap());
    let _live = std::os::unix::net::UnixListener::bind(&live_path).unwrap();
    std::fs::write(&plain_path, "not a socket").unwrap();
    // A Rust echo peer for net.unix.connect.
    let peer = std::os::unix::net::UnixListener::bind(&peer_path).unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = peer.accept() {
            let mut buffer = [0; 1024];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 || stream.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    });
    let script = spawn_luau(
        r#"
local testkit = require("@lune/testkit")
local fs = require("@lune/fs")
local listenPath, stalePath, livePath, plainPath, peerPath = table.unpack(process.args)
local client = net.unix.connect(peerPath)
eq(client.path, peerPath, "a Unix stream's path")
eq(client.remoteIp, nil, "a Unix stream has no IP")
client:write("to the peer")
eq(client:read(), "to the peer", "net.unix.connect echoes")
client:close()
errors(function() net.unix.connect(listenPath) end, "net.unix.connect failed for unix:" .. listenPath, "connecting where nobody listens")
errors(function() net.unix.connect("") end, "Invalid path", "an empty path")
errors(function() net.unix.listen(5) end, "Invalid path - expected string, got number", "a path of the wrong type")

local stale = net.unix.listen(stalePath)
eq(stale.path, stalePath, "a stale socket file is replaced")
stale:close()
check(not fs.metadata(stalePath).exists, "close() removes the socket file")
errors(function() net.unix.listen(livePath) end, "already in use", "a live socket is not replaced")
errors(function() net.unix.listen(plainPath) end, "not a socket", "a regular file is not replaced")
eq(fs.readFile(plainPath), "not a socket", "and is left alone")

local listener = net.unix.listen(listenPath)
testkit.ready("listening")
local stream = listener:accept()
eq(stream.path, listenPath, "an accepted Unix stream's path")
while true do
    local data = stream:read()
    if data == nil then break end
    stream:write(string.upper(data))
end
listener:close()
testkit.ready("closed")
"#,
        &[
            &listen_path,
            &stale_path,
            &live_path,
            &plain_path,
            &peer_path,
        ]
        .map(|p| p.to_string_lossy().into_owned()),
    );
    assert_eq!(script.ready(), "listening");
    let mut stream = std::os::unix::net::UnixStream::connect(&listen_path).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(b"shout").unwrap();
    let mut echoed = [0; 5];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"SHOUT");
    drop(stream);
    assert_eq!(script.ready(), "closed");
    assert!(!listen_path.exists(), "close() removed the socket file");
    assert!(live_path.exists(), "the live socket's file is still there");
    assert_eq!(script.wait(), 0);
}

#[test]
fn http_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("http.sock");
    // A stale file where the server goes.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let script = spawn_luau(
        r#"
local testkit = require("@lune/testkit")
local handle = net.serve(0, {
    address = "unix:" .. process.args[1],
    handleRequest = function(request)
        return { status = 200, body = request.method .. " " .. request.path .. " from " .. request.ip .. ":" .. request.port }
    end,
})
eq(handle.path, process.args[1], "handle.path")
eq(handle.ip, "unix:" .. process.args[1], "handle.ip")
testkit.ready("serving")
testkit.finished()
handle.stop()
"#,
        &[path.to_string_lossy().into_owned()],
    );
    assert_eq!(script.ready(), "serving");
    for _ in 0..2 {
        let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nhost: lunet\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("GET /hello from unix:0"), "{response}");
    }
    assert_eq!(script.finish(), 0);
    assert!(!path.exists(), "stop() removed the socket file");
}

#[test]
fn an_open_listener_keeps_the_process_alive_and_close_or_collection_ends_that() {
    // Held in a global and open: the script's process does not end. (It is left
    // running; the test process ends it.)
    let held = spawn_luau(
        r#"
local testkit = require("@lune/testkit")
_G.listener = net.tcp.listen(0)
_G.udp = net.udp.bind(0)
testkit.ready(_G.listener.port)
"#,
        &[],
    );
    let port: u16 = held.ready().parse().unwrap();
    assert_eq!(
        held.wait_within(Duration::from_millis(500)),
        None,
        "an open listener keeps the script running"
    );
    // Still listening: the kernel completes a connection into its backlog.
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("the listener is open");
    std::mem::forget(held);

    // Closed: the process ends.
    let closed = spawn_luau(
        "_G.listener = net.tcp.listen(0)\n_G.udp = net.udp.bind(0)\n_G.listener:close()\n_G.udp:close()\n",
        &[],
    );
    assert_eq!(
        closed.wait_within(LIMIT),
        Some(0),
        "close() lets the script end"
    );

    // Unreachable: the garbage collector closes them, and the process ends.
    let dropped = spawn_luau(
        "local listener = net.tcp.listen(0)\nlocal udp = net.udp.bind(0)\nprint(listener.port, udp.port)\n",
        &[],
    );
    assert_eq!(
        dropped.wait_within(LIMIT),
        Some(0),
        "a listener the script cannot reach any more does not hold the process"
    );
}

#[test]
fn udp_over_ipv6_loopback() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    run_luau(
        r#"
local a = net.udp.bind({ address = "::1", port = 0 })
local b = net.udp.bind({ address = "[::1]" })
eq(a.ip, "::1", "an IPv6 socket's ip")
a:send(string.rep("6", 65527), "::1", b.port)
local data, ip, port = b:receive()
eq(#data, 65527, "the largest IPv6 datagram arrives whole")
eq(ip, "::1", "the sender's ip")
eq(port, a.port, "the sender's port")
errors(function() a:send(string.rep("6", 65528), "::1", b.port) end, "at most 65527 bytes", "one byte more")
errors(function() a:send("x", "127.0.0.1", b.port) end, "has no IPv6 address", "an IPv4 target from an IPv6 socket")
a:close()
b:close()
"#,
        &[],
    );
}

/// A UDP socket on `::` (dual stack) answers an IPv4 sender at the address
/// `receive` reported.
#[test]
fn udp_on_the_ipv6_wildcard_answers_ipv4_senders() {
    if std::net::UdpSocket::bind("[::]:0").is_err() {
        eprintln!("skipped: no IPv6 on this machine");
        return;
    }
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let script = spawn_luau(
        r#"
local testkit = require("@lune/testkit")
local udp = net.udp.bind({ address = "::", port = 0 })
testkit.ready(udp.port)
local data, ip, port = udp:receive()
eq(ip, "127.0.0.1", "an IPv4 sender is reported by its IPv4 address")
udp:send(data, ip, port)
udp:close()
"#,
        &[],
    );
    let port: u16 = script.ready().parse().unwrap();
    peer.send_to(b"over v4", ("127.0.0.1", port)).unwrap();
    let mut buffer = [0u8; 64];
    let (n, _) = peer.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..n], b"over v4");
    assert_eq!(script.wait(), 0);
}
