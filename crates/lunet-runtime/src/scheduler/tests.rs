//! Unit tests for the scheduler's ordering and bookkeeping rules, driven from Rust.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{Function, Lua, MultiValue, Thread, Value};

use super::{
    CallOutcome, Reply, Scheduler, Waiter, create_async_function, create_waiting_function,
};

/// Runs `setup` inside a fresh VM and scheduler, then drives the scheduler to the end
/// (failing if that takes over 10 s).
fn run(setup: impl FnOnce(&Lua, &Rc<Scheduler>) + 'static) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build_local(tokio::runtime::LocalOptions::default())
        .unwrap();
    runtime.block_on(async move {
        let lua = Lua::new();
        let scheduler = Scheduler::install(&lua).unwrap();
        setup(&lua, &scheduler);
        tokio::time::timeout(Duration::from_secs(10), scheduler.clone().run(lua.clone()))
            .await
            .expect("the run ends within 10 s (a thread was left waiting)");
        assert!(
            !scheduler.has_failed(),
            "no thread raised an uncaught error"
        );
    });
}

type Log = Rc<RefCell<Vec<String>>>;

/// A Luau function `record(entry)` that appends `entry` to `log`.
fn record_function(lua: &Lua, log: &Log) -> Function {
    let log = log.clone();
    lua.create_function(move |_, entry: String| {
        log.borrow_mut().push(entry);
        Ok(())
    })
    .unwrap()
}

/// A thread that records every value it is resumed with, forever.
fn recorder(lua: &Lua, log: &Log) -> Thread {
    let record = record_function(lua, log);
    let body: Function = lua
        .load("local record = ... while true do record(tostring(coroutine.yield())) end")
        .into_function()
        .unwrap();
    let thread = lua.create_thread(body).unwrap();
    thread.resume::<()>(record).unwrap();
    thread
}

#[test]
fn a_stale_completion_does_not_resume_a_thread_that_waits_on_something_else() {
    let log: Log = Rc::default();
    let seen = log.clone();
    run(move |lua, scheduler| {
        let thread = recorder(lua, &log);
        scheduler.park(lua, thread.clone(), async {
            tokio::time::sleep(Duration::from_millis(60)).await;
            Ok("first wait")
        });
        scheduler.park(lua, thread, async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok("second wait")
        });
    });
    assert_eq!(*seen.borrow(), vec!["second wait".to_string()]);
}

#[test]
fn spawn_runs_at_once_and_defer_after_the_ready_work() {
    let log: Log = Rc::default();
    let seen = log.clone();
    run(move |lua, scheduler| {
        let deferred = recorder(lua, &log);
        let spawned = recorder(lua, &log);
        scheduler.defer(deferred, lua.pack_multi("deferred").unwrap());
        scheduler.spawn(lua, spawned, "spawned");
        assert_eq!(
            *log.borrow(),
            vec!["spawned".to_string()],
            "spawn ran before returning"
        );
    });
    assert_eq!(
        *seen.borrow(),
        vec!["spawned".to_string(), "deferred".to_string()]
    );
}

#[test]
fn cancel_drops_the_wait_and_lets_the_run_end() {
    let log: Log = Rc::default();
    let seen = log.clone();
    let start = Instant::now();
    run(move |lua, scheduler| {
        let thread = recorder(lua, &log);
        scheduler.park(lua, thread.clone(), async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok("never")
        });
        scheduler.cancel(&thread).unwrap();
    });
    assert!(seen.borrow().is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a cancelled wait does not keep the run alive"
    );
}

#[test]
fn keep_alive_holds_the_run_until_dropped() {
    let start = Instant::now();
    run(|_lua, scheduler| {
        let guard = scheduler.keep_alive();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(guard);
        });
    });
    assert!(start.elapsed() >= Duration::from_millis(50));
}

/// A userdata holding a guard from `keep_alive_while_reachable`, as a listener does.
struct Held(#[allow(dead_code)] super::KeepAlive);
impl mlua::UserData for Held {}

#[test]
fn an_unreachable_object_does_not_hold_the_run_but_a_reachable_one_does() {
    // Unreachable (made and dropped by a script that has ended): the run collects
    // it and ends.
    run(|lua, scheduler| {
        let object = lua
            .create_userdata(Held(scheduler.keep_alive_while_reachable()))
            .unwrap();
        drop(object);
    });
    // Reachable (a global): the run goes on until it is released.
    let start = Instant::now();
    run(|lua, scheduler| {
        let object = lua
            .create_userdata(Held(scheduler.keep_alive_while_reachable()))
            .unwrap();
        lua.globals().set("held", object).unwrap();
        let lua = lua.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            lua.globals().set("held", Value::Nil).unwrap();
            // Luau code that drops a reference runs from the run loop or a
            // completed future, which wakes the loop when only objects are left.
            Scheduler::of(&lua).wake.notify_one();
        });
    });
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "a reachable object held the run"
    );
}

