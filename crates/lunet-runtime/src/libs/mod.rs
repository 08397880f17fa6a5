//! The builtin libraries and the global functions `print` and `warn`.
//!
//! Each library is a module here with a `create(lua)` that builds its table; the
//! runtime registers them as `@lune/<name>` and builds each on first `require`.
//! `@lune/net` is not here: it lives in the `lunet-net` crate.

pub mod process;
pub mod serde;
pub mod stdio;
pub mod task;

use std::io::Write;

use mlua::{Lua, MultiValue, Result, Table};

/// Marks a library table read-only, as Lune's library tables are.
pub fn freeze(table: Table) -> Table {
    table.set_readonly(true);
    table
}

/// Installs `print` and `warn`, which pretty-print their arguments like `stdio.format`.
pub fn install_globals(lua: &Lua) -> Result<()> {
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
