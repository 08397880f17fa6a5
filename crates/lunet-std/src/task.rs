//! `@lune/task`: spawn, defer, delay, wait and cancel, on top of the scheduler.
//!
//! `spawn` runs a function or thread at once until it first yields; `defer` runs it
//! after the currently running threads yield; `delay` runs it after a number of
//! seconds; `wait` yields the calling thread and returns the seconds actually waited;
//! `cancel` stops a thread from ever being resumed. Negative or NaN durations count as
//! zero. All queueing logic lives in the scheduler; this module only adapts arguments.

use std::time::{Duration, Instant};

use mlua::{Error, Lua, MultiValue, Result, Thread, Value};

use lunet_runtime::{Scheduler, create_async_function};

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
fn to_thread(lua: &Lua, value: Value, fname: &str) -> Result<Thread> {
    match value {
        Value::Function(f) => lua.create_thread(f),
        Value::Thread(t) => Ok(t),
        other => Err(Error::runtime(format!(
            "bad argument #1 to '{fname}' (function or thread expected, got {})",
            lunet_runtime::type_name(&other)
        ))),
    }
}

fn seconds_arg(value: Value, fname: &str) -> Result<Option<f64>> {
    match value {
        Value::Nil => Ok(None),
        Value::Integer(i) => Ok(Some(i as f64)),
        Value::Number(n) => Ok(Some(n)),
        other => Err(Error::runtime(format!(
            "bad argument #1 to '{fname}' (number expected, got {})",
            lunet_runtime::type_name(&other)
        ))),
    }
}

pub fn create(lua: &Lua) -> Result<Value> {
    let task = lua.create_table()?;

    task.set(
        "spawn",
        lunet_runtime::create_function(lua, |lua, (target, args): (Value, MultiValue)| {
            let thread = to_thread(lua, target, "task.spawn")?;
            Scheduler::of(lua).spawn(lua, thread.clone(), args);
            Ok(thread)
        })?,
    )?;

    task.set(
        "defer",
        lunet_runtime::create_function(lua, |lua, (target, args): (Value, MultiValue)| {
            let thread = to_thread(lua, target, "task.defer")?;
            Scheduler::of(lua).defer(thread.clone(), args);
            Ok(thread)
        })?,
    )?;

    task.set(
        "delay",
        lunet_runtime::create_function(
            lua,
            |lua, (secs, target, args): (Value, Value, MultiValue)| {
                let duration = duration_from_secs(seconds_arg(secs, "task.delay")?);
                let thread = to_thread(lua, target, "task.delay")?;
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
        create_async_function(lua, "task.wait", |_lua, secs: Value| {
            let duration = seconds_arg(secs, "task.wait").map(duration_from_secs);
            async move {
                let duration = duration?;
                let start = Instant::now();
                // task.wait always yields, even for a zero duration.
                tokio::task::yield_now().await;
                tokio::time::sleep(duration).await;
                Ok(start.elapsed().as_secs_f64())
            }
        })?,
    )?;

    task.set(
        "cancel",
        lunet_runtime::create_function(lua, |lua, thread: Value| {
            let Value::Thread(thread) = thread else {
                return Err(Error::runtime(format!(
                    "bad argument #1 to 'task.cancel' (thread expected, got {})",
                    lunet_runtime::type_name(&thread)
                )));
            };
            Scheduler::of(lua).cancel(&thread)
        })?,
    )?;

    Ok(Value::Table(super::freeze(task)))
}
