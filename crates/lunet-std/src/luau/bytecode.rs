//! Which bytecode `luau.load` runs.
//!
//! Luau trusts bytecode completely: its loader reads counts and offsets without
//! checking them against the buffer, and its interpreter indexes registers and
//! constants with the operands it finds, so a truncated or crafted string crashes
//! the process (or worse). Lune passes any bytecode to Luau; Lunet loads bytecode
//! only when it knows where it came from: `luau.compile` in this VM (each result is
//! remembered by its BLAKE3 hash, 32 bytes, so nothing else can pass for it), or a
//! script that says it trusts the bytes (`trustBytecode = true`, for bytecode
//! compiled by another process and kept in a file, say). Source is unaffected.

use std::cell::RefCell;
use std::collections::HashSet;

use mlua::Lua;

/// The hashes of the bytecode `luau.compile` produced in this VM.
#[derive(Default)]
struct Compiled(RefCell<HashSet<[u8; 32]>>);

/// Remembers `bytecode` as produced by `luau.compile`.
pub(crate) fn remember(lua: &Lua, bytecode: &[u8]) {
    let hash = *blake3::hash(bytecode).as_bytes();
    if let Some(compiled) = lua.app_data_ref::<Compiled>() {
        compiled.0.borrow_mut().insert(hash);
        return;
    }
    let compiled = Compiled::default();
    compiled.0.borrow_mut().insert(hash);
    lua.set_app_data(compiled);
}

/// True when `luau.compile` produced exactly `bytecode` in this VM.
pub(crate) fn is_known(lua: &Lua, bytecode: &[u8]) -> bool {
    lua.app_data_ref::<Compiled>().is_some_and(|compiled| {
        compiled
            .0
            .borrow()
            .contains(blake3::hash(bytecode).as_bytes())
    })
}
