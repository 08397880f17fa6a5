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
//! may yield (`task.wait`, `net.request`) like any other, and `require` in it
//! resolves relative paths from the nearest script file on the calling stack (the
//! file that called the function), since the chunk has no file of its own.
//! `environment` is [`environment::build`]'s business; `codegenEnabled` compiles the
//! chunk to native code through the runtime's [`lunet_runtime::load_natively`],
//! unless a custom environment is given (Luau would not use it there, so Lune turns
//! it off too).
//!
//! Bytecode is trusted: Luau does not verify it, and crafted bytecode can crash the
//! process, in Lune as here. Load only bytecode that `luau.compile` produced.

mod environment;
mod options;

use lunet_runtime::args;
use mlua::{Function, Lua, LuaString, Result, Value};

use options::{CompileOptions, LoadOptions};

/// `luau.compile(source, options?)`.
fn compile(lua: &Lua, source: &Value, options: &Value) -> Result<LuaString> {
    let source = args::string(source, "argument #1 to 'luau.compile'")?;
    let options = CompileOptions::from_value(options)?;
    match options.compiler().compile(&*source.as_bytes()) {
        Ok(bytecode) => lua.create_string(bytecode),
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

/// `luau.load(source, options?)`.
fn load(lua: &Lua, source: &Value, options: &Value) -> Result<Function> {
    let source = args::string(source, "argument #1 to 'luau.load'")?;
    let options = LoadOptions::from_value(options)?;
    let bytes = source.as_bytes();
    let mut chunk = lua.load(&*bytes).set_name(options.debug_name);
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
