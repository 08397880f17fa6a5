//! JSON bytes -> Luau values: a recursive-descent parser that creates the Luau
//! tables and strings as it reads (no `serde_json::Value` tree in between).
//!
//! Owns what `serde.decode("json")` accepts (RFC 8259 JSON, UTF-8, nothing after
//! the value but whitespace) and what it builds: objects and arrays become plain
//! tables (no metatable), `null` becomes `nil` (a missing key, or a hole in an
//! array), numbers are the correctly rounded double of their decimal text (Rust's
//! `str::parse::<f64>`, with an exact fast path for short integers). Nesting deeper
//! than [`MAX_DEPTH`] is an error, not a stack overflow. Errors say what was wrong
//! and where (line, column and byte offset). Does not own comment stripping (JSONC,
//! `lunet_runtime::codec::jsonc`) or encoding ([`super::encode`]).

use std::fmt;

use mlua::{Lua, Value};

/// Arrays and objects nested deeper than this are an error.
pub(crate) const MAX_DEPTH: usize = 512;

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
pub(crate) fn decode(lua: &Lua, input: &[u8]) -> Result<Value> {
    if let Err(e) = std::str::from_utf8(input) {
        return Err(DecodeError::new(
            input,
            e.valid_up_to(),
            "invalid UTF-8 in the input",
        ));
    }
    let mut parser = Parser {
        lua,
        input,
        pos: 0,
        depth: 0,
        scratch: Vec::new(),
        items: Vec::new(),
        members: Vec::new(),
    };
    parser.skip_whitespace();
    let value = parser.value()?;
    parser.skip_whitespace();
    if parser.pos < input.len() {
        return Err(parser.error("unexpected characters after the JSON value"));
    }
    Ok(value)
}

struct Parser<'a> {
    lua: &'a Lua,
    input: &'a [u8],
    pos: usize,
    depth: usize,
    /// Unescaped string contents (only used for strings with escapes).
    scratch: Vec<u8>,
    /// Reused element buffers for arrays, one per nesting level.
    items: Vec<Vec<Value>>,
    /// Reused member buffers for objects, one per nesting level.
    members: Vec<Vec<(mlua::LuaString, Value)>>,
}

