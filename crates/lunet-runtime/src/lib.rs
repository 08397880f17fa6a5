//! The Lunet runtime: a Luau VM with Lune's scheduler, `require`, and the everyday
//! libraries (`@lune/task`, `@lune/process`, `@lune/stdio`, `@lune/serde`).
//!
//! Hosts build a [`Runtime`], register extra libraries (the `lunet` binary registers
//! `@lune/net` from the `lunet-net` crate), and run a script:
//!
//! ```no_run
//! let code = lunet_runtime::run_script(
//!     std::path::Path::new("main.luau"),
//!     vec![],
//!     |_runtime| Ok(()),
//! );
//! std::process::exit(code);
//! ```
//!
//! Libraries that do I/O build on the [`scheduler`] module's public interface:
//! [`create_async_function`] to make a Luau function that awaits a Rust future, and
//! [`Scheduler::call`] to run a Luau callback in its own thread.

mod function;
pub mod libs;
pub mod report;
mod require;
mod runtime;
pub mod scheduler;

pub use function::{create_function, type_name};
pub use libs::serde::compression;
pub use runtime::{LibraryLoader, Runtime, run_script, version_string};
pub use scheduler::{
    CallOutcome, KeepAlive, Reply, Scheduler, Waiter, create_async_function,
    create_waiting_function,
};
