//! Parked threads: Luau threads waiting on a Rust future, keyed so that a completion
//! resumes exactly the wait it belongs to.
//!
//! Each park gets a fresh [`ParkId`] from a counter the scheduler owns. The table is
//! looked up by the thread's identity, but every entry holds a strong reference to its
//! thread, so the thread cannot be collected (and its address reused by another
//! thread) while the entry exists; and a completion only resumes the thread when the
//! entry still carries the completion's own park id. A thread that was parked again
//! (or cancelled) in the meantime is therefore never resumed by a stale future.
//!
//! A wait is either a future (a task awaits it, then resumes the thread: [`Scheduler::park`])
//! or a [`Waiter`]: no task at all, just the entry, completed by whichever Rust code
//! comes by the thread's values (a WebSocket's reader hands a message straight to
//! the thread waiting in `next()`, with no channel or task in between).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use mlua::thread::ThreadStatus;
use mlua::{IntoLuaMulti, Lua, Result, Thread, WeakLua};
use tokio::task::AbortHandle;

use super::Scheduler;

/// Identifies one wait of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParkId(u64);

struct Entry {
    id: ParkId,
    thread: Thread,
    /// The task awaiting the thread's future; none for a [`Waiter`].
    task: Option<AbortHandle>,
}

#[derive(Default)]
pub(super) struct ParkTable {
    next_id: Cell<u64>,
    /// Keyed by thread address: not chosen by anyone outside, so the fast Fx hash
    /// (not SipHash's flood resistance) is the right trade on this hot path.
    entries: RefCell<FxHashMap<usize, Entry>>,
}

fn key(thread: &Thread) -> usize {
    thread.state() as usize
}

impl ParkTable {
    fn next_id(&self) -> ParkId {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        ParkId(id)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    /// Takes the entry of the wait `id` on thread `key`, if it is still current.
    fn take(&self, key: usize, id: ParkId) -> Option<Thread> {
        let mut entries = self.entries.borrow_mut();
        match entries.get(&key) {
            Some(entry) if entry.id == id => entries.remove(&key).map(|e| e.thread),
            _ => None,
        }
    }

    /// Records the wait `id` of `thread`, replacing (and stopping) an older one.
    fn insert(&self, thread: Thread, id: ParkId, task: Option<AbortHandle>) {
        let entry = Entry { id, thread, task };
        if let Some(old) = self.entries.borrow_mut().insert(entry.key(), entry)
            && let Some(task) = old.task
        {
            task.abort();
        }
    }

    /// Drops the current wait of `thread`, if any, and stops its future.
    pub(super) fn unpark_thread(&self, thread: &Thread) {
        if let Some(entry) = self.entries.borrow_mut().remove(&key(thread))
            && let Some(task) = entry.task
        {
            task.abort();
        }
    }
}

impl Entry {
    fn key(&self) -> usize {
        key(&self.thread)
    }
}

/// Proof that the calling thread was parked as a [`Waiter`]; what a function made
/// with [`create_waiting_function`](super::create_waiting_function) returns to make
/// its caller wait.
pub struct Parked(pub(super) ());

/// A thread parked until Rust code hands it its values with [`Waiter::complete`]
/// (see [`Scheduler::park_waiter`]). A waiter that is dropped uncompleted leaves
/// its thread waiting (and the process alive): whoever holds one must complete it
/// once its values exist, or when they never will (a closed connection).
pub struct Waiter {
    lua: WeakLua,
    key: usize,
    id: ParkId,
}

impl Waiter {
    /// Resumes the thread with `values` returned from its call, then runs what it
    /// deferred, as a completed future would. When the thread no longer waits for
    /// this waiter (it was cancelled with `task.cancel` or closed with
    /// `coroutine.close`, or the VM is gone), the values are handed back, so a
    /// message can go to another waiter instead. Must be called from a task, never
    /// from inside a Luau call: the thread must have yielded.
    pub fn complete<A: IntoLuaMulti>(self, values: A) -> std::result::Result<(), A> {
        let Some(lua) = self.lua.try_upgrade() else {
            return Err(values);
        };
        let scheduler = Scheduler::of(&lua);
        match scheduler.parked.take(self.key, self.id) {
            // A thread closed by `coroutine.close` cannot take them either.
            Some(thread) if thread.status() == ThreadStatus::Resumable => {
                scheduler.resume_from_task(&lua, thread, Ok(values));
                Ok(())
            }
            _ => Err(values),
        }
    }
}

impl Scheduler {
    /// Parks `thread` until `future` resolves, then resumes it with the future's values
    /// (or its error raised), right there in the task that awaited the future. The
    /// thread must yield (or be new) by the time the future resolves; the scheduler
    /// skips it if it is not resumable then.
    /// While parked threads exist the process stays alive.
    pub fn park<R, Fut>(self: &Rc<Self>, lua: &Lua, thread: Thread, future: Fut) -> ParkId
    where
        R: IntoLuaMulti + 'static,
        Fut: Future<Output = Result<R>> + 'static,
    {
        let id = self.parked.next_id();
        let thread_key = key(&thread);
        let scheduler = self.clone();
        let lua = lua.clone();
        let task = tokio::task::spawn_local(async move {
            let result = future.await;
            if let Some(thread) = scheduler.parked.take(thread_key, id) {
                scheduler.resume_from_task(&lua, thread, result);
            }
        });
        self.parked.insert(thread, id, Some(task.abort_handle()));
        id
    }

    /// Parks the thread calling a Luau function (from inside that function's Rust
    /// body) until the returned [`Waiter`] is completed. The function returns the
    /// [`Parked`] proof, and its caller yields.
    pub fn park_waiter(&self, lua: &Lua) -> (Waiter, Parked) {
        let thread = lua.current_thread();
        let id = self.parked.next_id();
        let waiter = Waiter {
            lua: lua.weak(),
            key: key(&thread),
            id,
        };
        self.parked.insert(thread, id, None);
        (waiter, Parked(()))
    }
}
