//! Luau value -> JSON bytes, written straight into one `Vec<u8>` while walking the
//! value: no `serde_json::Value` tree, no per-key strings.
//!
//! Owns the JSON output rules `serde.encode("json")` has always had (they were
//! mlua's serde bridge + serde_json, with sorted keys): a table with a positive raw
//! length (or mlua's array metatable) is an array of `t[1]..t[#t]` (holes are
//! `null`, other keys ignored), any other table an object with keys sorted (booleans,
//! then numbers, then strings by bytes); number and boolean keys become strings;
//! whole numbers in i64 range print without `.0` (itoa), other finite numbers in the
//! shortest form that reads back the same (zmij, serde_json's own formatter), NaN and
//! infinities as `null`; strings that are not UTF-8 and buffers become arrays of byte
//! values; vectors are `[x, y, z]`. Pretty output is serde_json's (two spaces).
//! The records of an array usually share one shape: an object whose keys are the
//! same strings, met in the same order, as the last object at its depth reuses that
//! object's key order instead of sorting ([`KeyOrder`]).
//! Does not own decoding ([`super::decode`]) or other formats.

use std::cmp::Ordering;
use std::ffi::{c_int, c_void};
use std::fmt;

use mlua::{Lua, LuaSerdeExt, Value, ffi};

/// Tables nested deeper than this are an error (the walk is recursive).
pub(crate) const MAX_DEPTH: usize = 512;

/// Why a value cannot be encoded, and where (a path from the root value).
#[derive(Debug)]
pub(crate) struct EncodeError {
    message: String,
    /// Path segments from the failing value up to the root (reversed on display).
    path: Vec<Segment>,
}

#[derive(Debug)]
enum Segment {
    Index(usize),
    Key(String),
}

impl EncodeError {
    fn new(message: impl Into<String>) -> EncodeError {
        EncodeError {
            message: message.into(),
            path: Vec::new(),
        }
    }

