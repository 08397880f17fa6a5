//! JSON bytes -> Luau values: a recursive-descent parser that creates the Luau
//! tables and strings as it reads (no `serde_json::Value` tree in between).
//!
//! Owns what `serde.decode("json")` accepts (RFC 8259 JSON, UTF-8, nothing after
//! the value but whitespace) and what it builds: objects and arrays become plain
//! tables (no metatable), `null` becomes `nil` (a missing key, or a hole in an
//! array), numbers are the correctly rounded double of their decimal text (Rust's
//! `str::parse::<f64>`, with an exact fast path for short decimals). Nesting deeper
//! than [`MAX_DEPTH`] is an error, not a stack overflow. Errors say what was wrong
//! and where (line, column and byte offset). Does not own comment stripping (JSONC,
//! `lunet_runtime::codec::jsonc`) or encoding ([`super::encode`]).

use std::ffi::c_int;
use std::fmt;

use lunet_runtime::codec::compression::MAX_STRING_LEN;
use mlua::{Lua, Value, ffi};

use super::encode::{has_non_ascii, needs_look};
use super::shape::{self, Shapes};

/// Arrays and objects nested deeper than this are an error.
pub(crate) const MAX_DEPTH: usize = 512;

/// Luau's own limits (ltable.cpp MAXSIZE; lstring.h MAXSSIZE is the runtime's
/// `MAX_STRING_LEN`): past them Luau raises an error, which must not unwind through
/// this parser, so they are checked first.
const MAX_TABLE_SIZE: usize = 1 << 26;

/// Above this stack height a container moves its pending values into a spill table
/// at once, so deep input keeps about 3 slots per level on the stack: at most
/// [`MAX_DEPTH`] levels stay far below the stack limit lua_checkstack enforces
/// (LUAI_MAXCSTACK, 1,000,000 slots as mlua builds Luau), and the stack stays small.
const STACK_BUDGET: c_int = 4000;
/// Values an array keeps on the stack before it moves them into its spill table.
const PENDING_SLOTS: c_int = 256;
/// How many more stack slots than needed are asked of Luau at once (see
/// [`Parser::reserve`]).
const RESERVE_AHEAD: c_int = 64;
/// The shortest input whose objects are matched against the last one at their depth
/// ([`Shapes`]): about four small records.
const SHAPES_MIN_INPUT: usize = 256;
/// Depths whose last object's size is kept as a hint for the next (deeper ones get
/// no hint), and the largest hint: a huge object must not make every later sibling
/// allocate as much.
const SHAPE_DEPTHS: usize = 16;
const MAX_SIZE_HINT: usize = 64;

/// A decode failure: what was wrong, and its byte offset in the input.
#[derive(Debug)]
pub(crate) struct DecodeError {
    message: String,
    offset: usize,
    line: usize,
    column: usize,
}

impl DecodeError {
    fn new(input: &[u8], offset: usize, message: impl Into<String>) -> DecodeError {
        let offset = offset.min(input.len());
        let before = &input[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        DecodeError {
            message: message.into(),
            offset,
            line,
            column: offset - line_start + 1,
        }
    }

    /// Byte offset of the error in the input.
    #[cfg(test)]
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {} (byte {})",
            self.message, self.line, self.column, self.offset
        )
    }
}

