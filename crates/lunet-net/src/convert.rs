//! Conversions between Luau values and HTTP types, shared by client and server.
//!
//! Header tables map lower-case names to a string, a repeated header's values joined
//! with `", "` (RFC 9110 5.3), as Lune's scripts expect; [`raw_header_list`] keeps
//! every line apart (`{ name, value }` tables). Values are raw bytes (never dropped
//! for not being UTF-8). Scripts
//! may give a header or query value as a string or an array of strings (bodies, a
//! string or a buffer, are read with `lunet_runtime::args::bytes`). Every error names
//! the field and what was expected, in the runtime's
//! `Invalid <field> - expected <what>, got <what was given>` shape. [`LuaBytes`] hands received
//! bytes to Luau as a string; [`StringOrBuffer`] takes a string or buffer argument
//! straight off the Luau stack.

use std::ffi::c_int;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use mlua::state::RawLua;
use mlua::{Error, FromLua, IntoLua, Lua, Result, Table, Value, ffi};

/// Bytes that become a Luau string. Returned from a library function or a resumed
/// wait, they are pushed straight onto the Luau stack, without first becoming a
/// `LuaString` (a Luau reference made and released again).
pub(crate) struct LuaBytes(pub Bytes);

impl IntoLua for LuaBytes {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        lua.create_string(&self.0).map(Value::String)
    }

    /// SAFETY (for the Luau C API calls): room for the one value is made first, and
    /// pushing a string cannot raise (mlua aborts on allocation failure instead).
    unsafe fn push_into_stack(self, lua: &RawLua) -> Result<()> {
        let state = lua.state();
        unsafe {
            if ffi::lua_checkstack(state, 1) == 0 {
                return Err(Error::StackError);
            }
            ffi::lua_pushlstring(state, self.0.as_ptr().cast(), self.0.len());
        }
        Ok(())
    }
}

