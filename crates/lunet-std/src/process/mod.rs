//! `@lune/process`: the script's arguments, environment and platform, `exit`, and
//! child processes (`exec` runs a program to completion, `create` starts one to
//! talk to).
//!
//! This module builds the library table. `env.rs` owns `process.env` (a view of
//! the runtime's environment overlay), `options.rs` the checking of what `exec` and
//! `create` take, `exec.rs` and `child.rs` those two functions, `pipe.rs` a created
//! child's stdin/stdout/stderr objects, and `status.rs` what an exit status becomes.
//! `exit(code)` flushes standard output and ends the process at once with `code`;
//! children still running are left running.

mod child;
mod env;
mod exec;
mod options;
mod pipe;
mod status;

use std::io::Write;

use lunet_runtime::args;
use mlua::{Lua, Result, Value};

pub fn create(lua: &Lua, args: &[String]) -> Result<Value> {
    let process = lua.create_table()?;
    process.set(
        "args",
        super::freeze(lua.create_sequence_from(args.iter().cloned())?),
    )?;
    process.set("env", env::create(lua)?)?;
    // Rust's names are Lune's ("linux", "macos", "windows", ...).
    process.set("os", std::env::consts::OS)?;
    process.set("arch", std::env::consts::ARCH)?;
    process.set(
        "endianness",
        if cfg!(target_endian = "big") {
            "big"
        } else {
            "little"
        },
    )?;
    let mut cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if !cwd.ends_with(std::path::MAIN_SEPARATOR) {
        cwd.push(std::path::MAIN_SEPARATOR);
    }
    process.set("cwd", cwd)?;
    let worker = lunet_runtime::workers::Worker::of(lua);
    process.set("workerId", worker.id)?;
    process.set("workerCount", worker.count)?;
    process.set(
        "exit",
        lunet_runtime::create_function(lua, |_, code: Option<Value>| -> Result<()> {
            // The system keeps only an exit code's low 8 bits (256 would read as
            // success), so codes are 0 to 255, as in Lune.
            let code = match code {
                None | Some(Value::Nil) => 0,
                Some(Value::Boolean(ok)) => i32::from(!ok),
                Some(value @ (Value::Integer(_) | Value::Number(_))) => {
                    args::integer_in(&value, "argument #1 to 'process.exit'", 0..=255)?
                }
                Some(other) => {
                    return Err(args::wrong(
                        "argument #1 to 'process.exit'",
                        "an integer exit code or a boolean",
                        &other,
                    ));
                }
            };
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            std::process::exit(code)
        })?,
    )?;
    process.set("exec", exec::create(lua)?)?;
    process.set("create", child::create(lua)?)?;
    Ok(Value::Table(super::freeze(process)))
}