/// Decodes one JSON value from `input` into a Luau value.
///
/// Values are built on the Luau stack with raw C API calls; only the result becomes
/// an mlua `Value`.
pub(crate) fn decode(lua: &Lua, input: &[u8]) -> std::result::Result<Value, DecodeError> {
    let mut parser = Parser {
        state: std::ptr::null_mut(),
        input,
        pos: 0,
        depth: 0,
        scratch: Vec::new(),
        sizes: [0; SHAPE_DEPTHS],
        shapes: Shapes::default(),
        reserved: 0,
        shapes_kept: false,
        non_ascii: false,
    };
    let mut result = Ok(());
    // SAFETY: the closure runs inside mlua's protected call on an empty frame. The
    // parser only makes calls that cannot raise a Luau error: raw sets on tables it
    // created (no metatables), strings and tables within Luau's size limits (checked
    // first), stack growth through lua_checkstack (which returns 0 instead of
    // raising); mlua aborts on allocation failure and no memory limit is set. So no
    // error unwinds through the Rust frames below. On success exactly the value is
    // left on the stack, which exec_raw returns.
    let value = unsafe {
        lua.exec_raw::<Value>((), |state| {
            parser.state = state;
            result = parser.document();
            if result.is_err() {
                ffi::lua_settop(state, 0);
            }
        })
    };
    // Bytes outside strings must be ASCII to parse, so a parsed input whose strings
    // were all ASCII is valid UTF-8 (a string value taken from what `Shapes`
    // remembers is the same bytes as one parsed before). One with a non-ASCII
    // string, or a failed one, is checked whole, once: simdutf8's vectorised pass
    // over 1 MB of mostly ASCII text costs a tenth of std's check of its non-ASCII
    // strings one by one (callgrind). Invalid UTF-8 anywhere is the error reported,
    // as if checked first; std's check finds where.
    if (result.is_err() || parser.non_ascii)
        && simdutf8::basic::from_utf8(input).is_err()
        && let Err(utf8) = std::str::from_utf8(input)
    {
        return Err(DecodeError::new(
            input,
            utf8.valid_up_to(),
            "invalid UTF-8 in the input",
        ));
    }
    if let Err(e) = result {
        return Err(*e);
    }
    value.map_err(|e| DecodeError::new(input, 0, e.to_string()))
}

struct Parser<'a> {
    /// The Luau state values are built on (set inside `exec_raw`).
    state: *mut ffi::lua_State,
    input: &'a [u8],
    pos: usize,
    depth: usize,
    /// Unescaped string contents (only used for strings with escapes).
    scratch: Vec<u8>,
    /// Members of the last object closed at each depth (index), as a size hint for
    /// the next one there.
    sizes: [usize; SHAPE_DEPTHS],
    /// The keys (and templates) of the last object closed at each depth, and the
    /// string values remembered at its positions.
    shapes: Shapes,
    /// The stack height up to which room was made (see [`Parser::reserve`]).
    reserved: c_int,
    /// Whether the stack's first slots are kept for `shapes` (see `document`).
    shapes_kept: bool,
    /// Whether a string had non-ASCII bytes (so `decode` checks the input is UTF-8).
    non_ascii: bool,
}

/// The parser's errors are boxed: a `Result` of one pointer comes back in a
/// register from each of the many small calls a decode makes.
type Result<T> = std::result::Result<T, Box<DecodeError>>;

/// An array being read: values waiting on the stack (it is sized once they are all
/// known), and a spill table for the ones moved off it.
struct Pending {
    /// Stack index of the spill table (or of the first pending value, without one).
    base: c_int,
    /// Whether `base` holds a spill table.
    spill: bool,
    /// Its array size.
    spill_capacity: usize,
    /// Values in the spill table (slots 1..=spilled).
    spilled: usize,
    /// Values on the stack above `base` (or from `base` without a spill table).
    on_stack: usize,
}

impl Pending {
    fn first(&self) -> c_int {
        if self.spill { self.base + 1 } else { self.base }
    }

    fn total(&self) -> usize {
        self.spilled + self.on_stack
    }
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> Box<DecodeError> {
        Box::new(DecodeError::new(self.input, self.pos, message))
    }

    fn found(&self) -> String {
        match self.input.get(self.pos) {
            None => "the end of the input".to_string(),
            Some(&b) if b.is_ascii_graphic() => format!("'{}'", b as char),
            Some(&b) => format!("byte 0x{b:02x}"),
        }
    }

    #[inline]
    /// After an element of an array or object: consumes `,` (true: another element
    /// follows) or `close` (false: the container ends), or fails naming `after`.
    fn separator(&mut self, close: u8, after: &str) -> Result<bool> {
        self.skip_whitespace();
        match self.input.get(self.pos) {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(&b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.separator_error(close, after)),
        }
    }

