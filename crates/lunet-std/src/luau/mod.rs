//! `@lune/luau`: compiling Luau source to bytecode (`luau.compile`) and loading
//! source or bytecode as a function (`luau.load`), as Lune's library has them.
//!
//! `luau.compile` runs Luau's compiler (through mlua) with the levels of
//! [`options::CompileOptions`]; source that does not parse is an error naming the
//! line. `luau.load` takes either source or bytecode (told apart by Luau's own
//! check, `luaL_isbytecode`: bytecode starts with its version byte, which no text
//! does) and returns the chunk as a function. Source that does not parse is an
//! error naming the chunk (`[string "name"]:1: ...`).
//!
//! A loaded function is an ordinary Luau function: called from a script thread it
//! may yield (`task.wait`, `net.request`) like any other. `require` in it resolves
//! relative paths from the nearest chunk on the calling stack named as a file
//! (`@path`): the chunk itself when its debug name starts with `@` (as in Lune),
//! else the script file that called it (where Lune refuses).
//! `environment` is [`environment::build`]'s business; `codegenEnabled` compiles the
//! chunk to native code through the runtime's [`lunet_runtime::load_natively`],
//! unless a custom environment is given (Luau would not use it there, so Lune turns
//! it off too).
//!
//! Bytecode is loaded only when [`bytecode`] knows where it came from (Luau does not
//! verify it, and bad bytecode crashes the process): from `luau.compile` in this VM,
//! or with `trustBytecode = true`. Lune loads any.

mod bytecode;
mod environment;
mod options;

use lunet_runtime::args;
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaString, Result, Value};

use options::{CompileOptions, LoadOptions};

/// `luau.compile(source, options?)`.
fn compile(lua: &Lua, source: &Value, options: &Value) -> Result<LuaString> {
    let source = args::string(source, "argument #1 to 'luau.compile'")?;
    let options = CompileOptions::from_value(options)?;
    match options.compiler().compile(&*source.as_bytes()) {
        Ok(compiled) => {
            bytecode::remember(lua, &compiled);
            lua.create_string(compiled)
        }
        Err(mlua::Error::SyntaxError { message, .. }) => {
            Err(mlua::Error::runtime(syntax_error(&message)))
        }
        Err(other) => Err(other),
    }
}

/// `luau.compile`'s message for Luau's `"<line>: <what>"`.
fn syntax_error(message: &str) -> String {
    match message.split_once(": ") {
        Some((line, what)) if line.bytes().all(|b| b.is_ascii_digit()) => {
            format!("luau.compile: syntax error on line {line}: {what}")
        }
        _ => format!("luau.compile: syntax error: {message}"),
    }
}

/// Why `luau.load` refuses bytecode it does not know.
const UNKNOWN_BYTECODE: &str = "luau.load: refusing bytecode that luau.compile did not produce in this process \
(Luau does not check bytecode, and truncated or crafted bytecode crashes the process); \
pass the source instead, or set trustBytecode = true in the options if these bytes are known to be \
luau.compile's output";

/// `luau.load(source, options?)`.
fn load(lua: &Lua, source: &Value, options: &Value) -> Result<Function> {
    let source = args::string(source, "argument #1 to 'luau.load'")?;
    let options = LoadOptions::from_value(options)?;
    let bytes = source.as_bytes();
    let mut chunk = lua.load(&*bytes).set_name(options.debug_name);
    if chunk.mode() == ChunkMode::Binary
        && !options.trust_bytecode
        && !bytecode::is_known(lua, &bytes)
    {
        return Err(mlua::Error::runtime(UNKNOWN_BYTECODE));
    }
    let custom = options.environment.is_some();
    if let Some(custom) = &options.environment {
        chunk = chunk.set_environment(environment::build(lua, custom, options.inject_globals)?);
    }
    lunet_runtime::load_natively(lua, options.codegen_enabled && !custom, || {
        chunk.into_function()
    })
}

pub fn create(lua: &Lua) -> Result<Value> {
    let module = lua.create_table()?;
    module.set(
        "compile",
        lunet_runtime::create_function(lua, |lua, (source, options): (Value, Value)| {
            compile(lua, &source, &options)
        })?,
    )?;
    module.set(
        "load",
        lunet_runtime::create_function(lua, |lua, (source, options): (Value, Value)| {
            load(lua, &source, &options)
        })?,
    )?;
    Ok(Value::Table(super::freeze(module)))
}
