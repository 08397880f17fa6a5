//! Running a Luau function in its own thread and learning how it ended.
//!
//! [`Scheduler::call`] is what a host (such as `net.serve`) uses to run a script
//! callback per event. The function runs at once as the body of its own thread; its
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
//!
//! A thread that finished without yielding is kept for the next call
//! ([`SpareThreads`]) instead of being left to the GC, unless a script may hold a
//! reference to it: the only way to get one is `coroutine.running()`, which the
//! scheduler wraps to count its calls, and a thread is reused only when no call
//! happened while it ran. A script can therefore never see its handler's thread
//! running someone else's request.
//!
//! This runs once per request of `net.serve`, so the thread bookkeeping reads the
//! thread's state straight from Luau (`lua_status`, `lua_gettop`) and resets a
//! finished thread with three stack operations: mlua's `Thread::status` and
//! `Thread::reset` each ask `lua_getinfo` for call frames, which cost ~700
//! instructions per request between them (measured with callgrind on the hello
//! serve bench), and a thread that has just returned from a resume has none.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rustc_hash::FxHashMap;

use mlua::{FromLuaMulti, Function, IntoLua, IntoLuaMulti, Lua, MultiValue, Result, Thread, ffi};
use tokio::sync::oneshot;

use super::Scheduler;

/// How a [`Scheduler::call`] ended, or will end: the function's return values as `R`.
pub enum CallOutcome<R> {
    /// The function returned (or errored) without yielding.
    Done(Result<R>),
    /// The function yielded; the receiver gets its outcome when it ends. The thread
    /// is the one running it, for a caller that may have to give up on it
    /// ([`Scheduler::cancel`], which sends the receiver a cancellation error).
    Pending(Thread, oneshot::Receiver<Result<R>>),
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

/// The most finished threads kept for reuse.
const MAX_SPARE_THREADS: usize = 64;

/// A thread of [`Scheduler::call`] and its Luau state (what `lua_topointer` gives for
/// a thread, valid as long as the `Thread` is held).
struct CallThread {
    thread: Thread,
    state: *mut ffi::lua_State,
}

impl CallThread {
    fn new(thread: Thread) -> CallThread {
        let state = thread.to_pointer() as *mut ffi::lua_State;
        CallThread { thread, state }
    }

    /// Whether the thread's last resume ended in a yield.
    fn yielded(&self) -> bool {
        // SAFETY: `state` is the live state of the thread `self` holds; reading its
        // status has no effect.
        unsafe { ffi::lua_status(self.state) == ffi::LUA_YIELD }
    }

    /// Whether the thread's last resume returned (not errored, not yielded). mlua
    /// clears the thread's stack after a resume, so a returned thread holds nothing.
    fn returned(&self) -> bool {
        // SAFETY: as in `yielded`.
        unsafe { ffi::lua_status(self.state) == ffi::LUA_OK && ffi::lua_gettop(self.state) == 0 }
    }

    /// Makes a [`returned`](Self::returned) thread ready to run `func` again, as
    /// mlua's `Thread::reset` would: `func` alone on its stack, and the main thread's
    /// globals (a handler may have replaced its thread's with `setfenv(0, ...)`).
    fn reset_returned(&self, lua: &Lua, func: &Function) -> Result<()> {
        lua.exec_raw_lua(|raw| {
            // SAFETY: `raw` is the locked VM `func` and the thread belong to. The
            // thread is not running (it returned), and its stack is empty, so it has
            // room for the two values pushed on it; `raw.state()` is made room for
            // before `func` is pushed, and `lua_xmove` moves it off again.
            unsafe {
                if ffi::lua_checkstack(raw.state(), 1) == 0 {
                    return Err(mlua::Error::StackError);
                }
                func.push_into_stack(raw)?;
                ffi::lua_xmove(raw.state(), self.state, 1);
                ffi::lua_xpush(
                    ffi::lua_mainthread(self.state),
                    self.state,
                    ffi::LUA_GLOBALSINDEX,
                );
                ffi::lua_replace(self.state, ffi::LUA_GLOBALSINDEX);
            }
            Ok(())
        })
    }
}

/// Finished threads of [`Scheduler::call`] that no script can refer to, for reuse.
#[derive(Default)]
pub(super) struct SpareThreads {
    /// Each thread is ready to run the function whose address is beside it.
    threads: RefCell<Vec<(CallThread, usize)>>,
    /// How many times `coroutine.running()` has been called, ever.
    escapes: Cell<u64>,
}

impl SpareThreads {
    /// Records a `coroutine.running()` call: the thread that made it (or any thread
    /// running meanwhile) may now be referred to by the script.
    pub(super) fn note_escape(&self) {
        self.escapes.set(self.escapes.get().wrapping_add(1));
    }

    #[cfg(test)]
    pub(super) fn count(&self) -> usize {
        self.threads.borrow().len()
    }

    /// A thread ready to run `func` (whose address is `func_key`): a spare one
    /// (reset to `func` unless it already is), or a new one.
    fn take(&self, lua: &Lua, func: &Function, func_key: usize) -> Result<CallThread> {
        let spare = self.threads.borrow_mut().pop();
        match spare {
            Some((call, ready_for)) => {
                if ready_for != func_key {
                    call.thread.reset(func.clone())?;
                }
                Ok(call)
            }
            None => Ok(CallThread::new(lua.create_thread(func.clone())?)),
        }
    }

    /// Keeps `call` if it returned and no script can refer to it (`escapes` is the
    /// count from before it ran). It is reset to `func` at once; its stack is
    /// already clear, so what it returned is not kept alive.
    fn give_back(
        &self,
        lua: &Lua,
        call: CallThread,
        func: &Function,
        func_key: usize,
        escapes: u64,
    ) {
        if !call.returned() || self.escapes.get() != escapes {
            return;
        }
        let mut threads = self.threads.borrow_mut();
        if threads.len() < MAX_SPARE_THREADS && call.reset_returned(lua, func).is_ok() {
            threads.push((call, func_key));
        }
    }
}

impl Scheduler {
    /// Runs `func(args...)` in its own Luau thread (a spare one when there is one), at
    /// once. See [`CallOutcome`].
    pub fn call<R: FromLuaMulti + 'static>(
        self: &Rc<Self>,
        lua: &Lua,
        func: &Function,
        args: impl IntoLuaMulti,
    ) -> Result<CallOutcome<R>> {
        let escapes = self.spare_threads.escapes.get();
        let func_key = func.to_pointer() as usize;
        let call = self.spare_threads.take(lua, func, func_key)?;
        // Read straight off the thread's stack. If the thread yielded, these are the
        // values it yielded, which are not used.
        let result = call.thread.resume::<R>(args);
        if result.is_err() || !call.yielded() {
            self.spare_threads
                .give_back(lua, call, func, func_key, escapes);
            return Ok(CallOutcome::Done(result));
        }
        let thread = call.thread;
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
            .insert(key, (thread.clone(), deliver));
        Ok(CallOutcome::Pending(thread, receiver))
    }
}
