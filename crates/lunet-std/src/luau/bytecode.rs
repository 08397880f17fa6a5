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
//! At most [`REMEMBERED`] results are remembered (the first remembered are the
//! first forgotten; compiling the same source again while it is remembered does not
//! renew it), so a server that compiles per request does not grow without bound.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};

use mlua::Lua;

/// How many `luau.compile` results are remembered (about 5 MiB of hashes).
const REMEMBERED: usize = 65_536;

/// A BLAKE3 hash of some bytecode.
type Hash = [u8; 32];

/// The hashes of the bytecode `luau.compile` produced in this VM, and their order
/// (oldest first).
#[derive(Default)]
struct Remembered {
    known: HashSet<Hash>,
    order: VecDeque<Hash>,
}

#[derive(Default)]
struct Compiled(RefCell<Remembered>);

/// Remembers `bytecode` as produced by `luau.compile`.
pub(crate) fn remember(lua: &Lua, bytecode: &[u8]) {
    let hash = *blake3::hash(bytecode).as_bytes();
    if lua.app_data_ref::<Compiled>().is_none() {
        lua.set_app_data(Compiled::default());
    }
    let Some(compiled) = lua.app_data_ref::<Compiled>() else {
        return;
    };
    let remembered = &mut *compiled.0.borrow_mut();
    if remembered.known.insert(hash) {
        remembered.order.push_back(hash);
        if remembered.order.len() > REMEMBERED
            && let Some(oldest) = remembered.order.pop_front()
        {
            remembered.known.remove(&oldest);
        }
    }
}

/// True when `luau.compile` produced exactly `bytecode` in this VM.
pub(crate) fn is_known(lua: &Lua, bytecode: &[u8]) -> bool {
    lua.app_data_ref::<Compiled>().is_some_and(|compiled| {
        compiled
            .0
            .borrow()
            .known
            .contains(blake3::hash(bytecode).as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_results_up_to_the_limit() {
        let lua = Lua::new();
        let bytes = |i: usize| i.to_le_bytes();
        assert!(!is_known(&lua, &bytes(0)));
        for i in 0..=REMEMBERED {
            remember(&lua, &bytes(i));
        }
        assert!(!is_known(&lua, &bytes(0)), "the first is forgotten");
        assert!(is_known(&lua, &bytes(1)));
        assert!(is_known(&lua, &bytes(REMEMBERED)));
        assert_eq!(
            lua.app_data_ref::<Compiled>()
                .unwrap()
                .0
                .borrow()
                .known
                .len(),
            REMEMBERED
        );
    }
}
