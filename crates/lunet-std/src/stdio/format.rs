//! Pretty-printing Luau values, as `print`, `warn` and `stdio.format` show them.
//!
//! Strings given directly are printed as they are; everything else is shown as a
//! value: nested strings quoted and escaped, numbers without a trailing `.0`, tables
//! expanded over several lines with a four-space indent (array items first, then the
//! other keys in sorted order), tables with `__tostring` through it, cycles as
//! `<cycle>` and anything deeper than [`MAX_DEPTH`] as `{...}`. Colour is added only
//! when the output is a terminal and `NO_COLOR` is unset.

use std::fmt::Write;
use std::io::IsTerminal;
use std::sync::OnceLock;

use lunet_runtime::format_number;
use mlua::{MultiValue, Table, Value};

/// How deep nested tables are expanded.
pub const MAX_DEPTH: usize = 10;

const RESET: &str = "\x1b[0m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";

fn colors_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none()
}

/// Whether output to stdout gets colour.
pub fn use_color_stdout() -> bool {
    static COLOR: OnceLock<bool> = OnceLock::new();
    *COLOR.get_or_init(|| colors_allowed() && std::io::stdout().is_terminal())
}

/// Whether output to stderr gets colour.
pub fn use_color_stderr() -> bool {
    static COLOR: OnceLock<bool> = OnceLock::new();
    *COLOR.get_or_init(|| colors_allowed() && std::io::stderr().is_terminal())
}

/// Formats `values` separated by spaces; top-level strings are written raw.
pub fn format_values(values: &MultiValue, color: bool) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match value {
            Value::String(s) => out.push_str(&s.to_string_lossy()),
            other => {
                let mut f = Formatter {
                    out: &mut out,
                    color,
                    stack: Vec::new(),
                };
                f.value(other, 0);
            }
        }
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn quote(s: &[u8]) -> String {
    let text = String::from_utf8_lossy(s);
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\{}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Formatter<'a> {
    out: &'a mut String,
    color: bool,
    /// Tables being expanded, to show cycles instead of recursing forever.
    stack: Vec<*const std::ffi::c_void>,
}

impl Formatter<'_> {
    fn colored(&mut self, color: &str, text: &str) {
        if self.color {
            self.out.push_str(color);
            self.out.push_str(text);
            self.out.push_str(RESET);
        } else {
            self.out.push_str(text);
        }
    }

    fn value(&mut self, value: &Value, depth: usize) {
        match value {
            Value::Nil => self.colored(DIM, "nil"),
            Value::Boolean(b) => self.colored(YELLOW, if *b { "true" } else { "false" }),
            Value::Integer(i) => self.colored(CYAN, &i.to_string()),
            Value::Number(n) => self.colored(CYAN, &format_number(*n)),
            Value::String(s) => self.colored(GREEN, &quote(&s.as_bytes())),
            Value::Table(t) => self.table(t, depth),
            Value::Function(f) => {
                let text = format!("<function: {:?}>", f.to_pointer());
                self.colored(DIM, &text)
            }
            Value::Thread(t) => {
                let text = format!("<thread: {:?}>", t.to_pointer());
                self.colored(DIM, &text)
            }
            Value::Buffer(b) => {
                let text = format!("<buffer: {} bytes>", b.len());
                self.colored(DIM, &text)
            }
            Value::Vector(v) => {
                let text = format!(
                    "vector({}, {}, {})",
                    format_number(v.x() as f64),
                    format_number(v.y() as f64),
                    format_number(v.z() as f64)
                );
                self.colored(CYAN, &text)
            }
            Value::UserData(u) => match tostring_of(value) {
                Some(text) => self.out.push_str(&text),
                None => {
                    let text = format!("<userdata: {:?}>", u.to_pointer());
                    self.colored(DIM, &text)
                }
            },
            Value::Error(e) => self.out.push_str(&lunet_runtime::report::error_message(e)),
            other => {
                let text = format!("<{}>", lunet_runtime::type_name(other));
                self.colored(DIM, &text)
            }
        }
    }

    fn table(&mut self, table: &Table, depth: usize) {
        let has_tostring = table
            .metatable()
            .is_some_and(|m| m.contains_key("__tostring").unwrap_or(false));
        if has_tostring && let Some(text) = tostring_of(&Value::Table(table.clone())) {
            self.out.push_str(&text);
            return;
        }
        let ptr = table.to_pointer();
        if self.stack.contains(&ptr) {
            self.colored(DIM, "<cycle>");
            return;
        }
        if depth >= MAX_DEPTH {
            self.out.push_str("{...}");
            return;
        }
        let len = table.raw_len();
        let mut others: Vec<(Value, Value)> = Vec::new();
        for pair in table.pairs::<Value, Value>() {
            let Ok((key, value)) = pair else { continue };
            let in_array = match key {
                Value::Integer(i) => i >= 1 && (i as usize) <= len,
                Value::Number(n) => n.fract() == 0.0 && n >= 1.0 && (n as usize) <= len,
                _ => false,
            };
            if !in_array {
                others.push((key, value));
            }
        }
        if len == 0 && others.is_empty() {
            self.out.push_str("{}");
            return;
        }
        others.sort_by(|(a, _), (b, _)| {
            sort_key(a)
                .partial_cmp(&sort_key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        self.stack.push(ptr);
        let indent = "    ".repeat(depth + 1);
        self.out.push_str("{\n");
        for i in 1..=len {
            let value: Value = table.raw_get(i).unwrap_or(Value::Nil);
            self.out.push_str(&indent);
            self.value(&value, depth + 1);
            self.out.push_str(",\n");
        }
        for (key, value) in &others {
            self.out.push_str(&indent);
            match key {
                Value::String(s) if is_identifier(&s.to_string_lossy()) => {
                    self.out.push_str(&s.to_string_lossy())
                }
                other => {
                    self.out.push('[');
                    self.value(other, depth + 1);
                    self.out.push(']');
                }
            }
            self.out.push_str(" = ");
            self.value(value, depth + 1);
            self.out.push_str(",\n");
        }
        self.out.push_str(&"    ".repeat(depth));
        self.out.push('}');
        self.stack.pop();
    }
}

/// Orders keys: numbers first by value, then strings, then anything else.
fn sort_key(key: &Value) -> (u8, f64, String) {
    match key {
        Value::Integer(i) => (0, *i as f64, String::new()),
        Value::Number(n) => (0, *n, String::new()),
        Value::String(s) => (1, 0.0, s.to_string_lossy()),
        other => (2, 0.0, format!("{other:?}")),
    }
}

/// The result of Luau's `tostring` (which honours `__tostring`) on `value`.
fn tostring_of(value: &Value) -> Option<String> {
    value.to_string().ok()
}
