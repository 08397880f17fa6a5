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
//! thread's state straight from Luau (`lua_status`, `lua_gettop`) and readies a
//! spare thread with a few stack operations: mlua's `Thread::status` and
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
        let key = thread.state() as usize;
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

/// Whether `thread`'s last resume ended in a yield.
fn yielded(thread: &Thread) -> bool {
    // SAFETY: `state()` is the live state of the thread `thread` holds; reading its
    // status has no effect.
    unsafe { ffi::lua_status(thread.state()) == ffi::LUA_YIELD }
}

/// Whether `thread`'s last resume returned (not errored, not yielded). mlua clears
/// the thread's stack after a resume, so a returned thread holds nothing.
fn returned(thread: &Thread) -> bool {
    // SAFETY: as in `yielded`.
    unsafe {
        let state = thread.state();
        ffi::lua_status(state) == ffi::LUA_OK && ffi::lua_gettop(state) == 0
    }
}

/// Finished threads of [`Scheduler::call`] that no script can refer to, for reuse.
/// A spare thread holds nothing (its stack is empty, its globals are the VM's), so
/// keeping it keeps no function, and nothing a function captured, alive.
#[derive(Default)]
pub(super) struct SpareThreads {
    threads: RefCell<Vec<Thread>>,
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

    /// A thread ready to run `func`: a spare one with `func` pushed onto its empty
    /// stack (what mlua's `Thread::reset` would do, without its frame check), or a
    /// new one.
    fn take(&self, lua: &Lua, func: &Function) -> Result<Thread> {
        let Some(thread) = self.threads.borrow_mut().pop() else {
            return lua.create_thread(func.clone());
        };
        // mlua re-exports this raw access as `#[doc(hidden)]`: the workspace pins
        // mlua's exact version, and an upgrade must re-check this block.
        lua.exec_raw_lua(|raw| {
            // SAFETY: `raw` is the locked VM `func` and the thread belong to, and the
            // thread is a returned one (see `give_back`), so not running. Luau's
            // `lua_xmove` would raise if it had to grow the target stack and could
            // not, but a returned thread's empty stack keeps at least LUA_MINSTACK
            // (20) free slots, so it never grows it for one value; `raw.state()` is
            // made room for first.
            unsafe {
                if ffi::lua_checkstack(raw.state(), 1) == 0 {
                    return Err(mlua::Error::StackError);
                }
                func.push_into_stack(raw)?;
                ffi::lua_xmove(raw.state(), thread.state(), 1);
            }
            Ok(())
        })?;
        Ok(thread)
    }

    /// Keeps `thread` if it returned and no script can refer to it (`escapes` is the
    /// count from before it ran), with the main thread's globals back (a function may
    /// have replaced its thread's with `setfenv(0, ...)`). Its stack is already
    /// clear, so what it returned is not kept alive.
    fn give_back(&self, thread: Thread, escapes: u64) {
        if !returned(&thread) || self.escapes.get() != escapes {
            return;
        }
        let mut threads = self.threads.borrow_mut();
        if threads.len() < MAX_SPARE_THREADS {
            // SAFETY: the thread returned (not running) and is held by `thread`;
            // its empty stack keeps at least LUA_MINSTACK (20) free slots, so
            // `lua_xpush` pushes the one value without growing it (growing is what
            // could raise), and `lua_replace` pops it into the globals slot.
            unsafe {
                let state = thread.state();
                ffi::lua_xpush(ffi::lua_mainthread(state), state, ffi::LUA_GLOBALSINDEX);
                ffi::lua_replace(state, ffi::LUA_GLOBALSINDEX);
            }
            threads.push(thread);
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
        let thread = self.spare_threads.take(lua, func)?;
        // Read straight off the thread's stack. If the thread yielded, these are the
        // values it yielded, which are not used (nor is a failure to convert them):
        // a yielded thread is pending whatever it yielded.
        let result = thread.resume::<R>(args);
        if !yielded(&thread) {
            self.spare_threads.give_back(thread, escapes);
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
        let key = thread.state() as usize;
        self.watchers
            .map
            .borrow_mut()
            .insert(key, (thread.clone(), deliver));
        Ok(CallOutcome::Pending(thread, receiver))
    }
}