type Result<T> = std::result::Result<T, DecodeError>;

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> DecodeError {
        DecodeError::new(self.input, self.pos, message)
    }

    fn lua_error(&self, e: mlua::Error) -> DecodeError {
        self.error(e.to_string())
    }

    fn found(&self) -> String {
        match self.input.get(self.pos) {
            None => "the end of the input".to_string(),
            Some(&b) if b.is_ascii_graphic() => format!("'{}'", b as char),
            Some(&b) => format!("byte 0x{b:02x}"),
        }
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value> {
        match self.input.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                self.pos += 1;
                let bytes = self.string()?;
                let s = match bytes {
                    Str::Input(start, end) => self.lua.create_string(&self.input[start..end]),
                    Str::Scratch => self.lua.create_string(&self.scratch),
                };
                s.map(Value::String).map_err(|e| self.lua_error(e))
            }
            Some(b't') => self.literal(b"true", Value::Boolean(true)),
            Some(b'f') => self.literal(b"false", Value::Boolean(false)),
            Some(b'n') => self.literal(b"null", Value::Nil),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            _ => Err(self.error(format!("expected a JSON value, found {}", self.found()))),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
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

    fn array(&mut self) -> Result<Value> {
        self.enter()?;
        self.pos += 1;
        let level = self.depth;
        if self.items.len() < level {
            self.items.resize_with(level, Vec::new);
        }
        let mut items = std::mem::take(&mut self.items[level - 1]);
        items.clear();
        let result = self.array_items(&mut items);
        let table = result.and_then(|()| {
            let table = self
                .lua
                .create_table_with_capacity(items.len(), 0)
                .map_err(|e| self.lua_error(e))?;
            for (i, item) in items.drain(..).enumerate() {
                if !item.is_nil() {
                    table.raw_set(i + 1, item).map_err(|e| self.lua_error(e))?;
                }
            }
            Ok(table)
        });
        items.clear();
        self.items[level - 1] = items;
        self.depth -= 1;
        table.map(Value::Table)
    }

    fn array_items(&mut self, items: &mut Vec<Value>) -> Result<()> {
        self.skip_whitespace();
        if self.input.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            items.push(self.value()?);
            self.skip_whitespace();
            match self.input.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {
                    return Err(self.error(format!(
                        "expected ',' or ']' after an array element, found {}",
                        self.found()
                    )));
                }
            }
        }
    }

    fn object(&mut self) -> Result<Value> {
        self.enter()?;
        self.pos += 1;
        let level = self.depth;
        if self.members.len() < level {
            self.members.resize_with(level, Vec::new);
        }
        let mut members = std::mem::take(&mut self.members[level - 1]);
        members.clear();
        let result = self.object_members(&mut members);
        // Sized once: no rehashing while the members go in.
        let table = result.and_then(|()| {
            let table = self
                .lua
                .create_table_with_capacity(0, members.len())
                .map_err(|e| self.lua_error(e))?;
            for (key, value) in members.drain(..) {
                // `null` leaves the key out; a repeated key keeps its last value.
                table.raw_set(key, value).map_err(|e| self.lua_error(e))?;
            }
            Ok(table)
        });
        members.clear();
        self.members[level - 1] = members;
        self.depth -= 1;
        table.map(Value::Table)
    }

    fn object_members(&mut self, members: &mut Vec<(mlua::LuaString, Value)>) -> Result<()> {
        self.skip_whitespace();
        if self.input.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            if self.input.get(self.pos) != Some(&b'"') {
                return Err(self.error(format!(
                    "expected a string key in an object, found {}",
                    self.found()
                )));
            }
            self.pos += 1;
            let key = match self.string()? {
                Str::Input(start, end) => self.lua.create_string(&self.input[start..end]),
                Str::Scratch => self.lua.create_string(&self.scratch),
            }
            .map_err(|e| self.lua_error(e))?;
            self.skip_whitespace();
            if self.input.get(self.pos) != Some(&b':') {
                return Err(self.error(format!(
                    "expected ':' after an object key, found {}",
                    self.found()
                )));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value()?;
            members.push((key, value));
            self.skip_whitespace();
            match self.input.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {
                    return Err(self.error(format!(
                        "expected ',' or '}}' after an object value, found {}",
                        self.found()
                    )));
                }
            }
        }
    }

    /// Reads a string's contents (after the opening quote) through the closing quote.
    fn string(&mut self) -> Result<Str> {
        let start = self.pos;
        let input = self.input;
        // Fast path: no escapes.
        let mut i = start;
        while i < input.len() {
            match input[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(Str::Input(start, i));
                }
                b'\\' => break,
                b if b < 0x20 => {
                    self.pos = i;
                    return Err(self.error(format!(
                        "control character 0x{b:02x} in a string (it must be escaped)"
                    )));
                }
                _ => i += 1,
            }
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&input[start..i]);
        self.pos = i;
        loop {
            let Some(&b) = input.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(Str::Scratch);
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape()?;
                }
                b if b < 0x20 => {
                    return Err(self.error(format!(
                        "control character 0x{b:02x} in a string (it must be escaped)"
                    )));
                }
                b => {
                    self.scratch.push(b);
                    self.pos += 1;
                }
            }
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
        let digits_start = i;
        match input.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = input.get(i) {
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
        let int_end = i;
        let mut simple = true;
        if input.get(i) == Some(&b'.') {
            simple = false;
            i += 1;
            if !matches!(input.get(i), Some(b'0'..=b'9')) {
                self.pos = i;
                return Err(self.error(format!(
                    "expected a digit after the decimal point, found {}",
                    self.found()
                )));
            }
            while let Some(b'0'..=b'9') = input.get(i) {
                i += 1;
            }
        }
        if let Some(b'e' | b'E') = input.get(i) {
            simple = false;
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
        // Up to 15 digits: the integer is exact in both u64 and f64.
        if simple && int_end - digits_start <= 15 {
            let mut n: u64 = 0;
            for &d in &input[digits_start..int_end] {
                n = n * 10 + u64::from(d - b'0');
            }
            let n = n as f64;
            return Ok(if negative { -n } else { n });
        }
        // The grammar was checked above, so this is valid for Rust's (exact) parser.
        let text = std::str::from_utf8(&input[start..i]).unwrap_or_default();
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n),
            _ => {
                self.pos = start;
                Err(self.error(format!("number {text} is out of range for a double")))
            }
        }
    }
}

enum Str {
    /// The string is `input[start..end]` as is.
    Input(usize, usize),
    /// The string (with escapes resolved) is in `scratch`.
    Scratch,
}