    #[cold]
    #[inline(never)]
    fn separator_error(&self, close: u8, after: &str) -> Box<DecodeError> {
        self.error(format!(
            "expected ',' or '{}' after {after}, found {}",
            close as char,
            self.found()
        ))
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The whole input: one value, then only whitespace.
    ///
    /// # Safety
    /// `self.state` is the state `exec_raw` runs on.
    unsafe fn document(&mut self) -> Result<()> {
        self.skip_whitespace();
        // Objects are only found in an input that starts with an array or object;
        // for one long enough to hold repeated shapes, the stack's first slots are
        // kept for `Shapes` (nil until used). A short one (a small request body, say)
        // is not worth them: they cost a stack that may have to grow (a handler's
        // thread starts with a small one) and a nil written into each.
        let container = matches!(self.input.get(self.pos), Some(b'{' | b'['))
            && self.input.len() >= SHAPES_MIN_INPUT;
        self.shapes_kept = container;
        let kept = if container { shape::STACK_SLOTS } else { 0 };
        // SAFETY: `self.state` is valid (the caller's contract).
        unsafe { self.reserve(0, kept + 4)? };
        if container {
            // SAFETY: room was made above; the stack was empty.
            unsafe { ffi::lua_settop(self.state, kept) };
        }
        // SAFETY: room for the value was made above.
        unsafe { self.value()? };
        if container {
            // SAFETY: the value is above the reserved slots: it becomes the only one.
            unsafe {
                ffi::lua_replace(self.state, 1);
                ffi::lua_settop(self.state, 1);
            }
        }
        self.skip_whitespace();
        if self.pos < self.input.len() {
            return Err(self.error("unexpected characters after the JSON value"));
        }
        Ok(())
    }

    /// Reads one value and pushes it.
    ///
    /// # Safety
    /// `self.state` is valid and has room for 4 more values.
    unsafe fn value(&mut self) -> Result<()> {
        let state = self.state;
        match self.input.get(self.pos) {
            // SAFETY: the caller's contract.
            Some(b'{') => unsafe { self.object() },
            // SAFETY: the caller's contract.
            Some(b'[') => unsafe { self.array() },
            Some(b'"') => {
                self.pos += 1;
                let bytes = match self.string()? {
                    Str::Input(start, end) => &self.input[start..end],
                    Str::Scratch => &self.scratch[..],
                };
                if bytes.len() > MAX_STRING_LEN {
                    return Err(self.error("string too long for Luau"));
                }
                // SAFETY: room for one value (the caller's contract).
                unsafe { push_bytes(state, bytes) };
                Ok(())
            }
            Some(b't') => {
                self.literal(b"true")?;
                // SAFETY: room for one value (the caller's contract).
                unsafe { ffi::lua_pushboolean(state, 1) };
                Ok(())
            }
            Some(b'f') => {
                self.literal(b"false")?;
                // SAFETY: room for one value (the caller's contract).
                unsafe { ffi::lua_pushboolean(state, 0) };
                Ok(())
            }
            Some(b'n') => {
                self.literal(b"null")?;
                // SAFETY: room for one value (the caller's contract).
                unsafe { ffi::lua_pushnil(state) };
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                let n = self.number()?;
                // SAFETY: room for one value (the caller's contract).
                unsafe { ffi::lua_pushnumber(state, n) };
                Ok(())
            }
            _ => Err(self.error(format!("expected a JSON value, found {}", self.found()))),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error(format!(
                "expected '{}', found {}",
                std::str::from_utf8(word).unwrap_or_default(),
                self.found()
            )))
        }
    }

    fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "arrays and objects nested more than {MAX_DEPTH} deep"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    /// Makes sure the stack has room for `extra` values above `top` (its height).
    /// Room once made stays for the rest of the decode (lua_checkstack raises the
    /// call's stack limit, which Luau never lowers during the call, and a GC shrinks
    /// no stack below it), so Luau is asked only when the stack goes higher than
    /// before, and then for [`RESERVE_AHEAD`] more.
    ///
    /// # Safety
    /// `self.state` is valid and `top` is its stack height.
    #[inline]
    unsafe fn reserve(&mut self, top: c_int, extra: c_int) -> Result<()> {
        if top + extra <= self.reserved {
            return Ok(());
        }
        // SAFETY: the caller's contract.
        unsafe { self.grow_stack(top, extra) }
    }

    /// # Safety
    /// As [`Parser::reserve`].
    #[cold]
    unsafe fn grow_stack(&mut self, top: c_int, extra: c_int) -> Result<()> {
        // SAFETY: lua_checkstack reports failure instead of raising.
        unsafe {
            if ffi::lua_checkstack(self.state, extra + RESERVE_AHEAD) != 0 {
                self.reserved = top + extra + RESERVE_AHEAD;
            } else if ffi::lua_checkstack(self.state, extra) != 0 {
                self.reserved = top + extra;
            } else {
                return Err(self.error("out of Luau stack space"));
            }
        }
        Ok(())
    }

