//! `lunet run --workers N`: N VMs answering on one port, their lifecycle (errors,
//! `process.exit`, signals), and `reusePort` across processes. Real HTTP clients
//! over fresh connections; every run is bounded in time.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;

/// A server on port 0 that answers with its worker's id and count; `/slow` takes
/// half a second. Each worker prints `port <n>` once it listens.
const WORKER_SERVER: &str = r#"local net = require("@lune/net")
local process = require("@lune/process")
local task = require("@lune/task")
local handle = net.serve(0, {
    shutdownTimeout = 2,
    handleRequest = function(request)
        if request.path == "/slow" then
            task.wait(0.5)
            return "slow done"
        end
        return `{process.workerId}/{process.workerCount}`
    end,
})
print(`port {handle.port}`)
task.delay(3600, function() end)
"#;

/// Starts `--workers 2 server.luau` and returns it with the port both workers print
/// (asserting they print the same one).
fn start_two_workers(dir: &std::path::Path) -> (std::process::Child, u16) {
    script(dir, "server.luau", WORKER_SERVER);
    let mut child = start(dir, &["run", "--workers", "2", "server.luau"]);
    let receiver = stdout_lines(&mut child);
    let mut ports = Vec::new();
    for _ in 0..2 {
        let line = receiver
            .recv_timeout(LIMIT)
            .expect("each worker prints its port");
        ports.push(line.strip_prefix("port ").unwrap().parse::<u16>().unwrap());
    }
    assert_eq!(ports[0], ports[1], "both workers listen on one port");
    assert_ne!(ports[0], 0);
    (child, ports[0])
}

fn body(response: &str) -> &str {
    response.split("\r\n\r\n").nth(1).unwrap_or("")
}

#[test]
fn two_workers_answer_on_one_port_and_drain_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = start_two_workers(dir.path());

    // The kernel spreads fresh connections over both workers' sockets.
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        let response = http_get(port, "/");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        seen.insert(body(&response).to_string());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["1/2".to_string(), "2/2".to_string()]),
        "both workers answer over fresh connections"
    );

    // SIGTERM drains every worker: a request in flight is answered, then 143.
    let slow = std::thread::spawn(move || http_get(port, "/slow"));
    std::thread::sleep(Duration::from_millis(150));
    let signalled = Instant::now();
    send_signal(&child, "TERM");
    let code = wait_exit(&mut child, LIMIT);
    let response = slow.join().unwrap();
    assert_eq!(body(&response), "slow done", "{response}");
    assert_eq!(code, Some(143));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "the timers do not hold the process: {:?}",
        signalled.elapsed()
    );
}

#[test]
fn an_uncaught_error_in_one_worker_stops_all_of_them_with_code_1() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "main.luau",
        r#"local net = require("@lune/net")
local process = require("@lune/process")
local task = require("@lune/task")
net.serve(0, function() return "ok" end)
if process.workerId == 2 then
    task.delay(0.2, function() error("worker two gives up") end)
end
"#,
    );
    let started = Instant::now();
    let out = lunet(dir.path(), &["run", "--workers", "2", "main.luau"], LIMIT);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("worker two gives up"), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the other worker's server does not keep the process: {:?}",
        started.elapsed()
    );
}

#[test]
fn process_exit_in_any_worker_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "main.luau",
        r#"local net = require("@lune/net")
local process = require("@lune/process")
local task = require("@lune/task")
net.serve(0, function() return "ok" end)
if process.workerId == 2 then
    task.delay(0.2, function() process.exit(7) end)
end
"#,
    );
    let out = lunet(dir.path(), &["run", "--workers", "2", "main.luau"], LIMIT);
    assert_eq!(out.code, Some(7), "{}", out.stderr);
}

#[test]
fn workers_that_finish_end_the_process_and_lines_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "main.luau",
        r#"local process = require("@lune/process")
local filler = string.rep("x", 300)
for i = 1, 2000 do
    print(`worker {process.workerId} of {process.workerCount} line {i} {filler}`)
