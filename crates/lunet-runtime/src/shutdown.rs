//! Stopping on SIGINT and SIGTERM: draining what registered a drain, then exiting.
//!
//! While something has registered a drain ([`Shutdown::on_signal`], held by a
//! [`Drain`] guard: a running `net.serve`), the first SIGINT or SIGTERM starts every
//! drain at once and the process exits with 130 or 143 (128 + the signal) once all of
//! them have finished, even if other threads still wait on timers. A second signal
//! exits at once. With nothing registered, a signal exits at once with the same code,
//! as the default signal action would (once tokio has installed its handler, the
//! default action is gone for good, so this module keeps listening and does it).
//!
//! Each drain bounds its own time (a server's `shutdownTimeout`); this module only
//! starts them and waits. What a drain does is its owner's business.
//!
//! In a worker (`lunet run --workers N`, see [`crate::workers`]) the signals belong to
//! the main thread, which asks every worker to drain ([`Shutdown::drain_all`]) and
//! exits once all have; a worker's `Shutdown` then never listens for signals itself.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;

use mlua::Lua;
use rustc_hash::FxHashMap;

/// Starts one owner's drain; the future resolves when that owner is done.
type DrainFn = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()>>>>;

/// The drains of one VM, and whether the signal listener runs.
#[derive(Default)]
pub struct Shutdown {
    drains: RefCell<FxHashMap<u64, Rc<DrainFn>>>,
    next_id: Cell<u64>,
    listening: Cell<bool>,
    /// Set by the first signal while drains were registered.
    draining: Cell<bool>,
    /// Signals are handled elsewhere (by the workers' coordinator): never listen.
    external: Cell<bool>,
}

/// Keeps a drain registered until dropped.
pub struct Drain {
    shutdown: Rc<Shutdown>,
    id: u64,
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.shutdown.drains.borrow_mut().remove(&self.id);
    }
}

impl Shutdown {
    /// The shutdown state of `lua`, made on first use.
    pub fn of(lua: &Lua) -> Rc<Shutdown> {
        if let Some(shutdown) = lua.app_data_ref::<Rc<Shutdown>>() {
            return shutdown.clone();
        }
        let shutdown = Rc::new(Shutdown::default());
        lua.set_app_data(shutdown.clone());
        shutdown
    }

    /// Registers `drain`, called (once) on the first SIGINT or SIGTERM while the
    /// returned guard lives. Starts listening for signals if nothing did yet; must be
    /// called where `tokio::task::spawn_local` works.
    pub fn on_signal<F, Fut>(self: &Rc<Self>, drain: F) -> Drain
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let drain: DrainFn = Box::new(move || Box::pin(drain()));
        self.drains.borrow_mut().insert(id, Rc::new(drain));
        if !self.external.get() && !self.listening.replace(true) {
            tokio::task::spawn_local(listen(self.clone()));
        }
        Drain {
            shutdown: self.clone(),
            id,
        }
    }

    /// Leaves signals to someone else (a worker's coordinator), who calls
    /// [`Shutdown::drain_all`] instead.
    pub(crate) fn handle_signals_elsewhere(&self) {
        self.external.set(true);
    }

    /// Starts every registered drain at once and resolves when all have finished.
    /// Must be called where `tokio::task::spawn_local` works.
    pub(crate) fn drain_all(&self) -> impl Future<Output = ()> + 'static {
        self.draining.set(true);
        // Collected first: a drain may drop a `Drain` guard, which borrows `drains`.
        let drains: Vec<Rc<DrainFn>> = self.drains.borrow().values().cloned().collect();
        let running: Vec<_> = drains
            .iter()
            .map(|drain| tokio::task::spawn_local(drain()))
            .collect();
        async move {
            for task in running {
                let _ = task.await;
            }
        }
    }

    /// What a signal whose exit code is `code` does now.
    fn signalled(self: &Rc<Self>, code: i32) {
        if self.draining.get() || self.drains.borrow().is_empty() {
            exit_now(code);
        }
        let drained = self.drain_all();
        tokio::task::spawn_local(async move {
            drained.await;
            exit_now(code);
        });
    }
}

/// Flushes standard output and error and ends the process with `code`.
pub(crate) fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

async fn listen(shutdown: Rc<Shutdown>) {
    let mut signals = Signals::listen();
    loop {
        let code = signals.next().await;
        shutdown.signalled(code);
    }
}

/// SIGINT and SIGTERM, as the exit code each asks for (130, 143).
pub(crate) struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    pub(crate) fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                streams: signal(SignalKind::interrupt())
                    .and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
                    .ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal, as its exit code (never, if they cannot be listened to).
    pub(crate) async fn next(&mut self) -> i32 {
        #[cfg(unix)]
        {
            let Some((interrupt, terminate)) = &mut self.streams else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = interrupt.recv() => 130,
                _ = terminate.recv() => 143,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => 130,
                Err(_) => std::future::pending().await,
            }
        }
    }
}