    /// Makes room to push one more value of the array `pending` (and 4 for that
    /// value's own needs), moving its values into its spill table first when it holds
    /// many or the stack is high.
    ///
    /// # Safety
    /// `self.state` is valid and `pending` describes the top of its stack.
    unsafe fn room(&mut self, pending: &mut Pending) -> Result<()> {
        let state = self.state;
        // SAFETY: `self.state` is valid.
        let top = unsafe { ffi::lua_gettop(state) };
        if pending.on_stack >= PENDING_SLOTS as usize
            || (top >= STACK_BUDGET && pending.on_stack > 0)
        {
            // SAFETY: the caller's contract.
            unsafe { self.spill(pending)? };
        }
        // SAFETY: `self.state` is valid.
        unsafe {
            let top = ffi::lua_gettop(state);
            self.reserve(top, 6)
        }
    }

    /// Moves the array's values from the stack into its spill table (created,
    /// or replaced by one twice the size, as needed).
    ///
    /// # Safety
    /// As [`Parser::room`].
    unsafe fn spill(&mut self, pending: &mut Pending) -> Result<()> {
        let state = self.state;
        let slots = pending.total();
        if slots > MAX_TABLE_SIZE {
            return Err(self.error("array too large for Luau"));
        }
        // SAFETY (for the calls below): lua_checkstack reports failure instead of
        // raising; the spill tables are created here without metatables and within
        // Luau's size limit, indices stay within their array part, and every rawseti
        // pops the value it stores.
        unsafe {
            if ffi::lua_checkstack(state, 3) == 0 {
                return Err(self.error("out of Luau stack space"));
            }
            if !pending.spill {
                let capacity = (slots * 2).clamp(64, MAX_TABLE_SIZE);
                ffi::lua_createtable(state, capacity as c_int, 0);
                ffi::lua_insert(state, pending.base);
                pending.spill = true;
                pending.spill_capacity = capacity;
            } else if slots > pending.spill_capacity {
                let capacity = (slots * 2).min(MAX_TABLE_SIZE);
                ffi::lua_createtable(state, capacity as c_int, 0);
                let bigger = ffi::lua_gettop(state);
                for i in 1..=pending.spilled as c_int {
                    ffi::lua_rawgeti_(state, pending.base, i);
                    ffi::lua_rawseti_(state, bigger, i);
                }
                ffi::lua_replace(state, pending.base);
                pending.spill_capacity = capacity;
            }
            let from = pending.spilled;
            for i in (1..=pending.on_stack as c_int).rev() {
                ffi::lua_rawseti_(state, pending.base, from as c_int + i);
            }
        }
        pending.spilled += pending.on_stack;
        pending.on_stack = 0;
        Ok(())
    }

