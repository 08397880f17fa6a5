//! Running a Luau function in a new thread and learning how it ended.
//!
//! [`Scheduler::call`] is what a host (such as `net.serve`) uses to run a script
//! callback per event. The function runs at once in a fresh thread through a
//! small Luau trampoline that catches its error with a stack trace (`xpcall`). If it
//! finishes without yielding, the outcome is returned directly, with no bookkeeping
//! at all (the common, fast case). If it yields, the thread is registered as
//! *watched*: when the scheduler later resumes it and it finishes, its outcome goes
//! through a channel to the caller. (A watched thread resumed by Luau code instead of
//! the scheduler, which only a script that resumes its own handler thread could do,
//! would never report.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use mlua::thread::ThreadStatus;
use mlua::{Error, Function, Lua, MultiValue, Result, Thread, Value};
use tokio::sync::oneshot;

use super::Scheduler;

/// How a [`Scheduler::call`] ended, or will end.
pub enum CallOutcome {
    /// The function returned (or errored) without yielding.
    Done(Result<MultiValue>),
    /// The function yielded; the receiver gets its outcome when it ends.
    Pending(oneshot::Receiver<Result<MultiValue>>),
}

type Watcher = (Thread, oneshot::Sender<Result<MultiValue>>);

/// Threads started by `call` that yielded, with where to send their outcome. Entries
/// hold their thread, so a thread's identity cannot be reused while it is watched.
#[derive(Default)]
pub(super) struct Watchers {
    map: RefCell<HashMap<usize, Watcher>>,
}

/// Turns the trampoline's `(ok, ...)` into a result; an error carries its traceback.
fn outcome(mut values: MultiValue) -> Result<MultiValue> {
    match values.pop_front() {
        Some(Value::Boolean(true)) => Ok(values),
        _ => {
            let message = match values.pop_front() {
                Some(Value::String(s)) => s.to_string_lossy(),
                Some(other) => format!("{other:?}"),
                None => "unknown error".to_string(),
            };
            Err(Error::runtime(message))
        }
    }
}

impl Watchers {
    pub(super) fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }

    /// Delivers the outcome of a watched thread that has just finished.
    pub(super) fn complete(&self, thread: &Thread, values: MultiValue) {
        let key = thread.to_pointer() as usize;
        let watcher = self.map.borrow_mut().remove(&key);
        if let Some((_thread, sender)) = watcher {
            let _ = sender.send(outcome(values));
        }
    }
}

pub(super) fn create_trampoline(lua: &Lua) -> Result<Function> {
    lua.load(
        r#"
        local xpcall, traceback, tostring = ...
        local function handler(e)
            return traceback(tostring(e), 2)
        end
        return function(f, ...)
            return xpcall(f, handler, ...)
        end
        "#,
    )
    .set_name("=[lunet call]")
    .call((
        lua.globals().get::<Function>("xpcall")?,
        lua.globals()
            .get::<mlua::Table>("debug")?
            .get::<Function>("traceback")?,
        lua.globals().get::<Function>("tostring")?,
    ))
}

impl Scheduler {
    /// Runs `func(args...)` in a new Luau thread, at once. See [`CallOutcome`].
    pub fn call(
        self: &Rc<Self>,
        lua: &Lua,
        func: Function,
        mut args: MultiValue,
    ) -> Result<CallOutcome> {
        let trampoline = self.glue_fn(|g| g.trampoline.clone());
        let thread = lua.create_thread(trampoline)?;
        args.push_front(Value::Function(func));
        let values = thread.resume::<MultiValue>(args)?;
        if thread.status() != ThreadStatus::Resumable {
            return Ok(CallOutcome::Done(outcome(values)));
        }
        let (sender, receiver) = oneshot::channel();
        let key = thread.to_pointer() as usize;
        self.watchers.map.borrow_mut().insert(key, (thread, sender));
        Ok(CallOutcome::Pending(receiver))
    }
}
