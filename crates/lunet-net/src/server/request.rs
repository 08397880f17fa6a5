//! The request table a `handleRequest` handler receives:
//! `{ method, path, query, headers, body, ip, port }`.
//!
//! `query` maps each key to a string, or an array when the key repeats; `headers` has
//! lower-case names with repeated headers as arrays; `body` is a binary-safe string,
//! already decoded when the request had a gzip/deflate/br/zstd `Content-Encoding`.
//!
//! This is the hottest path of `net.serve`, so the table is built with Luau's C API
//! in one protected call: no registry reference is taken for any field, only for the
//! finished table. Every push is paired with a set in the same block, and the stack
//! is balanced before the call returns.

use std::ffi::c_char;

use bytes::Bytes;
use http::request::Parts;
use mlua::{Lua, LuaString, Result, Table, ffi};

unsafe fn push_bytes(state: *mut ffi::lua_State, bytes: &[u8]) {
    unsafe { ffi::lua_pushlstring_(state, bytes.as_ptr() as *const c_char, bytes.len()) };
}

/// Sets `t[key] = value` for the table at the top of the stack, where a repeated key
/// turns the entry into an array of every value, in order.
unsafe fn append_entry(state: *mut ffi::lua_State, key: &[u8], value: &[u8]) {
    unsafe {
        push_bytes(state, key);
        ffi::lua_pushvalue(state, -1);
        let existing = ffi::lua_rawget(state, -3);
        match existing {
            ffi::LUA_TNIL => {
                ffi::lua_pop(state, 1);
                push_bytes(state, value);
                ffi::lua_rawset(state, -3);
            }
            ffi::LUA_TSTRING => {
                // [t, key, first] -> t[key] = { first, value }
                ffi::lua_createtable(state, 2, 0);
                ffi::lua_insert(state, -2);
                ffi::lua_rawseti_(state, -2, 1);
                push_bytes(state, value);
                ffi::lua_rawseti_(state, -2, 2);
                ffi::lua_rawset(state, -3);
            }
            _ => {
                // [t, key, list] -> list[#list + 1] = value
                let next = ffi::lua_objlen_(state, -1) + 1;
                push_bytes(state, value);
                ffi::lua_rawseti_(state, -2, next);
                ffi::lua_pop(state, 2);
            }
        }
    }
}

/// Builds the request table; `ip` is the connection's address as a Luau string.
pub fn request_table(
    lua: &Lua,
    parts: &Parts,
    body: &Bytes,
    ip: &LuaString,
    port: u16,
) -> Result<Table> {
    let path = match parts.uri.path() {
        "" => "/",
        path => path,
    };
    // SAFETY: the closure runs in a protected call on mlua's main state with `ip` on
    // the stack; it only pushes values and stores them into tables it created, and
    // leaves exactly one value (the request table) on the stack.
    unsafe {
        lua.exec_raw::<Table>(ip, |state| {
            ffi::lua_createtable(state, 0, 7);
            push_bytes(state, parts.method.as_str().as_bytes());
            ffi::lua_rawsetfield(state, -2, c"method".as_ptr());
            push_bytes(state, path.as_bytes());
            ffi::lua_rawsetfield(state, -2, c"path".as_ptr());

            ffi::lua_createtable(state, 0, 0);
            if let Some(query) = parts.uri.query() {
                for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                    append_entry(state, key.as_bytes(), value.as_bytes());
                }
            }
            ffi::lua_rawsetfield(state, -2, c"query".as_ptr());

            ffi::lua_createtable(state, 0, parts.headers.keys_len() as i32);
            for (name, value) in parts.headers.iter() {
                append_entry(state, name.as_str().as_bytes(), value.as_bytes());
            }
            ffi::lua_rawsetfield(state, -2, c"headers".as_ptr());

            push_bytes(state, body);
            ffi::lua_rawsetfield(state, -2, c"body".as_ptr());
            ffi::lua_pushvalue(state, -2);
            ffi::lua_rawsetfield(state, -2, c"ip".as_ptr());
            ffi::lua_pushinteger_(state, i32::from(port));
            ffi::lua_rawsetfield(state, -2, c"port".as_ptr());
            // [ip, request] -> [request]
            ffi::lua_replace(state, -2);
        })
    }
}
