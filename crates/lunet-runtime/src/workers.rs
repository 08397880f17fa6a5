//! Running one script in N isolated VMs on N threads (`lunet run --workers N`).
//!
//! Each worker is a whole Lunet of its own: an OS thread with its own tokio runtime,
//! Luau VM and scheduler, running the same script with the same arguments. Workers
//! share no Luau state; what they share is the process (its environment, its
//! standard streams) and, through `lunet-net`, the ports they listen on (bound with
//! `SO_REUSEPORT`, so the kernel spreads connections over them). [`Worker::of`] tells
//! a library which worker its VM is (`process.workerId`, `process.workerCount`).
//!
//! The main thread is the coordinator ([`run_workers`]): it owns SIGINT/SIGTERM and
//! ends the process.
//! - A signal asks every worker to drain (each runs its `shutdown` drains: servers
//!   stop and finish what is in flight); once every worker has drained or ended, the
//!   process exits 130/143. A second signal exits at once.
//! - An uncaught error in any worker asks every worker to drain the same way, then the
//!   process exits 1, even if other workers would have run on.
//! - When every worker has ended on its own, the process exits with 0, or 1 if any
//!   failed. `process.exit` in a worker ends the process at once, as it does without
//!   workers.
//!
//! What stays out: how a library binds a shared port (`lunet-net`'s `listen`), and
//! lines of output (`print` writes each line under stdout's lock, so lines from
//! different workers never mix).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlua::{Lua, Result};
use tokio::sync::{mpsc, watch};

use crate::runtime::Runtime;
use crate::scheduler::Scheduler;
use crate::shutdown::{Shutdown, exit_now};

/// Which worker a VM is: `id` in `1..=count`. A VM run without `--workers` is worker 1
/// of 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Worker {
    pub id: usize,
    pub count: usize,
}

impl Default for Worker {
    fn default() -> Self {
        Worker { id: 1, count: 1 }
    }
}

impl Worker {
    /// The worker `lua` runs as.
    pub fn of(lua: &Lua) -> Worker {
        lua.app_data_ref::<Worker>()
            .map(|worker| *worker)
            .unwrap_or_default()
    }

    /// True when other workers run the same script beside this one.
    pub fn has_siblings(&self) -> bool {
        self.count > 1
    }
}

/// The most workers `--workers` accepts: far past any machine's cores, low enough
/// that a typo cannot start a million threads.
pub(crate) const MAX_WORKERS: usize = 1024;

/// What a worker tells the coordinator.
enum Event {
    /// A thread of this worker ended with an uncaught error.
    Failed,
    /// Asked to stop, the worker has drained.
    Drained(usize),
    /// The worker's script and everything it scheduled have ended, with this code.
    Ended(usize, i32),
}

/// Tells the coordinator a worker ended, when dropped (even by a panic).
struct Ended {
    id: usize,
    code: i32,
    events: mpsc::UnboundedSender<Event>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Ended(self.id, self.code));
    }
}

/// A worker's side of the coordinator.
pub(crate) struct Link {
    worker: Worker,
    stop: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<Event>,
}

impl Link {
    /// Makes `runtime` this worker: records its identity, and leaves signals to the
    /// coordinator, which may ask it to drain (and hears of its failures).
    pub(crate) fn attach(self, runtime: &Runtime) {
        let lua = runtime.lua();
        lua.set_app_data(self.worker);
        let shutdown = Shutdown::of(lua);
        shutdown.handle_signals_elsewhere();
        let scheduler: std::rc::Rc<Scheduler> = runtime.scheduler().clone();
        let Link {
            worker,
            mut stop,
            events,
        } = self;
        tokio::task::spawn_local(async move {
            let failed = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => false,
                () = scheduler.failure() => true,
            };
            if failed {
                let _ = events.send(Event::Failed);
                let _ = stop.wait_for(|stop| *stop).await;
            }
            shutdown.drain_all().await;
            let _ = events.send(Event::Drained(worker.id));
        });
    }
}

/// Parses `--workers`: a count in `1..=MAX_WORKERS`, or `auto` for the number of CPUs
/// this process may use.
pub fn parse_count(text: &str) -> std::result::Result<usize, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_WORKERS));
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of workers from 1 to {MAX_WORKERS}, or `auto`, got {text:?}"
        )),
    }
}

/// Runs the script at `path` in `count` workers (see the module docs) and returns the
/// process exit code (or exits the process itself, on a signal). `setup` runs in each
/// worker's thread, as `run_script`'s does.
pub fn run_workers<S>(path: &Path, args: Vec<String>, count: usize, setup: S) -> i32
where
    S: Fn(&Runtime) -> Result<()> + Send + Sync + 'static,
{
    let coordinator = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return 1;
        }
    };
    let setup = Arc::new(setup);
    let (stop_sender, stop) = watch::channel(false);
    let (events_sender, mut events) = mpsc::unbounded_channel();
    coordinator.block_on(async move {
        let mut signals = crate::shutdown::Signals::listen();
        for id in 1..=count {
            let link = Link {
                worker: Worker { id, count },
                stop: stop.clone(),
                events: events_sender.clone(),
            };
            let (path, args, setup) = (PathBuf::from(path), args.clone(), setup.clone());
            let events = events_sender.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("lunet-worker-{id}"))
                // The size of a main thread's stack, which a single VM runs on.
                .stack_size(8 << 20)
                .spawn(move || {
                    // Sent however the worker ends: a panic unwinding out of its VM
                    // (reported by the panic hook) ends it with 101, as Rust's own
                    // exit code for a panic, and stops the others.
                    let mut ended = Ended {
                        id,
                        code: 101,
                        events,
                    };
                    ended.code = crate::runtime::run_vm(&path, args, |rt| setup(rt), Some(link));
                });
            if let Err(error) = spawned {
                eprintln!("error: cannot start worker {id}: {error}");
                exit_now(1);
            }
        }
        drop(events_sender);
        // Workers that have drained or ended; the code the process ends with once
        // stopping (`Some`: the first signal, failure or non-zero exit) and every
        // worker has (0 if nothing stopped it).
        let mut done = vec![false; count + 1];
        let mut stopping: Option<i32> = None;
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                signal = signals.next() => {
                    if stopping.is_some() {
                        exit_now(signal);
                    }
                    stopping = Some(signal);
                    let _ = stop_sender.send(true);
                    continue;
                }
            };
            match event {
                Some(Event::Failed) => {
                    if stopping.is_none() {
                        stopping = Some(1);
                        let _ = stop_sender.send(true);
                    }
                }
                Some(Event::Drained(id)) => done[id] = true,
                Some(Event::Ended(id, ended)) => {
                    done[id] = true;
                    if ended != 0 && stopping.is_none() {
                        stopping = Some(ended);
                        let _ = stop_sender.send(true);
                    }
                }
                None => return stopping.unwrap_or(0),
            }
            if done[1..].iter().all(|done| *done) {
                return stopping.unwrap_or(0);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_checked() {
        assert_eq!(parse_count("2"), Ok(2));
        assert_eq!(parse_count("1"), Ok(1));
        assert!(parse_count("auto").unwrap() >= 1);
        assert!(parse_count("AUTO").is_ok());
        for bad in ["0", "-1", "1025", "two", "", "1.5"] {
            let error = parse_count(bad).unwrap_err();
            assert!(error.contains("from 1 to 1024"), "{bad}: {error}");
        }
    }
}