#[test]
fn call_reports_immediate_and_yielding_outcomes() {
    let results: Rc<RefCell<Vec<String>>> = Rc::default();
    let seen = results.clone();
    run(move |lua, scheduler| {
        let sleep = create_async_function(lua, "sleep", |_lua, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        })
        .unwrap();
        lua.globals().set("sleep", sleep).unwrap();
        let double: Function = lua
            .load("return function(x) return x * 2 end")
            .eval()
            .unwrap();
        let slow: Function = lua
            .load("return function(x) sleep(20) return x + 1 end")
            .eval()
            .unwrap();
        let failing: Function = lua
            .load("return function() error('boom') end")
            .set_name("=failing")
            .eval()
            .unwrap();

        match scheduler.call::<Value>(lua, &double, 21).unwrap() {
            CallOutcome::Done(Ok(values)) => results.borrow_mut().push(format!("done {values:?}")),
            _ => panic!("a function that does not yield is done at once"),
        }
        match scheduler.call::<Value>(lua, &failing, ()).unwrap() {
            CallOutcome::Done(Err(error)) => {
                assert!(error.to_string().contains("boom"), "{error}");
                assert!(
                    error.to_string().contains("failing:1"),
                    "the error carries its trace: {error}"
                );
            }
            _ => panic!("an error without yielding is done at once"),
        }
        match scheduler.call::<Value>(lua, &slow, 1).unwrap() {
            CallOutcome::Pending(_, receiver) => {
                let results = results.clone();
                let guard = scheduler.keep_alive();
                tokio::task::spawn_local(async move {
                    let values = receiver.await.unwrap().unwrap();
                    results.borrow_mut().push(format!("later {values:?}"));
                    drop(guard);
                });
            }
            CallOutcome::Done(_) => panic!("a function that yields is pending"),
        }
    });
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].contains("42"), "{seen:?}");
    assert!(
        seen[1].starts_with("later") && seen[1].contains('2'),
        "{seen:?}"
    );
}

#[test]
fn a_called_thread_that_is_cancelled_reports_the_cancellation_to_its_caller() {
    let outcome: Rc<RefCell<Option<String>>> = Rc::default();
    let seen = outcome.clone();
    run(move |lua, scheduler| {
        let sleep = create_async_function(lua, "sleep", |_lua, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        })
        .unwrap();
        lua.globals().set("sleep", sleep).unwrap();
        let waits: Function = lua
            .load("return function() handler = coroutine.running() sleep(60000) end")
            .eval()
            .unwrap();
        let CallOutcome::Pending(_, receiver) = scheduler.call::<()>(lua, &waits, ()).unwrap()
        else {
            panic!("a function that yields is pending");
        };
        let thread: Thread = lua.globals().get("handler").unwrap();
        scheduler.cancel(&thread).unwrap();
        let guard = scheduler.keep_alive();
        tokio::task::spawn_local(async move {
            let result = tokio::time::timeout(Duration::from_secs(5), receiver)
                .await
                .expect("the caller hears about the cancellation at once")
                .expect("the outcome is sent, not dropped");
            *outcome.borrow_mut() = Some(format!("{:?}", result.map(|_| ())));
            drop(guard);
        });
    });
    let seen = seen.borrow();
    let seen = seen.as_deref().expect("the outcome arrived");
    assert!(seen.contains("cancelled"), "{seen}");
}

