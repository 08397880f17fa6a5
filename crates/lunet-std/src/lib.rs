//! Lune's standard libraries for Lunet (`@lune/task`, `@lune/process`,
//! `@lune/stdio`, `@lune/serde`, `@lune/fs`, `@lune/datetime`, `@lune/regex`,
//! `@lune/luau`) and the global functions `print` and `warn`.
//!
//! Each library is a module here with a `create(lua)` that builds its table;
//! [`install`] registers them with a [`Runtime`] as `@lune/<name>` (each is built on
//! first `require`) and installs the globals. The libraries use only the runtime's
//! public interface (scheduler, argument checks, shared codecs), as Deno's `ext/`
//! crates use `deno_core`. `@lune/net` is not here: it lives in the `lunet-net` crate.
//! Each library's Luau type definitions are in this crate's `types/` ([`TYPES`]).

mod datetime;
mod fs;
mod luau;
mod process;
mod regex;
mod serde;
mod stdio;
mod task;

use std::io::Write;

use lunet_runtime::Runtime;
use mlua::{Lua, MultiValue, Result, Table};

/// The Luau type definitions of this crate's libraries, as `(file name, text)`, for
/// `lunet setup`.
pub const TYPES: &[(&str, &str)] = &[
    ("task.luau", include_str!("../types/task.luau")),
    ("process.luau", include_str!("../types/process.luau")),
    ("stdio.luau", include_str!("../types/stdio.luau")),
    ("serde.luau", include_str!("../types/serde.luau")),
    ("fs.luau", include_str!("../types/fs.luau")),
    ("datetime.luau", include_str!("../types/datetime.luau")),
    ("regex.luau", include_str!("../types/regex.luau")),
    ("luau.luau", include_str!("../types/luau.luau")),
];

/// Registers every library of this crate with `runtime` and installs `print` and
/// `warn`.
pub fn install(runtime: &Runtime) -> Result<()> {
    install_globals(runtime.lua())?;
    runtime.register_library("task", Box::new(task::create));
    let args = runtime.args().to_vec();
    runtime.register_library("process", Box::new(move |lua| process::create(lua, &args)));
    runtime.register_library("stdio", Box::new(stdio::create));
    runtime.register_library("serde", Box::new(serde::create));
    runtime.register_library("fs", Box::new(fs::create));
    runtime.register_library("datetime", Box::new(datetime::create));
    runtime.register_library("regex", Box::new(regex::create));
    runtime.register_library("luau", Box::new(luau::create));
    Ok(())
}

/// Marks a library table read-only, as Lune's library tables are.
fn freeze(table: Table) -> Table {
    table.set_readonly(true);
    table
}

/// Installs `print` and `warn`, which pretty-print their arguments like `stdio.format`.
fn install_globals(lua: &Lua) -> Result<()> {
    let print = lua.create_function(|_, args: MultiValue| {
        let mut line = stdio::format::format_values(&args, stdio::format::use_color_stdout());
        line.push('\n');
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())?;
        Ok(())
    })?;
    let warn = lua.create_function(|_, args: MultiValue| {
        let color = stdio::format::use_color_stderr();
        let body = stdio::format::format_values(&args, color);
        let prefix = if color {
            "\x1b[1m\x1b[33m[WARN]\x1b[0m "
        } else {
            "[WARN] "
        };
        let mut err = std::io::stderr().lock();
        writeln!(err, "{prefix}{body}")?;
        Ok(())
    })?;
    lua.globals().set("print", print)?;
    lua.globals().set("warn", warn)?;
    Ok(())
}
