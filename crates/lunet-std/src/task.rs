//! `@lune/task`: spawn, defer, delay, wait and cancel, on top of the scheduler.
//!
//! `spawn` runs a function or thread at once until it first yields; `defer` runs it
//! after the currently running threads yield; `delay` runs it after a number of
//! seconds; `wait` yields the calling thread and returns the seconds actually waited;
//! `cancel` stops a thread from ever being resumed. Negative or NaN durations count as
//! zero. All queueing logic lives in the scheduler; this module only adapts arguments.

use std::time::{Duration, Instant};

use mlua::{Lua, MultiValue, Result, Thread, Value};

use lunet_runtime::{Scheduler, args, create_checked_async_function};

/// The longest wait accepted: longer ones are clamped (about 30 years).
const MAX_WAIT_SECS: f64 = 1.0e9;

/// Converts a script's duration in seconds; nil, negative and NaN become zero.
pub fn duration_from_secs(secs: Option<f64>) -> Duration {
    match secs {
        Some(s) if s > 0.0 => Duration::from_secs_f64(s.min(MAX_WAIT_SECS)),
        _ => Duration::ZERO,
    }
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
                Scheduler::of(lua).park(lua, thread.clone(), async move {
                    tokio::time::sleep(duration).await;
                    Ok(args)
                });
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
                // task.wait always yields, even for a zero duration.
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