#[test]
fn a_completion_resumes_its_thread_and_runs_what_it_deferred_before_the_next() {
    let log: Log = Rc::default();
    let seen = log.clone();
    run(move |lua, scheduler| {
        let event = Rc::new(tokio::sync::Notify::new());
        let wait_event = {
            let event = event.clone();
            create_async_function(lua, "waitEvent", move |_lua, ()| {
                let event = event.clone();
                async move {
                    event.notified().await;
                    Ok(())
                }
            })
            .unwrap()
        };
        let record = record_function(lua, &log);
        let defer = lua
            .create_function(|lua, f: Function| {
                let thread = lua.create_thread(f)?;
                Scheduler::of(lua).defer(thread, MultiValue::new());
                Ok(())
            })
            .unwrap();
        let body: Function = lua
            .load(
                r#"
                local waitEvent, record, defer, name = ...
                waitEvent()
                defer(function() record(name .. " deferred") end)
                record(name)
                "#,
            )
            .into_function()
            .unwrap();
        for name in ["A", "B"] {
            let thread = lua.create_thread(body.clone()).unwrap();
            let args = (wait_event.clone(), record.clone(), defer.clone(), name);
            scheduler.spawn(lua, thread, args);
        }
        // Both waits end in the same turn of the event loop.
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            event.notify_waiters();
        });
    });
    assert_eq!(
        *seen.borrow(),
        vec![
            "A".to_string(),
            "A deferred".to_string(),
            "B".to_string(),
            "B deferred".to_string()
        ],
        "each thread's deferred work runs right after it yields"
    );
}

/// A value whose conversion to Luau always fails.
struct Unconvertible;

impl mlua::IntoLua for Unconvertible {
    fn into_lua(self, _lua: &Lua) -> mlua::Result<Value> {
        Err(mlua::Error::runtime(
            "this value cannot become a Luau value",
        ))
    }
}

#[test]
fn results_that_cannot_be_converted_are_raised_in_the_caller() {
    let log: Log = Rc::default();
    let seen = log.clone();
    run(move |lua, _scheduler| {
        let now = create_async_function(lua, "now", |_, ()| async { Ok(Unconvertible) }).unwrap();
        let later = create_async_function(lua, "later", |_, ()| async {
            tokio::task::yield_now().await;
            Ok(Unconvertible)
        })
        .unwrap();
        let record = record_function(lua, &log);
        let body: Function = lua
            .load(
                r#"
                local now, later, record = ...
                for _, f in { now, later } do
                    local ok, err = pcall(f)
                    record(tostring(ok) .. " " .. tostring(err))
                end
                "#,
            )
            .into_function()
            .unwrap();
        let thread = lua.create_thread(body).unwrap();
        thread.resume::<()>((now, later, record)).unwrap();
    });
    let log = seen.borrow();
    assert_eq!(log.len(), 2, "both calls returned to the script: {log:?}");
    for line in log.iter() {
        assert!(
            line.starts_with("false ") && line.contains("cannot become a Luau value"),
            "{line}"
        );
    }
}

#[test]
fn finished_threads_are_reused_unless_a_script_may_hold_them() {
    run(|lua, scheduler| {
        let call = |func: &Function| match scheduler.call::<i64>(lua, func, ()).unwrap() {
            CallOutcome::Done(result) => result.unwrap(),
            CallOutcome::Pending(..) => panic!("the function does not yield"),
        };
        let plain: Function = lua.load("return function() return 1 end").eval().unwrap();
        for _ in 0..3 {
            assert_eq!(call(&plain), 1);
        }
        assert_eq!(
            scheduler.spare_threads.count(),
            1,
            "one thread serves every call"
        );
        let keeper: Function = lua
            .load("return function() kept = coroutine.running() return 2 end")
            .eval()
            .unwrap();
        assert_eq!(call(&keeper), 2);
        assert_eq!(
            scheduler.spare_threads.count(),
            0,
            "a thread the script holds is not kept for reuse"
        );
        for _ in 0..3 {
            assert_eq!(call(&plain), 1);
        }
        let status: String = lua.load("return coroutine.status(kept)").eval().unwrap();
        assert_eq!(status, "dead", "the kept thread stays finished");
        let other: Function = lua
            .load("return function() return coroutine.running() ~= kept end")
            .eval()
            .unwrap();
        let distinct = match scheduler.call::<bool>(lua, &other, ()).unwrap() {
            CallOutcome::Done(result) => result.unwrap(),
            CallOutcome::Pending(..) => panic!("the function does not yield"),
        };
        assert!(distinct, "later calls never run in the kept thread");
    });
}