    fn at(mut self, segment: Segment) -> EncodeError {
        self.path.push(segment);
        self
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at value", self.message)?;
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Index(i) => write!(f, "[{i}]")?,
                Segment::Key(k) if is_identifier(k) => write!(f, ".{k}")?,
                Segment::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

type Result<T> = std::result::Result<T, EncodeError>;

/// Encodes `value` as JSON; `pretty` indents with two spaces like serde_json.
///
/// The walk reads the value on the Luau stack with raw C API calls (no mlua `Value`,
/// and so no reference, per table entry).
pub(crate) fn encode(lua: &Lua, value: &Value, pretty: bool) -> Result<Vec<u8>> {
    let mut encoder = Encoder {
        state: std::ptr::null_mut(),
        out: Vec::with_capacity(128),
        pretty,
        open: Vec::new(),
        array_metatable: lua.array_metatable().to_pointer(),
        entries: Vec::new(),
        orders: Vec::new(),
    };
    let mut result = Ok(());
    // SAFETY: the closure runs inside mlua's protected call with `value` pushed as
    // the only argument, so index 1 is valid. Everything it calls is raw and cannot
    // raise a Luau error (no metamethods; pushes only copy existing values, and stack
    // growth fails by returning 0 from lua_checkstack, which `value` checks), so no
    // error unwinds through the Rust frames below.
    let ran = unsafe {
        lua.exec_raw::<()>(value, |state| {
            encoder.state = state;
            result = encoder.value(1);
            ffi::lua_settop(state, 0);
        })
    };
    ran.map_err(|e| EncodeError::new(e.to_string()))?;
    result?;
    Ok(encoder.out)
}

struct Encoder {
    /// The Luau state the value is on (set inside `exec_raw`).
    state: *mut ffi::lua_State,
    out: Vec<u8>,
    pretty: bool,
    /// Tables being written, outermost first: the cycle check and the depth.
    open: Vec<*const c_void>,
    array_metatable: *const c_void,
    /// Reused buffers for an object's keys, one per nesting level.
    entries: Vec<Vec<Entry>>,
    /// The key order of the last object written at each nesting level.
    orders: Vec<KeyOrder>,
}

/// An object's members in the order they are written, and the string keys (by
/// address, in `lua_rawiter` order) it was worked out for. Objects of one shape (the
/// records of an array, typically) have the same interned key strings met in the
/// same order, so the next object with exactly these keys reuses the order instead
/// of sorting: equal addresses are equal strings, and the order depends on the keys
/// alone. Addresses stay valid for the whole encode: every table written is
/// reachable from the value, and nothing runs Luau code (or collects) meanwhile.
///
/// The text before each member's value (separator, indentation, quoted key, colon)
/// depends only on the key, its place and the nesting level, so it is kept too
/// ([`KeyOrder::prefixes`]): the next object of the shape copies each member's
/// prefix instead of escaping its key again (callgrind: ~100 instructions per key
/// for `write_string` and its pushes, against one copy).
#[derive(Default)]
struct KeyOrder {
    keys: Vec<*const u8>,
    order: Vec<u32>,
    /// Each member's prefix, in written order, concatenated; valid once
    /// `prefix_ends` has one end per member.
    prefixes: Vec<u8>,
    prefix_ends: Vec<u32>,
}

/// One member of an object being written: its key, and where `lua_rawiter` finds it
/// again (the iteration position just before it).
struct Entry {
    key: Key,
    slot: c_int,
    value: Scalar,
}

/// An object member's value, read in the first pass when it is a plain scalar (so
/// writing it needs no second stack access). Strings point into the value string,
/// which the table keeps alive like its keys.
enum Scalar {
    /// Anything else: pushed again from the entry's slot to be written.
    Fetch,
    Bool(bool),
    Num(f64),
    Str(*const u8, usize),
}

/// A table key as read from the stack, in mlua's terms (whole numbers that fit an
/// i64, except -0, are integers). Strings point into the key string, which the table
/// keeps alive and unchanged while it is written (nothing runs Luau code meanwhile).
enum Key {
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(*const u8, usize),
    /// Keys JSON cannot hold: their rank in mlua's key order, a pointer to order
    /// them by, and their type name for the error.
    Other(u8, *const c_void, &'static str),
}

impl Key {
    fn rank(&self) -> u8 {
        match self {
            Key::Bool(_) => 2,
            Key::Int(_) | Key::Num(_) => 3,
            Key::Str(..) => 5,
            Key::Other(rank, ..) => *rank,
        }
    }

    /// # Safety
    /// A `Key::Str` must still point at its (live) string.
    unsafe fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: the caller guarantees the string is alive; Luau strings do not move.
            Key::Str(ptr, len) => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            _ => &[],
        }
    }

    fn number(&self) -> f64 {
        match self {
            Key::Int(i) => *i as f64,
            Key::Num(n) => *n,
            _ => 0.0,
        }
    }
}

/// The key order of mlua's `sort_keys`: booleans, numbers, vectors, strings (bytes),
/// then everything else by address.
///
/// # Safety
/// String keys must point at live strings.
unsafe fn key_order(a: &Key, b: &Key) -> Ordering {
    match (a, b) {
        // SAFETY: the caller guarantees the strings are alive.
        (Key::Str(..), Key::Str(..)) => unsafe { a.bytes().cmp(b.bytes()) },
        (Key::Int(x), Key::Int(y)) => x.cmp(y),
        (Key::Bool(x), Key::Bool(y)) => x.cmp(y),
        _ => match a.rank().cmp(&b.rank()) {
            Ordering::Equal if a.rank() == 3 => a
                .number()
                .partial_cmp(&b.number())
                .unwrap_or(Ordering::Equal),
            Ordering::Equal => match (a, b) {
                (Key::Other(_, x, _), Key::Other(_, y, _)) => x.cmp(y),
                _ => Ordering::Equal,
            },
            other => other,
        },
    }
}

/// mlua's Luau number conversion: an integer when whole, in i64 range and not -0.
fn as_integer(n: f64) -> Option<i64> {
    // In range first (NaN is not), so the cast is exact when `n` is whole; the
    // round trip is the wholeness test (no call to `trunc`, as `fract` makes).
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n)
        && (n as i64) as f64 == n
        && !(n == 0.0 && n.is_sign_negative())
    {
        Some(n as i64)
    } else {
        None
    }
}

