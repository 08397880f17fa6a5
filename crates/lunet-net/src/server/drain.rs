//! Stopping a server: what `stop()` and SIGINT/SIGTERM set in motion, and how long
//! it may take.
//!
//! [`Drain::begin`] stops accepting (through the stop channel every connection and
//! the accept loop watch), closes the server's WebSockets with 1001, fixes the deadline (`shutdownTimeout` from now), and at
//! the deadline gives up on the handlers still running: their Luau threads are
//! cancelled, so a handler stuck in `task.wait(3600)` cannot hold the process open.
//! [`Drain::finished`] resolves once every connection and WebSocket of the server
//! has closed, which is what a signal waits for before the process exits.
//!
//! What each connection does when the server stops (close at once, finish a
//! response, wait for its handler until the deadline) is `connection`'s business;
//! this module only keeps the shared state.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use lunet_runtime::Scheduler;

use crate::ws::Closer;
use mlua::Thread;
use mlua::thread::ThreadStatus;
use rustc_hash::FxHashMap;
use tokio::sync::Notify;
use tokio::time::Instant;

/// One server's stop state.
pub(crate) struct Drain {
    scheduler: Rc<Scheduler>,
    /// The tasks waiting in a [`StopSignal`] (the accept loop and each connection),
    /// woken when the server starts stopping.
    stop_wakers: RefCell<HashMap<u64, Waker>>,
    next_waker: Cell<u64>,
    shutdown_timeout: Duration,
    deadline: Cell<Option<Instant>>,
    /// Handler threads that yielded and have not ended, by identity.
    running: RefCell<FxHashMap<usize, Thread>>,
    /// Handler threads still running whose caller stopped waiting (their client
    /// left): nothing else would cancel them at the deadline. Finished ones are
    /// dropped whenever another is added.
    orphans: RefCell<Vec<Thread>>,
    /// The server's WebSockets, closed with 1001 when it stops.
    websockets: RefCell<HashMap<u64, Closer>>,
    next_websocket: Cell<u64>,
    /// Connections and WebSockets still open.
    open: Cell<usize>,
    closed: Notify,
    /// Set at the deadline: handler failures from then on are the cancellation, not
    /// worth reporting.
    abandoned: Cell<bool>,
}

/// Resolves once its server starts stopping (see [`Drain::stop_signal`]). Must be
/// polled by one task only (its waker is taken at the first poll).
pub(crate) struct StopSignal {
    drain: Rc<Drain>,
    /// Where this waiter's waker is kept, once it has waited.
    key: Option<u64>,
}

impl Future for StopSignal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.drain.deadline.get().is_some() {
            return Poll::Ready(());
        }
        // Registered once: a `StopSignal` is only ever polled by the one task that
        // made it (the accept loop, or a connection's task), whose waker does not
        // change, so later polls cost no lookup at all.
        if this.key.is_none() {
            let key = this.drain.next_waker.get();
            this.drain.next_waker.set(key + 1);
            this.drain
                .stop_wakers
                .borrow_mut()
                .insert(key, cx.waker().clone());
            this.key = Some(key);
        }
        Poll::Pending
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.drain.stop_wakers.borrow_mut().remove(&key);
        }
    }
}

/// Counts one connection or WebSocket as open while it lives.
pub(crate) struct Open(Rc<Drain>);

impl Drop for Open {
    fn drop(&mut self) {
        let open = self.0.open.get() - 1;
        self.0.open.set(open);
        if open == 0 {
            self.0.closed.notify_waiters();
        }
    }
}

/// Keeps a WebSocket known to the drain while its handler runs.
pub(crate) struct WebSocketEntry<'a> {
    drain: &'a Drain,
    key: u64,
}

impl Drop for WebSocketEntry<'_> {
    fn drop(&mut self) {
        self.drain.websockets.borrow_mut().remove(&self.key);
    }
}

/// Keeps a handler thread (or a streaming response's body function) known to the
/// drain while its caller waits for it.
pub(crate) struct Running {
    drain: Rc<Drain>,
    key: usize,
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(thread) = self.drain.running.borrow_mut().remove(&self.key) else {
            return;
        };
        if thread.status() != ThreadStatus::Resumable {
            return; // it ended: its caller got the outcome
        }
        // Its caller stopped waiting (the connection was dropped) while it runs:
        // past the deadline it is given up on with the connection; before, it may
        // finish, and the deadline (if the server stops) cancels it.
        if self
            .drain
            .deadline()
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            self.drain.abandoned.set(true);
            let _ = self.drain.scheduler.cancel(&thread);
        } else {
            let mut orphans = self.drain.orphans.borrow_mut();
            orphans.retain(|orphan| orphan.status() == ThreadStatus::Resumable);
            orphans.push(thread);
        }
    }
}