    /// # Safety
    /// As [`Parser::value`].
    unsafe fn array(&mut self) -> Result<()> {
        self.enter()?;
        self.pos += 1;
        let state = self.state;
        let mut pending = Pending {
            // SAFETY: `self.state` is valid.
            base: unsafe { ffi::lua_gettop(state) } + 1,
            spill: false,
            spill_capacity: 0,
            spilled: 0,
            on_stack: 0,
        };
        self.skip_whitespace();
        if self.input.get(self.pos) == Some(&b']') {
            self.pos += 1;
        } else {
            loop {
                self.skip_whitespace();
                // SAFETY: `pending` describes the top of the stack; `room` leaves room
                // for the value.
                unsafe {
                    self.room(&mut pending)?;
                    self.value()?;
                }
                pending.on_stack += 1;
                if !self.separator(b']', "an array element")? {
                    break;
                }
            }
        }
        let len = pending.total();
        if len > MAX_TABLE_SIZE {
            return Err(self.error("array too large for Luau"));
        }
        // SAFETY (for the calls below): the stack holds the spill table (if any) and
        // the pending values from `pending.base`, and has room for 2 more (from
        // `room`, or from the caller for an empty array). The new table has no
        // metatable and is sized within Luau's limit with every index in its array
        // part; rawseti pops the value it stores.
        unsafe {
            // Sized once, with nulls left out: what `#t` sees is what it always saw.
            ffi::lua_createtable(state, len as c_int, 0);
            let table = ffi::lua_gettop(state);
            for i in 1..=pending.spilled as c_int {
                if ffi::lua_rawgeti_(state, pending.base, i) == ffi::LUA_TNIL {
                    ffi::lua_settop(state, -2);
                } else {
                    ffi::lua_rawseti_(state, table, i);
                }
            }
            let first = pending.first();
            ffi::lua_insert(state, first);
            for i in (1..=pending.on_stack).rev() {
                if ffi::lua_type(state, -1) == ffi::LUA_TNIL {
                    ffi::lua_settop(state, -2);
                } else {
                    ffi::lua_rawseti_(state, first, (pending.spilled + i) as c_int);
                }
            }
            if pending.spill {
                ffi::lua_replace(state, pending.base);
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Objects are built as they are read: each member goes into the table at once
    /// (so a repeated key keeps its last value), with nothing left pending on the
    /// stack. Records in a list tend to share a shape, so each object starts from
    /// the last one closed at the same depth ([`Shapes`]): as a copy of it when that
    /// one is a template and this one starts with its first key (each member then
    /// replaces a value; what the copy holds that this object does not set is
    /// removed), else as a table with room for as many members as it had; keys
    /// equal to its keys, position by position, are pushed from its strings. A
    /// wrong guess only costs Luau a rehash.
    ///
    /// # Safety
    /// As [`Parser::value`], and the stack's first [`shape::STACK_SLOTS`] slots are
    /// kept for `Shapes` when `shapes_kept` says so (see [`Parser::document`]).
    unsafe fn object(&mut self) -> Result<()> {
        self.enter()?;
        self.pos += 1;
        let state = self.state;
        let depth = self.depth;
        let remembered = self.shapes_kept && Shapes::remembers(depth);
        let template = if remembered {
            self.shapes.template(depth)
        } else {
            None
        };
        let hint = self.sizes.get(depth).copied().unwrap_or(0);
        // SAFETY (for the calls below): room for 7 values is made here; the table
        // (created, or cloned from a template this parser made, when the first key
        // is read) takes one, each member's key one more, and its value has the 4
        // `value` needs; the seventh takes the copy of a key or a string value
        // into its slot (`remembered_string`). The table has no metatable, so
        // lua_rawset cannot run Luau code, and its keys are strings (never nil or
        // NaN) below Luau's size limit (checked), so it cannot raise. lua_rawset
        // pops each member's key and value, so the stack is back where it was
        // after each member. The reserved slots hold what `Shapes` says they hold.
        let base = unsafe {
            let top = ffi::lua_gettop(state);
            self.reserve(top, 7)?;
            top
        };
        let table = base + 1;
        // While every member so far set the template's key at its position: how
        // many keys the template (and so the table) has.
        let mut cloned = None;
        let mut copied = false;
        let mut members = 0usize;
        self.skip_whitespace();
        if self.input.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            // SAFETY: as above.
            unsafe { ffi::lua_createtable(state, 0, 0) };
        } else {
            loop {
                self.skip_whitespace();
                if self.input.get(self.pos) != Some(&b'"') {
                    return Err(self.error(format!(
                        "expected a string key in an object, found {}",
                        self.found()
                    )));
                }
                self.pos += 1;
                let index = members;
                let input = self.input;
                // Whether this key may be the remembered one at its position.
                let candidate = remembered && index < shape::KEYS;
                // The remembered key written as it is (the usual case) is taken
                // without scanning it as a string.
                let raw = if candidate {
                    self.shapes.matches_raw(depth, index, input, self.pos)
                } else {
                    None
                };
                let (key, known) = match raw {
                    Some(end) => {
                        let key = &input[self.pos..end];
                        self.pos = end + 1;
                        (key, true)
                    }
                    None => {
                        let key = match self.string()? {
                            Str::Input(start, end) => &input[start..end],
                            Str::Scratch => &self.scratch[..],
                        };
                        if key.len() > MAX_STRING_LEN {
                            return Err(self.error("string too long for Luau"));
                        }
                        let known = candidate && self.shapes.matches(depth, index, key);
                        (key, known)
                    }
                };
                if index == 0 {
                    // The table is made once the first key is known: a copy of the
                    // template only for an object that starts like it (another
                    // shape would only inherit its size).
                    match template {
                        Some(count) if known => {
                            // SAFETY: as above; the template slot holds a table.
                            unsafe { ffi::lua_clonetable(state, Shapes::template_slot(depth)) };
                            cloned = Some(count);
                            copied = true;
                        }
                        // SAFETY: as above.
                        _ => unsafe { ffi::lua_createtable(state, 0, hint as c_int) },
                    }
                }
                if known {
                    // SAFETY: room was made above; the slot holds that key's string.
                    unsafe { ffi::lua_pushvalue(state, Shapes::key_slot(depth, index)) };
                } else {
                    if let Some(count) = cloned.take() {
                        // SAFETY: as above; the slots still hold the template's keys.
                        unsafe { unset_keys(state, table, depth, index..count) };
                    }
                    // SAFETY: room was made above.
                    unsafe { push_bytes(state, key) };
                    if candidate {
                        // SAFETY: room was made above (the key took one of 6 slots);
                        // the string stays in its slot until the slot's next
                        // `remember`.
                        unsafe {
                            ffi::lua_pushvalue(state, -1);
                            ffi::lua_replace(state, Shapes::key_slot(depth, index));
                            let mut len = 0;
                            let ptr = ffi::lua_tolstring(state, -1, &mut len);
                            self.shapes.remember(depth, index, ptr.cast(), len);
                        }
                    }
                }
                self.skip_whitespace();
                if self.input.get(self.pos) != Some(&b':') {
                    return Err(self.error(format!(
                        "expected ':' after an object key, found {}",
                        self.found()
                    )));
                }
                self.pos += 1;
                self.skip_whitespace();
                members += 1;
                if members > MAX_TABLE_SIZE {
                    return Err(self.error("object too large for Luau"));
                }
                // SAFETY: room was made above (the key took one of 6 slots); then
                // the key and the value are the top two, above the table. A `null`
                // value leaves the key out (and removes an earlier one).
                unsafe {
                    if remembered
                        && index < shape::VALUES
                        && self.input.get(self.pos) == Some(&b'"')
                    {
                        self.remembered_string(depth, index)?;
                    } else {
                        self.value()?;
                    }
                    ffi::lua_rawset(state, table);
                }
                if !self.separator(b'}', "an object value")? {
                    break;
                }
            }
        }
        if let Some(count) = cloned
            && members < count
        {
            // SAFETY: as above.
            unsafe { unset_keys(state, table, depth, members..count) };
        }
        if remembered {
            // A template must have distinct keys (so that removing one the next
            // object does not set removes nothing it set), and no more room than
            // its members need (a copy has its size): a whole copy of a template
            // is one again; a table made afresh is when it was not sized for many
            // more members than it got; a copy another shape broke is not.
            let template = members > 0
                && if copied {
                    cloned == Some(members)
                } else {
                    hint <= 2 * members && self.shapes.can_template(depth, members)
                };
            if template {
                // SAFETY: room was made above.
                unsafe {
                    ffi::lua_pushvalue(state, table);
                    ffi::lua_replace(state, Shapes::template_slot(depth));
                }
            }
            self.shapes.closed(depth, members, template);
        }
        if let Some(size) = self.sizes.get_mut(depth) {
            *size = members.min(MAX_SIZE_HINT);
        }
        self.depth -= 1;
        Ok(())
    }

    /// Pushes the string value of member `index` (below [`shape::VALUES`]) of an
    /// object at remembered `depth`: the one remembered there when its text is the
    /// same (see [`Shapes::matches_value`]), else the one read, which
    /// [`Shapes::value_missed`] may remember in its place.
    ///
    /// # Safety
    /// As [`Parser::value`] with room for one more, and the input at `self.pos` is
    /// a quote.
    unsafe fn remembered_string(&mut self, depth: usize, index: usize) -> Result<()> {
        let state = self.state;
        let at = self.pos + 1;
        let slot = Shapes::value_slot(depth, index);
        if let Some(close) = self.shapes.matches_value(depth, index, self.input, at) {
            self.pos = close + 1;
            self.shapes.value_matched(depth, index);
            // SAFETY: room for one value; the slot holds the string read from the
            // same text.
            unsafe { ffi::lua_pushvalue(state, slot) };
            return Ok(());
        }
        // SAFETY: the caller's contract; a string leaves `pos` after its closing
        // quote.
        unsafe { self.value()? };
        if self.shapes.value_missed(depth, index, at, self.pos - 1) {
            // SAFETY: room for one more (the caller's contract).
            unsafe {
                ffi::lua_pushvalue(state, -1);
                ffi::lua_replace(state, slot);
            }
        }
        Ok(())
    }

    /// Reads a string's contents (after the opening quote) through the closing quote.
    fn string(&mut self) -> Result<Str> {
        let start = self.pos;
        let input = self.input;
        let (mut i, mut non_ascii) = plain_run(input, start);
        // Where the raw text not yet copied into `scratch` starts, once an escape
        // was met (before that, the string is `input[start..]` as is).
        let mut run = start;
        let mut escaped = false;
        loop {
            match input.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    // Escapes are ASCII: the raw text is UTF-8 when the result is,
                    // and `decode` checks it when it is not ASCII.
                    self.non_ascii |= non_ascii;
                    if !escaped {
                        return Ok(Str::Input(start, i));
                    }
                    self.scratch.extend_from_slice(&input[run..i]);
                    return Ok(Str::Scratch);
                }
                Some(b'\\') => {
                    if !escaped {
                        self.scratch.clear();
                        escaped = true;
                    }
                    self.scratch.extend_from_slice(&input[run..i]);
                    self.pos = i + 1;
                    self.escape()?;
                    i = self.pos;
                    run = i;
                }
                Some(&b) if b < 0x20 => {
                    self.pos = i;
                    return Err(self.error(format!(
                        "control character 0x{b:02x} in a string (it must be escaped)"
                    )));
                }
                // `plain_run` stops at nothing else.
                Some(&b) => {
                    non_ascii |= b >= 0x80;
                    i += 1;
                }
                None => {
                    self.pos = i;
                    return Err(self.error("unterminated string"));
                }
            }
            let (next, more) = plain_run(input, i);
            i = next;
            non_ascii |= more;
        }
    }

