//! `@lune/process`: the script's arguments, environment, platform, and `exit`.
//!
//! `env` is a live view of the environment as scripts see it
//! (`lunet_runtime::env`): reading a key reads the variable, assigning sets it,
//! assigning `nil` removes it, and iterating it walks a snapshot. Writes never call
//! `setenv` (other threads may be reading the C environment); they go to the
//! runtime's overlay, which everything in Lunet that reads variables consults.
//! `exit(code)` flushes standard output and ends the process at once with `code`.
//! Spawning child processes is not part of this module (yet).

use std::io::Write;

use lunet_runtime::{args, env};
use mlua::{Error, Lua, MetaMethod, Result, Table, Value};

fn check_env_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Err(Error::runtime(format!(
            "invalid environment variable name {key:?}: it must be non-empty and contain no '=' or NUL"
        )));
    }
    Ok(())
}

fn create_env(lua: &Lua) -> Result<Table> {
    let env = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.set(
        MetaMethod::Index.name(),
        lunet_runtime::create_function(lua, |_, (_, key): (Table, String)| {
            check_env_key(&key)?;
            Ok(env::var(&key).map(|v| v.to_string_lossy().into_owned()))
        })?,
    )?;
    meta.set(
        MetaMethod::NewIndex.name(),
        lunet_runtime::create_function(
            lua,
            |_, (_, key, value): (Table, String, Option<String>)| {
                check_env_key(&key)?;
                match value {
                    Some(value) if !value.contains('\0') => env::set(key, Some(value.into())),
                    Some(_) => {
                        return Err(Error::runtime(format!(
                            "invalid value for environment variable {key:?}: it contains NUL"
                        )));
                    }
                    None => env::set(key, None),
                }
                Ok(())
            },
        )?,
    )?;
    meta.set(
        MetaMethod::Iter.name(),
        lunet_runtime::create_function(lua, |lua, _: Table| {
            let snapshot = lua.create_table()?;
            for (key, value) in env::vars() {
                snapshot.set(
                    key.to_string_lossy().into_owned(),
                    value.to_string_lossy().into_owned(),
                )?;
            }
            let next: mlua::Function = lua.globals().get("next")?;
            Ok((next, snapshot))
        })?,
    )?;
    env.set_metatable(Some(meta))?;
    Ok(env)
}

fn os_name() -> &'static str {
    match std::env::consts::OS {
        "macos" => "macos",
        "windows" => "windows",
        "linux" => "linux",
        other => other,
    }
}

pub fn create(lua: &Lua, args: &[String]) -> Result<Value> {
    let process = lua.create_table()?;
    process.set(
        "args",
        super::freeze(lua.create_sequence_from(args.iter().cloned())?),
    )?;
    process.set("env", create_env(lua)?)?;
    process.set("os", os_name())?;
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
            let code = match code {
                None | Some(Value::Nil) => 0,
                Some(Value::Integer(i)) => i as i32,
                Some(Value::Number(n)) if n.fract() == 0.0 => n as i32,
                Some(Value::Boolean(ok)) => i32::from(!ok),
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
    Ok(Value::Table(super::freeze(process)))
}
