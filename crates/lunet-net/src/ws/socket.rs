//! The `WebSocket` object scripts hold: `send`, `next`, `close`, `closeCode`.
//!
//! A background reader serves each connection: it reads continuously, so pings are
//! answered even while no thread waits in `next()`. It hands each data message
//! straight to the first thread waiting in `next()` (resuming it there, with no
//! channel or task in between), or queues it for the next call; while
//! [`INCOMING_BYTES`] of messages (or [`INCOMING_BUFFER`] messages) wait unread it
//! stops reading, so the peer is held back by TCP flow control instead of growing the
//! queue. The sending side is [`Writer`]: `send` writes at once when it can and
//! otherwise queues (waiting only while 1 MiB is already queued, and failing if the
//! connection ends meanwhile); `close` queues the close frame behind everything sent
//! before it. One thread may wait in `next()` while another sends. A queued message
//! keeps the process alive until it is written. Once the socket object is gone (no
//! script holds it), reading stops and the connection ends after what was sent.
//!
//! The largest message (and frame) a socket accepts is its stream's
//! `max_message_size` (see [`super::config_with_max_message_size`]). A larger one
//! fails the connection: the reader sends a close frame with 1009 (Message Too Big,
//! RFC 6455 section 7.4.1), waits (at most [`CLOSE_HANDSHAKE_TIMEOUT`]) for it to be
//! written, and drops the connection; tungstenite cannot read past the oversized
//! frame, so no reply is awaited.
//!
//! A [`Closer`] lets the server close its sockets with 1001 (Going Away) when it
//! stops, as a local `close(1001)` would, and wait for their connections to end.
//!
//! `closeCode` is nil while open; a local `close(code)` (or a going-away close) sets
//! it at once, as does an oversized message (1009); otherwise it becomes the peer's
//! close code, 1005 when the peer's close frame had no code, or 1006 when the
//! connection ended without a closing handshake. The first value set wins. `send` and
//! `close` on a closed socket are errors; `next` on a socket closed locally returns
//! nil at once (what was received and not taken is dropped, so the reader goes on to
//! the peer's close reply), and otherwise (a peer close, a lost connection, 1009)
//! returns what had already arrived, then nil.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::{Rc, Weak};
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

use super::received::{Kinds, Next, Received};
use super::writer::{BoxSink, Inline, Writer};
use crate::convert::StringOrBuffer;
use lunet_runtime::object::{self, Object, This};

