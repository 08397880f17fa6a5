//! Parked threads: Luau threads waiting on a Rust future, keyed so that a completion
//! resumes exactly the wait it belongs to.
//!
//! Each park gets a fresh [`ParkId`] from a counter the scheduler owns. The table is
//! looked up by the thread's identity, but every entry holds a strong reference to its
//! thread, so the thread cannot be collected (and its address reused by another
//! thread) while the entry exists; and a completion only resumes the thread when the
//! entry still carries the completion's own park id. A thread that was parked again
//! (or cancelled) in the meantime is therefore never resumed by a stale future.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use mlua::{IntoLuaMulti, Lua, Result, Thread};
use tokio::task::AbortHandle;

use super::Scheduler;

/// Identifies one wait of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParkId(u64);

struct Entry {
    id: ParkId,
    thread: Thread,
    task: AbortHandle,
}

#[derive(Default)]
pub(super) struct ParkTable {
    next_id: Cell<u64>,
    /// Keyed by thread address: not chosen by anyone outside, so the fast Fx hash
    /// (not SipHash's flood resistance) is the right trade on this hot path.
    entries: RefCell<FxHashMap<usize, Entry>>,
}

fn key(thread: &Thread) -> usize {
    thread.to_pointer() as usize
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

    /// Drops the current wait of `thread`, if any, and stops its future.
    pub(super) fn unpark_thread(&self, thread: &Thread) {
        if let Some(entry) = self.entries.borrow_mut().remove(&key(thread)) {
            entry.task.abort();
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
        let entry = Entry {
            id,
            thread,
            task: task.abort_handle(),
        };
        if let Some(old) = self.parked.entries.borrow_mut().insert(thread_key, entry) {
            old.task.abort();
        }
        id
    }
}
