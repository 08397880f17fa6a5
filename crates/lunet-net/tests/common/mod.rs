//! Shared test harness for `@lune/net`: running Luau scripts in a fresh Lunet runtime,
//! real peer servers on loopback ephemeral ports, and TLS certificates made by rcgen.
//!
//! Every script runs on its own thread with a time limit. A script fails by raising
//! an error (printed with its trace), which makes its exit code non-zero. Scripts that
//! need a Rust peer to drive them use the `@lune/testkit` library: `ready(value)` hands
//! a value (such as a port) to the test, `finished()` yields until the test is done.

#![allow(dead_code)]

pub mod peers;
pub mod tls;

use std::cell::RefCell;
use std::io::Read;
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mlua::{Lua, Value};

pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Assertion helpers prepended to every test script.
pub const PRELUDE: &str = r#"
local net = require("@lune/net")
local task = require("@lune/task")
local process = require("@lune/process")
local serde = require("@lune/serde")
local function show(v) if type(v) == "string" then return string.format("%q", v) end return tostring(v) end
local function eq(actual, expected, what)
    if actual ~= expected then error(what .. ": expected " .. show(expected) .. ", got " .. show(actual), 2) end
end
local function check(value, what)
    if not value then error(what .. ": expected a truthy value, got " .. show(value), 2) end
end
local function contains(haystack, needle, what)
    if type(haystack) ~= "string" or not string.find(haystack, needle, 1, true) then
        error(what .. ": expected " .. show(haystack) .. " to contain " .. show(needle), 2)
    end
end
local function errors(fn, needle, what)
    local ok, err = pcall(fn)
    if ok then error(what .. ": expected an error containing " .. show(needle), 2) end
    contains(tostring(err), needle, what)
    return tostring(err)
end
"#;

/// The channels between a running script and its test.
pub struct RunningScript {
    ready: mpsc::Receiver<String>,
    finish: Option<tokio::sync::oneshot::Sender<()>>,
    done: mpsc::Receiver<i32>,
}

impl RunningScript {
    /// The next value the script passed to `testkit.ready`.
    pub fn ready(&self) -> String {
        self.ready
            .recv_timeout(TIME_LIMIT)
            .expect("the script did not call testkit.ready in time (did it fail? see stderr)")
    }

    /// Lets `testkit.finished()` return, then waits for the script's exit code.
    pub fn finish(mut self) -> i32 {
        if let Some(finish) = self.finish.take() {
            let _ = finish.send(());
        }
        self.done
            .recv_timeout(TIME_LIMIT)
            .expect("the script did not end in time after finishing")
    }

    /// The script's exit code if it ends by itself within `limit`.
    pub fn wait_within(&self, limit: Duration) -> Option<i32> {
        self.done.recv_timeout(limit).ok()
    }

    /// Waits for the script to end by itself.
    pub fn wait(self) -> i32 {
        self.done
            .recv_timeout(TIME_LIMIT)
            .expect("the script did not end in time")
    }
}

fn testkit(
    lua: &Lua,
    ready: mpsc::Sender<String>,
    finish: tokio::sync::oneshot::Receiver<()>,
) -> mlua::Result<Value> {
    let kit = lua.create_table()?;
    kit.set(
        "ready",
        lua.create_function(move |_, value: Value| {
            let text = value.to_string()?;
            let _ = ready.send(text);
            Ok(())
        })?,
    )?;
    let finish = Rc::new(RefCell::new(Some(finish)));
    kit.set(
        "finished",
        lunet_runtime::create_async_function(lua, "testkit.finished", move |_, ()| {
            let receiver = finish.borrow_mut().take();
            async move {
                if let Some(receiver) = receiver {
                    let _ = receiver.await;
                }
                Ok(())
            }
        })?,
    )?;
    Ok(Value::Table(kit))
}

/// Starts `source` (with the prelude) in a fresh runtime; `args` become `process.args`.
pub fn spawn_luau(source: &str, args: &[String]) -> RunningScript {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.luau");
    std::fs::write(&path, format!("{PRELUDE}\n{source}")).expect("write script");
    let args = args.to_vec();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let finish = RefCell::new(Some(finish_rx));
        let code = lunet_runtime::run_script(&path, args, |runtime| {
            lunet_std::install(runtime)?;
            runtime.register_library("net", Box::new(lunet_net::create));
            let ready = ready_tx.clone();
            let finish = RefCell::new(finish.borrow_mut().take());
            runtime.register_library(
                "testkit",
                Box::new(move |lua| {
                    let receiver = finish.borrow_mut().take().expect("testkit loaded once");
                    testkit(lua, ready.clone(), receiver)
                }),
            );
            Ok(())
        });
        drop(dir);
        let _ = done_tx.send(code);
    });
    RunningScript {
        ready: ready_rx,
        finish: Some(finish_tx),
        done: done_rx,
    }
}

/// Starts a script serving `net.serve(0, <handler>)` (`handler` is the second
/// argument, a function or a config table; it may use `testkit`) until the test
/// finishes it, then stops the server; returns the script and the server's port.
pub fn spawn_server(handler: &str) -> (RunningScript, u16) {
    let script = spawn_luau(
        &format!(
            "local testkit = require(\"@lune/testkit\")\n\
             local handle = net.serve(0, {handler})\n\
             testkit.ready(handle.port)\n\
             testkit.finished()\n\
             handle.stop()\n"
        ),
        &[],
    );
    let port = script
        .ready()
        .parse()
        .expect("the script hands over its port");
    (script, port)
}

/// Runs `source` to completion and asserts that it succeeded.
pub fn run_luau(source: &str, args: &[String]) {
    let code = spawn_luau(source, args).wait();
    assert_eq!(
        code, 0,
        "the Luau test script failed; its error is printed above"
    );
}

/// A multi-threaded tokio runtime for Rust peers and clients.
pub fn peer_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A raw TCP client of a test server on loopback, whose reads give up after
/// `read_limit` (so a server that never answers fails the test instead of hanging it).
pub fn raw_client(port: u16, read_limit: Duration) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    stream.set_read_timeout(Some(read_limit)).unwrap();
    stream
}

/// Reads until the server closes the connection; returns what arrived and when the
/// end came (measured from `since`).
pub fn read_to_close(stream: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server did not close the connection ({e}): {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        since.elapsed(),
    )
}
