//! The `lunet` binary end to end: arguments, exit codes, error reports, `setup`.
//! Every run is bounded in time; scripts are written to a temporary folder.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = lunet(dir.path(), &["--version"], LIMIT);
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        out.stdout
    );
    let out = lunet(dir.path(), &["--help"], LIMIT);
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains("run"),
        "help lists the run command: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("setup"),
        "help lists the setup command: {}",
        out.stdout
    );
}

#[test]
fn runs_a_script_with_arguments_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "args.luau",
        r#"local process = require("@lune/process")
print(table.concat(process.args, "|"), _VERSION)"#,
    );
    let out = lunet(
        dir.path(),
        &["run", "args.luau", "a", "--flag", "c d"],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("a|--flag|c d "), "{}", out.stdout);
    // Lune's exact format, `Lune X.Y.Z+N` (N is Luau's version number without "0."),
    // because real libraries detect Lune by it.
    let version = out.stdout["a|--flag|c d ".len()..].trim_end();
    let (lune, luau) = version
        .strip_prefix(&format!("Lune {}+", lunet_runtime::LUNE_VERSION))
        .map(|luau| ("ok", luau))
        .unwrap_or(("", ""));
    assert_eq!(lune, "ok", "_VERSION: {version}");
    assert!(
        !luau.is_empty() && luau.chars().all(|c| c.is_ascii_digit()),
        "the Luau part is a bare number: {version}"
    );
    let out = lunet(dir.path(), &["args.luau", "x"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("x "),
        "lunet <file> runs it too: {}",
        out.stdout
    );
    let out = lunet(dir.path(), &["run", "args"], LIMIT);
    assert_eq!(
        out.code,
        Some(0),
        "the .luau extension may be left out: {}",
        out.stderr
    );
}

#[test]
fn uncaught_error_prints_message_and_trace_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "fails.luau",
        "local function inner()\n\terror(\"something broke\")\nend\ninner()\nprint(\"not reached\")\n",
    );
    let out = lunet(dir.path(), &["run", "fails.luau"], LIMIT);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("fails.luau:2: something broke"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("fails.luau:4"),
        "the trace names the calling line: {}",
        out.stderr
    );
    assert!(!out.stdout.contains("not reached"));
}

#[test]
fn error_in_a_spawned_task_is_reported_and_exits_1_after_other_work() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "task_fails.luau",
        r#"local task = require("@lune/task")
task.spawn(function() task.wait(0.01) error("task broke") end)
task.wait(0.05)
print("main finished")"#,
    );
    let out = lunet(dir.path(), &["run", "task_fails.luau"], LIMIT);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("task broke"), "{}", out.stderr);
    assert!(
        out.stdout.contains("main finished"),
        "other threads keep running"
    );
}

#[test]
fn syntax_error_and_missing_script() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "bad.luau", "local x = = 1\n");
    let out = lunet(dir.path(), &["run", "bad.luau"], LIMIT);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("bad.luau:1"), "{}", out.stderr);
    let out = lunet(dir.path(), &["run", "missing.luau"], LIMIT);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("cannot read script 'missing.luau'"),
        "{}",
        out.stderr
    );
}

#[test]
fn process_exit_ends_at_once_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "exit.luau",
        r#"local process = require("@lune/process")
local task = require("@lune/task")
task.delay(5, function() print("too late") end)
print("before")
process.exit(7)
print("after")"#,
    );
    let start = Instant::now();
    let out = lunet(dir.path(), &["run", "exit.luau"], LIMIT);
    assert_eq!(out.code, Some(7));
    assert_eq!(
        out.stdout, "before\n",
        "output before exit is flushed, nothing after"
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "exit does not wait for timers"
    );

    // Codes the system would truncate to their low 8 bits (256 reads as success)
    // are errors, not a wrong exit status.
    script(
        dir.path(),
        "bad_exit.luau",
        r#"local process = require("@lune/process")
for _, code in { 256, -1, 2 ^ 32, 1.5 } do
    local ok, err = pcall(process.exit, code)
    assert(not ok and string.find(err, "argument #1 to 'process.exit'", 1, true), tostring(err))
end
print("refused")"#,
    );
    let out = lunet(dir.path(), &["run", "bad_exit.luau"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "refused\n");
}