fn type_name(ty: c_int) -> &'static str {
    match ty {
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TLIGHTUSERDATA => "lightuserdata",
        ffi::LUA_TNUMBER | ffi::LUA_TINTEGER => "number",
        ffi::LUA_TVECTOR => "vector",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        ffi::LUA_TBUFFER => "buffer",
        _ => "userdata",
    }
}

/// Stack slots a table level uses while it is written (the table's entry and its
/// value, plus the metatable check); checked with `lua_checkstack` before use.
const SLOTS_PER_LEVEL: c_int = 3;

impl Encoder {
    /// Writes the value at stack index `idx`.
    ///
    /// # Safety
    /// `self.state` is the state `exec_raw` runs on and `idx` a valid absolute index.
    unsafe fn value(&mut self, idx: c_int) -> Result<()> {
        let state = self.state;
        // SAFETY (for the calls in this block): `idx` is valid (the caller's
        // contract), each accessor is called for a value of its own type, and none
        // of them raises.
        unsafe {
            match ffi::lua_type(state, idx) {
                ffi::LUA_TNIL => self.out.extend_from_slice(b"null"),
                ffi::LUA_TBOOLEAN => {
                    if ffi::lua_toboolean(state, idx) != 0 {
                        self.out.extend_from_slice(b"true");
                    } else {
                        self.out.extend_from_slice(b"false");
                    }
                }
                ffi::LUA_TNUMBER => self.number(ffi::lua_tonumber(state, idx)),
                ffi::LUA_TINTEGER => {
                    let i = ffi::lua_tointeger64(state, idx, std::ptr::null_mut());
                    self.out
                        .extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
                }
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let ptr = ffi::lua_tolstring(state, idx, &mut len);
                    // The string stays on the stack (alive) while its bytes are used.
                    let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
                    if !write_string(&mut self.out, bytes) {
                        self.byte_array(bytes);
                    }
                }
                ffi::LUA_TTABLE => self.table(idx)?,
                ffi::LUA_TVECTOR => {
                    let v = ffi::lua_tovector(state, idx);
                    let [x, y, z] = [*v, *v.add(1), *v.add(2)];
                    let level = self.open.len();
                    self.begin(b'[');
                    for (i, c) in [x, y, z].into_iter().enumerate() {
                        self.element(i == 0, level);
                        if c.is_finite() {
                            self.out
                                .extend_from_slice(zmij::Buffer::new().format_finite(c).as_bytes());
                        } else {
                            self.out.extend_from_slice(b"null");
                        }
                    }
                    self.end(b']', true, level);
                }
                ffi::LUA_TBUFFER => {
                    let mut len = 0;
                    let ptr = ffi::lua_tobuffer(state, idx, &mut len);
                    let bytes = if len == 0 {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(ptr.cast::<u8>().cast_const(), len)
                    };
                    self.byte_array(bytes);
                }
                ffi::LUA_TLIGHTUSERDATA if ffi::lua_tolightuserdata(state, idx).is_null() => {
                    self.out.extend_from_slice(b"null");
                }
                other => {
                    return Err(EncodeError::new(format!(
                        "cannot encode a {} as json",
                        type_name(other)
                    )));
                }
            }
        }
        Ok(())
    }

    fn number(&mut self, n: f64) {
        if let Some(i) = as_integer(n) {
            extend_short(&mut self.out, itoa::Buffer::new().format(i).as_bytes());
        } else if n.is_finite() {
            extend_short(
                &mut self.out,
                zmij::Buffer::new().format_finite(n).as_bytes(),
            );
        } else {
            self.out.extend_from_slice(b"null");
        }
    }

    fn byte_array(&mut self, bytes: &[u8]) {
        let level = self.open.len();
        self.begin(b'[');
        let mut digits = itoa::Buffer::new();
        for (i, b) in bytes.iter().enumerate() {
            self.element(i == 0, level);
            self.out.extend_from_slice(digits.format(*b).as_bytes());
        }
        self.end(b']', !bytes.is_empty(), level);
    }

    fn begin(&mut self, open: u8) {
        self.out.push(open);
    }

    /// Separator and indentation before an element (or key) of a container at `level`.
    fn element(&mut self, first: bool, level: usize) {
        if !first {
            self.out.push(b',');
        }
        if self.pretty {
            self.out.push(b'\n');
            self.indent(level + 1);
        }
    }

    fn end(&mut self, close: u8, had_elements: bool, level: usize) {
        if self.pretty && had_elements {
            self.out.push(b'\n');
            self.indent(level);
        }
        self.out.push(close);
    }

    fn indent(&mut self, level: usize) {
        for _ in 0..level {
            self.out.extend_from_slice(b"  ");
        }
    }

    /// # Safety
    /// As [`Encoder::value`], and the value at `idx` is a table.
    unsafe fn table(&mut self, idx: c_int) -> Result<()> {
        let state = self.state;
        // SAFETY: `idx` is a valid index of a table (the caller's contract).
        let ptr = unsafe { ffi::lua_topointer(state, idx) };
        if self.open.contains(&ptr) {
            return Err(EncodeError::new(
                "cannot encode a table that contains itself (a cycle)",
            ));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(EncodeError::new(format!(
                "cannot encode tables nested more than {MAX_DEPTH} deep"
            )));
        }
        // SAFETY: lua_checkstack reports failure instead of raising (mlua aborts on
        // allocation failure; it sets no memory limit here).
        if unsafe { ffi::lua_checkstack(state, SLOTS_PER_LEVEL) } == 0 {
            return Err(EncodeError::new("out of Luau stack space"));
        }
        // SAFETY: `idx` is a table.
        let len = unsafe { ffi::lua_objlen_(state, idx) }.max(0) as usize;
        let as_array = len > 0
            // SAFETY: `idx` is a table; lua_getmetatable pushes one value (room was
            // made above) only when it returns nonzero, and that value is popped.
            || unsafe {
                ffi::lua_getmetatable(state, idx) != 0 && {
                    let mt = ffi::lua_topointer(state, -1);
                    ffi::lua_settop(state, -2);
                    mt == self.array_metatable
                }
            };
        let level = self.open.len();
        self.open.push(ptr);
        // SAFETY: `idx` is a table and the stack has room (above).
        let result = unsafe {
            if as_array {
                self.array(idx, len, level)
            } else {
                self.object(idx, level)
            }
        };
        self.open.pop();
        result
    }

    /// # Safety
    /// As [`Encoder::table`], with room for one more stack value.
    unsafe fn array(&mut self, idx: c_int, len: usize, level: usize) -> Result<()> {
        let state = self.state;
        self.begin(b'[');
        for i in 1..=len {
            self.element(i == 1, level);
            // SAFETY: `idx` is a table and there is room for the pushed element, which
            // is popped again before the next; `i` fits a c_int (it is at most the
            // table's length, a c_int).
            let result = unsafe {
                ffi::lua_rawgeti_(state, idx, i as c_int);
                let result = self.value(ffi::lua_gettop(state));
                ffi::lua_settop(state, -2);
                result
            };
            result.map_err(|e| e.at(Segment::Index(i)))?;
        }
        self.end(b']', len > 0, level);
        Ok(())
    }

    /// # Safety
    /// As [`Encoder::table`], with room for two more stack values.
    unsafe fn object(&mut self, idx: c_int, level: usize) -> Result<()> {
        let state = self.state;
        if self.entries.len() <= level {
            self.entries.resize_with(level + 1, Vec::new);
            self.orders.resize_with(level + 1, KeyOrder::default);
        }
        let mut entries = std::mem::take(&mut self.entries[level]);
        entries.clear();
        // SAFETY: `idx` is a table; each lua_rawiter call pushes a key and a value
        // (room for two was made by the caller), popped again at once. String keys
        // point into strings the table holds, and the table is not changed while it
        // is written (nothing here runs Luau code), so they stay valid.
        unsafe {
            let mut iter = 0;
            loop {
                let next = ffi::lua_rawiter(state, idx, iter);
                if next < 0 {
                    break;
                }
                let key = match ffi::lua_type(state, -2) {
                    ffi::LUA_TSTRING => {
                        let mut len = 0;
                        let ptr = ffi::lua_tolstring(state, -2, &mut len);
                        Key::Str(ptr.cast(), len)
                    }
                    ffi::LUA_TNUMBER => {
                        let n = ffi::lua_tonumber(state, -2);
                        as_integer(n).map_or(Key::Num(n), Key::Int)
                    }
                    ffi::LUA_TINTEGER => {
                        Key::Int(ffi::lua_tointeger64(state, -2, std::ptr::null_mut()))
                    }
                    ffi::LUA_TBOOLEAN => Key::Bool(ffi::lua_toboolean(state, -2) != 0),
                    ffi::LUA_TLIGHTUSERDATA if ffi::lua_tolightuserdata(state, -2).is_null() => {
                        Key::Other(1, std::ptr::null(), "lightuserdata")
                    }
                    ffi::LUA_TVECTOR => Key::Other(4, std::ptr::null(), "vector"),
                    other => Key::Other(6, ffi::lua_topointer(state, -2), type_name(other)),
                };
                let value = match ffi::lua_type(state, -1) {
                    ffi::LUA_TNUMBER => Scalar::Num(ffi::lua_tonumber(state, -1)),
                    ffi::LUA_TBOOLEAN => Scalar::Bool(ffi::lua_toboolean(state, -1) != 0),
                    ffi::LUA_TSTRING => {
                        let mut len = 0;
                        let ptr = ffi::lua_tolstring(state, -1, &mut len);
                        Scalar::Str(ptr.cast(), len)
                    }
                    _ => Scalar::Fetch,
                };
                ffi::lua_settop(state, -3);
                entries.push(Entry {
                    key,
                    slot: next - 1,
                    value,
                });
                iter = next;
            }
        }
        let mut order = std::mem::take(&mut self.orders[level]);
        // SAFETY: the string keys are alive (above).
        unsafe { order.update(&entries) };
        self.begin(b'{');
        let mut result = Ok(());
        // Prefixes are copied when this shape's are known, and recorded when the
        // shape is remembered (all keys strings) but its prefixes are not yet. (A
        // record cut short by an error is never read: the error ends the encode.)
        let known = order.prefix_ends.len() == entries.len();
        let record = !known && order.keys.len() == entries.len();
        let mut prefix_start = 0;
        for (i, entry) in order
            .order
            .iter()
            .map(|&at| &entries[at as usize])
            .enumerate()
        {
            if known {
                let end = order.prefix_ends[i] as usize;
                extend_short(&mut self.out, &order.prefixes[prefix_start..end]);
                prefix_start = end;
            } else {
                let mark = self.out.len();
                self.element(i == 0, level);
                // SAFETY: the string keys are alive (above).
                if let Err(e) = unsafe { self.key(&entry.key) } {
                    result = Err(e);
                    break;
                }
                self.out.push(b':');
                if self.pretty {
                    self.out.push(b' ');
                }
                if record {
                    order.prefixes.extend_from_slice(&self.out[mark..]);
                    order.prefix_ends.push(order.prefixes.len() as u32);
                }
            }
            let written = match entry.value {
                Scalar::Bool(b) => {
                    self.out
                        .extend_from_slice(if b { b"true" } else { b"false" });
                    Ok(())
                }
                Scalar::Num(n) => {
                    self.number(n);
                    Ok(())
                }
                Scalar::Str(ptr, len) => {
                    // SAFETY: the string is alive (held by the unchanged table, above).
                    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
                    if !write_string(&mut self.out, bytes) {
                        self.byte_array(bytes);
                    }
                    Ok(())
                }
                // SAFETY: `entry.slot` is where lua_rawiter found this entry and the
                // table is unchanged, so this pushes the same key and value again
                // (room for two, as above); both are popped after it is written.
                Scalar::Fetch => unsafe {
                    ffi::lua_rawiter(state, idx, entry.slot);
                    let written = self.value(ffi::lua_gettop(state));
                    ffi::lua_settop(state, -3);
                    written
                },
            };
            if let Err(e) = written {
                // SAFETY: the string keys are alive (above).
                result = Err(e.at(Segment::Key(unsafe { key_name(&entry.key) })));
                break;
            }
        }
        let had_elements = !entries.is_empty();
        entries.clear();
        self.entries[level] = entries;
        self.orders[level] = order;
        result?;
        self.end(b'}', had_elements, level);
        Ok(())
    }

    /// # Safety
    /// A string key must point at its live string.
    unsafe fn key(&mut self, key: &Key) -> Result<()> {
        match key {
            Key::Str(..) => {
                // SAFETY: the caller guarantees the string is alive.
                let bytes = unsafe { key.bytes() };
                if !write_string(&mut self.out, bytes) {
                    return Err(EncodeError::new(
                        "cannot encode a table key that is not valid UTF-8 as json",
                    ));
                }
            }
            Key::Int(i) => {
                self.out.push(b'"');
                self.out
                    .extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
                self.out.push(b'"');
            }
            Key::Num(n) if n.is_finite() => {
                self.out.push(b'"');
                self.number(*n);
                self.out.push(b'"');
            }
            Key::Num(_) => {
                return Err(EncodeError::new(
                    "cannot encode a table key that is an infinite number as json",
                ));
            }
            Key::Bool(b) => {
                self.out
                    .extend_from_slice(if *b { b"\"true\"" } else { b"\"false\"" });
            }
            Key::Other(_, _, name) => {
                return Err(EncodeError::new(format!(
                    "cannot encode a table key that is a {name} as json (keys must be strings or numbers)"
                )));
            }
        }
        Ok(())
    }
}

