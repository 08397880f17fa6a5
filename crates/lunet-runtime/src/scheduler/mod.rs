//! The Luau thread scheduler: Lune's task semantics on a single-threaded tokio runtime.
//!
//! The scheduler owns every resumption of a Luau thread that waits on something: a
//! thread that awaits a Rust future is *parked* under a park id the scheduler hands
//! out, and when the future completes the scheduler resumes that thread (in the task
//! that awaited the future), whoever resumed it before (a Luau `coroutine.resume`
//! cannot strand it). It also runs `task.spawn` at once, owns the queue behind
//! `task.defer`, and decides when the process has nothing
//! left to do. It does not own the Luau VM set-up, `require`, or any library; those
//! use the public interface here:
//!
//! - [`create_async_function`]: a Luau function that yields its caller until a Rust
//!   future resolves (this is how `task.wait` and most of `@lune/net` do I/O);
//! - [`create_waiting_function`]: a Luau function that answers at once or parks its
//!   caller as a [`Waiter`] for other Rust code to complete (a WebSocket's `next()`);
//! - [`Scheduler::spawn`] / [`Scheduler::defer`]: run a function or thread now or later;
//! - [`Scheduler::call`]: run a function in its own thread and get its outcome, whether
//!   it finishes at once or yields first (this is how `net.serve` runs handlers);
//! - [`Scheduler::keep_alive`]: hold the process open while a resource (a server) runs;
//!   [`Scheduler::keep_alive_while_reachable`] for one a script holds as an object (a
//!   listener), which the garbage collector may close.
//!
//! ```ignore
//! let sleep = create_async_function(&lua, "sleep", |_lua, secs: f64| async move {
//!     tokio::time::sleep(Duration::from_secs_f64(secs)).await;
//!     Ok(())
//! })?;
//! ```
//!
//! Everything runs on one OS thread, in a tokio `LocalRuntime` (or a `LocalSet`), as
//! `spawn_local` tasks; nothing here is `Send`.

mod call;
mod park;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mlua::thread::ThreadStatus;
use mlua::{Error, Function, IntoLuaMulti, Lua, MultiValue, Result, Thread, Value};
use tokio::sync::Notify;

pub use call::CallOutcome;
pub use park::{ParkId, Parked, Waiter};

use crate::function::{Args, Flagged};
use crate::report;

/// The scheduler state, one per Luau VM, stored in the VM's app data.
pub struct Scheduler {
    /// Threads deferred with `task.defer` (run once the running thread yields) and
    /// with `task.delay` (whose timer starts then, see [`Scheduler::delay`]).
    deferred: RefCell<VecDeque<Deferred>>,
    /// Threads waiting on Rust futures, and threads waiting for a caller (see `call`).
    parked: park::ParkTable,
    watchers: call::Watchers,
    spare_threads: call::SpareThreads,
    /// Resources (servers) that keep the process alive while they run.
    keep_alive: Cell<usize>,
    /// How many of those are objects that close when collected (see
    /// [`Scheduler::keep_alive_while_reachable`]).
    collectable: Cell<usize>,
    /// Wakes the run loop when work arrives from a future or another task.
    wake: Notify,
    /// Set once any thread ended with an uncaught error; the process then exits 1.
    failed: Cell<bool>,
    /// Woken at each uncaught error, for [`Scheduler::failure`].
    failure: Notify,
    /// Luau helpers compiled once: the async-function glue and `coroutine.close`.
    glue: RefCell<Option<Glue>>,
}

/// A deferred thread, its arguments, and for `task.delay` how long it then waits.
struct Deferred {
    thread: Thread,
    args: MultiValue,
    after: Option<Duration>,
}

struct Glue {
    make_async: Function,
    close: Function,
}

/// A guard that keeps the process alive until dropped (see [`Scheduler::keep_alive`]).
pub struct KeepAlive {
    scheduler: Rc<Scheduler>,
    collectable: bool,
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        if self.collectable {
            let scheduler = &self.scheduler;
            scheduler
                .collectable
                .set(scheduler.collectable.get().saturating_sub(1));
        }
        let n = self.scheduler.keep_alive.get().saturating_sub(1);
        self.scheduler.keep_alive.set(n);
        // Only the last guard can let the process end; waking the run loop for the
        // others would only cost it a turn.
        if n == 0 {
            self.scheduler.wake.notify_one();
        }
    }
}