#[test]
fn exits_when_nothing_is_left_and_cancelled_timers_do_not_keep_it_alive() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "cancel.luau",
        r#"local task = require("@lune/task")
local t = task.delay(30, function() print("never") end)
task.cancel(t)
print("done")"#,
    );
    let start = Instant::now();
    let out = lunet(dir.path(), &["run", "cancel.luau"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "a cancelled 30 s timer must not hold the process"
    );
}

#[test]
fn print_and_warn_pretty_print() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "print.luau",
        r#"print("plain", 1, { key = "value" })
warn("careful", 2)
local stdio = require("@lune/stdio")
stdio.write("raw\0bytes")
stdio.ewrite("err")"#,
    );
    let out = lunet(dir.path(), &["run", "print.luau"], LIMIT);
    assert_eq!(out.code, Some(0));
    assert_eq!(
        out.stdout, "plain 1 {\n    key = \"value\",\n}\nraw\0bytes",
        "stdio.write writes its bytes as they are, with no newline"
    );
    assert_eq!(
        out.stderr, "[WARN] careful 2\nerr",
        "stdio.ewrite likewise, to stderr"
    );
}

#[test]
fn setup_writes_typedefs_and_luaurc_alias() {
    let dir = tempfile::tempdir().unwrap();
    let types = dir.path().join("types");
    let out = lunet(
        dir.path(),
        &["setup", "--dir", types.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for (lib, function) in [
        ("net", "function net.request"),
        ("task", "function task.spawn"),
        ("process", "function process.exit"),
        ("stdio", "function stdio.write"),
        ("serde", "function serde.encode"),
        ("fs", "function fs.readFile"),
        ("datetime", "function datetime.fromUnixTimestamp"),
        ("regex", "function regex.new"),
        ("luau", "function luau.compile"),
    ] {
        let text = std::fs::read_to_string(types.join(format!("{lib}.luau"))).unwrap();
        assert!(
            text.contains(function),
            "{lib}.luau defines its library ({function})"
        );
    }
    let rc = std::fs::read_to_string(dir.path().join(".luaurc")).unwrap();
    let rc: serde_json::Value = serde_json::from_str(&rc).unwrap();
    assert_eq!(rc["aliases"]["lune"], types.to_str().unwrap());
}

#[test]
fn handler_errors_are_reported_and_process_exit_in_a_handler_exits() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "server.luau",
        r#"local net = require("@lune/net")
local process = require("@lune/process")
local function failing()
    error("handler exploded")
end
local handle = net.serve(0, function(request)
    if request.path == "/fail" then failing() end
    if request.path == "/exit" then process.exit(3) end
    return "fine"
end)
print(handle.port)"#,
    );
    let (mut child, port) = spawn_server(dir.path(), "server.luau");
    let port: u16 = port.parse().unwrap();
    let failed = http_get(port, "/fail");
    assert!(failed.starts_with("HTTP/1.1 500"), "{failed}");
    assert!(
        http_get(port, "/").ends_with("fine"),
        "the server keeps serving after a handler error"
    );
    let _ = http_get(port, "/exit");
    assert_eq!(
        wait_exit(&mut child, LIMIT),
        Some(3),
        "process.exit in a handler exits with its code"
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("handler exploded"),
        "the handler error is printed: {stderr}"
    );
    assert!(
        stderr.contains("server.luau:4"),
        "with the line that raised it: {stderr}"
    );
    assert!(
        stderr.contains("server.luau:7"),
        "and the handler's calling line: {stderr}"
    );
    assert!(
        stderr.contains("GET /fail"),
        "and the request it failed on: {stderr}"
    );
}

#[test]
fn a_dropped_serve_handle_keeps_the_server_running() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "dropped.luau",
        r#"local net = require("@lune/net")
local process = require("@lune/process")
local port
do
    port = net.serve(0, function() return "still serving" end).port
