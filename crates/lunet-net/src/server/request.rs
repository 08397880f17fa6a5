//! The request table a `handleRequest` handler receives:
//! `{ method, path, query, headers, body, ip, port }`.
//!
//! `query` maps each key to a string, or an array when the key repeats; `headers` has
//! lower-case names with repeated headers as arrays; `body` is a binary-safe string,
//! already decoded when the request had a gzip/deflate/br/zstd `Content-Encoding`.

use bytes::Bytes;
use http::request::Parts;
use mlua::{Lua, Result, Table, Value};

use crate::convert::header_table;

/// A Luau table of query parameters; repeated keys become arrays.
pub fn query_table(lua: &Lua, query: Option<&str>) -> Result<Table> {
    let table = lua.create_table()?;
    let Some(query) = query else {
        return Ok(table);
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = lua.create_string(value.as_bytes())?;
        match table.raw_get::<Value>(key.as_ref())? {
            Value::Nil => table.raw_set(key.as_ref(), value)?,
            Value::String(first) => {
                let list = lua.create_sequence_from([first, value])?;
                table.raw_set(key.as_ref(), list)?;
            }
            Value::Table(list) => list.raw_push(value)?,
            _ => {}
        }
    }
    Ok(table)
}

/// Builds the request table.
pub fn request_table(lua: &Lua, parts: &Parts, body: &Bytes, ip: &str, port: u16) -> Result<Table> {
    let table = lua.create_table_with_capacity(0, 7)?;
    table.raw_set("method", parts.method.as_str())?;
    let path = parts.uri.path();
    table.raw_set("path", if path.is_empty() { "/" } else { path })?;
    table.raw_set("query", query_table(lua, parts.uri.query())?)?;
    table.raw_set("headers", header_table(lua, &parts.headers)?)?;
    table.raw_set("body", lua.create_string(body)?)?;
    table.raw_set("ip", ip)?;
    table.raw_set("port", port)?;
    Ok(table)
}
