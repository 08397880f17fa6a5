//! The server examples under `examples/`, started as a user would start them (the
//! script file as it is, with a port argument), do what their comments promise: the
//! HTTP echo server echoes, the WebSocket chat serves its page and relays messages
//! between clients, the SSE server ticks once a second, read by its client
//! example, the TCP chat relays lines between clients, and the UDP echo server echoes
//! datagrams. (The self-contained client examples run in the `lunet` crate's CLI tests.)

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use common::peer_runtime;

/// Starts `examples/<relative>` with a free port as its argument in a fresh runtime
/// on its own thread (the example serves until the test process ends), waits until it
/// listens, and returns the port. A port taken by someone else between being found
/// free and being bound makes the example fail at once; then another port is tried.
fn start_example(relative: &str) -> u16 {
    start_example_probed(relative, |port| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

/// [`start_example`] for an example whose readiness `listening(port)` tells.
fn start_example_probed(relative: &str, mut listening: impl FnMut(u16) -> bool) -> u16 {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(relative);
    for _ in 0..5 {
        let port = free_port();
        let script = path.clone();
        let example = std::thread::spawn(move || {
            lunet_runtime::run_script(&script, vec![port.to_string()], |runtime| {
                lunet_std::install(runtime)?;
                runtime.register_library("net", Box::new(lunet_net::create));
                Ok(())
            })
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !example.is_finished() && !listening(port) {
            assert!(
                Instant::now() < deadline,
                "{relative} did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // An example that could not bind ends at once, with its error on stderr.
        std::thread::sleep(Duration::from_millis(50));
        if !example.is_finished() {
            return port;
        }
    }
    panic!("{relative} could not bind a free port in five attempts (see stderr)");
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port()
}

fn client() -> reqwest::Client {
    lunet_net::tls::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message on `ws`, which must be text and arrive within 10 s.
async fn next_text(ws: &mut Ws) -> String {
    let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a chat message within 10 s")
        .expect("the connection is open")
        .expect("a valid message");
    message.into_text().unwrap().to_string()
}

#[test]
fn the_echo_server_example_echoes_requests() {
    let port = start_example("echo_server.luau");
    let rt = peer_runtime();
    rt.block_on(async {
        let client = client();
        let response = client
            .post(format!("http://127.0.0.1:{port}/some/path?x=1&x=2&y=z"))
            .header("x-test", "yes")
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let echo: serde_json::Value = response.json().await.unwrap();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], "/some/path");
        assert_eq!(echo["query"]["x"], serde_json::json!(["1", "2"]));
        assert_eq!(echo["query"]["y"], "z");
        assert_eq!(echo["headers"]["x-test"], "yes");
        assert_eq!(echo["body"], "hello");
        assert!(
            echo["from"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{echo}"
        );
        let health = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.text().await.unwrap(), "ok");
    });
}

#[test]
fn the_chat_example_serves_its_page_and_relays_messages() {
    let port = start_example("chat/server.luau");
    let rt = peer_runtime();
    rt.block_on(async {
        let page = client()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
        );
        let html = page.text().await.unwrap();
        assert!(html.contains("new WebSocket"), "the page opens a WebSocket");

        let url = format!("ws://127.0.0.1:{port}/");
        let connect = || async {
            tokio::time::timeout(
                Duration::from_secs(10),
                tokio_tungstenite::connect_async(url.as_str()),
            )
            .await
            .expect("the WebSocket handshake within 10 s")
            .expect("the chat accepts a WebSocket")
            .0
        };
        let mut alice = connect().await;
        assert_eq!(next_text(&mut alice).await, "* someone joined (1 online)");
        let mut bob = connect().await;
        assert_eq!(next_text(&mut alice).await, "* someone joined (2 online)");
        assert_eq!(next_text(&mut bob).await, "* someone joined (2 online)");
        alice.send(Message::text("hi, bob")).await.unwrap();
        assert_eq!(next_text(&mut bob).await, "hi, bob");
        assert_eq!(next_text(&mut alice).await, "hi, bob");
        bob.close(None).await.unwrap();
        assert_eq!(next_text(&mut alice).await, "* someone left (1 online)");
    });
}

#[test]
fn the_sse_example_serves_its_page_and_ticks_and_its_client_reads_them() {
    let port = start_example("sse/server.luau");
    let rt = peer_runtime();
    rt.block_on(async {
        let page = client()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("new EventSource(\"/events\")")
        );

        let mut events = client()
            .get(format!("http://127.0.0.1:{port}/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(events.headers()["content-type"], "text/event-stream");
        let started = Instant::now();
        let mut seen = String::new();
        while !seen.contains("id: 2\n") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
                .await
                .expect("a tick within 5 s")
                .unwrap()
                .expect("the stream goes on");
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        assert!(
            seen.starts_with("event: tick\nid: 1\ndata: tick 1 at "),
            "{seen}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "one tick a second: {:?}",
            started.elapsed()
        );
    });

    // The client example reads two events from it and ends by itself.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/sse/client.luau");
    let args = vec![format!("http://127.0.0.1:{port}/events"), "2".to_string()];
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let code = lunet_runtime::run_script(&path, args, |runtime| {
            lunet_std::install(runtime)?;
            runtime.register_library("net", Box::new(lunet_net::create));
            Ok(())
        });
        let _ = done_tx.send(code);
    });
    let code = done
        .recv_timeout(Duration::from_secs(20))
        .expect("the SSE client ends after two events");
    assert_eq!(code, 0, "the SSE client succeeded (its error is above)");
}

#[test]
fn the_tcp_chat_example_relays_lines_between_clients() {
    use std::io::{BufRead, BufReader, Write};
    let port = start_example("tcp_chat.luau");
    let connect = || {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        (stream, reader)
    };
    let line = |reader: &mut BufReader<std::net::TcpStream>| {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a line within 10 s");
        line
    };
    // The probe that saw the example listening was a client too: it came and went.
    let (mut alice, mut alice_lines) = connect();
    let alice_name = line(&mut alice_lines);
    assert!(alice_name.starts_with("* you are guest"), "{alice_name}");
    let (mut bob, mut bob_lines) = connect();
    let bob_name = line(&mut bob_lines);
    let bob_name = bob_name.trim().trim_start_matches("* you are ").to_string();
    assert_eq!(line(&mut alice_lines), format!("* {bob_name} joined\n"));
    alice.write_all(b"hi bob\r\nsecond ").unwrap();
    alice.write_all(b"line\n").unwrap();
    let alice_name = alice_name.trim().trim_start_matches("* you are ");
    assert_eq!(line(&mut bob_lines), format!("{alice_name}: hi bob\n"));
    assert_eq!(line(&mut bob_lines), format!("{alice_name}: second line\n"));
    bob.write_all(b"bye\n").unwrap();
    assert_eq!(line(&mut alice_lines), format!("{bob_name}: bye\n"));
    bob.shutdown(std::net::Shutdown::Both).unwrap();
    assert_eq!(line(&mut alice_lines), format!("* {bob_name} left\n"));
    alice.shutdown(std::net::Shutdown::Both).unwrap();
}

#[test]
fn the_udp_echo_example_echoes_datagrams() {
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buffer = vec![0; 70_000];
    let port = start_example_probed("udp_echo.luau", |port| {
        probe.send_to(b"ping", ("127.0.0.1", port)).is_ok() && probe.recv_from(&mut buffer).is_ok()
    });
    // Drain echoes of earlier probes.
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while probe.recv_from(&mut buffer).is_ok() {}
    probe
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for size in [5, 65_507] {
        let datagram: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        probe.send_to(&datagram, ("127.0.0.1", port)).unwrap();
        let (n, from) = probe.recv_from(&mut buffer).unwrap();
        assert_eq!(from.port(), port);
        assert_eq!(&buffer[..n], &datagram[..], "a {size}-byte datagram echoed");
    }
}
