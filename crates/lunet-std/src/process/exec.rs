//! `process.exec`: runs a program to completion and returns
//! `{ ok, code, stdout, stderr }`.
//!
//! The calling Luau thread waits while the child runs; other threads keep running.
//! The child's stdin is the `stdin` option's bytes (written while its output is
//! read, so a child that answers before it has read everything cannot deadlock),
//! or empty. Its stdout and stderr are each captured (`default`), captured and
//! written through to Lunet's own stream (`inherit`), given Lunet's own stream
//! (`forward`, not captured) or discarded (`none`), as the options say (`options.rs`).
//!
//! Captured output is Lunet's memory, so each stream is bounded by Luau's string
//! limit (1 GiB): a child writing more is killed, reaped, and the call fails naming
//! the limit. A child that stops reading its stdin is not an error (what it read is
//! what it got, as with a shell pipe). Cancelling the waiting thread (`task.cancel`)
//! kills the child.

use std::io::{self, Write};
use std::process::Stdio;

use bytes::Bytes;
use lunet_runtime::codec::compression::MAX_STRING_LEN;
use mlua::{Error, Function, IntoLua, Lua, Result, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;

use super::options::{Invocation, StdioKind};
use super::status::exit_code;

/// The most read from a pipe at once.
const CHUNK: usize = 64 * 1024;

/// Which of Lunet's output streams a child's stream corresponds to.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Writes `bytes` through to Lunet's own stream, as `print` and `stdio.write`
    /// do. A closed stream is not the child's failure: its output is still captured.
    fn write_through(self, bytes: &[u8]) {
        let _ = match self {
            Stream::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Stream::Stderr => {
                let mut err = io::stderr().lock();
                err.write_all(bytes).and_then(|()| err.flush())
            }
        };
    }
}

/// "1 GiB" for Luau's limit, bytes for anything smaller (tests use small limits).
fn size_text(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads one of the child's output streams to its end, keeping at most `limit`
/// bytes (and writing it through for `inherit`).
async fn collect(
    pipe: Option<impl AsyncRead + Unpin>,
    kind: StdioKind,
    stream: Stream,
    program: &str,
    limit: usize,
) -> Result<Vec<u8>> {
    let Some(mut pipe) = pipe else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    loop {
        let start = out.len();
        // One byte past the limit tells a child that wrote too much from one that
        // wrote exactly the limit.
        let room = (limit + 1 - start).min(CHUNK);
        out.reserve(room);
        let n = (&mut pipe)
            .take(room as u64)
            .read_buf(&mut out)
            .await
            .map_err(|e| {
                Error::runtime(format!(
                    "process.exec: cannot read the {} of {program:?}: {e}",
                    stream.name()
                ))
            })?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() > limit {
            return Err(Error::runtime(format!(
                "process.exec: {program:?} wrote more than {} to {}, the most a Luau string can hold",
                size_text(limit),
                stream.name()
            )));
        }
        if kind == StdioKind::Inherit {
            stream.write_through(&out[start..]);
        }
    }
}

/// Writes `input` to the child's stdin and closes it.
async fn feed(stdin: Option<ChildStdin>, input: Option<Bytes>, program: &str) -> Result<()> {
    let (Some(mut stdin), Some(input)) = (stdin, input) else {
        return Ok(());
    };
    match stdin.write_all(&input).await {
        // The child ended or closed its stdin without reading everything.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::runtime(format!(
            "process.exec: cannot write to the stdin of {program:?}: {e}"
        ))),
        Ok(()) => Ok(()),
    }
}

/// What `process.exec` returns.
struct ExecResult {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl IntoLua for ExecResult {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        let table = lua.create_table_with_capacity(0, 4)?;
        table.raw_set("ok", self.code == 0)?;
        table.raw_set("code", self.code)?;
        table.raw_set("stdout", lua.create_string(&self.stdout)?)?;
        table.raw_set("stderr", lua.create_string(&self.stderr)?)?;
        Ok(Value::Table(crate::freeze(table)))
    }
}

/// Runs `invocation` to completion, keeping at most `limit` bytes of each stream.
async fn run(invocation: Invocation, limit: usize) -> Result<ExecResult> {
    let mut command = invocation.command();
    command
        .stdin(match invocation.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        })
        .stdout(invocation.stdout.child_stdio())
        .stderr(invocation.stderr.child_stdio())
        // A thread cancelled while it waits here (`task.cancel`) drops this future:
        // the child, whose result nobody will see, is killed (and reaped by tokio).
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| invocation.cannot_run("process.exec", e))?;
    let program = invocation.name();
    let io = async {
        tokio::try_join!(
            feed(child.stdin.take(), invocation.stdin.clone(), &program),
            collect(
                child.stdout.take(),
                invocation.stdout,
                Stream::Stdout,
                &program,
                limit
            ),
            collect(
                child.stderr.take(),
                invocation.stderr,
                Stream::Stderr,
                &program,
                limit
            ),
        )
    };
    match io.await {
        Ok(((), stdout, stderr)) => {
            let status = child.wait().await.map_err(|e| {
                Error::runtime(format!("process.exec: cannot wait for {program:?}: {e}"))
            })?;
            Ok(ExecResult {
                code: exit_code(status),
                stdout,
                stderr,
            })
        }
        Err(error) => {
            // Reaped here, so a failed call leaves no zombie behind.
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(error)
        }
    }
}

/// The `process.exec` function.
pub(super) fn create(lua: &Lua) -> Result<Function> {
    lunet_runtime::create_checked_async_function(
        lua,
        "process.exec",
        |_, (program, params, options): (Value, Value, Value)| {
            let invocation = Invocation::parse(&program, &params, &options)?;
            Ok(run(invocation, MAX_STRING_LEN))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(lua: &Lua, script: &str, limit: usize) -> Result<ExecResult> {
        let program = Value::String(lua.create_string("sh").unwrap());
        let params = lua.create_sequence_from(["-c", script]).unwrap();
        let invocation = Invocation::parse(&program, &Value::Table(params), &Value::Nil)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(invocation, limit))
    }

    #[test]
    fn captured_output_is_bounded() {
        let lua = Lua::new();
        let out = exec(&lua, "head -c 1000 /dev/zero", 1000).unwrap();
        assert_eq!(out.stdout.len(), 1000, "exactly the limit is kept");
        let error = exec(&lua, "head -c 1001 /dev/zero >&2", 1000)
            .err()
            .expect("one byte over the limit fails");
        assert_eq!(
            lunet_runtime::report::error_message(&error),
            "process.exec: \"sh\" wrote more than 1000 bytes to stderr, the most a Luau string can hold"
        );
        // An endless writer is stopped (killed and reaped) rather than read forever.
        let started = std::time::Instant::now();
        let error = exec(&lua, "yes", 1 << 20)
            .err()
            .expect("an endless writer fails");
        assert!(
            lunet_runtime::report::error_message(&error)
                .contains("\"sh\" wrote more than 1048576 bytes to stdout"),
            "{error}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(size_text(1 << 30), "1 GiB");
    }
}
