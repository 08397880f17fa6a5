//! `net.serve` with `streamRequestBody = true`: `request.body` is a `BodyStream`
//! (read, readAll, lines, events, close) decoded as the handler reads, so a 64 MiB
//! upload is consumed with bounded memory, `maxBodySize` bounds what a handler can
//! read, and a handler that reads nothing still answers. Driven by raw TCP clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::spawn_server;

const HANDLER: &str = r#"function(request)
    local body = request.body
    if request.path == "/count" then
        -- read chunk by chunk, keeping nothing
        local total, chunks = 0, 0
        while true do
            local chunk = body:read()
            if chunk == nil then break end
            total += #chunk
            chunks += 1
        end
        return `{total} {chunks}`
    elseif request.path == "/all" then
        local ok, result = pcall(function() return body:readAll() end)
        if ok then return `read {#result}` end
        return `error: {result}`
    elseif request.path == "/chunks" then
        local ok, err = pcall(function()
            while body:read() do end
        end)
        return if ok then "read to the end" else `error: {err}`
    elseif request.path == "/lines" then
        local count, last = 0, nil
        for line in body:lines() do
            count += 1
            last = line
        end
        return `{count} {last}`
    elseif request.path == "/events" then
        local seen = {}
        for event in body:events() do
            table.insert(seen, event.event .. "=" .. event.data)
        end
        return table.concat(seen, ",")
    elseif request.path == "/echo" then
        -- a streaming response reading the request as it goes
        return { body = function() return body:read() end }
    end
    return `ignored {typeof(body)}`
end"#;

fn connect(port: u16) -> TcpStream {
    common::raw_client(port, Duration::from_secs(20))
}

fn config(fields: &str) -> String {
    format!("{{ handleRequest = {HANDLER}, streamRequestBody = true, {fields} }}")
}

/// Reads one response with a Content-Length body; returns (head, body).
fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&received[end + 4..end + 4 + length]);
                return (head, body.into_owned());
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "closed mid-response: {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "no response ({e}): {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

fn post(port: u16, path: &str, extra: &str, body: &[u8]) -> (String, String) {
    let mut stream = connect(port);
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    read_response(&mut stream)
}

/// `VmRSS` of this process, in bytes.
fn resident_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn a_64_mib_upload_is_read_in_chunks_with_bounded_memory() {
    // Measured in a process of its own: other tests allocate at the same time.
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "upload_memory_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run this test binary again");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the child test failed:\n{report}");
    assert!(report.contains("1 passed"), "{report}");
}

