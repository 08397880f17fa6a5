//! `process.env`: a live view of the environment as scripts see it
//! (`lunet_runtime::env`).
//!
//! Reading a key reads the variable, assigning a string sets it, assigning `nil`
//! removes it, and iterating walks a snapshot. Writes never call `setenv` (other
//! threads may be reading the C environment); they go to the runtime's overlay,
//! which everything in Lunet that reads variables consults, child processes
//! included (see `options.rs`). This module also owns what a valid variable name is.

use lunet_runtime::env;
use mlua::{Error, Lua, MetaMethod, Result, Table};

/// True for a name the environment can hold: non-empty, no `=` and no NUL.
pub(super) fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.contains(&b'=') && !name.contains(&0)
}

fn check_key(key: &str) -> Result<()> {
    if !is_valid_name(key.as_bytes()) {
        return Err(Error::runtime(format!(
            "invalid environment variable name {key:?}: it must be non-empty and contain no '=' or NUL"
        )));
    }
    Ok(())
}

/// The `process.env` table.
pub(super) fn create(lua: &Lua) -> Result<Table> {
    let env = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.set(
        MetaMethod::Index.name(),
        lunet_runtime::create_function(lua, |_, (_, key): (Table, String)| {
            check_key(&key)?;
            Ok(env::var(&key).map(|v| v.to_string_lossy().into_owned()))
        })?,
    )?;
    meta.set(
        MetaMethod::NewIndex.name(),
        lunet_runtime::create_function(
            lua,
            |_, (_, key, value): (Table, String, Option<String>)| {
                check_key(&key)?;
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
