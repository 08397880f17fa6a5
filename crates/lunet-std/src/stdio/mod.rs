//! `@lune/stdio`: writing to stdout/stderr, formatting values, terminal colours and
//! styles, and reading standard input.
//!
//! `write`/`ewrite` take a string or buffer and write it as is (no newline);
//! `format` formats values as `print` does; `color(name)` and `style(name)` return ANSI
//! escape codes (an unknown name is an error listing the valid ones); `readLine` and
//! `readToEnd` yield while standard input is read on a blocking thread.

pub mod format;

use std::io::{BufRead, Read, Write};

use mlua::{Error, Lua, MultiValue, Result, Value};

use lunet_runtime::{args, create_async_function};

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
                let line = tokio::task::spawn_blocking(|| {
                    let mut line = String::new();
                    let read = std::io::stdin().lock().read_line(&mut line)?;
                    Ok::<_, std::io::Error>(
                        (read > 0).then(|| line.trim_end_matches(['\r', '\n']).to_string()),
                    )
                })
                .await
                .map_err(Error::external)??;
                line.map(|l| lua.create_string(l)).transpose()
            }
        })?,
    )?;
    stdio.set(
        "readToEnd",
        create_async_function(lua, "stdio.readToEnd", |lua, ()| {
            let lua = lua.clone();
            async move {
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
    Ok(Value::Table(super::freeze(stdio)))
}
