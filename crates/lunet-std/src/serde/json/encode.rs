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
//! Does not own decoding ([`super::decode`]) or other formats.

use std::ffi::c_void;
use std::fmt;

use mlua::{Lua, LuaSerdeExt, Table, Value};

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
pub(crate) fn encode(lua: &Lua, value: &Value, pretty: bool) -> Result<Vec<u8>> {
    let mut encoder = Encoder {
        out: Vec::with_capacity(128),
        pretty,
        open: Vec::new(),
        array_metatable: lua.array_metatable().to_pointer(),
        pairs: Vec::new(),
    };
    encoder.value(value)?;
    Ok(encoder.out)
}

struct Encoder {
    out: Vec<u8>,
    pretty: bool,
    /// Tables being written, outermost first: the cycle check and the depth.
    open: Vec<*const c_void>,
    array_metatable: *const c_void,
    /// Reused buffers for an object's pairs, one per nesting level.
    pairs: Vec<Vec<(Value, Value)>>,
}

impl Encoder {
    fn value(&mut self, value: &Value) -> Result<()> {
        match value {
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::Boolean(true) => self.out.extend_from_slice(b"true"),
            Value::Boolean(false) => self.out.extend_from_slice(b"false"),
            Value::Integer(i) => self
                .out
                .extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            Value::Number(n) => self.number(*n),
            Value::String(s) => {
                let bytes = s.as_bytes();
                if std::str::from_utf8(&bytes).is_ok() {
                    write_string(&mut self.out, &bytes);
                } else {
                    self.byte_array(&bytes);
                }
            }
            Value::Table(t) => self.table(t)?,
            Value::Vector(v) => {
                let [x, y, z] = [v.x(), v.y(), v.z()];
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
            Value::Buffer(b) => self.byte_array(&b.to_vec()),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            other => {
                return Err(EncodeError::new(format!(
                    "cannot encode a {} as json",
                    other.type_name()
                )));
            }
        }
        Ok(())
    }

    fn number(&mut self, n: f64) {
        // mlua's rule (Value::Integer): whole, in i64 range, and not -0.
        if n.fract() == 0.0
            && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n)
            && !(n == 0.0 && n.is_sign_negative())
        {
            self.out
                .extend_from_slice(itoa::Buffer::new().format(n as i64).as_bytes());
        } else if n.is_finite() {
            self.out
                .extend_from_slice(zmij::Buffer::new().format_finite(n).as_bytes());
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

    fn table(&mut self, t: &Table) -> Result<()> {
        let ptr = t.to_pointer();
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
        let len = t.raw_len();
        let as_array = len > 0
            || t.metatable()
                .is_some_and(|mt| mt.to_pointer() == self.array_metatable);
        let level = self.open.len();
        self.open.push(ptr);
        let result = if as_array {
            self.array(t, len, level)
        } else {
            self.object(t, level)
        };
        self.open.pop();
        result
    }

    fn array(&mut self, t: &Table, len: usize, level: usize) -> Result<()> {
        self.begin(b'[');
        for i in 1..=len {
            self.element(i == 1, level);
            let item: Value = t.raw_get(i).map_err(|e| EncodeError::new(e.to_string()))?;
            self.value(&item).map_err(|e| e.at(Segment::Index(i)))?;
        }
        self.end(b']', len > 0, level);
        Ok(())
    }

    fn object(&mut self, t: &Table, level: usize) -> Result<()> {
        if self.pairs.len() <= level {
            self.pairs.resize_with(level + 1, Vec::new);
        }
        let mut pairs = std::mem::take(&mut self.pairs[level]);
        pairs.clear();
        let collected = t.for_each(|k: Value, v: Value| {
            pairs.push((k, v));
            Ok(())
        });
        if let Err(e) = collected {
            return Err(EncodeError::new(e.to_string()));
        }
        if pairs.len() > 1 {
            pairs.sort_unstable_by(|(a, _), (b, _)| key_order(a, b));
        }
        self.begin(b'{');
        let mut result = Ok(());
        for (i, (key, value)) in pairs.iter().enumerate() {
            self.element(i == 0, level);
            if let Err(e) = self.key(key) {
                result = Err(e);
                break;
            }
            self.out.push(b':');
            if self.pretty {
                self.out.push(b' ');
            }
            if let Err(e) = self.value(value) {
                result = Err(e.at(Segment::Key(key_name(key))));
                break;
            }
        }
        let had_elements = !pairs.is_empty();
        pairs.clear();
        self.pairs[level] = pairs;
        result?;
        self.end(b'}', had_elements, level);
        Ok(())
    }

    fn key(&mut self, key: &Value) -> Result<()> {
        match key {
            Value::String(s) => {
                let bytes = s.as_bytes();
                if std::str::from_utf8(&bytes).is_err() {
                    return Err(EncodeError::new(
                        "cannot encode a table key that is not valid UTF-8 as json",
                    ));
                }
                write_string(&mut self.out, &bytes);
            }
            Value::Integer(i) => {
                self.out.push(b'"');
                self.out
                    .extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
                self.out.push(b'"');
            }
            Value::Number(n) if n.is_finite() => {
                self.out.push(b'"');
                self.number(*n);
                self.out.push(b'"');
            }
            Value::Number(_) => {
                return Err(EncodeError::new(
                    "cannot encode a table key that is an infinite number as json",
                ));
            }
            Value::Boolean(b) => {
                self.out
                    .extend_from_slice(if *b { b"\"true\"" } else { b"\"false\"" });
            }
            other => {
                return Err(EncodeError::new(format!(
                    "cannot encode a table key that is a {} as json (keys must be strings or numbers)",
                    other.type_name()
                )));
            }
        }
        Ok(())
    }
}

/// The key order of mlua's `sort_keys`: booleans, numbers, vectors, strings (bytes),
/// then everything else by address.
fn key_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Nil => 0,
            Value::LightUserData(p) if p.0.is_null() => 1,
            Value::Boolean(_) => 2,
            Value::Integer(_) | Value::Number(_) => 3,
            Value::Vector(_) => 4,
            Value::String(_) => 5,
            _ => 6,
        }
    }
    fn number(v: &Value) -> f64 {
        match v {
            Value::Integer(i) => *i as f64,
            Value::Number(n) => *n,
            _ => 0.0,
        }
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(&y.as_bytes()),
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Boolean(x), Value::Boolean(y)) => x.cmp(y),
        _ => match rank(a).cmp(&rank(b)) {
            Ordering::Equal if rank(a) == 3 => {
                number(a).partial_cmp(&number(b)).unwrap_or(Ordering::Equal)
            }
            Ordering::Equal => a.to_pointer().cmp(&b.to_pointer()),
            other => other,
        },
    }
}

fn key_name(key: &Value) -> String {
    match key {
        Value::String(s) => s.to_string_lossy(),
        other => other
            .to_string()
            .unwrap_or_else(|_| other.type_name().to_string()),
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

/// Writes `bytes` (valid UTF-8) as a quoted, escaped JSON string.
pub(crate) fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[b as usize];
        if escape == __ {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == UU {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
