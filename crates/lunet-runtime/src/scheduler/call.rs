//! Running a Luau function in a new thread and learning how it ended.
//!
//! [`Scheduler::call`] is what a host (such as `net.serve`) uses to run a script
//! callback per event. The function runs at once as the body of a fresh thread; its
//! outcome is its first return value, or its error with the Luau stack trace at the
//! point of failure (mlua takes the trace from the dead thread, so no `xpcall`
//! frame is needed). If it finishes without yielding, the outcome is returned
//! directly with no bookkeeping at all (the common, fast case); the arguments are
//! pushed straight onto the thread's stack and the result read straight off it. If it
//! yields, the thread is registered as *watched*: when the scheduler later resumes it
//! and it ends, its outcome goes through a channel to the caller, and an error is
//! the caller's to report, not an uncaught error of the script. (A watched thread
//! resumed by Luau code instead of the scheduler, which only a script that resumes
//! its own handler thread could do, would never report.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use mlua::thread::ThreadStatus;
use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Result, Thread, Value};
use tokio::sync::oneshot;

use super::Scheduler;

/// How a [`Scheduler::call`] ended, or will end.
pub enum CallOutcome {
    /// The function returned (or errored) without yielding.
    Done(Result<Value>),
    /// The function yielded; the receiver gets its outcome when it ends.
    Pending(oneshot::Receiver<Result<Value>>),
}

type Watcher = (Thread, oneshot::Sender<Result<Value>>);

/// Threads started by `call` that yielded, with where to send their outcome. Entries
/// hold their thread, so a thread's identity cannot be reused while it is watched.
#[derive(Default)]
pub(super) struct Watchers {
    map: RefCell<HashMap<usize, Watcher>>,
}

impl Watchers {
    pub(super) fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }

    /// Delivers the outcome of a thread that has just ended, if it is watched. Gives
    /// the outcome back when nobody watches the thread.
    pub(super) fn complete(
        &self,
        thread: &Thread,
        outcome: Result<MultiValue>,
    ) -> Option<Result<MultiValue>> {
        let key = thread.to_pointer() as usize;
        let watcher = self.map.borrow_mut().remove(&key);
        match watcher {
            Some((_thread, sender)) => {
                let first = outcome.map(|values| values.into_iter().next().unwrap_or(Value::Nil));
                let _ = sender.send(first);
                None
            }
            None => Some(outcome),
        }
    }
}

impl Scheduler {
    /// Runs `func(args...)` in a new Luau thread, at once. See [`CallOutcome`].
    pub fn call(
        self: &Rc<Self>,
        lua: &Lua,
        func: &Function,
        args: impl IntoLuaMulti,
    ) -> Result<CallOutcome> {
        let thread = lua.create_thread(func.clone())?;
        // If the thread yielded, the value is whatever it yielded, which is not used.
        let result = thread.resume::<Value>(args);
        if result.is_err() || thread.status() != ThreadStatus::Resumable {
            return Ok(CallOutcome::Done(result));
        }
        let (sender, receiver) = oneshot::channel();
        let key = thread.to_pointer() as usize;
        self.watchers.map.borrow_mut().insert(key, (thread, sender));
        Ok(CallOutcome::Pending(receiver))
    }
}
