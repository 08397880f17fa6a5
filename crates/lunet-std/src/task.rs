//! `@lune/task`: spawn, defer, delay, wait and cancel, on top of the scheduler.
//!
//! `spawn` runs a function or thread at once until it first yields; `defer` runs it
//! after the currently running threads yield; `delay` runs it after a number of
//! seconds; `wait` yields the calling thread and returns the seconds actually waited;
//! `cancel` stops a thread from ever being resumed. As in Lune, every duration is at
//! least one millisecond, and one that is not a valid duration (NaN, negative,
//! infinite, too large) counts as that minimum. All queueing logic lives in the
//! scheduler; this module only adapts arguments.

use std::time::{Duration, Instant};

use mlua::{Lua, MultiValue, Result, Thread, Value};

use lunet_runtime::{Scheduler, args, create_checked_async_function};

/// The shortest wait, as in Lune: shorter ones, and durations that are not valid
/// (NaN, negative, infinite, beyond `Duration`'s range), wait this long.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// The longest wait: longer ones are clamped (about 30 years; not observable, it
/// only keeps timer arithmetic far from overflow).
const MAX_WAIT: Duration = Duration::from_secs(1_000_000_000);

/// Converts a script's duration in seconds (nil is zero) as Lune does: at least
/// [`MIN_WAIT`], which is also what an invalid duration becomes.
pub fn duration_from_secs(secs: Option<f64>) -> Duration {
    Duration::try_from_secs_f64(secs.unwrap_or(0.0))
        .unwrap_or(Duration::ZERO)
        .clamp(MIN_WAIT, MAX_WAIT)
}

/// A function or thread argument, as `task.spawn` and friends take.
fn to_thread(lua: &Lua, value: Value, field: &str) -> Result<Thread> {
    match value {
        Value::Function(f) => lua.create_thread(f),
        Value::Thread(t) => Ok(t),
        other => Err(args::wrong(field, "function or thread", &other)),
    }
}

pub fn create(lua: &Lua) -> Result<Value> {
    let task = lua.create_table()?;

    task.set(
        "spawn",
        lunet_runtime::create_function(lua, |lua, (target, args): (Value, MultiValue)| {
            let thread = to_thread(lua, target, "argument #1 to 'task.spawn'")?;
            Scheduler::of(lua).spawn(lua, thread.clone(), args);
            Ok(thread)
        })?,
    )?;

    task.set(
        "defer",
        lunet_runtime::create_function(lua, |lua, (target, args): (Value, MultiValue)| {
            let thread = to_thread(lua, target, "argument #1 to 'task.defer'")?;
            Scheduler::of(lua).defer(thread.clone(), args);
            Ok(thread)
        })?,
    )?;

    task.set(
        "delay",
        lunet_runtime::create_function(
            lua,
            |lua, (secs, target, args): (Value, Value, MultiValue)| {
                let duration = duration_from_secs(args::optional_number(
                    &secs,
                    "argument #1 to 'task.delay'",
                )?);
                let thread = to_thread(lua, target, "argument #2 to 'task.delay'")?;
                Scheduler::of(lua).delay(thread.clone(), duration, args);
                Ok(thread)
            },
        )?,
    )?;

    task.set(
        "wait",
        create_checked_async_function(lua, "task.wait", |_lua, secs: Value| {
            let duration =
                duration_from_secs(args::optional_number(&secs, "argument #1 to 'task.wait'")?);
            Ok(async move {
                let start = Instant::now();
                // task.wait always yields, even when its timer is already due.
                tokio::task::yield_now().await;
                tokio::time::sleep(duration).await;
                Ok(start.elapsed().as_secs_f64())
            })
        })?,
    )?;

    task.set(
        "cancel",
        lunet_runtime::create_function(lua, |lua, thread: Value| {
            let Value::Thread(thread) = thread else {
                return Err(args::wrong(
                    "argument #1 to 'task.cancel'",
                    "thread",
                    &thread,
                ));
            };
            Scheduler::of(lua).cancel(&thread)
        })?,
    )?;

    Ok(Value::Table(super::freeze(task)))
}