/// A string or buffer argument, its bytes copied straight off the Luau stack (with no
/// Luau reference made and released for it). Any other value keeps its type name,
/// for the caller's error message, so conversion itself never fails.
pub(crate) enum StringOrBuffer {
    String(Bytes),
    Buffer(Bytes),
    Other(&'static str),
}

impl FromLua for StringOrBuffer {
    fn from_lua(value: Value, _lua: &Lua) -> Result<Self> {
        Ok(match value {
            Value::String(s) => StringOrBuffer::String(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Buffer(b) => StringOrBuffer::Buffer(Bytes::from(b.to_vec())),
            other => StringOrBuffer::Other(lunet_runtime::type_name(&other)),
        })
    }

    /// SAFETY (for the Luau C API calls): `idx` is a valid stack index (mlua only
    /// calls this for arguments that are present), and the pointers Luau returns
    /// stay valid while the value is on the stack, which is longer than the copy.
    unsafe fn from_stack(idx: c_int, lua: &RawLua) -> Result<Self> {
        let state = lua.state();
        let mut len = 0;
        unsafe {
            Ok(match ffi::lua_type(state, idx) {
                ffi::LUA_TSTRING => StringOrBuffer::String(string_bytes(state, idx)),
                ffi::LUA_TBUFFER => {
                    let data = ffi::lua_tobuffer(state, idx, &mut len);
                    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
                    StringOrBuffer::Buffer(Bytes::copy_from_slice(bytes))
                }
                ffi::LUA_TNIL | ffi::LUA_TNONE => StringOrBuffer::Other("nil"),
                ffi::LUA_TBOOLEAN => StringOrBuffer::Other("boolean"),
                ffi::LUA_TNUMBER => StringOrBuffer::Other("number"),
                ffi::LUA_TVECTOR => StringOrBuffer::Other("vector"),
                ffi::LUA_TTABLE => StringOrBuffer::Other("table"),
                ffi::LUA_TFUNCTION => StringOrBuffer::Other("function"),
                ffi::LUA_TTHREAD => StringOrBuffer::Other("thread"),
                _ => StringOrBuffer::Other("userdata"),
            })
        }
    }
}

/// A copy of the string at `index` of the Luau stack.
///
/// # Safety
/// The value at `index` must be a string (so `lua_tolstring` neither converts nor
/// raises); its bytes stay valid while it is on the stack, longer than the copy.
pub(crate) unsafe fn string_bytes(state: *mut ffi::lua_State, index: c_int) -> Bytes {
    // SAFETY: the caller's contract; the copy is made while the string is alive.
    Bytes::copy_from_slice(unsafe { stack_bytes(state, index) })
}

/// The values of one header or query entry: a string, or an array of strings.
pub(crate) fn string_values(value: &Value, field: &str, key: &str) -> Result<Vec<Vec<u8>>> {
    let wrong = |got: &str| {
        Error::runtime(format!(
            "Invalid {field} value for '{key}' - expected string or array of strings, got {got}"
        ))
    };
    match value {
        Value::String(s) => Ok(vec![s.as_bytes().to_vec()]),
        Value::Integer(i) => Ok(vec![i.to_string().into_bytes()]),
        Value::Number(n) => Ok(vec![lunet_runtime::format_number(*n).into_bytes()]),
        Value::Table(t) => {
            let mut out = Vec::with_capacity(t.raw_len());
            for item in t.sequence_values::<Value>() {
                match item? {
                    Value::String(s) => out.push(s.as_bytes().to_vec()),
                    other => {
                        return Err(wrong(&format!(
                            "array containing {}",
                            lunet_runtime::type_name(&other)
                        )));
                    }
                }
            }
            Ok(out)
        }
        other => Err(wrong(lunet_runtime::type_name(other))),
    }
}

/// The string keys of a table, sorted, with their values; an error names `field`.
pub(crate) fn sorted_entries(table: &Table, field: &str) -> Result<Vec<(String, Value)>> {
    let mut entries = Vec::new();
    // A raw iteration: `pairs()` would make a protected call per entry.
    table.for_each(|key: Value, value: Value| {
        let Value::String(key) = key else {
            return Err(Error::runtime(format!(
                "Invalid {field} - keys must be strings, got {}",
                lunet_runtime::type_name(&key)
            )));
        };
        entries.push((key.to_string_lossy(), value));
        Ok(())
    })?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// The most header lines a script may give in one headers table. `http`'s
/// `HeaderMap` panics past 32,768 entries (and on reserving ~24k), so a table of
/// tens of thousands of names would otherwise take the process down; real requests
/// and responses carry a few dozen.
const MAX_HEADERS: usize = 8192;

/// A header map from a script's headers table, in the order of the names (a Luau
/// table has none of its own). Names and values go straight from the Luau strings
/// into `HeaderName`s and `HeaderValue`s, with no copy in between.
pub(crate) fn header_map(value: &Value, field: &str) -> Result<HeaderMap> {
    // Matched here rather than with `args::optional_table`, which clones the table
    // reference: this runs for every response a handler returns with headers.
    let table = match value {
        Value::Nil => return Ok(HeaderMap::new()),
        Value::Table(table) => table,
        other => return Err(lunet_runtime::args::wrong(field, "table", other)),
    };
    let mut entries: Vec<(HeaderName, Value)> = Vec::new();
    // A raw iteration: `pairs()` would make a protected call per entry.
    table.for_each(|key: Value, value: Value| {
        let Value::String(key) = key else {
            return Err(Error::runtime(format!(
                "Invalid {field} - keys must be strings, got {}",
                lunet_runtime::type_name(&key)
            )));
        };
        let name = HeaderName::from_bytes(&key.as_bytes()).map_err(|_| {
            Error::runtime(format!(
                "Invalid {field} - '{}' is not a valid header name",
                key.to_string_lossy()
            ))
        })?;
        entries.push((name, value));
        Ok(())
    })?;
    entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let too_many = || {
        lunet_runtime::args::invalid(
            field,
            &format!("at most {MAX_HEADERS} header lines"),
            "more",
        )
    };
    if entries.len() > MAX_HEADERS {
        return Err(too_many());
    }
    let mut map = HeaderMap::with_capacity(entries.len());
    for (name, value) in entries {
        let header_value = |bytes: &[u8]| {
            HeaderValue::from_bytes(bytes).map_err(|_| {
                Error::runtime(format!(
                    "Invalid {field} value for '{name}' - header values cannot contain newlines or other control characters"
                ))
            })
        };
        match &value {
            Value::String(s) => {
                let value = header_value(&s.as_bytes())?;
                map.append(name, value);
            }
            _ => {
                for bytes in string_values(&value, field, name.as_str())? {
                    let value = header_value(&bytes)?;
                    map.append(name.clone(), value);
                    if map.len() > MAX_HEADERS {
                        return Err(too_many());
                    }
                }
            }
        }
    }
    Ok(map)
}

/// [`header_map`] for the value at `index` on a locked Luau stack, read there
/// without making a Luau reference per key and value: the server's path for the
/// `headers` of every response a handler returns. The usual table (string names,
/// string values, no more than the limit) is converted here; anything else (nil,
/// an array value, a number, a bad name or value...) goes to [`header_map`], so the
/// result and every error are the same as there.
///
/// # Safety
/// `lua`'s state is locked by the caller and `index` is a valid absolute index on
/// it; there is room for two more values on the stack (pushed and popped again
/// here).
pub(crate) unsafe fn header_map_from_stack(
    lua: &RawLua,
    index: c_int,
    field: &str,
) -> Result<HeaderMap> {
    let state = lua.state();
    // SAFETY: the caller's contract. `lua_rawiter` pushes a key and a value (room
    // for two is the contract) and calls no metamethod; both are popped before the
    // next step. The name and value slices point into Luau strings the table holds,
    // and no Luau code runs (nothing can change the table or collect them) before
    // they are copied into the map below.
    unsafe {
        match ffi::lua_type(state, index) {
            ffi::LUA_TNIL => return Ok(HeaderMap::new()),
            ffi::LUA_TTABLE => {}
            _ => return header_map(&Value::from_stack(index, lua)?, field),
        }
        let mut entries: Vec<(HeaderName, &[u8])> = Vec::new();
        let mut iter = ffi::lua_rawiter(state, index, 0);
        while iter >= 0 {
            let plain = ffi::lua_type(state, -2) == ffi::LUA_TSTRING
                && ffi::lua_type(state, -1) == ffi::LUA_TSTRING;
            let name = plain.then(|| HeaderName::from_bytes(stack_bytes(state, -2)).ok());
            let value = stack_bytes(state, -1);
            ffi::lua_pop(state, 2);
            match name {
                Some(Some(name)) if entries.len() < MAX_HEADERS => entries.push((name, value)),
                _ => return header_map(&Value::from_stack(index, lua)?, field),
            }
            iter = ffi::lua_rawiter(state, index, iter);
        }
        entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut map = HeaderMap::with_capacity(entries.len());
        for (name, value) in entries {
            let Ok(value) = HeaderValue::from_bytes(value) else {
                return header_map(&Value::from_stack(index, lua)?, field);
            };
            map.append(name, value);
        }
        Ok(map)
    }
}

/// The bytes of the string at `index` (empty for anything else).
///
/// # Safety
/// `state` is locked by the caller and `index` valid; the slice lives as long as
/// the string does, which the caller must see to.
unsafe fn stack_bytes<'a>(state: *mut ffi::lua_State, index: c_int) -> &'a [u8] {
    // SAFETY: `lua_tolstring` is only called on a string (it would convert a
    // number in place); its pointer and length describe the string's bytes.
    unsafe {
        if ffi::lua_type(state, index) != ffi::LUA_TSTRING {
            return &[];
        }
        let mut len = 0;
        let data = ffi::lua_tolstring(state, index, &mut len);
        std::slice::from_raw_parts(data.cast::<u8>(), len)
    }
}

/// A Luau table of headers: lower-case names, string values, a repeated header's
/// values joined with `", "`.
pub(crate) fn header_table(lua: &Lua, headers: &HeaderMap) -> Result<Table> {
    let table = lua.create_table_with_capacity(0, headers.keys_len())?;
    for name in headers.keys() {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else {
            continue;
        };
        let value = match values.next() {
            None => lua.create_string(first.as_bytes())?,
            Some(second) => {
                let mut joined = first.as_bytes().to_vec();
                for value in std::iter::once(second).chain(values) {
                    joined.extend_from_slice(b", ");
                    joined.extend_from_slice(value.as_bytes());
                }
                lua.create_string(joined)?
            }
        };
        table.raw_set(name.as_str(), value)?;
    }
    Ok(table)
}

/// Every header line as `{ name = ..., value = ... }`, in `HeaderMap` order (names in
/// the order they first appeared, each name's values together, as received).
pub(crate) fn raw_header_list(lua: &Lua, headers: &HeaderMap) -> Result<Table> {
    let list = lua.create_table_with_capacity(headers.len(), 0)?;
    for (name, value) in headers.iter() {
        let line = lua.create_table_with_capacity(0, 2)?;
        line.raw_set("name", name.as_str())?;
        line.raw_set("value", lua.create_string(value.as_bytes())?)?;
        list.raw_push(line)?;
    }
    Ok(list)
}