impl Scheduler {
    /// Installs a scheduler into `lua`. Called once by the runtime when it builds the VM.
    pub fn install(lua: &Lua) -> Result<Rc<Scheduler>> {
        let scheduler = Rc::new(Scheduler {
            deferred: RefCell::new(VecDeque::new()),
            parked: park::ParkTable::default(),
            watchers: call::Watchers::default(),
            spare_threads: call::SpareThreads::default(),
            keep_alive: Cell::new(0),
            collectable: Cell::new(0),
            wake: Notify::new(),
            failed: Cell::new(false),
            failure: Notify::new(),
            glue: RefCell::new(None),
        });
        lua.set_app_data(scheduler.clone());
        let glue = Glue {
            make_async: lua
                .load(include_str!("async_glue.luau"))
                .set_name("=[lunet scheduler]")
                .eval()?,
            close: lua
                .globals()
                .get::<mlua::Table>("coroutine")?
                .get("close")?,
        };
        *scheduler.glue.borrow_mut() = Some(glue);
        // `coroutine.running()` is how a script gets hold of its own thread; `call`
        // only reuses threads that nobody asked for (see `call::SpareThreads`).
        let coroutine = lua.globals().get::<mlua::Table>("coroutine")?;
        let note = lua.create_function(|lua, ()| {
            Scheduler::of(lua).spare_threads.note_escape();
            Ok(())
        })?;
        let running: Function = lua
            .load("local running, note = ... return function() note() return running() end")
            .set_name("=[lunet scheduler]")
            .call((coroutine.get::<Function>("running")?, note))?;
        coroutine.set("running", running)?;
        Ok(scheduler)
    }

    /// The scheduler of `lua`. Panics if the VM was not built by the Lunet runtime,
    /// which is a programming error, not a script error.
    pub fn of(lua: &Lua) -> Rc<Scheduler> {
        lua.app_data_ref::<Rc<Scheduler>>()
            .expect("the Lua VM has no Lunet scheduler installed")
            .clone()
    }

    /// Runs `thread` (or a new thread running a function) now, until it first yields,
    /// with `args`. This is `task.spawn`. An uncaught error is reported, not returned.
    pub fn spawn(&self, lua: &Lua, thread: Thread, args: impl IntoLuaMulti) {
        self.resume(lua, thread, args);
    }

    /// Queues `thread` to run after the currently running threads yield (`task.defer`).
    pub fn defer(&self, thread: Thread, args: MultiValue) {
        self.push_deferred(thread, args, None);
    }

    /// Runs `thread` with `args` once `duration` has passed (`task.delay`). As in
    /// Lune (whose `task.delay` defers a thread that waits, then spawns), the timer
    /// starts when the deferred threads run, after the current thread yields: a
    /// wait started before then, even a later one in the same thread, ends first.
    pub fn delay(&self, thread: Thread, duration: Duration, args: MultiValue) {
        self.push_deferred(thread, args, Some(duration));
    }

    fn push_deferred(&self, thread: Thread, args: MultiValue, after: Option<Duration>) {
        self.deferred.borrow_mut().push_back(Deferred {
            thread,
            args,
            after,
        });
        self.wake.notify_one();
    }

    /// Keeps the process alive until the returned guard is dropped.
    pub fn keep_alive(self: &Rc<Self>) -> KeepAlive {
        self.keep_alive.set(self.keep_alive.get() + 1);
        KeepAlive {
            scheduler: self.clone(),
            collectable: false,
        }
    }

    /// Keeps the process alive until the returned guard is dropped, for a resource a
    /// script holds as an object (a listener, a UDP socket) that drops the guard when
    /// it closes or is collected. When nothing else could ever run a Luau thread again
    /// (no thread waits, and only such guards hold the process), the run loop
    /// collects garbage once, so an object the script can no longer reach lets the
    /// process end instead of holding it forever.
    pub fn keep_alive_while_reachable(self: &Rc<Self>) -> KeepAlive {
        self.collectable.set(self.collectable.get() + 1);
        self.keep_alive.set(self.keep_alive.get() + 1);
        KeepAlive {
            scheduler: self.clone(),
            collectable: true,
        }
    }

    /// True once a thread has ended with an uncaught error.
    pub fn has_failed(&self) -> bool {
        self.failed.get()
    }

    /// Records an uncaught error: prints it to stderr and marks the run as failed.
    pub fn report_uncaught(&self, error: &Error) {
        self.failed.set(true);
        report::print_error(error);
        self.failure.notify_waiters();
    }

