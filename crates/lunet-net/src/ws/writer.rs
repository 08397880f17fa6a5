//! The sending side of one WebSocket connection: the write half, the queue in front
//! of it, and the task that drains that queue.
//!
//! The first message sent after the writer task last ran is written *inline*, inside
//! the `send` call: it goes into tungstenite's buffer and the buffer is flushed to the
//! socket at once, polled once with no waker. That is the common case (a script that
//! sends and then waits for a reply), and it puts the frame on the wire before the
//! script moves on, with no task switch on the way. Every later message, and the rest
//! of a flush the socket could not take at once, goes to the writer task, which runs
//! once the script yields and writes whatever is queued by then with one flush, so a
//! burst of sends still goes out in a few writes. Order is kept because a message only
//! skips the queue when the queue is empty and nothing is half-written.
//!
//! This module does not bound the queue (the socket's byte budget does that before
//! queuing) nor decide when the connection ends (the socket's reader does), except
//! that once the socket object is gone ([`Writer::end_when_idle`]) it ends itself
//! after writing what was queued. [`Writer::flushed`] lets the reader wait for a
//! close frame to reach the socket before it drops the connection.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_util::{Sink, SinkExt};
use lunet_runtime::KeepAlive;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The write half of a connection, whatever its transport.
pub(crate) type BoxSink = Pin<Box<dyn Sink<Message, Error = WsError>>>;

/// How long what was queued on a socket nobody holds any more may take to be
/// written before the connection is dropped with it.
const ABANDONED_WRITE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A queued message, with the guard that keeps the process alive until it is written
/// (none for a close frame Lunet sends by itself, with no script waiting for it) and
/// its share of the socket's byte budget (none for the close frame), given back once
/// tungstenite has taken the message.
pub(crate) type Queued = (Message, Option<KeepAlive>, Option<OwnedSemaphorePermit>);

/// How an inline write went.
pub(crate) enum Inline {
    /// On the wire (as far as the kernel is concerned).
    Written,
    /// Taken, but the socket was full: the writer task finishes the flush, and needs
    /// the keep-alive guard to hold the process open until it has.
    Unflushed,
    /// Not attempted: a message was already written inline since the writer task last
    /// ran, something is queued or half-written before it, or the sink is busy. Queue it.
    Declined(Message),
    /// The write half failed or is gone; the connection is over (the reader notices).
    Failed,
}

pub(crate) struct Writer {
    /// The write half while idle; the writer task takes it out while it works, and it
    /// is gone for good once the connection has ended.
    sink: RefCell<Option<BoxSink>>,
    queue: RefCell<VecDeque<Queued>>,
    /// Set while tungstenite holds bytes an inline write could not flush, with the
    /// guard that keeps the process alive until the writer task has flushed them.
    unflushed: RefCell<Option<KeepAlive>>,
    /// Set by an inline write, cleared when the writer task runs: later sends queue up
    /// behind it and go out together.
    wrote_inline: Cell<bool>,
    work: Notify,
    ended: Cell<bool>,
    /// Set once nothing can send any more: the task ends the writer after the queue.
    end_when_idle: Cell<bool>,
    /// Set while someone waits in [`Writer::flushed`]; `idle` wakes them.
    idle_wanted: Cell<bool>,
    idle: Notify,
    task: RefCell<Option<AbortHandle>>,
}

impl Writer {
    /// Starts the writer task for `sink`.
    pub(crate) fn start(sink: BoxSink) -> Rc<Writer> {
        let writer = Rc::new(Writer {
            sink: RefCell::new(Some(sink)),
            queue: RefCell::new(VecDeque::new()),
            unflushed: RefCell::new(None),
            wrote_inline: Cell::new(false),
            work: Notify::new(),
            ended: Cell::new(false),
            end_when_idle: Cell::new(false),
            idle_wanted: Cell::new(false),
            idle: Notify::new(),
            task: RefCell::new(None),
        });
        let task = tokio::task::spawn_local(writer.clone().run());
        *writer.task.borrow_mut() = Some(task.abort_handle());
        writer
    }

    /// Writes `message` now if nothing is ahead of it; `keep_alive` makes the guard
    /// held while a partly written message waits for the writer task.
    pub(crate) fn write_inline(
        &self,
        message: Message,
        keep_alive: impl FnOnce() -> KeepAlive,
    ) -> Inline {
        if self.ended.get() {
            return Inline::Failed;
        }
        if self.wrote_inline.get() || self.has_work() {
            return Inline::Declined(message);
        }
        let Some(mut sink) = self.sink.borrow_mut().take() else {
            return Inline::Declined(message);
        };
        let mut context = Context::from_waker(Waker::noop());
        let outcome = match sink.as_mut().poll_ready(&mut context) {
            Poll::Pending => Inline::Declined(message),
            Poll::Ready(Err(_)) => Inline::Failed,
            Poll::Ready(Ok(())) => match sink.as_mut().start_send(message) {
                Err(_) => Inline::Failed,
                Ok(()) => match sink.as_mut().poll_flush(&mut context) {
                    Poll::Ready(Ok(())) => Inline::Written,
                    Poll::Ready(Err(_)) => Inline::Failed,
                    Poll::Pending => Inline::Unflushed,
                },
            },
        };
        match outcome {
            Inline::Failed => {
                drop(sink);
                self.end();
                return outcome;
            }
            Inline::Unflushed => *self.unflushed.borrow_mut() = Some(keep_alive()),
            Inline::Written | Inline::Declined(_) => {}
        }
        *self.sink.borrow_mut() = Some(sink);
        if !matches!(outcome, Inline::Declined(_)) {
            self.wrote_inline.set(true);
            self.work.notify_one();
        }
        outcome
    }

