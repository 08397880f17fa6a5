//! The `lunet` binary end to end: arguments, exit codes, error reports, `setup`.
//! Every run is bounded in time; scripts are written to a temporary folder.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `lunet` with `args` in `dir`, killing it after `limit`.
fn lunet(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lunet"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lunet starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait on lunet") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("lunet {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    Output {
        code: status.code(),
        stdout,
        stderr,
    }
}

fn script(dir: &Path, name: &str, source: &str) {
    std::fs::write(dir.join(name), source).unwrap();
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = lunet(dir.path(), &["--version"], LIMIT);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "{}", out.stdout);
    let out = lunet(dir.path(), &["--help"], LIMIT);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("run"), "help lists the run command: {}", out.stdout);
    assert!(out.stdout.contains("setup"), "help lists the setup command: {}", out.stdout);
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
    let out = lunet(dir.path(), &["run", "args.luau", "a", "--flag", "c d"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let expected_version = format!("Lunet {}+", env!("CARGO_PKG_VERSION"));
    assert!(out.stdout.starts_with("a|--flag|c d "), "{}", out.stdout);
    assert!(out.stdout.contains(&expected_version), "_VERSION: {}", out.stdout);
    let out = lunet(dir.path(), &["args.luau", "x"], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("x "), "lunet <file> runs it too: {}", out.stdout);
    let out = lunet(dir.path(), &["run", "args"], LIMIT);
    assert_eq!(out.code, Some(0), "the .luau extension may be left out: {}", out.stderr);
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
    assert!(out.stderr.contains("fails.luau:2: something broke"), "{}", out.stderr);
    assert!(out.stderr.contains("fails.luau:4"), "the trace names the calling line: {}", out.stderr);
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
    assert!(out.stdout.contains("main finished"), "other threads keep running");
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
    assert!(out.stderr.contains("cannot read script 'missing.luau'"), "{}", out.stderr);
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
    assert_eq!(out.stdout, "before\n", "output before exit is flushed, nothing after");
    assert!(start.elapsed() < Duration::from_secs(4), "exit does not wait for timers");
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
    assert!(start.elapsed() < Duration::from_secs(10), "a cancelled 30 s timer must not hold the process");
}

#[test]
fn print_and_warn_pretty_print() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "print.luau",
        r#"print("plain", 1, { key = "value" })
warn("careful", 2)"#,
    );
    let out = lunet(dir.path(), &["run", "print.luau"], LIMIT);
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout, "plain 1 {\n    key = \"value\",\n}\n");
    assert_eq!(out.stderr, "[WARN] careful 2\n");
}

#[test]
fn setup_writes_typedefs_and_luaurc_alias() {
    let dir = tempfile::tempdir().unwrap();
    let types = dir.path().join("types");
    let out = lunet(dir.path(), &["setup", "--dir", types.to_str().unwrap()], LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for lib in ["net", "task", "process", "stdio", "serde"] {
        let text = std::fs::read_to_string(types.join(format!("{lib}.luau"))).unwrap();
        assert!(text.contains("export type") || text.contains("return"), "{lib} definitions are real");
    }
    let rc = std::fs::read_to_string(dir.path().join(".luaurc")).unwrap();
    let rc: serde_json::Value = serde_json::from_str(&rc).unwrap();
    assert_eq!(rc["aliases"]["lune"], types.to_str().unwrap());
}