/// How many received messages may wait for `next()` before the reader stops reading.
const INCOMING_BUFFER: usize = 256;
/// How many bytes of received messages may wait for `next()` before the reader stops
/// reading. The message that reaches it is still queued, so the queue holds at most
/// this plus one message (itself bounded by the socket's maximum message size).
const INCOMING_BYTES: usize = 16 << 20;
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
    /// The reader task, aborted to drop the connection.
    reader: RefCell<Option<AbortHandle>>,
    /// The sending side, ended (dropping the write half) when the read side ends.
    writer: Rc<Writer>,
    /// The byte budget for queued messages (see [`OUTGOING_BYTES`]); closed when the
    /// connection ends, which wakes any `send` waiting for room with an error.
    room: Arc<Semaphore>,
    /// Received messages (text or binary, as the strings `next()` returns) no
    /// thread has taken yet, oldest first.
    received: RefCell<VecDeque<Received>>,
    /// Their total size in bytes (see [`INCOMING_BYTES`]).
    received_bytes: Cell<usize>,
    /// Threads waiting in `next()`, first come first served; there are only any
    /// while `received` is empty.
    waiting: RefCell<VecDeque<Waiter>>,
    /// Signalled when `next()` takes a queued message (the reader may be waiting
    /// for room).
    taken: Notify,
    /// The frame-type strings `next()` returns with each message.
    kinds: Rc<Kinds>,
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
    async fn receive(&self, message: Received) {
        let mut message = message;
        loop {
            let waiter = self.waiting.borrow_mut().pop_front();
            let Some(waiter) = waiter else { break };
            match waiter.complete(self.kinds.deliver(message)) {
                Ok(()) => return,
                // That thread was cancelled: the message goes to the next one.
                Err(unwanted) => message = unwanted.message,
            }
        }
        if self.closed_locally.get() {
            return;
        }
        self.received_bytes
            .set(self.received_bytes.get() + message.bytes.len());
        self.received.borrow_mut().push_back(message);
        while self.received.borrow().len() >= INCOMING_BUFFER
            || self.received_bytes.get() >= INCOMING_BYTES
        {
            self.taken.notified().await;
        }
    }

    /// The oldest received message no thread has taken, if any.
    fn take_received(&self) -> Option<Received> {
        let message = self.received.borrow_mut().pop_front()?;
        self.received_bytes
            .set(self.received_bytes.get() - message.bytes.len());
        self.taken.notify_one();
        Some(message)
    }

    /// Starts a local close with `code`: from now on `next()` returns nil, what was
    /// received and not taken is dropped (which also lets a reader that stopped for a
    /// full queue go on to the peer's close reply), and the close frame is queued
    /// behind everything sent before it. False when the socket was already closed.
    fn start_close(&self, code: u16, keep_alive: Option<KeepAlive>) -> bool {
        if self.closed_locally.get() || self.close_code.get().is_some() {
            return false;
        }
        self.closed_locally.set(true);
        self.received.borrow_mut().clear();
        self.received_bytes.set(0);
        self.taken.notify_one();
        self.set_close_code(code);
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        // A writer that is gone means the connection is already down.
        let _ = self
            .writer
            .enqueue((Message::Close(Some(frame)), keep_alive, None));
        true
    }

    /// Waits for the peer's reply to a close frame (the reader ends once it arrives),
    /// so the handshake completes before the script moves on or exits. Bounded: a
    /// peer that does not answer in time (or stopped reading) gets its connection
    /// dropped, as RFC 6455 section 7.1.1 allows.
    async fn finish_close(&self) {
        let finished = self.reader_finished.notified();
        if self.reader_done.get() {
            return;
        }
        if tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, finished)
            .await
            .is_err()
        {
            self.drop_connection();
        }
    }

    /// Ends both tasks, which drops the connection (and any unwritten messages).
    fn drop_connection(&self) {
        if let Some(reader) = self.reader.borrow().as_ref() {
            reader.abort();
        }
        self.connection_ended();
    }

    /// A message over the socket's size limit arrived: tells the peer with a close
    /// frame (1009) and waits, bounded, until it is written. The reader then drops
    /// the connection, as it can read no further.
    async fn message_too_big(&self) {
        if self.close_code.get().is_some() {
            // A close frame has already been sent or received; nothing more to say.
            return;
        }
        self.set_close_code(1009);
        let frame = CloseFrame {
            code: CloseCode::Size,
            reason: "".into(),
        };
        if self
            .writer
            .enqueue((Message::Close(Some(frame)), None, None))
        {
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, self.writer.flushed()).await;
        }
    }
}

/// A socket's state, shared by its userdata and the futures of its calls in progress.
pub(crate) struct Inner {
    state: Rc<State>,
}

impl Drop for Inner {
    /// No script can use the socket any more: stop reading, and end the connection
    /// once what was sent is written.
    fn drop(&mut self) {
        if let Some(reader) = self.state.reader.borrow_mut().take() {
            reader.abort();
        }
        self.state.writer.end_when_idle();
        self.state.room.close();
        self.state.reader_done.set(true);
        self.state.reader_finished.notify_waiters();
    }
}

/// A handle the server keeps on one of its sockets, to close it when the server
/// stops and to wait for its connection to end. It does not keep the socket alive.
#[derive(Clone)]
pub(crate) struct Closer {
    state: Weak<State>,
}

impl Closer {
    /// Closes the socket with 1001 (Going Away) as a local `close(1001)` would: the
    /// close frame goes after what was already sent, `closeCode` becomes 1001,
    /// `next()` returns nil and unread messages are dropped; the connection ends when
    /// the peer answers, or is dropped after the close handshake timeout (2 s).
    /// Nothing happens when the socket is already closed or gone.
    pub(crate) fn going_away(&self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        if state.start_close(1001, None) {
            tokio::task::spawn_local(async move { state.finish_close().await });
        }
    }

    /// Resolves once the socket's connection has ended (closing handshake done,
    /// connection lost or dropped, or the socket object gone). Not bounded in time by
    /// itself: after [`Closer::going_away`] it resolves within the close handshake
    /// timeout; otherwise the caller bounds it.
    pub(crate) fn finished(&self) -> impl Future<Output = ()> + 'static {
        let state = self.state.clone();
        async move {
            let Some(state) = state.upgrade() else {
                return;
            };
            let finished = state.reader_finished.notified();
            if state.reader_done.get() {
                return;
            }
            finished.await;
        }
    }
}

