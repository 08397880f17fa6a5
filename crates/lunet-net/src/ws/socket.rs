//! The `WebSocket` object scripts hold: `send`, `next`, `close`, `closeCode`.
//!
//! A background reader serves each connection: it reads continuously, so pings are
//! answered even while no thread waits in `next()`. It hands each data message
//! straight to the first thread waiting in `next()` (resuming it there, with no
//! channel or task in between), or queues it for the next call; while
//! [`INCOMING_BUFFER`] messages wait unread it stops reading (backpressure). The sending side
//! is [`Writer`]: `send` writes at once when it can and otherwise queues (waiting
//! only while 1 MiB is already queued, and failing if the connection ends meanwhile);
//! `close` queues the close frame behind everything sent before it. One thread may
//! wait in `next()` while another sends. A queued message keeps the process alive
//! until it is written.
//!
//! `closeCode` is nil while open; a local `close(code)` sets it at once; otherwise it
//! becomes the peer's close code, 1005 when the peer's close frame had no code, or
//! 1006 when the connection ended without a closing handshake. The first value set
//! wins. `send` and `close` on a closed socket are errors; `next` on a socket closed
//! locally returns nil at once (what was received and not taken is dropped, so the
//! reader goes on to the peer's close reply), and after a peer close returns what
//! had already arrived, then nil.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use lunet_runtime::{KeepAlive, Reply, Scheduler, Waiter, args};
use mlua::{
    Error, Lua, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods, Value,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, Semaphore, TryAcquireError};
use tokio::task::AbortHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::writer::{BoxSink, Inline, Writer};
use crate::convert::{LuaBytes, StringOrBuffer};
use crate::object::{self, Object, This};

/// How many received messages may wait for `next()` before the reader stops reading.
const INCOMING_BUFFER: usize = 256;
/// How many bytes of sent messages may wait for the writer before `send` waits.
/// This bounds memory when the peer reads slowly; it is also the largest batch the
/// writer hands tungstenite, whose write buffer shifts its unsent tail forward after
/// every partial write, so a larger budget costs more copying (4 MiB measured ~25%
/// slower than 1 MiB for a burst of 1 KiB messages).
const OUTGOING_BYTES: usize = 1 << 20;
/// What one queued message counts against that budget besides its payload.
const MESSAGE_OVERHEAD: usize = 64;
/// How long `close()` waits for the peer to answer the close frame.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

struct State {
    close_code: Cell<Option<u16>>,
    /// True once `close()` was called here: `next()` returns nil from then on, so
    /// nothing is queued for it any more.
    closed_locally: Cell<bool>,
    /// Set when the read side has ended (closing handshake done or connection lost).
    reader_done: Cell<bool>,
    reader_finished: Notify,
    /// The sending side, ended (dropping the write half) when the read side ends.
    writer: Rc<Writer>,
    /// The byte budget for queued messages (see [`OUTGOING_BYTES`]); closed when the
    /// connection ends, which wakes any `send` waiting for room with an error.
    room: Arc<Semaphore>,
    /// Received messages (text or binary, as the strings `next()` returns) no
    /// thread has taken yet, oldest first.
    received: RefCell<VecDeque<LuaBytes>>,
    /// Threads waiting in `next()`, first come first served; there are only any
    /// while `received` is empty.
    waiting: RefCell<VecDeque<Waiter>>,
    /// Signalled when `next()` takes a queued message (the reader may be waiting
    /// for room).
    taken: Notify,
}

impl State {
    fn set_close_code(&self, code: u16) {
        if self.close_code.get().is_none() {
            self.close_code.set(Some(code));
        }
    }

    /// The read side is gone: stops the writer (dropping the write half, so the
    /// connection closes), fails any `send` waiting for room, wakes `close()`, and
    /// resumes the threads waiting in `next()` with nil, as nothing more will arrive.
    fn connection_ended(&self) {
        self.writer.end();
        self.room.close();
        self.reader_done.set(true);
        self.reader_finished.notify_waiters();
        let waiting = self.waiting.take();
        for waiter in waiting {
            let _ = waiter.complete(Value::Nil);
        }
    }

    /// Hands a received message to the first thread still waiting in `next()`
    /// (resuming it), or queues it (unless the socket was closed here, when no
    /// `next()` can take it); while the queue is full, waits for `next()` to take
    /// from it, so the reader stops reading.
    async fn receive(&self, message: LuaBytes) {
        let mut message = message;
        loop {
            let waiter = self.waiting.borrow_mut().pop_front();
            let Some(waiter) = waiter else { break };
            match waiter.complete(message) {
                Ok(()) => return,
                // That thread was cancelled: the message goes to the next one.
                Err(unwanted) => message = unwanted,
            }
        }
        if self.closed_locally.get() {
            return;
        }
        self.received.borrow_mut().push_back(message);
        while self.received.borrow().len() >= INCOMING_BUFFER {
            self.taken.notified().await;
        }
    }
}