impl KeyOrder {
    /// Makes `self.order` the written order of `entries` (indices into it, sorted by
    /// [`key_order`]), reusing the last one when the keys are the same strings met
    /// in the same order (see [`KeyOrder`]).
    ///
    /// # Safety
    /// String keys must point at live strings.
    unsafe fn update(&mut self, entries: &[Entry]) {
        let same = !entries.is_empty()
            && entries.len() == self.keys.len()
            && entries
                .iter()
                .zip(&self.keys)
                .all(|(entry, &key)| matches!(entry.key, Key::Str(ptr, _) if ptr == key));
        if same {
            return;
        }
        self.prefixes.clear();
        self.prefix_ends.clear();
        self.order.clear();
        self.order.extend(0..entries.len() as u32);
        if entries.len() > 1 {
            // SAFETY: the caller guarantees the strings are alive.
            self.order.sort_unstable_by(|&a, &b| unsafe {
                key_order(&entries[a as usize].key, &entries[b as usize].key)
            });
        }
        self.keys.clear();
        // Only objects whose keys are all strings are remembered (a number key has no
        // address to compare).
        if entries
            .iter()
            .all(|entry| matches!(entry.key, Key::Str(..)))
        {
            self.keys
                .extend(entries.iter().map(|entry| match entry.key {
                    Key::Str(ptr, _) => ptr,
                    _ => std::ptr::null(),
                }));
        }
    }
}

