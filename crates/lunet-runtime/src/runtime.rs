//! Building the VM and running a script file to completion.
//!
//! [`Runtime`] owns the Luau VM: it installs the scheduler, `require` and
//! `_VERSION`, keeps the libraries hosts register (the `lunet` binary registers
//! `lunet-std`'s and `lunet-net`'s), then runs a script's main chunk as a scheduled
//! thread and drives the scheduler until nothing is left to do. [`run_script`] wraps that in the single-threaded tokio runtime every
//! Lunet process uses.

use std::path::Path;
use std::rc::Rc;

use mlua::chunk::Compiler;
use mlua::state::{GcIncParams, GcMode};
use mlua::{Lua, LuaOptions, Result, StdLib};

use crate::require::{self, Libraries, LibraryLoader};
use crate::scheduler::Scheduler;
use crate::workers::Link;

/// The Lune release whose API Lunet implements; `_VERSION` names it, because real
/// libraries detect Lune (and its version) by `_VERSION`. Lunet's own version is
/// `lunet --version`.
pub const LUNE_VERSION: &str = "0.11.1";

/// `Lune <LUNE_VERSION>+<luau>`, the value of `_VERSION`, in Lune's exact format:
/// `<luau>` is Luau's version number without its `0.` prefix, as Lune prints it
/// (`Luau 0.682` gives `Lune 0.11.1+682`). Called on a fresh VM, before `_VERSION`
/// is replaced.
pub fn version_string(lua: &Lua) -> String {
    let luau = lua
        .globals()
        .get::<String>("_VERSION")
        .ok()
        .and_then(|v| v.strip_prefix("Luau ").map(|v| v.trim().to_string()))
        .map(|v| v.strip_prefix("0.").map(str::to_string).unwrap_or(v))
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .unwrap_or_else(|| "0".to_string());
    format!("Lune {LUNE_VERSION}+{luau}")
}

/// The Luau GC's heap goal: a collection cycle starts when the heap reaches this
/// percentage of the data that survived the last one. Luau's default is 200; a server
/// allocates a few small tables per request and keeps little, so at 200 it re-marks
/// its whole live heap every few hundred requests. 400 halves that work for a heap
/// that is still small (a few MiB at most for typical scripts).
const GC_GOAL_PERCENT: i32 = 400;

/// How many KiB a script allocates between two steps of the Luau GC (each step then
/// does `stepmul`, 200%, of that in collection work). Luau's default is 1: a step
/// per KiB, so an allocation-heavy call (a JSON decode, building a big table)
/// switches between its own work and the collector's hundreds of times, and each
/// switch evicts the other's memory from the caches. With 32 KiB steps the
/// collector does the same work per byte allocated in 1/32 as many, longer steps
/// (each a few tens of microseconds): a 5,000-record JSON decode took 13% less
/// time, and so did a 50-item decode with a 7 MB table alive, while the server
/// paths run the same instructions per request (bench/README.md, run Z).
const GC_STEP_KIB: i32 = 32;

/// Marks the global table as a "safe environment", as Luau's own sandbox and Lune
/// do: the VM may then call builtins (`math.floor`, `bit32.band`, `string.byte`,
/// `type`, ...) directly (FASTCALL) and cache imported globals (`math.sqrt` looked
/// up once per closure), which without it it may not, as a script could have
/// replaced them. What a script still sees: assigning a builtin's global in a script
/// (`math = ...`) makes the compiler leave that script's uses of it alone; changing a
/// library table's field (`math.floor = f`) or the globals from outside the script
/// is not seen by code already loaded, and `getfenv`/`setfenv` turn the optimisation
/// off for the environment they touch (Luau's rules).
fn mark_safe_environment(lua: &Lua) -> Result<()> {
    // SAFETY: lua_setsafeenv only sets a flag on the table at the index (the global
    // table always exists) and cannot raise.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            mlua::ffi::lua_setsafeenv(state, mlua::ffi::LUA_GLOBALSINDEX, 1);
        })
    }
}

/// A Luau VM set up as Lunet runs scripts.
pub struct Runtime {
    lua: Lua,
    scheduler: Rc<Scheduler>,
    libraries: Rc<Libraries>,
    args: Vec<String>,
}

