//! Native code generation: which script and module chunks Luau's code generator
//! compiles to machine code.
//!
//! A chunk whose leading comments include the `--!native` directive is compiled
//! natively, as in Roblox and Lune; [`set_all_native`] compiles every chunk (what
//! `lunet run` does unless `--interpreted`, as Lune compiles every chunk unless
//! `LUNE_LUAU_JIT=0`). Everything else runs in Luau's interpreter. The
//! decision is made per chunk when it is loaded (mlua compiles a loaded chunk when its
//! JIT switch is on), so functions a module defines, net handlers included, run the
//! way their module was compiled. What the generated code does is Luau's business.

use mlua::{Function, Lua, Result};

/// Set when every chunk is to be compiled natively (`lunet run`'s default).
struct AllNative;

/// Compiles every chunk loaded from now on natively, `--!native` or not.
pub(crate) fn set_all_native(lua: &Lua) {
    lua.set_app_data(AllNative);
}

/// True when `source` asks for native code: a `--!native` line among the comments
/// and blank lines before its first line of code.
pub(crate) fn has_native_directive(source: &[u8]) -> bool {
    for line in source.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with(b"--") || line.starts_with(b"--[") {
            return false;
        }
        if line == b"--!native" {
            return true;
        }
    }
    false
}

/// Loads `source` as a function named `name`, compiled natively when it asks to be
/// (or when every chunk is).
pub(crate) fn load(lua: &Lua, source: &[u8], name: String) -> Result<Function> {
    let native = lua.app_data_ref::<AllNative>().is_some() || has_native_directive(source);
    // Source only: Luau's loader trusts bytecode (a truncated or crafted file crashes
    // the process), so a script or module that is bytecode is refused here, with a
    // message saying why. (`luau.load` has its own rules for bytecode.)
    let chunk = lua.load(source).set_name(name);
    if chunk.mode() == mlua::chunk::ChunkMode::Binary {
        return Err(mlua::Error::runtime(format!(
            "cannot run '{}': it is Luau bytecode, and Lunet runs and requires only source \
             (Luau's loader does not check bytecode, so a damaged file could crash the \
             process); to load bytecode you trust, use luau.load(bytecode, {{ trustBytecode = true }})",
            chunk.name().trim_start_matches('@')
        )));
    }
    load_natively(lua, native, || chunk.into_function())
}

/// Runs `load`, which loads one chunk, with Luau's code generator on when `native`
/// is true, so that chunk is compiled to machine code (where Luau supports it);
/// chunks loaded afterwards run in the interpreter again unless they ask otherwise.
/// Libraries that load chunks of their own (`luau.load`'s `codegenEnabled`) use it.
pub fn load_natively<T>(lua: &Lua, native: bool, load: impl FnOnce() -> Result<T>) -> Result<T> {
    if native {
        lua.enable_jit(true);
    }
    let loaded = load();
    if native {
        lua.enable_jit(false);
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directive_counts_only_before_code() {
        assert!(has_native_directive(b"--!native\nlocal x = 1\n"));
        assert!(has_native_directive(
            b"--!strict\n\n-- about\n--!native\nreturn 1"
        ));
        assert!(has_native_directive(b"  --!native  \r\nreturn 1"));
        assert!(!has_native_directive(b"local x = 1\n--!native\n"));
        assert!(!has_native_directive(b"--!nativex\nreturn 1"));
        assert!(!has_native_directive(b"--[[ block ]]\n--!native\n"));
        assert!(!has_native_directive(b""));
    }
}