    /// Resolves once a thread has ended with an uncaught error (at once if one
    /// already has). A worker uses it to end the whole process (see `workers`).
    pub(crate) async fn failure(&self) {
        let failed = self.failure.notified();
        if self.failed.get() {
            return;
        }
        failed.await;
    }

    /// Resumes `thread` with `args` returned from its yield, and reports an uncaught
    /// error. Threads that can no longer be resumed (finished, cancelled, or resumed
    /// by someone else meanwhile) are skipped. Generic, so values that push
    /// themselves straight onto the thread's stack (a received message, say) never
    /// become a `MultiValue` first.
    pub(crate) fn resume(&self, lua: &Lua, thread: Thread, args: impl IntoLuaMulti) {
        if thread.status() != ThreadStatus::Resumable {
            return;
        }
        let result = thread.resume::<MultiValue>(args);
        // An error with the thread still suspended means the values could not be
        // converted, so the thread never ran: it gets the error raised instead.
        if let Err(error) = &result
            && thread.status() == ThreadStatus::Resumable
        {
            return self.resume_with_error(lua, thread, error);
        }
        self.resumed(thread, result);
    }

    /// Resumes `thread` with `error` raised at its yield, as a string message.
    fn resume_with_error(&self, lua: &Lua, thread: Thread, error: &Error) {
        if thread.status() != ThreadStatus::Resumable {
            return;
        }
        let result = match lua.create_string(report::error_message(error)) {
            Ok(message) => thread.resume_error::<MultiValue>(message),
            Err(e) => Err(e),
        };
        self.resumed(thread, result);
    }

    /// What happens after a resume: a thread started by `call` that has now ended
    /// reports to its caller; any other thread's error is uncaught.
    fn resumed(&self, thread: Thread, result: Result<MultiValue>) {
        let result = if !self.watchers.is_empty() && thread.status() != ThreadStatus::Resumable {
            match self.watchers.complete(&thread, result) {
                Some(result) => result,
                None => return,
            }
        } else {
            result
        };
        if let Err(error) = result {
            self.report_uncaught(&error);
        }
    }

    /// Stops `thread` from ever being resumed by the scheduler: drops its pending
    /// future or timer, removes it from the deferred queue, and closes it (`task.cancel`).
    /// A thread started by [`Scheduler::call`] reports the cancellation as its error.
    pub fn cancel(&self, thread: &Thread) -> Result<()> {
        self.parked.unpark_thread(thread);
        let ptr = thread.to_pointer();
        self.deferred
            .borrow_mut()
            .retain(|d| d.thread.to_pointer() != ptr);
        if thread.status() == ThreadStatus::Resumable {
            let close = self.with_glue(|g| g.close.clone());
            close.call::<Value>(thread)?;
        }
        // A thread started by `call` will never end now: its caller learns why.
        if !self.watchers.is_empty() {
            let cancelled = mlua::Error::runtime("the thread was cancelled (task.cancel)");
            self.watchers.complete(thread, Err(cancelled));
        }
        Ok(())
    }

    fn with_glue<R>(&self, f: impl FnOnce(&Glue) -> R) -> R {
        f(self
            .glue
            .borrow()
            .as_ref()
            .expect("scheduler glue installed"))
    }

    /// Runs queued work until nothing is left to run or wait for. Returns when the
    /// process should exit (its exit code is decided by the caller).
    pub async fn run(self: Rc<Self>, lua: Lua) {
        loop {
            self.run_queued(&lua);
            if self.nothing_to_wait_for() {
                break;
            }
            if self.held_only_by_objects() {
                // Only objects hold the process now; those nothing can reach any more
                // close when collected (a guard dropped in a collection stores a
                // wake-up, so the loop then checks again).
                let _ = lua.gc_collect();
            }
            self.wake.notified().await;
        }
    }

    /// True when no thread waits on a future and no resource holds the process open.
    fn nothing_to_wait_for(&self) -> bool {
        self.parked.is_empty() && self.keep_alive.get() == 0
    }

    /// True when no thread waits on a future and only objects' guards (see
    /// [`Scheduler::keep_alive_while_reachable`]) hold the process open.
    fn held_only_by_objects(&self) -> bool {
        self.parked.is_empty()
            && self.collectable.get() > 0
            && self.keep_alive.get() == self.collectable.get()
    }