end
collectgarbage("collect")
collectgarbage("collect")
print(port)
local response = net.request("http://127.0.0.1:" .. port)
io = nil
print(response.body)
process.exit(0)"#,
    );
    let out = lunet(dir.path(), &["run", "dropped.luau"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.ends_with("still serving\n"), "{}", out.stdout);
}

#[test]
fn self_contained_examples_run() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let out = lunet(&examples, &["run", "json_api_client.luau"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("title = \"Cool Pencil\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("missing item: 404 Not Found"),
        "{}",
        out.stdout
    );
    let out = lunet(&examples, &["run", "tcp_client.luau"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("HTTP/1.1 200 OK"), "{}", out.stdout);
    assert!(out.stdout.contains("hello from /raw-tcp"), "{}", out.stdout);
}

/// A server script with a slow route, a route that never answers, and a timer that
/// would keep the process alive for an hour.
const SIGNAL_SERVER: &str = r#"local net = require("@lune/net")
local task = require("@lune/task")
local handle = net.serve(0, {
    shutdownTimeout = 1,
    handleRequest = function(request)
        if request.path == "/slow" then
            task.wait(0.5)
            return "slow done"
        end
        task.wait(3600)
        return "never"
    end,
})
print(handle.port)
task.delay(3600, function() end)
"#;

#[test]
fn sigterm_drains_servers_and_exits_143() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "server.luau", SIGNAL_SERVER);
    let (mut child, port) = spawn_server(dir.path(), "server.luau");
    let port: u16 = port.parse().expect("the server prints its port");
    let slow = std::thread::spawn(move || http_get(port, "/slow"));
    std::thread::sleep(Duration::from_millis(150));
    let signalled = Instant::now();
    send_signal(&child, "TERM");
    let code = wait_exit(&mut child, LIMIT);
    let response = slow.join().unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("slow done"),
        "the request in flight is answered before the process exits: {response:?}"
    );
    assert_eq!(code, Some(143), "SIGTERM exits with 128 + 15 once drained");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "the pending timer does not hold the process: {:?}",
        signalled.elapsed()
    );
}

/// Starts `server.luau` (SIGNAL_SERVER) with a request to `/forever` in flight.
fn serve_a_stuck_request(dir: &Path) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let (child, port) = spawn_server(dir, "server.luau");
    let port: u16 = port.parse().unwrap();
    let stuck = std::thread::spawn(move || http_get(port, "/forever"));
    std::thread::sleep(Duration::from_millis(150));
    (child, stuck)
}

#[test]
fn sigint_waits_for_the_shutdown_timeout_and_a_second_sigint_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "server.luau", SIGNAL_SERVER);

    // A handler that never returns is given up on at shutdownTimeout (1 s).
    let (mut child, stuck) = serve_a_stuck_request(dir.path());
    let signalled = Instant::now();
    send_signal(&child, "INT");
    let code = wait_exit(&mut child, LIMIT);
    assert_eq!(code, Some(130), "SIGINT exits with 128 + 2");
    let took = signalled.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&took),
        "the stuck handler is waited for up to shutdownTimeout: {took:?}"
    );
    let _ = stuck.join();

    // A second signal does not wait.
    let (mut child, stuck) = serve_a_stuck_request(dir.path());
    let signalled = Instant::now();
    send_signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(100));
    send_signal(&child, "INT");
    let code = wait_exit(&mut child, LIMIT);
    assert_eq!(code, Some(130));
    assert!(
        signalled.elapsed() < Duration::from_millis(800),
        "the second SIGINT exits at once: {:?}",
        signalled.elapsed()
    );
    let _ = stuck.join();
}

#[test]
fn a_signal_without_a_server_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "sleeper.luau",
        "local task = require(\"@lune/task\")\nprint(\"ready\")\ntask.wait(3600)\n",
    );
    let (mut child, line) = spawn_server(dir.path(), "sleeper.luau");
    assert_eq!(line, "ready");
    send_signal(&child, "TERM");
    let code = wait_exit(&mut child, LIMIT);
    // No handler was installed: the default action ends the process by the signal.
    assert_eq!(code, None, "killed by SIGTERM's default action");
}

/// Running out of file descriptors (EMFILE) pauses accepting, never ends it: once
/// the clients that used them up leave, the server answers again.
#[test]
fn running_out_of_file_descriptors_does_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "server.luau",
        r#"local net = require("@lune/net")