    fn escape(&mut self) -> Result<()> {
        let Some(&b) = self.input.get(self.pos) else {
            return Err(self.error("unterminated string"));
        };
        let plain = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let escape_start = self.pos - 1;
                self.pos += 1;
                let first = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if !self.input[self.pos..].starts_with(b"\\u") {
                        self.pos = escape_start;
                        return Err(self.error(
                            "lone leading surrogate in a \\u escape (expected a \\uDC00-\\uDFFF escape after it)",
                        ));
                    }
                    self.pos += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        self.pos = escape_start;
                        return Err(self.error(
                            "invalid surrogate pair in \\u escapes (the second must be \\uDC00-\\uDFFF)",
                        ));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else if (0xDC00..0xE000).contains(&first) {
                    self.pos = escape_start;
                    return Err(self.error("lone trailing surrogate in a \\u escape"));
                } else {
                    first
                };
                let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut buf = [0; 4];
                self.scratch
                    .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => {
                self.pos -= 1;
                return Err(self.error(format!(
                    "invalid escape '\\{}' in a string",
                    self.input[self.pos + 1].escape_ascii()
                )));
            }
        };
        self.scratch.push(plain);
        self.pos += 1;
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .input
                .get(self.pos)
                .and_then(|&b| (b as char).to_digit(16));
            let Some(digit) = digit else {
                return Err(self.error(format!(
                    "expected 4 hex digits in a \\u escape, found {}",
                    self.found()
                )));
            };
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    fn number(&mut self) -> Result<f64> {
        let input = self.input;
        let start = self.pos;
        let mut i = start;
        let negative = input[i] == b'-';
        if negative {
            i += 1;
        }
        // The digits (integer part, then fraction) are read into `mantissa` as they
        // are scanned; it may wrap past 19 digits, and is only used for up to 15.
        let mut mantissa: u64 = 0;
        let digits_start = i;
        match input.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(&d @ b'0'..=b'9') = input.get(i) {
                    mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                    i += 1;
                }
            }
            _ => {
                self.pos = i;
                return Err(self.error(format!(
                    "expected a digit in a number, found {}",
                    self.found()
                )));
            }
        }
        let int_digits = i - digits_start;
        let mut fraction_digits = 0;
        let mut exponent = false;
        if input.get(i) == Some(&b'.') {
            i += 1;
            let fraction_start = i;
            while let Some(&d @ b'0'..=b'9') = input.get(i) {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                i += 1;
            }
            fraction_digits = i - fraction_start;
            if fraction_digits == 0 {
                self.pos = i;
                return Err(self.error(format!(
                    "expected a digit after the decimal point, found {}",
                    self.found()
                )));
            }
        }
        if let Some(b'e' | b'E') = input.get(i) {
            exponent = true;
            i += 1;
            if let Some(b'+' | b'-') = input.get(i) {
                i += 1;
            }
            if !matches!(input.get(i), Some(b'0'..=b'9')) {
                self.pos = i;
                return Err(self.error(format!(
                    "expected a digit in the exponent, found {}",
                    self.found()
                )));
            }
            while let Some(b'0'..=b'9') = input.get(i) {
                i += 1;
            }
        }
        self.pos = i;
        // Up to 15 digits without an exponent: the digits as an integer are exact in
        // both u64 and f64, and so is the power of ten to divide by, so one
        // (correctly rounded) division gives the correctly rounded value.
        if !exponent && int_digits + fraction_digits <= 15 {
            let n = mantissa as f64 / POWERS_OF_TEN[fraction_digits];
            return Ok(if negative { -n } else { n });
        }
        // The grammar was checked above, so this is valid for Rust's (exact) parser.
        // SAFETY: the bytes checked above are all ASCII (digits, '-', '+', '.', 'e').
        let text = unsafe { std::str::from_utf8_unchecked(&input[start..i]) };
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n),
            _ => {
                self.pos = start;
                Err(self.error(format!("number {text} is out of range for a double")))
            }
        }
    }
}