    /// Resumes `thread` from inside a tokio task (a parked future that just completed),
    /// then runs the threads it deferred before returning, so
    /// a completion costs no extra trip through the run loop. Only when nothing is left
    /// to wait for is the run loop woken, to end the process.
    pub(crate) fn resume_from_task<A: IntoLuaMulti>(
        &self,
        lua: &Lua,
        thread: Thread,
        outcome: Result<A>,
    ) {
        match outcome {
            Ok(values) => self.resume(lua, thread, values),
            Err(error) => self.resume_with_error(lua, thread, &error),
        }
        self.run_queued(lua);
        if self.nothing_to_wait_for() || self.held_only_by_objects() {
            self.wake.notify_one();
        }
    }

    /// Runs deferred threads, batch by batch (what a batch defers runs in the next
    /// one), until none are left.
    fn run_queued(&self, lua: &Lua) {
        loop {
            let batch = std::mem::take(&mut *self.deferred.borrow_mut());
            if batch.is_empty() {
                break;
            }
            for Deferred {
                thread,
                args,
                after,
            } in batch
            {
                match after {
                    None => self.resume(lua, thread, args),
                    Some(duration) => {
                        Scheduler::of(lua).park(lua, thread, async move {
                            tokio::time::sleep(duration).await;
                            Ok(args)
                        });
                    }
                }
            }
        }
    }
}

/// Creates a Luau function named `name` that calls `f` and returns what the future
/// `f` returns resolves to. The future is polled once at once: if it is already
/// complete (a buffered WebSocket message, a write that fit in a buffer), its values
/// are returned without yielding; otherwise the calling thread yields until the
/// future resolves, and other threads keep running meanwhile. Its error is raised in
/// the caller as a string message, so `pcall` users can match on it. A future that
/// must always yield (such as `task.wait`) should start with
/// `tokio::task::yield_now().await`.
///
/// Calling the function where the thread cannot yield (inside a metamethod, say) is a
/// Luau error naming `name`.
pub fn create_async_function<A, R, F, Fut>(lua: &Lua, name: &str, f: F) -> Result<Function>
where
    A: mlua::FromLuaMulti,
    R: IntoLuaMulti + 'static,
    F: Fn(&Lua, A) -> Fut + 'static,
    Fut: Future<Output = Result<R>> + 'static,
{
    create_checked_async_function(lua, name, move |lua, args| Ok(f(lua, args)))
}

/// [`create_async_function`] for a body that checks its arguments before it makes
/// its future: an error `f` returns is raised in the caller at once, without any
/// future being made or polled.
pub fn create_checked_async_function<A, R, F, Fut>(lua: &Lua, name: &str, f: F) -> Result<Function>
where
    A: mlua::FromLuaMulti,
    R: IntoLuaMulti + 'static,
    F: Fn(&Lua, A) -> Result<Fut> + 'static,
    Fut: Future<Output = Result<R>> + 'static,
{
    create_waiting_function(lua, name, move |lua, args| {
        let mut future = Box::pin(f(lua, args)?);
        let mut context = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut context) {
            Poll::Ready(result) => result.map(Reply::Now),
            Poll::Pending => {
                Scheduler::of(lua).park(lua, lua.current_thread(), future);
                Ok(Reply::Wait(Parked(())))
            }
        }
    })
}

/// What the body of a function made with [`create_waiting_function`] answers.
pub enum Reply<R> {
    /// The function's values, returned at once.
    Now(R),
    /// The caller yields until the [`Waiter`] this proof came with is completed.
    Wait(Parked),
}

/// Creates a Luau function named `name` whose body `f` either answers at once or
/// parks its caller with [`Scheduler::park_waiter`] and hands the [`Waiter`] to
/// whatever will produce the values (which then resumes the thread directly, with no
/// task or channel in between). Errors are raised in the caller as string messages,
/// and calling it where the thread cannot yield is an error naming `name`, as for
/// [`create_async_function`] (which is built on this).
pub fn create_waiting_function<A, R, F>(lua: &Lua, name: &str, f: F) -> Result<Function>
where
    A: mlua::FromLuaMulti,
    R: IntoLuaMulti,
    F: Fn(&Lua, A) -> Result<Reply<R>> + 'static,
{
    let start = lua.create_function(move |lua, Args(args): Args<A>| {
        Ok(match args.and_then(|args| f(lua, args)) {
            Ok(Reply::Now(values)) => Flagged::Ok(&[false], values),
            Ok(Reply::Wait(_)) => Flagged::Flags(&[true]),
            Err(error) => Flagged::error(&error),
        })
    })?;
    let scheduler = Scheduler::of(lua);
    let make = scheduler.with_glue(|g| g.make_async.clone());
    make.call((start, name))
}