local handle = net.serve(0, function() return "still here" end)
print(handle.port)
"#,
    );
    let command = format!(
        "ulimit -n 64 && exec {} run server.luau",
        env!("CARGO_BIN_EXE_lunet")
    );
    let mut child = Command::new("sh")
        .args(["-c", &command])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let port: u16 = line.trim().parse().expect("the server prints its port");
    // More connections than the server has descriptors for.
    let hogs: Vec<_> = (0..100)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(hogs.len() > 64, "connections were made: {}", hogs.len());
    std::thread::sleep(Duration::from_millis(300));
    drop(hogs);
    let started = Instant::now();
    let mut answer = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        answer = http_get(port, "/");
        if answer.ends_with("still here") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("still here"),
        "the server answers once descriptors are free again: {answer:?}"
    );
}

/// Natively compiled scripts and modules (`lunet run`'s default, `--native`, or
/// `--!native` under `--interpreted` / `LUNE_LUAU_JIT=0`) give the same results as
/// interpreted ones (including a net handler defined in a native module); `--native`
/// and `--interpreted` together are refused.
#[test]
fn native_code_generation_runs_scripts_modules_and_handlers() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "mathlib.luau",
        "--!strict\n--!native\nlocal M = {}\nfunction M.sum(n: number): number\n\tlocal s = 0\n\tfor i = 1, n do s += i * 0.5 end\n\treturn s\nend\nfunction M.handler(request)\n\treturn tostring(M.sum(#request.path * 10))\nend\nreturn M\n",
    );
    script(
        dir.path(),
        "main.luau",
        r#"--!native
local net = require("@lune/net")
local m = require("./mathlib")
local v = vector.create(1, 2, 3) * 2
local handle = net.serve(0, m.handler)
local response = net.request(`http://127.0.0.1:{handle.port}/abcd`)
handle.stop()
print(m.sum(1000), v.x + v.y + v.z, response.body)
"#,
    );
    for args in [
        &["run", "main.luau"][..],
        &["run", "--native", "main.luau"],
        &["--native", "main.luau"],
        &["run", "--interpreted", "main.luau"],
        &["--interpreted", "main.luau"],
    ] {
        let out = lunet(dir.path(), args, LIMIT);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout.trim(), "250250 12 637.5", "{args:?}");
    }
    let both = lunet(
        dir.path(),
        &["run", "--native", "--interpreted", "main.luau"],
        LIMIT,
    );
    assert_eq!(both.code, Some(2), "clap refuses the pair: {}", both.stderr);
    assert!(
        both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );
}

#[test]
fn stdio_reads_lines_prompts_and_the_rest_from_piped_stdin() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "read.luau",
        r#"local stdio = require("@lune/stdio")
print("line1", stdio.readLine())
print("line2", stdio.readLine())
print("text", stdio.prompt("text", "Name"))
print("default", stdio.prompt("text", "City", "Oslo"))
print("confirm", stdio.prompt("confirm", "Sure?"))
print("select", stdio.prompt("select", "Pick", { "red", "green", "blue" }))
print("multi", table.concat(stdio.prompt("multiselect", "Some", { "a", "b", "c" }), ","))
print("rest", stdio.readToEnd())
print("eof line", stdio.readLine() == "")
print("eof text", stdio.prompt())
print("eof confirm", stdio.prompt("confirm", "Again?", true))
print("eof select", stdio.prompt("select", "Pick", { "x" }))
print("eof rest", stdio.readToEnd() == "")"#,
    );
    let input = "first\r\nsecond\nAda\n\nnope\ny\n7\ngreen\n3,1\nthe\nrest";
    let out = lunet_with_input(
        dir.path(),
        &["run", "read.luau"],
        input,
        Duration::ZERO,
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let expected = "line1 first\nline2 second\ntext Ada\ndefault Oslo\nconfirm true\n\
        select 2\nmulti 1,3\nrest the\nrest\neof line true\neof text \n\
        eof confirm true\neof select nil\neof rest true\n";
    assert_eq!(out.stdout, expected);
    assert!(
        out.stderr.contains("Sure? [y/n]: "),
        "prompts go to stderr: {}",
        out.stderr
    );
    assert!(out.stderr.contains("  3) blue"), "{}", out.stderr);
}