impl Drain {
    pub(crate) fn new(scheduler: Rc<Scheduler>, shutdown_timeout: Duration) -> Rc<Drain> {
        Rc::new(Drain {
            scheduler,
            stop_wakers: RefCell::new(HashMap::new()),
            next_waker: Cell::new(0),
            shutdown_timeout,
            deadline: Cell::new(None),
            running: RefCell::new(FxHashMap::default()),
            orphans: RefCell::new(Vec::new()),
            websockets: RefCell::new(HashMap::new()),
            next_websocket: Cell::new(0),
            open: Cell::new(0),
            closed: Notify::new(),
            abandoned: Cell::new(false),
        })
    }

    /// A future that resolves once the server starts stopping. Polling it is a flag
    /// check (it runs on every wake of every connection task, so no channel or
    /// `Notify`, whose polls cost a lock and tokio's budget bookkeeping each).
    pub(crate) fn stop_signal(self: &Rc<Self>) -> StopSignal {
        StopSignal {
            drain: self.clone(),
            key: None,
        }
    }

    /// Starts stopping: no more connections, a deadline for the rest. False when the
    /// server was already stopping.
    pub(crate) fn begin(self: &Rc<Self>) -> bool {
        if self.deadline.get().is_some() {
            return false;
        }
        let deadline = Instant::now() + self.shutdown_timeout;
        self.deadline.set(Some(deadline));
        let wakers: Vec<Waker> = self
            .stop_wakers
            .borrow_mut()
            .drain()
            .map(|(_, w)| w)
            .collect();
        for waker in wakers {
            waker.wake();
        }
        let websockets: Vec<Closer> = self.websockets.borrow().values().cloned().collect();
        for socket in websockets {
            socket.going_away();
        }
        let drain = self.clone();
        tokio::task::spawn_local(async move {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = drain.finished() => {
                    // Every connection closed; handlers whose clients left may
                    // still run, and get until the deadline too.
                    if drain.running.borrow().is_empty() && !drain.has_orphans() {
                        return;
                    }
                    tokio::time::sleep_until(deadline).await;
                }
            }
            drain.abandon();
        });
        true
    }

    /// True once the server started stopping (responses then carry `Connection:
    /// close`).
    pub(crate) fn stopping(&self) -> bool {
        self.deadline.get().is_some()
    }

    /// When work still running is given up on; `None` until the server stops.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.get()
    }

    /// True once the deadline passed.
    pub(crate) fn abandoned(&self) -> bool {
        self.abandoned.get()
    }

    fn abandon(&self) {
        self.abandoned.set(true);
        let mut threads: Vec<Thread> = self.running.borrow_mut().drain().map(|(_, t)| t).collect();
        threads.append(&mut self.orphans.borrow_mut());
        for thread in threads {
            let _ = self.scheduler.cancel(&thread);
        }
    }

    /// True while a handler whose client left still runs.
    fn has_orphans(&self) -> bool {
        let mut orphans = self.orphans.borrow_mut();
        orphans.retain(|orphan| orphan.status() == ThreadStatus::Resumable);
        !orphans.is_empty()
    }

    /// Counts a connection or WebSocket as open until the guard drops.
    pub(crate) fn open(self: &Rc<Self>) -> Open {
        self.open.set(self.open.get() + 1);
        Open(self.clone())
    }

    /// Resolves once nothing of the server is open.
    pub(crate) async fn finished(&self) {
        loop {
            let closed = self.closed.notified();
            if self.open.get() == 0 {
                return;
            }
            closed.await;
        }
    }

    /// Registers a server-side WebSocket, to be closed with 1001 when the server
    /// stops, until the guard drops.
    pub(crate) fn websocket(&self, closer: Closer) -> WebSocketEntry<'_> {
        let key = self.next_websocket.get();
        self.next_websocket.set(key + 1);
        self.websockets.borrow_mut().insert(key, closer);
        WebSocketEntry { drain: self, key }
    }

    /// Registers a handler thread that yielded, until the guard drops.
    pub(crate) fn running(self: &Rc<Self>, thread: Thread) -> Running {
        let key = thread.to_pointer() as usize;
        self.running.borrow_mut().insert(key, thread);
        Running {
            drain: self.clone(),
            key,
        }
    }
}
