//! `BodyStream`: a body handed to the script piece by piece (`net.http.stream`'s
//! `response.body`), with `read()`, `readAll()`, `lines()`, `events()` and `close()`.
//!
//! Backpressure: the body is read only while a script waits in one of these methods,
//! and each read takes at most one decoded chunk (64 KiB, see [`Decoder`]); what is
//! held ahead of the script is the connection's own buffering (hyper's read buffer
//! and the socket's, or an HTTP/2 stream window) plus an unfinished line for
//! `lines()`/`events()`. A peer that sends faster than the script reads is held back
//! by TCP (or HTTP/2) flow control.
//!
//! Waits: each wait for data fails after `idle` without any (the client's 300 s
//! no-progress bound). A cancelled wait (`task.cancel`) loses nothing: the data stays
//! for the next call. `close()` ends a wait in progress with an error, drops the body
//! and with it the connection; so does dropping the object (garbage collection).
//! When the body ends cleanly, `on_end` runs (the client checks the connection back
//! into its pool then).
//!
//! Owns: the object, its methods, the line and event state between calls, and how
//! its errors read. Does not own: decoding ([`super::decode`]), splitting lines
//! ([`super::lines`]), parsing events ([`super::sse`]), or where the body comes from.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{
    Error, Lua, LuaString, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods,
};
use tokio::sync::{Mutex, Notify};

use super::decode::{BodyError, Decoder};
use super::lines::{LineSplitter, MAX_LINE};
use super::sse::EventParser;
use crate::error::error_chain;
use lunet_runtime::object::{self, Object, This};

/// The most `readAll()` gathers: Luau's string limit (1 GiB).
const MAX_READ_ALL: usize = lunet_runtime::codec::compression::MAX_STRING_LEN;

/// After how many gathered bytes `readAll()` lets others run once.
const YIELD_EVERY: usize = 1 << 20;

/// Where a stream's body comes from and how its errors name it.
pub(crate) struct Source {
    pub(crate) decoder: Decoder,
    /// Runs once the body has been read to its end.
    pub(crate) on_end: Option<Box<dyn FnOnce()>>,
    /// What errors name, after the method: `GET http://host/path`.
    pub(crate) label: String,
    /// What the body is, for errors: `response body`.
    pub(crate) what: &'static str,
    /// How long a wait for data may last without any.
    pub(crate) idle: Option<Duration>,
    /// The most decoded bytes the script may read, with the name of the setting that
    /// set it (`net.serve`'s `maxBodySize`); `None` for no limit.
    pub(crate) limit: Option<(usize, &'static str)>,
}

/// The reading state, held by one method call at a time.
struct Reading {
    decoder: Decoder,
    on_end: Option<Box<dyn FnOnce()>>,
    ended: bool,
    failed: Option<String>,
    /// Decoded bytes handed out so far, checked against `Inner::limit`.
    delivered: usize,
    lines: LineSplitter,
    events: EventParser,
}

pub(crate) struct Inner {
    reading: Mutex<Option<Reading>>,
    closed: Cell<bool>,
    close: Notify,
    label: String,
    what: &'static str,
    idle: Option<Duration>,
    limit: Option<(usize, &'static str)>,
}

/// The script's `BodyStream` userdata.
pub(crate) struct BodyStream {
    inner: Rc<Inner>,
}

impl BodyStream {
    pub(crate) fn new(source: Source) -> BodyStream {
        BodyStream {
            inner: Rc::new(Inner {
                reading: Mutex::new(Some(Reading {
                    decoder: source.decoder,
                    on_end: source.on_end,
                    ended: false,
                    failed: None,
                    delivered: 0,
                    lines: LineSplitter::default(),
                    events: EventParser::default(),
                })),
                closed: Cell::new(false),
                close: Notify::new(),
                label: source.label,
                what: source.what,
                idle: source.idle,
                limit: source.limit,
            }),
        }
    }

