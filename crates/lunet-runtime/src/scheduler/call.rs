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
//! and it ends, its outcome (converted to the caller's type) goes through a channel to
//! the caller, and an error is
//! the caller's to report, not an uncaught error of the script. (A watched thread
//! resumed by Luau code instead of the scheduler, which only a script that resumes
//! its own handler thread could do, would never report.)

use std::cell::RefCell;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use mlua::thread::ThreadStatus;
use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue, Result, Thread};
use tokio::sync::oneshot;

use super::Scheduler;

/// How a [`Scheduler::call`] ended, or will end: the function's return values as `R`.
pub enum CallOutcome<R> {
    /// The function returned (or errored) without yielding.
    Done(Result<R>),
    /// The function yielded; the receiver gets its outcome when it ends.
    Pending(oneshot::Receiver<Result<R>>),
}

/// Where a watched thread's outcome goes: converts it and sends it to the caller.
type Deliver = Box<dyn FnOnce(Result<MultiValue>)>;

type Watcher = (Thread, Deliver);

/// Threads started by `call` that yielded, with where to send their outcome. Entries
/// hold their thread, so a thread's identity cannot be reused while it is watched.
#[derive(Default)]
pub(super) struct Watchers {
    map: RefCell<FxHashMap<usize, Watcher>>,
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
            Some((_thread, deliver)) => {
                deliver(outcome);
                None
            }
            None => Some(outcome),
        }
    }
}

impl Scheduler {
    /// Runs `func(args...)` in a new Luau thread, at once. See [`CallOutcome`].
    pub fn call<R: FromLuaMulti + 'static>(
        self: &Rc<Self>,
        lua: &Lua,
        func: &Function,
        args: impl IntoLuaMulti,
    ) -> Result<CallOutcome<R>> {
        let thread = lua.create_thread(func.clone())?;
        // Read straight off the thread's stack. If the thread yielded, these are the
        // values it yielded, which are not used.
        let result = thread.resume::<R>(args);
        if result.is_err() || thread.status() != ThreadStatus::Resumable {
            return Ok(CallOutcome::Done(result));
        }
        let (sender, receiver) = oneshot::channel();
        // Weak: the scheduler (which holds this) lives inside the VM.
        let lua = lua.weak();
        let deliver: Deliver = Box::new(move |outcome: Result<MultiValue>| {
            if let Some(lua) = lua.try_upgrade() {
                let _ = sender.send(outcome.and_then(|values| R::from_lua_multi(values, &lua)));
            }
        });
        let key = thread.to_pointer() as usize;
        self.watchers
            .map
            .borrow_mut()
            .insert(key, (thread, deliver));
        Ok(CallOutcome::Pending(receiver))
    }
}