    /// Queues `queued` for the writer task. Returns false when the connection is over.
    pub(crate) fn enqueue(&self, queued: Queued) -> bool {
        if self.ended.get() {
            return false;
        }
        self.queue.borrow_mut().push_back(queued);
        self.work.notify_one();
        true
    }

    /// Drops the write half (closing the connection once the read half is gone too),
    /// everything queued, and the task.
    pub(crate) fn end(&self) {
        self.ended.set(true);
        if let Some(task) = self.task.borrow_mut().take() {
            task.abort();
        }
        drop(self.sink.borrow_mut().take());
        drop(std::mem::take(&mut *self.queue.borrow_mut()));
        drop(self.unflushed.borrow_mut().take());
        self.idle.notify_waiters();
    }

    /// Ends the writer once everything queued is written (at once when nothing is):
    /// for when no one can send or close any more.
    ///
    /// Bounded by [`ABANDONED_WRITE_LIMIT`]: with the socket object gone nothing
    /// else watches the peer, and a peer that stops reading would otherwise keep the
    /// queued messages (and with them the process) alive forever.
    pub(crate) fn end_when_idle(self: &Rc<Self>) {
        if self.is_idle() {
            self.end();
            return;
        }
        self.end_when_idle.set(true);
        // Outside the runtime (the VM torn down after the script ended) there is no
        // one to wait for: end now.
        if tokio::runtime::Handle::try_current().is_err() {
            self.end();
            return;
        }
        let writer = Rc::downgrade(self);
        tokio::task::spawn_local(async move {
            tokio::time::sleep(ABANDONED_WRITE_LIMIT).await;
            if let Some(writer) = writer.upgrade() {
                writer.end();
            }
        });
    }

    /// Resolves once everything queued so far is written and flushed, or the writer
    /// has ended. Not bounded in time: a peer that does not read keeps it waiting.
    pub(crate) async fn flushed(&self) {
        loop {
            let idle = self.idle.notified();
            if self.ended.get() || self.is_idle() {
                return;
            }
            self.idle_wanted.set(true);
            idle.await;
        }
    }

    fn has_work(&self) -> bool {
        !self.queue.borrow().is_empty() || self.unflushed.borrow().is_some()
    }

    /// Nothing queued or half-written, and the task is not writing.
    fn is_idle(&self) -> bool {
        self.sink.borrow().is_some() && !self.has_work()
    }

    async fn run(self: Rc<Self>) {
        loop {
            self.work.notified().await;
            self.wrote_inline.set(false);
            if !self.has_work() {
                continue;
            }
            let Some(mut sink) = self.sink.borrow_mut().take() else {
                return;
            };
            if self.drain(&mut sink).await {
                *self.sink.borrow_mut() = Some(sink);
                if self.end_when_idle.get() {
                    self.end();
                    return;
                }
                if self.idle_wanted.take() {
                    self.idle.notify_waiters();
                }
            } else {
                // The sink goes with this task; `end` cleans up the rest.
                self.end();
                return;
            }
        }
    }

    /// Writes everything queued, then flushes, until nothing is left. False when the
    /// write half failed.
    async fn drain(&self, sink: &mut BoxSink) -> bool {
        let mut written = Vec::new();
        loop {
            loop {
                let next = self.queue.borrow_mut().pop_front();
                let Some((message, keep_alive, room)) = next else {
                    break;
                };
                // The byte budget covers queued messages, not tungstenite's buffer.
                drop(room);
                written.push(keep_alive);
                if sink.feed(message).await.is_err() {
                    return false;
                }
            }
            if sink.flush().await.is_err() {
                return false;
            }
            written.clear();
            drop(self.unflushed.borrow_mut().take());
            if !self.has_work() {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// Messages queued on a socket that was dropped, to a peer that never reads, are
    /// given up on after the limit (with the process-holding guards they carry).
    #[test]
    fn an_abandoned_writer_to_a_peer_that_does_not_read_ends_after_the_limit() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, async {
            let (ours, _theirs) = tokio::io::duplex(1024);
            let stream = WebSocketStream::from_raw_socket(ours, Role::Server, None).await;
            let (sink, _read) = stream.split();
            let writer = Writer::start(Box::pin(sink));
            assert!(writer.enqueue((Message::binary(vec![0u8; 1 << 20]), None, None)));
            tokio::task::yield_now().await;
            let start = tokio::time::Instant::now();
            writer.end_when_idle();
            while !writer.ended.get() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                assert!(
                    start.elapsed() <= ABANDONED_WRITE_LIMIT + std::time::Duration::from_secs(1),
                    "the writer still waits on a peer that does not read"
                );
            }
            assert!(
                start.elapsed() >= ABANDONED_WRITE_LIMIT,
                "not before the limit"
            );
        });
    }
}