#[test]
fn reading_stdin_does_not_block_other_threads() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "wait.luau",
        r#"local stdio = require("@lune/stdio")
local task = require("@lune/task")
task.spawn(function()
    print("got", stdio.readLine())
end)
task.spawn(function()
    print("answer", stdio.prompt("confirm", "Go?"))
end)
for i = 1, 3 do
    task.wait(0.05)
    print("tick", i)
end"#,
    );
    let out = lunet_with_input(
        dir.path(),
        &["run", "wait.luau"],
        "hello\nno\n",
        Duration::from_millis(600),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout, "tick 1\ntick 2\ntick 3\ngot hello\nanswer false\n",
        "the other thread ran while input was awaited, and readers took lines in call order"
    );
}

/// A thread cancelled while reading stdin does not hold the exit: the blocking read
/// it left behind is not waited for.
#[test]
fn a_cancelled_stdin_read_does_not_hold_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "read.luau",
        "local stdio = require(\"@lune/stdio\")\nlocal task = require(\"@lune/task\")\nlocal reader = task.spawn(stdio.readLine)\ntask.wait(0.1)\ntask.cancel(reader)\nprint(\"done\")\n",
    );
    // The input comes only after the limit: a process waiting for it fails.
    let out = lunet_with_input(
        dir.path(),
        &["run", "read.luau"],
        "late\n",
        Duration::from_secs(6),
        Duration::from_secs(5),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "done\n");
}

/// The children of process `parent` and their states (`R`, `S`, `Z` for a zombie,
/// ...), from /proc.
fn children_of(parent: u32) -> Vec<(u32, char)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent {
            children.push((pid, state));
        }
    }
    children
}

#[test]
fn children_are_reaped_after_status_and_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "reap.luau",
        r#"local process = require("@lune/process")
local stdio = require("@lune/stdio")
local task = require("@lune/task")
local waited = process.create("true")
assert(waited:status().ok)
process.create("true") -- dropped at once, exits at once
process.create("sleep", { "0.3" }) -- dropped, exits later
assert(process.exec("true").ok)
collectgarbage("collect")
task.wait(1)
print("ready")
stdio.readLine()
print("bye")
"#,
    );
    let mut child = start_with_stdin(dir.path(), &["run", "reap.luau"], Stdio::piped());
    let stderr = drain(child.stderr.take().unwrap());
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // Every child has exited by now; reaping may trail its exit by a moment.
    let started = Instant::now();
    let mut zombies: Vec<(u32, char)>;
    loop {
        zombies = children_of(child.id());
        zombies.retain(|(_, state)| *state == 'Z');
        if zombies.is_empty() || started.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"\n").unwrap();
    let code = wait_exit(&mut child, LIMIT);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(code, Some(0), "{}", stderr.join().unwrap());
    assert_eq!(rest, "bye\n");
    assert!(zombies.is_empty(), "unreaped children: {zombies:?}");
}

#[test]
fn a_script_that_ends_leaves_its_children_running() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "leave.luau",
        r#"local process = require("@lune/process")
process.create("sh", { "-c", "sleep 2; echo alive > marker" })
print("done")
"#,
    );
    let out = lunet(dir.path(), &["run", "leave.luau"], LIMIT);
    let marker = dir.path().join("marker");
    assert!(
        !marker.exists(),
        "lunet exited without waiting for the child"
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "done\n");
    let started = Instant::now();
    while !marker.exists() && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(&marker).ok().as_deref(),
        Some("alive\n"),
        "the child kept running after lunet exited"
    );
}

#[test]
fn exec_stdio_kinds_reach_lunets_own_streams() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "stdio.luau",
        r#"local process = require("@lune/process")
local both = function(name)
    return "echo " .. name .. "-out; echo " .. name .. "-err >&2"
