//! The pipes of a `process.create` child: `ChildProcessReader` (its stdout and
//! stderr) and `ChildProcessWriter` (its stdin).
//!
//! Each is a userdata whose methods come from one shared table (its `__index`).
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
use lunet_runtime::{args, create_checked_async_function};
use mlua::{Error, IntoLua, Lua, MetaMethod, Result, UserData, UserDataFields, Value};
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

/// The `self` of a method call on a `T`.
fn this<T: UserData + Clone + 'static>(value: &Value, type_name: &str, method: &str) -> Result<T> {
    match value {
        Value::UserData(data) => data.borrow::<T>().ok().map(|this| this.clone()),
        _ => None,
    }
    .ok_or_else(|| {
        args::wrong(
            &format!("self in '{type_name}:{method}' (call it with ':')"),
            type_name,
            value,
        )
    })
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
    const NAME: &'static str = "ChildProcessReader";

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

impl UserData for ChildReader {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::Index, |lua| {
            let methods = lua.create_table()?;
            methods.set(
                "read",
                create_checked_async_function(
                    lua,
                    "ChildProcessReader:read",
                    |_, (this_value, size): (Value, Value)| {
                        let reader: ChildReader = this(&this_value, Self::NAME, "read")?;
                        let size = args::optional_integer_in::<usize>(
                            &size,
                            "chunkSize",
                            1..=i64::MAX,
                        )?
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
            methods.set(
                "readToEnd",
                create_checked_async_function(
                    lua,
                    "ChildProcessReader:readToEnd",
                    |_, this_value: Value| {
                        let reader: ChildReader = this(&this_value, Self::NAME, "readToEnd")?;
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
                                    Self::NAME,
                                    reader.stream
                                )));
                            }
                            Ok(Chunk(all))
                        })
                    },
                )?,
            )?;
            methods.set_readonly(true);
            Ok(methods)
        });
    }
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
    const NAME: &'static str = "ChildProcessWriter";

    pub(super) fn new(stdin: Option<ChildStdin>) -> ChildWriter {
        ChildWriter {
            sink: Rc::new(Mutex::new(stdin)),
            closing: Rc::new(Notify::new()),
        }
    }
}

impl UserData for ChildWriter {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::Index, |lua| {
            let methods = lua.create_table()?;
            methods.set(
                "write",
                create_checked_async_function(
                    lua,
                    "ChildProcessWriter:write",
                    |_, (this_value, data): (Value, Value)| {
                        let writer: ChildWriter = this(&this_value, Self::NAME, "write")?;
                        let data: Bytes = args::bytes(&data, "data")?;
                        Ok(async move {
                            let closed = || {
                                Error::runtime(format!(
                                    "{}:write: the child's stdin is closed (close() was called)",
                                    Self::NAME
                                ))
                            };
                            let closing = writer.closing.notified();
                            tokio::pin!(closing);
                            // Registered before waiting, so a close() from here on
                            // ends the wait.
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
                                        Self::NAME
                                    ))
                                }),
                                () = closing => Err(closed()),
                            }
                        })
                    },
                )?,
            )?;
            methods.set(
                "close",
                create_checked_async_function(
                    lua,
                    "ChildProcessWriter:close",
                    |_, this_value: Value| {
                        let writer: ChildWriter = this(&this_value, Self::NAME, "close")?;
                        Ok(async move {
                            // A write in progress gives up (it fails), then the
                            // pipe closes.
                            writer.closing.notify_waiters();
                            writer.sink.lock().await.take();
                            Ok(())
                        })
                    },
                )?,
            )?;
            methods.set_readonly(true);
            Ok(methods)
        });
    }
}