    /// A handle that can close the stream from Rust (see [`Inner::close`]).
    pub(crate) fn handle(&self) -> Rc<Inner> {
        self.inner.clone()
    }
}

fn closed_error() -> Error {
    Error::runtime("cannot read: the body stream is closed")
}

impl Inner {
    /// Closes the stream: a wait in progress ends with an error, later calls fail,
    /// and the body is dropped (now, or when the call reading it wakes).
    pub(crate) fn close(&self) {
        if !self.closed.replace(true) {
            self.close.notify_waiters();
            // Unless a call is reading (it drops the body when it wakes), drop the
            // body, and with it the connection, now.
            if let Ok(mut reading) = self.reading.try_lock() {
                *reading = None;
            }
        }
    }

    fn failed(&self, method: &str, reason: &str) -> String {
        format!("BodyStream:{method} failed for {}: {reason}", self.label)
    }

    /// Runs `f` with the reading state, one call at a time; an error once closed.
    async fn with_reading<R>(
        &self,
        f: impl AsyncFnOnce(&Inner, &mut Reading) -> Result<R>,
    ) -> Result<R> {
        if self.closed.get() {
            return Err(closed_error());
        }
        let mut guard = self.reading.lock().await;
        let Some(reading) = guard.as_mut() else {
            return Err(closed_error());
        };
        let result = f(self, reading).await;
        if self.closed.get() {
            // Closed while this call waited: the body and its connection go now.
            *guard = None;
            return Err(closed_error());
        }
        result
    }

