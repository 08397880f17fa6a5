//! How Lunet names and prints Luau values in messages: [`type_name`] (Luau's names,
//! `number` for integers too) and [`format_number`] (a number as `tostring` shows
//! it). Shared by argument errors, `stdio.format`, `print` and header values; how
//! whole tables are printed belongs to `stdio.format`.

use mlua::Value;

/// The Luau name of a value's type (`number` for integers as well).
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) | Value::Number(_) => "number",
        other => other.type_name(),
    }
}

/// A Luau number as Luau's `tostring` would show it, for the common cases.
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        "nan".to_string()
    } else if n.is_infinite() {
        if n > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if n.fract() == 0.0 && n.abs() < 1e16 {
        format!("{}", n as i64)
    } else if n.abs() >= 1e16 || n.abs() < 1e-5 {
        format!("{n:e}")
    } else {
        format!("{n}")
    }
}