/// Removes from the table at `table` (cloned from the template at `depth`) the
/// template's keys at positions `positions`, which the object being read did not
/// set.
///
/// # Safety
/// `state` is valid with room for two values; the table has no metatable; the key
/// slots for those positions still hold the template's keys.
unsafe fn unset_keys(
    state: *mut ffi::lua_State,
    table: c_int,
    depth: usize,
    positions: std::ops::Range<usize>,
) {
    for index in positions {
        // SAFETY: the caller's contract; rawset pops the key and the nil.
        unsafe {
            ffi::lua_pushvalue(state, Shapes::key_slot(depth, index));
            ffi::lua_pushnil(state);
            ffi::lua_rawset(state, table);
        }
    }
}

/// From `i`, skips the bytes a string may hold as they are (all but `"`, `\\` and
/// control characters), 8 at a time; returns where the first other byte is (or the
/// input's end), and whether a skipped byte was not ASCII.
#[inline]
fn plain_run(input: &[u8], mut i: usize) -> (usize, bool) {
    let mut non_ascii = false;
    while let Some(chunk) = input.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let look = needs_look(word);
        if look == 0 {
            non_ascii |= has_non_ascii(word);
            i += 8;
            continue;
        }
        // The lowest flagged byte is exact (false flags only come above a true
        // one): the bytes before it are plain, and only they are looked at here.
        let plain = look.trailing_zeros() / 8;
        non_ascii |= has_non_ascii(word & ((1u64 << (plain * 8)) - 1));
        return (i + plain as usize, non_ascii);
    }
    while let Some(&b) = input.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        non_ascii |= b >= 0x80;
        i += 1;
    }
    (i, non_ascii)
}

/// 10^0 to 10^15, each exact in an f64.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Pushes `bytes` as a Luau string.
///
/// # Safety
/// `state` is valid with room for one value, and `bytes` is at most
/// [`MAX_STRING_LEN`] long (longer strings raise a Luau error; allocation failure
/// aborts in mlua instead).
unsafe fn push_bytes(state: *mut ffi::lua_State, bytes: &[u8]) {
    // An empty slice's pointer may dangle; Luau copies from it all the same.
    let ptr = if bytes.is_empty() {
        c"".as_ptr()
    } else {
        bytes.as_ptr().cast()
    };
    // SAFETY: the caller's contract; `ptr` is readable for `bytes.len()` bytes.
    unsafe { ffi::lua_pushlstring_(state, ptr, bytes.len()) };
}

enum Str {
    /// The string is `input[start..end]` as is.
    Input(usize, usize),
    /// The string (with escapes resolved) is in `scratch`.
    Scratch,
}
