//! `@lune/stdio`: writing to stdout/stderr, formatting values, terminal colours and
//! styles, and reading standard input.
//!
//! `write`/`ewrite` take a string or buffer and write it as is (no newline);
//! `format` formats values as `print` does; `color(name)` and `style(name)` return ANSI
//! escape codes (an unknown name is an error listing the valid ones); `readLine`,
//! `readToEnd` and `prompt` yield while standard input is read on a blocking thread,
//! so other threads keep running. As in Lune, `readLine` returns `""` at the end of
//! input. `prompt` is line-based and works with piped input (see `prompt.rs`).

pub mod format;
mod prompt;

use std::io::{BufRead, Read, Write};

use mlua::{Error, Lua, MultiValue, Result, Value};

use lunet_runtime::{args, create_async_function};

/// Readers of standard input take turns in the order they were called (a fair
/// lock), so two threads reading lines get them in call order, as in Lune.
static STDIN_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const COLORS: &[(&str, &str)] = &[
    ("reset", "\x1b[0m"),
    ("black", "\x1b[30m"),
    ("red", "\x1b[31m"),
    ("green", "\x1b[32m"),
    ("yellow", "\x1b[33m"),
    ("blue", "\x1b[34m"),
    ("purple", "\x1b[35m"),
    ("cyan", "\x1b[36m"),
    ("white", "\x1b[37m"),
];

const STYLES: &[(&str, &str)] = &[
    ("reset", "\x1b[0m"),
    ("bold", "\x1b[1m"),
    ("dim", "\x1b[2m"),
];

fn lookup(table: &[(&str, &'static str)], name: &str, what: &str) -> Result<&'static str> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, code)| *code)
        .ok_or_else(|| {
            let valid: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            args::invalid(
                what,
                &format!("one of {}", valid.join(", ")),
                format!("'{name}'"),
            )
        })
}

pub fn create(lua: &Lua) -> Result<Value> {
    let stdio = lua.create_table()?;
    stdio.set(
        "write",
        lunet_runtime::create_function(lua, |_, value: Value| {
            let bytes = args::bytes(&value, "argument #1 to 'stdio.write'")?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
            Ok(())
        })?,
    )?;
    stdio.set(
        "ewrite",
        lunet_runtime::create_function(lua, |_, value: Value| {
            let bytes = args::bytes(&value, "argument #1 to 'stdio.ewrite'")?;
            let mut err = std::io::stderr().lock();
            err.write_all(&bytes)?;
            err.flush()?;
            Ok(())
        })?,
    )?;
    stdio.set(
        "format",
        lunet_runtime::create_function(lua, |_, values: MultiValue| {
            Ok(format::format_values(&values, false))
        })?,
    )?;
    stdio.set(
        "color",
        lunet_runtime::create_function(lua, |_, name: String| lookup(COLORS, &name, "color"))?,
    )?;
    stdio.set(
        "style",
        lunet_runtime::create_function(lua, |_, name: String| lookup(STYLES, &name, "style"))?,
    )?;
    stdio.set(
        "readLine",
        create_async_function(lua, "stdio.readLine", |lua, ()| {
            let lua = lua.clone();
            async move {
                let _turn = STDIN_TURN.lock().await;
                let line = tokio::task::spawn_blocking(|| {
                    let mut line = Vec::new();
                    std::io::stdin().lock().read_until(b'\n', &mut line)?;
                    let end = line.strip_suffix(b"\n").map_or(line.len(), <[u8]>::len);
                    line.truncate(end);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    Ok::<_, std::io::Error>(line)
                })
                .await
                .map_err(Error::external)??;
                // At the end of input this is "" (as in Lune), never nil.
                lua.create_string(line)
            }
        })?,
    )?;
    stdio.set(
        "readToEnd",
        create_async_function(lua, "stdio.readToEnd", |lua, ()| {
            let lua = lua.clone();
            async move {
                let _turn = STDIN_TURN.lock().await;
                let bytes = tokio::task::spawn_blocking(|| {
                    let mut bytes = Vec::new();
                    std::io::stdin().lock().read_to_end(&mut bytes)?;
                    Ok::<_, std::io::Error>(bytes)
                })
                .await
                .map_err(Error::external)??;
                lua.create_string(bytes)
            }
        })?,
    )?;
    stdio.set(
        "prompt",
        lunet_runtime::create_checked_async_function(
            lua,
            "stdio.prompt",
            |lua, values: MultiValue| {
                let prompt = prompt::Prompt::from_args(values)?;
                let lua = lua.clone();
                Ok(async move {
                    let _turn = STDIN_TURN.lock().await;
                    let answer = tokio::task::spawn_blocking(move || {
                        prompt.ask(&mut std::io::stdin().lock(), &mut std::io::stderr().lock())
                    })
                    .await
                    .map_err(Error::external)??;
                    answer.into_value(&lua)
                })
            },
        )?,
    )?;
    Ok(Value::Table(super::freeze(stdio)))
}
