//! The environment a chunk loaded with a custom `environment` runs in, built as
//! Lune builds it.
//!
//! The chunk never runs in the script's table itself but in a new one: with
//! `injectGlobals` (the default) a copy of the globals as they are at load time
//! (and the globals' metatable, if any), then the script's entries on top; without
//! it, only the script's entries (and the script's table's metatable, if any). So
//! globals the chunk assigns land in its own environment, not in the script's table
//! nor in the real globals, and the script's table is left untouched. A new table
//! is not Luau's "safe environment", so Luau's fast paths for builtins (and native
//! code) are off for such a chunk, as in Lune.

use mlua::{Lua, Result, Table, Value};

/// The environment for a chunk loaded with `custom` as its `environment` option.
pub(crate) fn build(lua: &Lua, custom: &Table, inject_globals: bool) -> Result<Table> {
    let environment = lua.create_table()?;
    if inject_globals {
        let globals = lua.globals();
        copy(&globals, &environment)?;
        if let Some(metatable) = globals.metatable() {
            environment.set_metatable(Some(metatable))?;
        }
    } else if let Some(metatable) = custom.metatable() {
        environment.set_metatable(Some(metatable))?;
    }
    copy(custom, &environment)?;
    Ok(environment)
}

/// Copies every entry of `from` into `to`, without metamethods.
fn copy(from: &Table, to: &Table) -> Result<()> {
    for pair in from.pairs::<Value, Value>() {
        let (key, value) = pair?;
        to.raw_set(key, value)?;
    }
    Ok(())
}