#[test]
fn a_waiter_resumes_its_thread_and_hands_values_back_once_its_thread_is_cancelled() {
    let log: Log = Rc::default();
    let seen = log.clone();
    run(move |lua, scheduler| {
        // `take()` answers at once with a queued value, or parks its caller.
        let queued: Rc<RefCell<Vec<&'static str>>> = Rc::new(RefCell::new(vec!["queued"]));
        let waiters: Rc<RefCell<Vec<Waiter>>> = Rc::default();
        let take = {
            let (queued, waiters) = (queued.clone(), waiters.clone());
            create_waiting_function(lua, "take", move |lua, ()| {
                if let Some(value) = queued.borrow_mut().pop() {
                    return Ok(Reply::Now(value));
                }
                let (waiter, parked) = Scheduler::of(lua).park_waiter(lua);
                waiters.borrow_mut().push(waiter);
                Ok(Reply::Wait(parked))
            })
            .unwrap()
        };
        let record = record_function(lua, &log);
        let body: Function = lua
            .load("local take, record, name = ... record(name .. \" got \" .. take())")
            .into_function()
            .unwrap();
        // The first caller takes the queued value; the next two wait, and the first
        // of those is cancelled before anything arrives.
        let first = lua.create_thread(body.clone()).unwrap();
        scheduler.spawn(lua, first, (take.clone(), record.clone(), "first"));
        let again = lua
            .create_thread(
                lua.load("local take = ... take() error('resumed after cancel')")
                    .into_function()
                    .unwrap(),
            )
            .unwrap();
        scheduler.spawn(lua, again.clone(), take.clone());
        let waiting = lua.create_thread(body).unwrap();
        scheduler.spawn(lua, waiting, (take, record, "waiting"));
        assert_eq!(waiters.borrow().len(), 2, "both later callers wait");
        scheduler.cancel(&again).unwrap();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let mut value = "handed over";
            for waiter in waiters.take() {
                match waiter.complete(value) {
                    Ok(()) => break,
                    Err(unwanted) => value = unwanted,
                }
            }
        });
    });
    assert_eq!(
        *seen.borrow(),
        vec![
            "first got queued".to_string(),
            "waiting got handed over".to_string()
        ],
        "a waiter answers at once when it can, and a value refused by a cancelled thread reaches the next waiter"
    );
}

#[test]
fn a_reused_thread_gets_the_globals_back_and_nothing_of_the_last_call() {
    run(|lua, scheduler| {
        let call = |func: &Function, arg: bool| match scheduler
            .call::<Option<String>>(lua, func, arg)
            .unwrap()
        {
            CallOutcome::Done(result) => result.unwrap(),
            CallOutcome::Pending(..) => panic!("the function does not yield"),
        };
        // The first call replaces its thread's globals; the thread is then reused for
        // the second, which must see the VM's globals again.
        let func: Function = lua
            .load(
                r#"return function(replace)
                    if replace then
                        setfenv(0, { marker = "replaced" })
                    end
                    return getfenv(0).marker
                end"#,
            )
            .eval()
            .unwrap();
        assert_eq!(call(&func, true).as_deref(), Some("replaced"));
        assert_eq!(scheduler.spare_threads.count(), 1, "the thread is kept");
        assert_eq!(call(&func, false), None, "the globals are the VM's again");
        // An errored thread is not kept.
        let failing: Function = lua
            .load("return function() error('no') end")
            .eval()
            .unwrap();
        assert!(matches!(
            scheduler.call::<()>(lua, &failing, ()).unwrap(),
            CallOutcome::Done(Err(_))
        ));
        assert_eq!(
            scheduler.spare_threads.count(),
            0,
            "the errored thread is dropped"
        );
    });
}

#[test]
fn a_spare_thread_keeps_nothing_of_the_function_it_ran_alive() {
    run(|lua, scheduler| {
        // A per-call closure (as a streamed body is) that captures an object.
        let make: Function = lua
            .load(
                r#"weak = setmetatable({}, { __mode = "v" })
                return function()
                    local captured = {}
                    weak[1] = captured
                    return function() return captured ~= nil end
                end"#,
            )
            .eval()
            .unwrap();
        let func: Function = make.call(()).unwrap();
        match scheduler.call::<bool>(lua, &func, ()).unwrap() {
            CallOutcome::Done(result) => assert!(result.unwrap()),
            CallOutcome::Pending(..) => panic!("the function does not yield"),
        }
        assert_eq!(scheduler.spare_threads.count(), 1, "the thread is kept");
        drop(func);
        lua.gc_collect().unwrap();
        lua.gc_collect().unwrap();
        let collected: bool = lua.load("return weak[1] == nil").eval().unwrap();
        assert!(
            collected,
            "the spare thread does not hold the closure or what it captured"
        );
    });
}
