//! The Lunet runtime core: a Luau VM with Lune's scheduler, `require`, error
//! reports, argument checks and the codecs more than one library needs.
//!
//! The libraries live in their own crates (`lunet-std` for task, process, stdio and
//! serde, `lunet-net` for net) and use only this crate's public interface. Hosts
//! build a [`Runtime`], register libraries, and run a script:
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
//! [`Scheduler::call`] to run a Luau callback in its own thread. Every library checks
//! its arguments with [`args`], so every bad value is reported in one shape.

pub mod args;
pub mod codec;
pub mod env;
mod function;
mod native;
pub mod object;
pub mod report;
mod require;
mod runtime;
pub mod scheduler;
pub mod shutdown;
mod value;
pub mod workers;

pub use function::create_function;
pub use native::load_natively;
pub use require::LibraryLoader;
pub use runtime::{LUNE_VERSION, Runtime, run_script, version_string};
pub use scheduler::{
    CallOutcome, KeepAlive, Reply, Scheduler, Waiter, create_async_function,
    create_checked_async_function, create_waiting_function,
};
pub use value::{format_number, type_name};
