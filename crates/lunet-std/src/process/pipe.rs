//! The pipes of a `process.create` child: `ChildProcessReader` (its stdout and
//! stderr) and `ChildProcessWriter` (its stdin).
//!
//! Each is a [`lunet_runtime::object`] with methods and no properties; its shared
//! state is the object itself (a few `Rc`s, cheap to clone).
//! Reads and writes wait for the pipe without blocking other Luau threads; two
//! threads using the same pipe take turns (an async lock), so a chunk is never
//! split between them.
//!
//! `read(size)` returns what the child has written so far, up to `size` bytes
//! (default 1024, as in Lune) and never more than 64 KiB at once, or nil once the
//! child has closed the stream (exited). `readToEnd()` waits for the end and
//! returns the rest, at most 1 GiB (Luau's string limit; more is an error).
//! `write(data)` waits until the child has taken all of it; `close()` closes the
//! child's stdin (it sees the end of its input), and writing after it is an error.
//! A write still waiting when `close()` is called (a child that does not read)
//! fails at once, possibly after part of its data went through.

use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use lunet_runtime::codec::compression::MAX_STRING_LEN;
use lunet_runtime::object::{self, Object, This};
use lunet_runtime::{args, create_checked_async_function};
use mlua::{Error, IntoLua, Lua, Result, Table, UserData, UserDataFields, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::sync::{Mutex, Notify};

/// What `read()` returns when no size is given (Lune's default).
const DEFAULT_CHUNK: usize = 1024;
/// The most one `read()` returns.
const MAX_CHUNK: usize = 64 * 1024;

/// Bytes returned to Luau as a string.
struct Chunk(Vec<u8>);

impl IntoLua for Chunk {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        lua.create_string(&self.0).map(Value::String)
    }
}

type Source = Pin<Box<dyn AsyncRead>>;

/// `ChildProcessReader`: the child's stdout or stderr.
#[derive(Clone)]
pub(super) struct ChildReader {
    /// `stdout` or `stderr`, for messages.
    stream: &'static str,
    source: Rc<Mutex<Source>>,
}

impl ChildReader {
    pub(super) fn new(stream: &'static str, source: impl AsyncRead + 'static) -> ChildReader {
        ChildReader {
            stream,
            source: Rc::new(Mutex::new(Box::pin(source))),
        }
    }

    fn failed(&self, method: &str, error: std::io::Error) -> Error {
        Error::runtime(format!(
            "{}:{method}: cannot read the child's {}: {error}",
            Self::NAME,
            self.stream
        ))
    }
}

impl Object for ChildReader {
    const NAME: &'static str = "ChildProcessReader";
    const VARIABLE: &'static str = "child.stdout";
    type Shared = ChildReader;

    fn shared(&self) -> ChildReader {
        self.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        reader_methods(lua)
    }
}

impl UserData for ChildReader {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }
}

/// `ChildProcessReader`'s method functions, created once per VM (through
/// [`object::methods`]) and shared by every reader.
fn reader_methods(lua: &Lua) -> Result<Table> {
    let methods = lua.create_table()?;
    methods.raw_set(
        "read",
        create_checked_async_function(
            lua,
            "ChildProcessReader:read",
            |_, (this, size): (This<ChildReader>, Value)| {
                let reader = this.get("read")?;
                let size = args::optional_integer_in::<usize>(&size, "chunkSize", 1..=i64::MAX)?
                    .unwrap_or(DEFAULT_CHUNK)
                    .min(MAX_CHUNK);
                Ok(async move {
                    let mut source = reader.source.lock().await;
                    let mut chunk = Vec::with_capacity(size);
                    let n = source
                        .as_mut()
                        .take(size as u64)
                        .read_buf(&mut chunk)
                        .await
                        .map_err(|e| reader.failed("read", e))?;
                    Ok((n > 0).then_some(Chunk(chunk)))
                })
            },
        )?,
    )?;
    methods.raw_set(
        "readToEnd",
        create_checked_async_function(
            lua,
            "ChildProcessReader:readToEnd",
            |_, this: This<ChildReader>| {
                let reader = this.get("readToEnd")?;
                Ok(async move {
                    let mut source = reader.source.lock().await;
                    let mut all = Vec::new();
                    source
                        .as_mut()
                        .take(MAX_STRING_LEN as u64 + 1)
                        .read_to_end(&mut all)
                        .await
                        .map_err(|e| reader.failed("readToEnd", e))?;
                    if all.len() > MAX_STRING_LEN {
                        return Err(Error::runtime(format!(
                            "{}:readToEnd: the child's {} is larger than 1 GiB, the most a Luau string can hold",
                            ChildReader::NAME,
                            reader.stream
                        )));
                    }
                    Ok(Chunk(all))
                })
            },
        )?,
    )?;
    Ok(methods)
}

/// `ChildProcessWriter`: the child's stdin.
#[derive(Clone)]
pub(super) struct ChildWriter {
    /// `None` once closed.
    sink: Rc<Mutex<Option<ChildStdin>>>,
    /// Woken by `close()`, so that a write stuck on a child that does not read
    /// (or one waiting behind it) gives up instead of holding the pipe forever.
    closing: Rc<Notify>,
}

impl ChildWriter {
    pub(super) fn new(stdin: Option<ChildStdin>) -> ChildWriter {
        ChildWriter {
            sink: Rc::new(Mutex::new(stdin)),
            closing: Rc::new(Notify::new()),
        }
    }
}

impl Object for ChildWriter {
    const NAME: &'static str = "ChildProcessWriter";
    const VARIABLE: &'static str = "child.stdin";
    type Shared = ChildWriter;

    fn shared(&self) -> ChildWriter {
        self.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        writer_methods(lua)
    }
}

impl UserData for ChildWriter {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }
}

/// `ChildProcessWriter`'s method functions, created once per VM (through
/// [`object::methods`]) and shared by every writer.
fn writer_methods(lua: &Lua) -> Result<Table> {
    let methods = lua.create_table()?;
    methods.raw_set(
        "write",
        create_checked_async_function(
            lua,
            "ChildProcessWriter:write",
            |_, (this, data): (This<ChildWriter>, Value)| {
                let writer = this.get("write")?;
                let data: Bytes = args::bytes(&data, "data")?;
                Ok(async move {
                    let closed = || {
                        Error::runtime(format!(
                            "{}:write: the child's stdin is closed (close() was called)",
                            ChildWriter::NAME
                        ))
                    };
                    let closing = writer.closing.notified();
                    tokio::pin!(closing);
                    // Registered before waiting, so a close() from here on ends the
                    // wait.
                    closing.as_mut().enable();
                    let mut sink = tokio::select! {
                        sink = writer.sink.lock() => sink,
                        () = closing.as_mut() => return Err(closed()),
                    };
                    let Some(stdin) = sink.as_mut() else {
                        return Err(closed());
                    };
                    tokio::select! {
                        written = stdin.write_all(&data) => written.map_err(|e| {
                            Error::runtime(format!(
                                "{}:write: cannot write to the child's stdin: {e}",
                                ChildWriter::NAME
                            ))
                        }),
                        () = closing => Err(closed()),
                    }
                })
            },
        )?,
    )?;
    methods.raw_set(
        "close",
        create_checked_async_function(
            lua,
            "ChildProcessWriter:close",
            |_, this: This<ChildWriter>| {
                let writer = this.get("close")?;
                Ok(async move {
                    // A write in progress gives up (it fails), then the pipe closes.
                    writer.closing.notify_waiters();
                    writer.sink.lock().await.take();
                    Ok(())
                })
            },
        )?,
    )?;
    Ok(methods)
}