/// A key as an error path names it (mlua's `Value::to_string` for these types).
///
/// # Safety
/// A string key must point at its live string.
unsafe fn key_name(key: &Key) -> String {
    match key {
        // SAFETY: the caller guarantees the string is alive.
        Key::Str(..) => String::from_utf8_lossy(unsafe { key.bytes() }).into_owned(),
        Key::Int(i) => i.to_string(),
        Key::Num(n) => n.to_string(),
        Key::Bool(b) => b.to_string(),
        Key::Other(_, _, name) => (*name).to_string(),
    }
}

const __: u8 = 0;
const UU: u8 = b'u';
// serde_json's escape table: `"`, `\`, and control characters (short forms where
// JSON has them, `\u00XX` otherwise). Everything else, non-ASCII included, is copied.
static ESCAPE: [u8; 256] = {
    let mut table = [__; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = UU;
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// The bytes a JSON string holds as they are: ASCII from the space up, but `"` and
/// `\`.
pub(crate) static PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0x20;
    while i < 0x80 {
        table[i] = i != b'"' as usize && i != b'\\' as usize;
        i += 1;
    }
    table
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each of the 8 bytes in `word` that needs a look: a quote, a
/// backslash or a control character (little-endian, so the lowest set bit is the
/// first such byte). The lowest flag is exact: a false flag comes only from a
/// borrow out of a true one below it. Non-ASCII bytes are not flagged (each term
/// masks them out with `!x`), so text in any script is skipped a word at a time;
/// see [`has_non_ascii`].
#[inline]
pub(crate) fn needs_look(word: u64) -> u64 {
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    zero_byte(word ^ (ONES * u64::from(b'"')))
        | zero_byte(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
}

/// True if any of the 8 bytes in `word` is not ASCII (so UTF-8 must be checked).
#[inline]
pub(crate) fn has_non_ascii(word: u64) -> bool {
    word & HIGHS != 0
}

/// `out.extend_from_slice(bytes)`, with the copy of up to 16 bytes done in at most
/// two overlapping loads and stores instead of a call to `memcpy` (keys, short
/// strings and numbers are mostly that short; the call and its size dispatch
/// measured more than the copy).
#[inline]
pub(crate) fn extend_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    out.reserve(n);
    // SAFETY: room for `n` more bytes was reserved, so every store below lands in
    // `dst..dst + n` (each case's offsets are at most `n - width`), every load in
    // `bytes`, and `set_len` covers exactly the bytes written. Unaligned accesses
    // are used throughout; `out` and `bytes` cannot overlap (`out` is borrowed
    // mutably).
    unsafe {
        use std::ptr::{read_unaligned as load, write_unaligned as store};
        let src = bytes.as_ptr();
        let dst = out.as_mut_ptr().add(out.len());
        match n {
            0 => {}
            // Positions 0, n/2 and n-1 cover every byte of 1 to 3.
            1..=3 => {
                *dst = *src;
                *dst.add(n / 2) = *src.add(n / 2);
                *dst.add(n - 1) = *src.add(n - 1);
            }
            4..=7 => {
                store(dst.cast::<u32>(), load(src.cast::<u32>()));
                store(
                    dst.add(n - 4).cast::<u32>(),
                    load(src.add(n - 4).cast::<u32>()),
                );
            }
            8..=16 => {
                store(dst.cast::<u64>(), load(src.cast::<u64>()));
                store(
                    dst.add(n - 8).cast::<u64>(),
                    load(src.add(n - 8).cast::<u64>()),
                );
            }
            _ => std::ptr::copy_nonoverlapping(src, dst, n),
        }
        out.set_len(out.len() + n);
    }
}

/// Writes `bytes` as a quoted, escaped JSON string if they are valid UTF-8 (one pass,
/// eight bytes at a time where nothing needs escaping; the UTF-8 check only runs
/// when a non-ASCII byte was seen). Returns false, writing nothing, otherwise.
pub(crate) fn write_string(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Short strings (most keys and many values) are checked a byte at a time: the
    // word loop below would first copy them into a padded word.
    if bytes.len() < 16 && bytes.iter().all(|&b| PLAIN[b as usize]) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        extend_short(out, bytes);
        out.push(b'"');
        return true;
    }
    let mark = out.len();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut non_ascii = false;
    let mut i = 0;
    while i < bytes.len() {
        let word = match bytes.get(i..i + 8) {
            Some(chunk) => u64::from_le_bytes(chunk.try_into().unwrap_or_default()),
            None => {
                // The last few bytes, padded with spaces (which need no look).
                let mut tail = [b' '; 8];
                tail[..bytes.len() - i].copy_from_slice(&bytes[i..]);
                u64::from_le_bytes(tail)
            }
        };
        non_ascii |= has_non_ascii(word);
        let look = needs_look(word);
        if look == 0 {
            i += 8;
            continue;
        }
        // The lowest flagged byte is exact (false flags only come above a true one).
        let j = i + (look.trailing_zeros() / 8) as usize;
        i = j + 1;
        let b = bytes[j];
        let escape = ESCAPE[b as usize];
        if escape == __ {
            continue;
        }
        out.extend_from_slice(&bytes[start..j]);
        if escape == UU {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
        start = j + 1;
    }
    if non_ascii && std::str::from_utf8(bytes).is_err() {
        out.truncate(mark);
        return false;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
    true
}