#[test]
#[ignore = "run in its own process by a_64_mib_upload_is_read_in_chunks_with_bounded_memory"]
fn upload_memory_child() {
    const SIZE: usize = 64 << 20;
    let (script, port) = spawn_server(&config("maxBodySize = 128 * 1024 * 1024"));
    // Warm up (the runtime, the first request's allocations).
    assert_eq!(post(port, "/count", "", b"warm").1, "4 1");
    let before = resident_memory();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(resident_memory(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut stream = connect(port);
    write!(
        stream,
        "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n\r\n"
    )
    .unwrap();
    let block = vec![b'x'; 64 << 10];
    let started = Instant::now();
    for _ in 0..SIZE / block.len() {
        stream.write_all(&block).unwrap();
    }
    let (_, body) = read_response(&mut stream);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let (total, chunks) = body.split_once(' ').expect("total and chunk count");
    assert_eq!(total, SIZE.to_string(), "every byte read");
    let chunks: usize = chunks.parse().unwrap();
    assert!(chunks >= 64, "read in many chunks: {chunks}");
    let grown = peak.load(std::sync::atomic::Ordering::Relaxed) - before;
    println!(
        "64 MiB upload read in {chunks} chunks in {:?}; resident memory grew by {} KiB",
        started.elapsed(),
        grown / 1024
    );
    assert!(
        grown < 24 << 20,
        "memory stays bounded while 64 MiB are read: grew by {} MiB",
        grown >> 20
    );
    assert_eq!(script.finish(), 0);
}

/// `maxBodySize` bounds what the handler reads: `readAll()` and `read()` past it
/// fail naming the limit; within it, reading works.
#[test]
fn max_body_size_bounds_what_the_handler_reads() {
    let (script, port) = spawn_server(&config("maxBodySize = 1000"));
    let big = vec![b'a'; 300_000];
    let (head, body) = post(port, "/all", "", &big);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        body.contains("BodyStream:readAll failed for POST /all: the request body is larger than maxBodySize (1000 bytes)"),
        "{body}"
    );
    let (_, body) = post(port, "/chunks", "", &big);
    assert!(
        body.contains("BodyStream:read failed for POST /chunks: the request body is larger than maxBodySize (1000 bytes)"),
        "{body}"
    );
    assert_eq!(post(port, "/all", "", &[b'a'; 1000]).1, "read 1000");
    assert_eq!(script.finish(), 0);
}

/// Content-Encoding is undone as the handler reads; `lines()` and `events()` work
/// over a request body; a streaming response may read the request as it goes.
#[test]
fn request_bodies_are_decoded_and_parsed_as_read() {
    let (script, port) = spawn_server(&config("maxBodySize = 1000000"));
    let gzip = |text: String| {
        use async_compression::tokio::bufread::GzipEncoder;
        use tokio::io::AsyncReadExt;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut out = Vec::new();
            GzipEncoder::new(text.as_bytes())
                .read_to_end(&mut out)
                .await
                .unwrap();
            out
        })
    };
    let compressed = gzip("line\n".repeat(100_000));
    assert_eq!(
        post(port, "/lines", "Content-Encoding: gzip\r\n", &compressed).1,
        "100000 line"
    );
    assert_eq!(
        post(port, "/events", "", b"event: a\ndata: 1\n\ndata: 2\n\n").1,
        "a=1,message=2"
    );
    // Past the limit once decoded, though small on the wire.
    let bigger = gzip("line\n".repeat(250_000));
    assert!(bigger.len() < 100_000);
    let (_, body) = post(port, "/all", "Content-Encoding: gzip\r\n", &bigger);
    assert!(
        body.contains("larger than maxBodySize (1000000 bytes)"),
        "{body}"
    );

    let mut stream = connect(port);
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("hello") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early");
        received.extend_from_slice(&chunk[..n]);
    }
    stream.write_all(b"6\r\n world\r\n0\r\n\r\n").unwrap();
    while !String::from_utf8_lossy(&received).ends_with("0\r\n\r\n") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "closed early: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&received).contains("6\r\n world\r\n"));
    assert_eq!(script.finish(), 0);
}

/// A handler that returns without reading the body still answers; the connection
/// then either carries the next request or is closed, never stuck.
#[test]
fn an_unread_body_is_discarded_or_the_connection_closed() {
    let (script, port) = spawn_server(&config("idleTimeout = 5"));
    let mut stream = connect(port);
    let size = 4 << 20;
    write!(
        stream,
        "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        let block = vec![b'x'; 64 << 10];
        for _ in 0..size / block.len() {
            if writer.write_all(&block).is_err() {
                return false;
            }
        }
        true
    });
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, "ignored BodyStream");
    let wrote_all = writing.join().unwrap();
    let next = write!(stream, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    if wrote_all && next.is_ok() {
        let mut rest = Vec::new();
        let started = Instant::now();
        let _ = stream.read_to_end(&mut rest);
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.is_empty() || rest.contains("ignored"),
            "answered or closed: {rest:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "not left hanging"
        );
    }
    assert_eq!(script.finish(), 0);
}

/// A body that stops arriving fails the handler's read after `bodyTimeout`; a bad
/// `streamRequestBody` value is an error naming the field.
#[test]
fn a_stalled_body_fails_the_read_after_body_timeout() {
    let (script, port) = spawn_server(&config("bodyTimeout = 0.3"));
    let mut stream = connect(port);
    stream
        .write_all(b"POST /all HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n123")
        .unwrap();
    let started = Instant::now();
    let (_, body) = read_response(&mut stream);
    assert!(
        body.contains("BodyStream:readAll failed for POST /all: no data received for 0.3 s (waiting for the request body)"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(script.finish(), 0);

    common::run_luau(
        r#"errors(function()
            net.serve(0, { handleRequest = function() return "" end, streamRequestBody = 5 })
        end, "streamRequestBody", "a bad value names the field")"#,
        &[],
    );
}
