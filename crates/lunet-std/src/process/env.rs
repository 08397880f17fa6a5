//! `process.env`: a live view of the environment as scripts see it
//! (`lunet_runtime::env`).
//!
//! Reading a key reads the variable, assigning a string sets it, assigning `nil`
//! removes it, and iterating walks a snapshot. Writes never call `setenv` (other
//! threads may be reading the C environment); they go to the runtime's overlay,
//! which everything in Lunet that reads variables consults, child processes
//! included (see `options.rs`). This module also owns what a valid variable name is.

use lunet_runtime::{args, env};
use mlua::{Error, Lua, MetaMethod, Result, Table, Value};

/// True for a name the environment can hold: non-empty, no `=` and no NUL.
pub(super) fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.contains(&b'=') && !name.contains(&0)
}

/// A `process.env` key: a string (else an argument error), UTF-8, and a valid name.
fn key_arg(key: &Value) -> Result<String> {
    let key = args::string(key, "process.env key")?;
    let Ok(key) = key.to_str() else {
        return Err(args::invalid(
            "process.env key",
            "UTF-8 text",
            "bytes that are not UTF-8",
        ));
    };
    if !is_valid_name(key.as_bytes()) {
        return Err(Error::runtime(format!(
            "invalid environment variable name {:?}: it must be non-empty and contain no '=' or NUL",
            &*key
        )));
    }
    Ok(key.to_string())
}

/// A value assigned to `process.env[key]`: UTF-8 text (or a number, as Luau turns it
/// into text), or nil to remove the variable.
fn value_arg(lua: &Lua, key: &str, value: Value) -> Result<Option<String>> {
    let field = || format!("process.env.{key}");
    let text = match value {
        Value::Nil => return Ok(None),
        Value::String(text) => text,
        number @ (Value::Integer(_) | Value::Number(_)) => lua
            .coerce_string(number.clone())?
            .ok_or_else(|| args::wrong(&field(), "string or nil", &number))?,
        other => return Err(args::wrong(&field(), "string or nil", &other)),
    };
    let Ok(value) = text.to_str() else {
        return Err(args::invalid(
            &field(),
            "UTF-8 text",
            "bytes that are not UTF-8",
        ));
    };
    let value = value.to_string();
    if value.contains('\0') {
        return Err(Error::runtime(format!(
            "invalid value for environment variable {key:?}: it contains NUL"
        )));
    }
    Ok(Some(value))
}

/// The `process.env` table.
pub(super) fn create(lua: &Lua) -> Result<Table> {
    let env = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.set(
        MetaMethod::Index.name(),
        lunet_runtime::create_function(lua, |_, (_, key): (Table, Value)| {
            let key = key_arg(&key)?;
            Ok(env::var(&key).map(|v| v.to_string_lossy().into_owned()))
        })?,
    )?;
    meta.set(
        MetaMethod::NewIndex.name(),
        lunet_runtime::create_function(lua, |lua, (_, key, value): (Table, Value, Value)| {
            let key = key_arg(&key)?;
            let value = value_arg(lua, &key, value)?;
            env::set(key, value.map(Into::into));
            Ok(())
        })?,
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