impl Runtime {
    /// Builds the VM. `args` are the script's arguments (`process.args`).
    pub fn new(args: Vec<String>) -> Result<Runtime> {
        let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::new().thread_pool_size(256))?;
        lua.set_compiler(Compiler::new().set_optimization_level(1).set_debug_level(1));
        lua.gc_set_mode(GcMode::Incremental(
            GcIncParams::default()
                .goal(GC_GOAL_PERCENT)
                .step_size(GC_STEP_KIB),
        ));
        // Native code only for chunks that ask for it (see `native`).
        lua.enable_jit(false);
        let scheduler = Scheduler::install(&lua)?;
        let version = version_string(&lua);
        lua.globals().set("_VERSION", version)?;
        // As in Lune, `_G` is a plain table that every module shares, not the
        // global environment (so `_G.print` is nil).
        lua.globals().set("_G", lua.create_table()?)?;
        let libraries = Rc::new(Libraries::default());
        require::install(&lua, libraries.clone())?;
        mark_safe_environment(&lua)?;
        Ok(Runtime {
            lua,
            scheduler,
            libraries,
            args,
        })
    }

    /// The Luau VM.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The scheduler of this VM.
    pub fn scheduler(&self) -> &Rc<Scheduler> {
        &self.scheduler
    }

    /// Compiles every script and module loaded from now on to native code, whether
    /// or not it has the `--!native` directive (`lunet run` does, unless
    /// `--interpreted`).
    pub fn compile_all_natively(&self) {
        crate::native::set_all_native(&self.lua);
    }

    /// The script's arguments, as given to [`Runtime::new`].
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Makes `require("@lune/<name>")` return the value `loader` builds (once).
    pub fn register_library(&self, name: &str, loader: LibraryLoader) {
        self.libraries.register(name, loader);
    }

    /// Runs the script at `path` and everything it schedules. Returns the exit code:
    /// 0, or 1 when the script could not be loaded or any thread raised an uncaught
    /// error. (`process.exit` ends the process directly.) Must run where
    /// `tokio::task::spawn_local` works: a tokio `LocalRuntime` or a `LocalSet`.
    pub async fn run_file(&self, path: &Path) -> i32 {
        let source = match std::fs::read(path) {
            Ok(source) => source,
            Err(error) => {
                eprintln!("error: cannot read script '{}': {error}", path.display());
                return 1;
            }
        };
        let chunk_name = format!("@{}", require::display_path(path));
        let main = crate::native::load(&self.lua, &source, chunk_name)
            .and_then(|main| self.lua.create_thread(main));
        match main {
            Ok(thread) => self.scheduler.spawn(&self.lua, thread, ()),
            Err(error) => {
                self.scheduler.report_uncaught(&error);
                return 1;
            }
        }
        self.scheduler.clone().run(self.lua.clone()).await;
        i32::from(self.scheduler.has_failed())
    }
}

/// Builds a runtime, lets `setup` register host libraries, and runs `path` on a
/// single-threaded tokio runtime. Returns the process exit code.
pub fn run_script(
    path: &Path,
    args: Vec<String>,
    setup: impl FnOnce(&Runtime) -> Result<()>,
) -> i32 {
    run_vm(path, args, setup, None)
}

/// [`run_script`], as one of several workers when `link` is given (see `workers`).
pub(crate) fn run_vm(
    path: &Path,
    args: Vec<String>,
    setup: impl FnOnce(&Runtime) -> Result<()>,
    link: Option<Link>,
) -> i32 {
    // A LocalRuntime rather than a LocalSet on a current_thread runtime: both run
    // `spawn_local` tasks, but a LocalSet is itself one task of its runtime, so an I/O
    // event for one of its tasks first wakes the LocalSet, which costs one more turn
    // of the I/O driver (an extra `epoll_wait` per `net.request` under strace). Here
    // every task (Luau threads, connection tasks) is the runtime's own.
    let tokio = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build_local(tokio::runtime::LocalOptions::default())
    {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return 1;
        }
    };
    let code = tokio.block_on(async {
        let runtime = match Runtime::new(args) {
            Ok(runtime) => runtime,
            Err(error) => {
                crate::report::print_error(&error);
                return 1;
            }
        };
        // Before `setup`: libraries may read which worker they are.
        if let Some(link) = link {
            link.attach(&runtime);
        }
        if let Err(error) = setup(&runtime) {
            crate::report::print_error(&error);
            return 1;
        }
        runtime.run_file(path).await
    });
    // A blocking task nobody waits for any more (a stdin read whose thread was
    // cancelled) must not hold the exit: dropping the runtime would wait for it.
    tokio.shutdown_background();
    code
}
