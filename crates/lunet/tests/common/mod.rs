//! What the `lunet` binary's tests share: starting it with a time bound, reading its
//! output, scripts in temporary folders, a raw HTTP GET, signals.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Starts `lunet` with `args` in `dir`, with piped output and no colour.
pub fn start(dir: &Path, args: &[&str]) -> std::process::Child {
    start_with_stdin(dir, args, Stdio::null())
}

pub fn start_with_stdin(dir: &Path, args: &[&str], stdin: Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_lunet"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lunet starts")
}

/// Waits for `child` to exit, killing it (and failing the test) after `limit`.
pub fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait on lunet") {
            return status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("lunet did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a pipe to the end on its own thread (so a chatty child never blocks).
pub fn drain(pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut pipe = pipe;
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs `lunet` with `args` in `dir`, killing it after `limit`.
pub fn lunet(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = start(dir, args);
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let code = wait_exit(&mut child, limit);
    Output {
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Runs `lunet` with `args` in `dir` and `input` piped to its stdin, written after
/// `pause` and then closed; kills it after `limit`.
pub fn lunet_with_input(
    dir: &Path,
    args: &[&str],
    input: &'static str,
    pause: Duration,
    limit: Duration,
) -> Output {
    let mut child = start_with_stdin(dir, args, Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(pause);
        let _ = std::io::Write::write_all(&mut stdin, input.as_bytes());
    });
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let code = wait_exit(&mut child, limit);
    writer.join().unwrap();
    Output {
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

pub fn script(dir: &Path, name: &str, source: &str) {
    std::fs::write(dir.join(name), source).unwrap();
}

pub const LIMIT: Duration = Duration::from_secs(30);

/// Starts `lunet run <script>` and returns the child with its first stdout line.
pub fn spawn_server(dir: &Path, name: &str) -> (std::process::Child, String) {
    spawn_server_with(dir, &["run", name])
}

/// Starts `lunet` with `args` and returns the child with its first stdout line.
pub fn spawn_server_with(dir: &Path, args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = start(dir, args);
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver
        .recv_timeout(LIMIT)
        .expect("the server prints its port");
    (child, line.trim().to_string())
}

/// Every line `child` prints to stdout, as it prints it (read on a thread of its own).
pub fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = sender.send(line.unwrap_or_default());
        }
    });
    receiver
}

pub fn http_get(port: u16, path: &str) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Sends `signal` (a name `kill` knows: TERM, INT) to `child`.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} succeeded");
}
