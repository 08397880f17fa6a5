//! Runs the Luau test scripts under `tests/luau/`, each as its own test, in a fresh
//! runtime on its own thread, bounded in time. A script fails by raising an error
//! (printed to stderr with its stack trace), which makes the runtime exit non-zero.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const TIME_LIMIT: Duration = Duration::from_secs(60);

fn run(script: &str, args: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/luau")
        .join(script);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let code = lunet_runtime::run_script(&path, args, lunet_std::install);
        let _ = sender.send(code);
    });
    match receiver.recv_timeout(TIME_LIMIT) {
        Ok(0) => {}
        Ok(code) => panic!("{script} failed with exit code {code}; its error is printed above"),
        Err(_) => panic!("{script} did not finish within {TIME_LIMIT:?}"),
    }
}

#[test]
fn task_ordering() {
    run("task_ordering.luau", &[]);
}

#[test]
fn task_durations_and_lune_ordering() {
    run("task_durations.luau", &[]);
}

#[test]
fn coroutines_and_pcall_around_yields() {
    run("coroutines.luau", &[]);
}

#[test]
fn require_paths_aliases_cycles_and_yielding_modules() {
    run("require.luau", &[]);
}

#[test]
fn serde_formats_codecs_and_hashes() {
    run("serde.luau", &[]);
}

#[test]
fn process_and_stdio() {
    run("process_stdio.luau", &["first", "second arg"]);
}

#[test]
fn datetime_parse_format_locales_and_comparisons() {
    run("datetime.luau", &[]);
}

#[test]
fn fs_functions_errors_and_nonblocking_io() {
    let dir = tempfile::tempdir().unwrap();
    run("fs.luau", &[dir.path().to_str().unwrap()]);
}

#[test]
fn process_exec_runs_programs_with_options() {
    let dir = tempfile::tempdir().unwrap();
    run("process_exec.luau", &[dir.path().to_str().unwrap()]);
}

#[test]
fn process_create_pipes_kill_and_status() {
    run("process_create.luau", &[]);
}

#[test]
fn regex_find_captures_split_replace_and_bad_patterns() {
    run("regex.luau", &[]);
}

#[test]
fn luau_compile_load_environments_native_code_and_yields() {
    run("luau.luau", &[]);
}

#[test]
fn luau_bytecode_from_another_process_needs_trust() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chunk.luauc");
    let path = path.to_str().unwrap();
    run("luau_bytecode.luau", &["write", path]);
    run("luau_bytecode.luau", &["read", path]);
}