end
local r = process.exec("sh", { "-c", both("inherit") }, { stdio = "inherit" })
print("captured [" .. r.stdout .. "|" .. r.stderr .. "]")
r = process.exec("sh", { "-c", both("forward") }, { stdio = "forward" })
print("forwarded [" .. r.stdout .. "|" .. r.stderr .. "]")
r = process.exec("sh", { "-c", both("default") })
print("default [" .. r.stdout .. "|" .. r.stderr .. "]")
process.exec("sh", { "-c", both("none") }, { stdio = "none" })
process.exec("sh", { "-c", both("mixed") }, { stdio = { stdout = "forward", stderr = "none" } })
"#,
    );
    let out = lunet(dir.path(), &["run", "stdio.luau"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "inherit-out\ncaptured [inherit-out\n|inherit-err\n]\n\
         forward-out\nforwarded [|]\n\
         default [default-out\n|default-err\n]\n\
         mixed-out\n"
    );
    assert_eq!(out.stderr, "inherit-err\nforward-err\n");
}

#[test]
fn exec_captures_a_large_output_and_sees_the_environment_overlay() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "big.luau",
        r#"local process = require("@lune/process")
local r = process.exec("head", { "-c", tostring(64 * 1024 * 1024), "/dev/zero" })
print(r.ok, #r.stdout, r.stdout == string.rep("\0", 64 * 1024 * 1024))
local show = { "-c", "echo ${LUNET_CLI_REAL-unset}" }
print(process.exec("sh", show).stdout)
process.env.LUNET_CLI_REAL = nil
print(process.exec("sh", show).stdout)
"#,
    );
    let child = Command::new(env!("CARGO_BIN_EXE_lunet"))
        .args(["run", "big.luau"])
        .current_dir(dir.path())
        .env("LUNET_CLI_REAL", "present")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lunet starts");
    let mut child = child;
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let code = wait_exit(&mut child, LIMIT);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout, "true 67108864 true\npresent\n\nunset\n\n",
        "64 MiB captured whole; a variable Lunet started with, then removed through process.env"
    );
}

#[test]
fn the_globals_are_a_safe_environment_so_builtins_are_called_directly() {
    // With Luau's safeenv on the globals, a call the compiler saw as `math.floor`
    // goes straight to the builtin (FASTCALL, the reason for the flag: builtins in
    // loops run several times faster), so replacing the library's field later does
    // not reach code compiled to call the builtin. A script that assigns the global
    // itself is compiled without that assumption.
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "main.luau",
        r#"math.floor = function() return 0 end
print(math.floor(1.5))
"#,
    );
    script(
        dir.path(),
        "assigns.luau",
        r#"math = { floor = function() return 0 end }
print(math.floor(1.5))
"#,
    );
    let out = lunet(dir.path(), &["run", "main.luau"], LIMIT);
    assert_eq!(out.stdout.trim(), "1", "{}", out.stderr);
    let out = lunet(dir.path(), &["run", "assigns.luau"], LIMIT);
    assert_eq!(out.stdout.trim(), "0", "{}", out.stderr);
}

#[test]
fn a_bytecode_file_is_refused_not_loaded() {
    // Luau's loader trusts bytecode: a truncated file could crash the process. Run
    // or required, a bytecode file is an error naming it.
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "compile.luau",
        r#"local luau = require("@lune/luau")
local fs = require("@lune/fs")
local bytecode = luau.compile("print('from bytecode')")
fs.writeFile("whole.luau", bytecode)
fs.writeFile("cut.luau", string.sub(bytecode, 1, 12))
"#,
    );
    script(dir.path(), "requires.luau", r#"require("./cut")"#);
    let out = lunet(dir.path(), &["run", "compile.luau"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for (file, named) in [
        ("whole.luau", "whole.luau"),
        ("cut.luau", "cut.luau"),
        ("requires.luau", "cut.luau"),
    ] {
        let out = lunet(dir.path(), &["run", file], LIMIT);
        assert_eq!(out.code, Some(1), "{file}: {}", out.stderr);
        assert!(
            out.stderr.contains("it is Luau bytecode") && out.stderr.contains(named),
            "{file}: {}",
            out.stderr
        );
        assert!(!out.stdout.contains("from bytecode"));
    }
}