    /// The next decoded chunk, `None` at the end: waits for data, within `idle`,
    /// and gives up when the stream is closed meanwhile.
    async fn next_chunk<'r>(
        &self,
        method: &str,
        reading: &'r mut Reading,
    ) -> Result<Option<&'r [u8]>> {
        if let Some(message) = &reading.failed {
            return Err(Error::runtime(message.clone()));
        }
        if reading.ended {
            return Ok(None);
        }
        let idle = self.idle;
        let stalled = async {
            match idle {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            biased;
            () = self.close.notified() => return Err(closed_error()),
            outcome = reading.decoder.next() => outcome,
            () = stalled => {
                let seconds = idle.unwrap_or_default().as_secs_f64();
                Err(BodyError::Read(format!("no data received for {seconds} s (waiting for the {})", self.what).into()))
            }
        };
        match outcome {
            Ok(Some(chunk)) => {
                reading.delivered += chunk.len();
                if let Some((limit, setting)) = self.limit
                    && reading.delivered > limit
                {
                    let message = self.failed(
                        method,
                        &format!("the {} is larger than {setting} ({limit} bytes)", self.what),
                    );
                    reading.failed = Some(message.clone());
                    return Err(Error::runtime(message));
                }
                Ok(Some(chunk))
            }
            Ok(None) => {
                reading.ended = true;
                if let Some(on_end) = reading.on_end.take() {
                    on_end();
                }
                Ok(None)
            }
            Err(error) => {
                let reason = match error {
                    BodyError::TooLarge => format!("the {} is too large", self.what),
                    BodyError::Corrupt(error) => {
                        format!("cannot decode the {}: {error}", self.what)
                    }
                    BodyError::Read(error) => error_chain(&*error),
                };
                let message = self.failed(method, &reason);
                reading.failed = Some(message.clone());
                Err(Error::runtime(message))
            }
        }
    }
}

async fn read(lua: Lua, inner: Rc<Inner>) -> Result<Option<LuaString>> {
    inner
        .with_reading(async |inner, reading| {
            if let Some(rest) = reading.lines.take_rest() {
                return Ok(Some(lua.create_string(rest)?));
            }
            match inner.next_chunk("read", reading).await? {
                Some(chunk) => Ok(Some(lua.create_string(chunk)?)),
                None => Ok(None),
            }
        })
        .await
}

async fn read_all(lua: Lua, inner: Rc<Inner>) -> Result<LuaString> {
    inner
        .with_reading(async |inner, reading| {
            let mut all = reading.lines.take_rest().unwrap_or_default();
            let mut since_yield = 0;
            while let Some(chunk) = inner.next_chunk("readAll", reading).await? {
                if chunk.len() > MAX_READ_ALL - all.len() {
                    let reason = format!(
                        "the {} would be larger than 1 GiB, the most a Luau string can hold",
                        inner.what
                    );
                    return Err(Error::runtime(inner.failed("readAll", &reason)));
                }
                all.extend_from_slice(chunk);
                since_yield += chunk.len();
                if since_yield >= YIELD_EVERY {
                    since_yield = 0;
                    tokio::task::yield_now().await;
                }
            }
            lua.create_string(all)
        })
        .await
}

fn line_too_long(inner: &Inner, method: &str) -> Error {
    let reason = format!("a line would be longer than {MAX_LINE} bytes");
    Error::runtime(inner.failed(method, &reason))
}

async fn next_line(lua: Lua, inner: Rc<Inner>) -> Result<Option<LuaString>> {
    inner
        .with_reading(async |inner, reading| {
            loop {
                if let Some(line) = reading.lines.next_line() {
                    return Ok(Some(lua.create_string(line)?));
                }
                match inner.next_chunk("lines", reading).await? {
                    Some(chunk) => {
                        let chunk = chunk.to_vec();
                        reading
                            .lines
                            .push(&chunk)
                            .map_err(|_| line_too_long(inner, "lines"))?;
                    }
                    None => {
                        return match reading.lines.finish() {
                            Some(last) => Ok(Some(lua.create_string(last)?)),
                            None => Ok(None),
                        };
                    }
                }
            }
        })
        .await
}

async fn next_event(lua: Lua, inner: Rc<Inner>) -> Result<Option<Table>> {
    inner
        .with_reading(async |inner, reading| {
            loop {
                while let Some(line) = reading.lines.next_line() {
                    let Some(event) = reading.events.line(line) else {
                        continue;
                    };
                    let table = lua.create_table_with_capacity(0, 4)?;
                    table.raw_set("event", event.event)?;
                    table.raw_set("data", event.data)?;
                    table.raw_set("id", event.id)?;
                    table.raw_set("retry", event.retry)?;
                    return Ok(Some(table));
                }
                match inner.next_chunk("events", reading).await? {
                    Some(chunk) => {
                        let chunk = chunk.to_vec();
                        reading
                            .lines
                            .push(&chunk)
                            .map_err(|_| line_too_long(inner, "events"))?;
                    }
                    // An event that no blank line finished is not dispatched, and
                    // an unfinished line is dropped with it.
                    None => {
                        reading.lines.take_rest();
                        return Ok(None);
                    }
                }
            }
        })
        .await
}

/// The method functions, created once per VM and shared by every stream.
fn build_methods(lua: &Lua) -> Result<Table> {
    let table = lua.create_table()?;
    let read = lunet_runtime::create_checked_async_function(
        lua,
        "BodyStream:read",
        |lua, this: This<BodyStream>| Ok(read(lua.clone(), this.get("read")?)),
    )?;
    let read_all = lunet_runtime::create_checked_async_function(
        lua,
        "BodyStream:readAll",
        |lua, this: This<BodyStream>| Ok(read_all(lua.clone(), this.get("readAll")?)),
    )?;
    let lines = lunet_runtime::create_function(lua, |lua, this: This<BodyStream>| {
        let inner = this.get("lines")?;
        lunet_runtime::create_async_function(lua, "BodyStream:lines iterator", move |lua, ()| {
            next_line(lua.clone(), inner.clone())
        })
    })?;
    let events = lunet_runtime::create_function(lua, |lua, this: This<BodyStream>| {
        let inner = this.get("events")?;
        lunet_runtime::create_async_function(lua, "BodyStream:events iterator", move |lua, ()| {
            next_event(lua.clone(), inner.clone())
        })
    })?;
    let close = lunet_runtime::create_function(lua, |_lua, this: This<BodyStream>| {
        this.get("close")?.close();
        Ok(())
    })?;
    table.raw_set("read", read)?;
    table.raw_set("readAll", read_all)?;
    table.raw_set("lines", lines)?;
    table.raw_set("events", events)?;
    table.raw_set("close", close)?;
    Ok(table)
}

impl Object for BodyStream {
    const NAME: &'static str = "BodyStream";
    const VARIABLE: &'static str = "body";
    type Shared = Rc<Inner>;

    fn shared(&self) -> Rc<Inner> {
        self.inner.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }
}

impl UserData for BodyStream {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }

    fn add_methods<M: UserDataMethods<Self>>(registry: &mut M) {
        registry.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("BodyStream({})", this.inner.label))
        });
    }
}