/// A socket's state, shared by its userdata and the futures of its calls in progress.
pub(crate) struct Inner {
    state: Rc<State>,
    reader: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A WebSocket connection as a Luau userdata.
pub(crate) struct WebSocket {
    inner: Rc<Inner>,
}

async fn read_loop(
    mut stream: impl Stream<Item = std::result::Result<Message, WsError>> + Unpin,
    state: Rc<State>,
) {
    while let Some(item) = stream.next().await {
        match item {
            Ok(Message::Text(text)) => state.receive(LuaBytes(text.into())).await,
            Ok(Message::Binary(bytes)) => state.receive(LuaBytes(bytes)).await,
            Ok(Message::Close(frame)) => {
                state.set_close_code(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    state.set_close_code(1006);
    // Both halves gone: the connection closes (the server side closes first, as
    // RFC 6455 section 7.1.1 asks, and a client stops waiting for it).
    drop(stream);
    state.connection_ended();
}

impl WebSocket {
    /// Wraps an established WebSocket stream and starts its reader and writer tasks.
    pub(crate) fn new<S>(stream: WebSocketStream<S>) -> WebSocket
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let (sink, stream) = stream.split();
        let sink: BoxSink = Box::pin(sink);
        let state = Rc::new(State {
            close_code: Cell::new(None),
            closed_locally: Cell::new(false),
            reader_done: Cell::new(false),
            reader_finished: Notify::new(),
            writer: Writer::start(sink),
            room: Arc::new(Semaphore::new(OUTGOING_BYTES)),
            received: RefCell::new(VecDeque::new()),
            waiting: RefCell::new(VecDeque::new()),
            taken: Notify::new(),
        });
        let reader = tokio::task::spawn_local(read_loop(stream, state.clone()));
        WebSocket {
            inner: Rc::new(Inner {
                state,
                reader: reader.abort_handle(),
            }),
        }
    }
}

fn closed_error(action: &str, code: Option<u16>) -> Error {
    match code {
        Some(code) => Error::runtime(format!(
            "cannot {action}: the WebSocket is closed (close code {code})"
        )),
        None => Error::runtime(format!("cannot {action}: the WebSocket is closed")),
    }
}

impl Inner {
    /// Sends `message`: written at once when nothing is ahead of it, otherwise queued
    /// for the writer, waiting only while the byte budget is spent. A queued message
    /// holds the process open (through `scheduler`'s keep-alive) until it is written.
    async fn send(&self, message: Message, scheduler: Rc<Scheduler>) -> Result<()> {
        if let Some(code) = self.state.close_code.get() {
            return Err(closed_error("send", Some(code)));
        }
        let closed = || closed_error("send", self.state.close_code.get());
        let message = match self
            .state
            .writer
            .write_inline(message, || scheduler.keep_alive())
        {
            Inline::Written | Inline::Unflushed => return Ok(()),
            Inline::Failed => return Err(closed()),
            Inline::Declined(message) => message,
        };
        let keep_alive = scheduler.keep_alive();
        // A message larger than the whole budget waits for all of it.
        let cost = (message.len() + MESSAGE_OVERHEAD).min(OUTGOING_BYTES) as u32;
        let room = match self.state.room.clone().try_acquire_many_owned(cost) {
            Ok(room) => room,
            Err(TryAcquireError::NoPermits) => self
                .state
                .room
                .clone()
                .acquire_many_owned(cost)
                .await
                .map_err(|_| closed())?,
            Err(TryAcquireError::Closed) => return Err(closed()),
        };
        if self.state.writer.enqueue((message, keep_alive, Some(room))) {
            Ok(())
        } else {
            Err(closed())
        }
    }

    /// The next received message at once, nil at once once closed here or once
    /// the connection has ended and everything received was taken, or else the
    /// calling thread waits for the reader to hand it the next message.
    fn next(&self, lua: &Lua) -> Reply<Option<LuaBytes>> {
        if self.state.closed_locally.get() {
            return Reply::Now(None);
        }
        let state = &self.state;
        if let Some(message) = state.received.borrow_mut().pop_front() {
            state.taken.notify_one();
            return Reply::Now(Some(message));
        }
        if state.reader_done.get() {
            return Reply::Now(None);
        }
        let (waiter, parked) = Scheduler::of(lua).park_waiter(lua);
        state.waiting.borrow_mut().push_back(waiter);
        Reply::Wait(parked)
    }

    /// Ends both tasks, which drops the connection (and any unwritten messages).
    fn drop_connection(&self) {
        self.reader.abort();
        self.state.connection_ended();
    }

    async fn close(&self, code: u16, keep_alive: KeepAlive) -> Result<()> {
        if self.state.closed_locally.get() || self.state.close_code.get().is_some() {
            return Err(closed_error("close", self.state.close_code.get()));
        }
        self.state.closed_locally.set(true);
        // What was received and not taken can never be taken now; dropping it also
        // lets a reader that stopped for a full queue go on to the peer's close reply.
        self.state.received.borrow_mut().clear();
        self.state.taken.notify_one();
        self.state.set_close_code(code);
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        // The writer sends the close frame after everything queued before it (a
        // writer that is gone means the connection is already down); then wait for
        // the peer's reply so the handshake completes before the script moves on or
        // exits. Both are bounded: a peer that does not answer in time (or stopped
        // reading) gets its connection dropped, as RFC 6455 section 7.1.1 allows.
        let finished = self.state.reader_finished.notified();
        let handshake = async {
            let _ = self
                .state
                .writer
                .enqueue((Message::Close(Some(frame)), keep_alive, None));
            if !self.state.reader_done.get() {
                finished.await;
            }
        };
        if tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, handshake)
            .await
            .is_err()
        {
            self.drop_connection();
        }
        Ok(())
    }
}

/// The method functions, created once per VM and shared by every socket.
fn build_methods(lua: &Lua) -> Result<Table> {
    let table = lua.create_table()?;
    let send = lunet_runtime::create_checked_async_function(
        lua,
        "WebSocket:send",
        |lua, (this, message, as_binary): (This<WebSocket>, StringOrBuffer, Option<bool>)| {
            let scheduler = Scheduler::of(lua);
            let inner = this.get("send")?;
            let message = match (message, as_binary.unwrap_or(false)) {
                (StringOrBuffer::String(bytes), false) => match Utf8Bytes::try_from(bytes) {
                    Ok(text) => Message::Text(text),
                    Err(_) => {
                        return Err(Error::runtime(
                            "WebSocket:send - the message is not valid UTF-8; pass asBinary = true to send it as a binary frame",
                        ));
                    }
                },
                (StringOrBuffer::String(bytes) | StringOrBuffer::Buffer(bytes), true) => {
                    Message::Binary(bytes)
                }
                // A buffer without asBinary is text when it can be.
                (StringOrBuffer::Buffer(bytes), false) => {
                    match Utf8Bytes::try_from(bytes.clone()) {
                        Ok(text) => Message::Text(text),
                        Err(_) => Message::Binary(bytes),
                    }
                }
                (StringOrBuffer::Other(type_name), _) => {
                    return Err(args::invalid("message", "string or buffer", type_name));
                }
            };
            Ok(async move { inner.send(message, scheduler).await })
        },
    )?;
    let next = lunet_runtime::create_waiting_function(
        lua,
        "WebSocket:next",
        |lua, this: This<WebSocket>| Ok(this.get("next")?.next(lua)),
    )?;
    let close = lunet_runtime::create_checked_async_function(
        lua,
        "WebSocket:close",
        |lua, (this, code): (This<WebSocket>, Value)| {
            let keep_alive = Scheduler::of(lua).keep_alive();
            let inner = this.get("close")?;
            let code =
                args::optional_integer_in::<u16>(&code, "close code", 1000..=4999)?.unwrap_or(1000);
            Ok(async move { inner.close(code, keep_alive).await })
        },
    )?;
    table.raw_set("send", send)?;
    table.raw_set("next", next)?;
    table.raw_set("close", close)?;
    Ok(table)
}

impl Object for WebSocket {
    const NAME: &'static str = "WebSocket";
    const VARIABLE: &'static str = "socket";
    type Shared = Rc<Inner>;

    fn shared(&self) -> Rc<Inner> {
        self.inner.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }

    fn property(&self, _lua: &Lua, key: &[u8]) -> Result<Value> {
        Ok(match (key, self.inner.state.close_code.get()) {
            (b"closeCode", Some(code)) => Value::Integer(code.into()),
            _ => Value::Nil,
        })
    }
}

impl UserData for WebSocket {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods_reg: &mut M) {
        methods_reg.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match this.inner.state.close_code.get() {
                Some(code) => format!("WebSocket(closed, {code})"),
                None => "WebSocket(open)".to_string(),
            })
        });
    }
}

/// Makes sure the shared method table exists (so the first `socket.send` lookup is
/// not the one that builds it inside a metamethod).
pub(crate) fn prepare(lua: &Lua) -> Result<()> {
    object::methods::<WebSocket>(lua).map(|_| ())
}