end
"#,
    );
    let out = lunet(dir.path(), &["run", "--workers", "3", "main.luau"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut counts = [0usize; 4];
    for line in out.stdout.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        assert!(
            words.len() == 7 && words[0] == "worker" && words[6].len() == 300,
            "a line from one worker only: {line:?}"
        );
        counts[words[1].parse::<usize>().unwrap()] += 1;
    }
    assert_eq!(counts[1..], [2000, 2000, 2000]);

    // Without --workers a script is worker 1 of 1.
    script(
        dir.path(),
        "id.luau",
        r#"local process = require("@lune/process") print(process.workerId, process.workerCount)"#,
    );
    let out = lunet(dir.path(), &["run", "id.luau"], LIMIT);
    assert_eq!(out.stdout.trim(), "1 1");
}

#[test]
fn bad_worker_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "main.luau", "print('ran')");
    for bad in ["0", "many", "1.5", "100000"] {
        let out = lunet(dir.path(), &["run", "--workers", bad, "main.luau"], LIMIT);
        assert_eq!(out.code, Some(2), "--workers {bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("number of workers from 1 to 1024"),
            "--workers {bad}: {}",
            out.stderr
        );
        assert!(!out.stdout.contains("ran"));
    }
}

#[test]
fn reuse_port_lets_two_processes_serve_one_port() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "server.luau",
        r#"local net = require("@lune/net")
local process = require("@lune/process")
local name, port = process.args[1], tonumber(process.args[2])
local handle = net.serve(port, { reusePort = true, handleRequest = function() return name end })
print(handle.port)
"#,
    );
    let (mut first, port) = spawn_server_with(dir.path(), &["run", "server.luau", "first", "0"]);
    let (mut second, second_port) =
        spawn_server_with(dir.path(), &["run", "server.luau", "second", &port]);
    assert_eq!(port, second_port);
    let port: u16 = port.parse().unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        seen.insert(body(&http_get(port, "/")).to_string());
        if seen.len() == 2 {
            break;
        }
    }
    let _ = first.kill();
    let _ = second.kill();
    let _ = first.wait();
    let _ = second.wait();
    assert_eq!(
        seen,
        BTreeSet::from(["first".to_string(), "second".to_string()])
    );

    // Without reusePort, the second bind is refused with a clear error.
    script(
        dir.path(),
        "plain.luau",
        r#"local net = require("@lune/net")
local handle = net.serve(0, function() return "x" end)
print(handle.port)
"#,
    );
    script(
        dir.path(),
        "again.luau",
        r#"local net = require("@lune/net")
local process = require("@lune/process")
net.serve(tonumber(process.args[1]), function() return "x" end)
"#,
    );
    let (mut plain, port) = spawn_server_with(dir.path(), &["run", "plain.luau"]);
    let out = lunet(dir.path(), &["run", "again.luau", &port], LIMIT);
    let _ = plain.kill();
    let _ = plain.wait();
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("net.serve cannot listen on") && out.stderr.contains("already in use"),
        "{}",
        out.stderr
    );
}

#[test]
fn tcp_listeners_share_their_port_across_workers() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "main.luau",
        r#"local net = require("@lune/net")
local process = require("@lune/process")
local listener = net.tcp.listen(0)
print(`port {listener.port}`)
local stream = listener:accept()
stream:write(`worker {process.workerId}`)
stream:close()
listener:close()
"#,
    );
    let mut child = start(dir.path(), &["run", "--workers", "2", "main.luau"]);
    let receiver = stdout_lines(&mut child);
    let first = receiver.recv_timeout(LIMIT).unwrap();
    let second = receiver.recv_timeout(LIMIT).unwrap();
    assert_eq!(first, second, "both workers listen on one port");
    let port: u16 = first.strip_prefix("port ").unwrap().parse().unwrap();
    // Each worker accepts one connection and ends; connections go on until both
    // have answered (the kernel picks which socket gets each).
    let mut seen = BTreeSet::new();
    let started = Instant::now();
    while seen.len() < 2 && started.elapsed() < LIMIT {
        use std::io::Read;
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            if !text.is_empty() {
                seen.insert(text);
            }
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["worker 1".to_string(), "worker 2".to_string()])
    );
    assert_eq!(wait_exit(&mut child, LIMIT), Some(0));
}