/// A WebSocket connection as a Luau userdata.
pub(crate) struct WebSocket {
    inner: Rc<Inner>,
    /// The subprotocol the handshake agreed on (`socket.protocol`), if any.
    protocol: Option<Box<str>>,
}

async fn read_loop(
    mut stream: impl Stream<Item = std::result::Result<Message, WsError>> + Unpin,
    state: Rc<State>,
) {
    while let Some(item) = stream.next().await {
        match item {
            Ok(Message::Text(text)) => state.receive(Received::text(text.into())).await,
            Ok(Message::Binary(bytes)) => state.receive(Received::binary(bytes)).await,
            Ok(Message::Close(frame)) => {
                state.set_close_code(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
            }
            Ok(_) => {}
            Err(WsError::Capacity(_)) => {
                state.message_too_big().await;
                break;
            }
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
    /// The stream's config (see [`super::config_with_max_message_size`]) sets the
    /// largest message the socket accepts; `protocol` is the subprotocol its
    /// handshake agreed on; `kinds` is the VM's (see [`Kinds::of`]).
    pub(crate) fn new<S>(
        stream: WebSocketStream<S>,
        protocol: Option<String>,
        kinds: Rc<Kinds>,
    ) -> WebSocket
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
            reader: RefCell::new(None),
            writer: Writer::start(sink),
            room: Arc::new(Semaphore::new(OUTGOING_BYTES)),
            received: RefCell::new(VecDeque::new()),
            received_bytes: Cell::new(0),
            waiting: RefCell::new(VecDeque::new()),
            taken: Notify::new(),
            kinds,
        });
        let reader = tokio::task::spawn_local(read_loop(stream, state.clone()));
        *state.reader.borrow_mut() = Some(reader.abort_handle());
        WebSocket {
            inner: Rc::new(Inner { state }),
            protocol: protocol.map(String::into_boxed_str),
        }
    }

    /// A handle for the server to close this socket when it stops (see [`Closer`]).
    pub(crate) fn closer(&self) -> Closer {
        Closer {
            state: Rc::downgrade(&self.inner.state),
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
        if self
            .state
            .writer
            .enqueue((message, Some(keep_alive), Some(room)))
        {
            Ok(())
        } else {
            Err(closed())
        }
    }

    /// The next received message at once, nil at once once closed here or once
    /// the connection has ended and everything received was taken, or else the
    /// calling thread waits for the reader to hand it the next message.
    fn next(&self, lua: &Lua) -> Reply<Next> {
        if self.state.closed_locally.get() {
            return Reply::Now(Next(None));
        }
        let state = &self.state;
        if let Some(message) = state.take_received() {
            return Reply::Now(Next(Some(state.kinds.deliver(message))));
        }
        if state.reader_done.get() {
            return Reply::Now(Next(None));
        }
        let (waiter, parked) = Scheduler::of(lua).park_waiter(lua);
        state.waiting.borrow_mut().push_back(waiter);
        Reply::Wait(parked)
    }

    async fn close(&self, code: u16, keep_alive: KeepAlive) -> Result<()> {
        if !self.state.start_close(code, Some(keep_alive)) {
            return Err(closed_error("close", self.state.close_code.get()));
        }
        self.state.finish_close().await;
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

    fn property(&self, lua: &Lua, key: &[u8]) -> Result<Value> {
        Ok(match key {
            b"closeCode" => match self.inner.state.close_code.get() {
                Some(code) => Value::Integer(code.into()),
                None => Value::Nil,
            },
            b"protocol" => match &self.protocol {
                Some(protocol) => Value::String(lua.create_string(&**protocol)?),
                None => Value::Nil,
            },
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

#[cfg(test)]
mod tests {
    //! The reader and [`Closer`] against a tungstenite peer over an in-memory pipe:
    //! none of this needs Luau.

    use super::*;
    use futures_util::SinkExt;
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// Every test's own time limit.
    const TIME_LIMIT: Duration = Duration::from_secs(20);

    fn run<F: Future>(test: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        tokio::task::LocalSet::new().block_on(&runtime, async {
            tokio::time::timeout(TIME_LIMIT, test)
                .await
                .expect("the test did not finish in time")
        })
    }

    /// The frame-type strings, from a VM kept for the rest of the test thread.
    fn test_kinds() -> Rc<Kinds> {
        thread_local! {
            static LUA: Lua = Lua::new();
        }
        LUA.with(|lua| Kinds::of(lua).unwrap())
    }

    /// A socket with `role` accepting messages of up to `max` bytes, and the peer on
    /// the other end of the pipe.
    async fn pair(role: Role, max: usize) -> (WebSocket, WebSocketStream<DuplexStream>) {
        let (ours, theirs) = tokio::io::duplex(64 << 10);
        let config = super::super::config_with_max_message_size(max);
        let ours = WebSocketStream::from_raw_socket(ours, role, Some(config)).await;
        let peer_role = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let theirs =
            WebSocketStream::from_raw_socket(theirs, peer_role, Some(super::super::config())).await;
        (WebSocket::new(ours, None, test_kinds()), theirs)
    }

    /// The code of the next close frame the peer receives (skipping other messages),
    /// or None if the connection ends first.
    async fn close_code_seen_by(peer: &mut WebSocketStream<DuplexStream>) -> Option<u16> {
        while let Some(Ok(message)) = peer.next().await {
            if let Message::Close(frame) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    }

    /// Takes `count` messages as `next()` would, waiting for each to arrive.
    async fn take(state: &State, count: usize) -> Vec<Received> {
        let mut taken = Vec::new();
        while taken.len() < count {
            match state.take_received() {
                Some(message) => taken.push(message),
                None => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        taken
    }

    #[test]
    fn an_oversized_message_closes_the_socket_with_1009() {
        run(async {
            let (socket, mut peer) = pair(Role::Client, 1024).await;
            let state = socket.inner.state.clone();
            peer.send(Message::binary(vec![1u8; 1024])).await.unwrap();
            peer.send(Message::binary(vec![2u8; 1025])).await.unwrap();
            assert_eq!(
                close_code_seen_by(&mut peer).await,
                Some(1009),
                "the peer is told its message was too big"
            );
            tokio::time::timeout(Duration::from_secs(1), socket.closer().finished())
                .await
                .expect("the connection ends once the close frame is written");
            assert_eq!(state.close_code.get(), Some(1009), "closeCode is 1009");
            let before = state.take_received().expect("the message within the limit");
            assert_eq!(
                before.bytes.len(),
                1024,
                "a message of exactly the limit is kept"
            );
            assert!(
                state.take_received().is_none(),
                "the oversized message is not"
            );
            assert!(
                peer.next().await.is_none_or(|item| item.is_err()),
                "the connection is closed after the close frame"
            );
        });
    }

    #[test]
    fn an_oversized_fragmented_message_closes_the_socket_with_1009() {
        run(async {
            let (_socket, mut peer) = pair(Role::Server, 1024).await;
            // Three frames of 600 bytes: each fits, the message does not.
            let part = |opcode, fin| {
                let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
                    vec![b'x'; 600],
                    opcode,
                    fin,
                );
                Message::Frame(frame)
            };
            use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
            peer.feed(part(OpCode::Data(Data::Text), false))
                .await
                .unwrap();
            peer.feed(part(OpCode::Data(Data::Continue), false))
                .await
                .unwrap();
            peer.send(part(OpCode::Data(Data::Continue), true))
                .await
                .unwrap();
            assert_eq!(close_code_seen_by(&mut peer).await, Some(1009));
        });
    }

    #[test]
    fn unread_messages_are_bounded_by_bytes() {
        run(async {
            const MESSAGE: usize = 1 << 20;
            const OFFERED: usize = 24;
            let (socket, mut peer) = pair(Role::Client, crate::ws::MAX_MESSAGE_SIZE).await;
            let state = socket.inner.state.clone();
            let message = |i: usize| Message::binary(vec![i as u8; MESSAGE]);
            // Send until a send stays pending: the reader has stopped reading.
            let mut blocked_at = None;
            for i in 0..OFFERED {
                let mut send = peer.send(message(i));
                if tokio::time::timeout(Duration::from_millis(300), &mut send)
                    .await
                    .is_err()
                {
                    blocked_at = Some(i);
                    // Finish this send later, once the script side reads.
                    let queued = state.received_bytes.get();
                    assert!(
                        queued <= INCOMING_BYTES + MESSAGE,
                        "at most 16 MiB and one message wait unread, not {queued} bytes"
                    );
                    let taken = take(&state, 4).await;
                    for (n, m) in taken.iter().enumerate() {
                        assert_eq!(m.bytes[0] as usize, n, "messages arrive in order");
                    }
                    tokio::time::timeout(Duration::from_secs(5), send)
                        .await
                        .expect("taking messages lets the peer send again")
                        .unwrap();
                    break;
                }
                send.await.unwrap();
            }
            let blocked_at = blocked_at.expect("the peer's sends never blocked");
            assert!(
                blocked_at >= 16,
                "16 MiB may wait unread before the reader stops (blocked after {blocked_at})"
            );
            let reader = {
                let state = state.clone();
                tokio::task::spawn_local(async move { take(&state, OFFERED - 4).await })
            };
            for i in blocked_at + 1..OFFERED {
                peer.send(message(i)).await.unwrap();
            }
            let rest = reader.await.unwrap();
            for (n, m) in rest.iter().enumerate() {
                assert_eq!(m.bytes[0] as usize, n + 4, "messages arrive in order");
                assert_eq!(m.bytes.len(), MESSAGE);
            }
            assert_eq!(
                state.received_bytes.get(),
                0,
                "the byte count goes back to 0"
            );
        });
    }

    #[test]
    fn going_away_sends_1001_and_finished_waits_for_the_reply() {
        run(async {
            let (socket, mut peer) = pair(Role::Server, crate::ws::MAX_MESSAGE_SIZE).await;
            let state = socket.inner.state.clone();
            let closer = socket.closer();
            peer.send(Message::text("unread")).await.unwrap();
            wait_until_queued(&state).await;
            closer.going_away();
            assert_eq!(
                state.close_code.get(),
                Some(1001),
                "closeCode is 1001 at once"
            );
            assert!(state.closed_locally.get(), "next() returns nil from now on");
            assert!(
                state.received.borrow().is_empty(),
                "unread messages are dropped"
            );
            let mut finished = std::pin::pin!(closer.finished());
            assert!(
                tokio::time::timeout(Duration::from_millis(200), &mut finished)
                    .await
                    .is_err(),
                "finished() waits for the peer's reply"
            );
            assert_eq!(close_code_seen_by(&mut peer).await, Some(1001));
            // Reading on sends tungstenite's automatic close reply (and, as the client,
            // waits for the server side to end the connection).
            assert!(peer.next().await.is_none_or(|item| item.is_err()));
            tokio::time::timeout(Duration::from_secs(1), finished)
                .await
                .expect("finished() resolves once the peer has answered");
            assert!(state.reader_done.get());
            closer.going_away();
            assert_eq!(
                state.close_code.get(),
                Some(1001),
                "a second call changes nothing"
            );
            drop(socket);
        });
    }

    async fn wait_until_queued(state: &State) {
        while state.received.borrow().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[test]
    fn going_away_drops_a_peer_that_does_not_answer() {
        run(async {
            let (socket, peer) = pair(Role::Server, crate::ws::MAX_MESSAGE_SIZE).await;
            let closer = socket.closer();
            let started = tokio::time::Instant::now();
            closer.going_away();
            tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT * 2, closer.finished())
                .await
                .expect("finished() resolves after the close handshake timeout");
            assert!(started.elapsed() >= CLOSE_HANDSHAKE_TIMEOUT - Duration::from_millis(100));
            drop(peer);
        });
    }

    #[test]
    fn dropping_the_socket_ends_its_connection() {
        run(async {
            let (socket, mut peer) = pair(Role::Server, crate::ws::MAX_MESSAGE_SIZE).await;
            let closer = socket.closer();
            let mut finished = std::pin::pin!(closer.finished());
            assert!(
                tokio::time::timeout(Duration::from_millis(50), &mut finished)
                    .await
                    .is_err(),
                "an open socket is not finished"
            );
            drop(socket);
            tokio::time::timeout(Duration::from_secs(1), finished)
                .await
                .expect("finished() resolves once the socket object is gone");
            assert!(
                tokio::time::timeout(Duration::from_secs(1), peer.next())
                    .await
                    .expect("the peer sees the connection end")
                    .is_none_or(|item| item.is_err()),
                "nothing but the end of the connection"
            );
            closer.going_away();
        });
    }
}
