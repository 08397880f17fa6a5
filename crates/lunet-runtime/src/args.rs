//! Checking what scripts pass to library functions: one mechanism, one message shape.
//!
//! Every library (task, process, stdio, serde, net and the rest) checks its arguments
//! and option fields with these functions, so every bad value reads the same way:
//!
//! ```text
//! Invalid <field> - expected <what is accepted>, got <what was given>
//! ```
//!
//! `<field>` is what the script wrote (`port`, `options.decompress`, `config.ttl`,
//! `size`); `<what was given>` is the Luau type name of a value of the wrong type
//! (`got string`), and the value itself for a number out of range (`got 70000`,
//! `got nan`). This module
//! owns the checks and the message; what a field means, and its default, belong to
//! the library that reads it.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::Bytes;
use mlua::{Error, Function, LuaString, Result, Table, Value};

use crate::value::{format_number, type_name};

/// The error for a bad value: `Invalid <field> - expected <expected>, got <got>`.
pub fn invalid(field: &str, expected: &str, got: impl Display) -> Error {
    Error::runtime(format!("Invalid {field} - expected {expected}, got {got}"))
}

/// The error for a value of the wrong type: [`invalid`] with its Luau type name.
pub fn wrong(field: &str, expected: &str, value: &Value) -> Error {
    invalid(field, expected, type_name(value))
}

/// The error for a number out of range, or for a value that is not a number where a
/// number was expected: [`invalid`] with the number itself, or the type name.
pub fn out_of_range(field: &str, expected: &str, value: &Value) -> Error {
    match value {
        Value::Integer(i) => invalid(field, expected, i),
        Value::Number(n) => invalid(field, expected, format_number(*n)),
        other => wrong(field, expected, other),
    }
}

/// The number a value holds, if it is one.
fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// How [`integer_in`] words its range.
fn integer_range_text(range: &RangeInclusive<i64>) -> String {
    // 2^53: beyond it a Luau number cannot count one by one, so a range reaching it
    // has no upper bound worth naming.
    const UNBOUNDED: i64 = 1 << 53;
    match (*range.start(), *range.end()) {
        (1, end) if end >= UNBOUNDED => "a positive integer".to_string(),
        (0, end) if end >= UNBOUNDED => "a non-negative integer".to_string(),
        (start, end) => format!("an integer from {start} to {end}"),
    }
}

/// A whole number within `range` (a Luau number with no fraction), as `T`.
pub fn integer_in<T: TryFrom<i64>>(
    value: &Value,
    field: &str,
    range: RangeInclusive<i64>,
) -> Result<T> {
    let fail = || out_of_range(field, &integer_range_text(&range), value);
    // Luau integers are checked as they are (through f64, one beyond 2^53 could be
    // rounded into the range).
    if let Value::Integer(i) = value {
        return match range.contains(i) {
            true => T::try_from(*i).map_err(|_| fail()),
            false => Err(fail()),
        };
    }
    let Some(number) = as_number(value) else {
        return Err(fail());
    };
    if number.fract() != 0.0 || !number.is_finite() {
        return Err(fail());
    }
    // Out-of-range floats saturate, and the range check then refuses them.
    let whole = number as i64;
    if !range.contains(&whole) {
        return Err(fail());
    }
    T::try_from(whole).map_err(|_| fail())
}

/// [`integer_in`], with nil meaning "not given".
pub fn optional_integer_in<T: TryFrom<i64>>(
    value: &Value,
    field: &str,
    range: RangeInclusive<i64>,
) -> Result<Option<T>> {
    match value {
        Value::Nil => Ok(None),
        other => integer_in(other, field, range).map(Some),
    }
}

/// Any number (NaN and infinities included).
pub fn number(value: &Value, field: &str) -> Result<f64> {
    as_number(value).ok_or_else(|| wrong(field, "number", value))
}

/// [`number`], with nil meaning "not given".
pub fn optional_number(value: &Value, field: &str) -> Result<Option<f64>> {
    match value {
        Value::Nil => Ok(None),
        other => number(other, field).map(Some),
    }
}

/// A duration given in seconds: a finite number greater than zero (as a timeout
/// is), or nil for "not given".
///
/// Durations longer than [`MAX_SECONDS`] (about a century) are taken as that: a
/// deadline that far away never comes, and adding a larger one to a clock reading
/// would overflow (a panic in `Instant + Duration`).
pub fn optional_seconds(value: &Value, field: &str) -> Result<Option<Duration>> {
    const EXPECTED: &str = "a number of seconds greater than 0";
    match value {
        Value::Nil => Ok(None),
        other => match as_number(other) {
            Some(seconds) if seconds > 0.0 && seconds.is_finite() => {
                Ok(Some(Duration::from_secs_f64(seconds.min(MAX_SECONDS))))
            }
            _ => Err(out_of_range(field, EXPECTED, other)),
        },
    }
}

/// The longest duration [`optional_seconds`] gives: 100 years.
pub const MAX_SECONDS: f64 = 100.0 * 365.25 * 24.0 * 3600.0;

/// A string.
pub fn string(value: &Value, field: &str) -> Result<LuaString> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong(field, "string", other)),
    }
}

/// [`string`], with nil meaning "not given".
pub fn optional_string(value: &Value, field: &str) -> Result<Option<LuaString>> {
    match value {
        Value::Nil => Ok(None),
        other => string(other, field).map(Some),
    }
}

/// A boolean, with nil meaning "not given".
pub fn optional_boolean(value: &Value, field: &str) -> Result<Option<bool>> {
    match value {
        Value::Nil => Ok(None),
        Value::Boolean(b) => Ok(Some(*b)),
        other => Err(wrong(field, "boolean", other)),
    }
}

/// A function, with nil meaning "not given".
pub fn optional_function(value: &Value, field: &str) -> Result<Option<Function>> {
    match value {
        Value::Nil => Ok(None),
        Value::Function(f) => Ok(Some(f.clone())),
        other => Err(wrong(field, "function", other)),
    }
}

/// A table, with nil meaning "not given".
pub fn optional_table(value: &Value, field: &str) -> Result<Option<Table>> {
    match value {
        Value::Nil => Ok(None),
        Value::Table(t) => Ok(Some(t.clone())),
        other => Err(wrong(field, "table", other)),
    }
}

/// The bytes of a string or a buffer (copied).
pub fn bytes(value: &Value, field: &str) -> Result<Bytes> {
    match value {
        Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Buffer(b) => Ok(Bytes::from(b.to_vec())),
        other => Err(wrong(field, "string or buffer", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(error: Error) -> String {
        crate::report::error_message(&error)
    }

    #[test]
    fn integers_in_range() {
        assert_eq!(
            integer_in::<u16>(&Value::Integer(80), "port", 0..=65535).unwrap(),
            80
        );
        assert_eq!(
            integer_in::<u16>(&Value::Number(443.0), "port", 0..=65535).unwrap(),
            443
        );
        let cases = [
            (Value::Integer(70000), "got 70000"),
            (Value::Integer(-1), "got -1"),
            (Value::Number(1.5), "got 1.5"),
            (Value::Number(f64::NAN), "got nan"),
            (Value::Number(f64::INFINITY), "got inf"),
            (Value::Number(1e300), "got 1e300"),
            (Value::Boolean(true), "got boolean"),
            (Value::Nil, "got nil"),
        ];
        for (value, got) in cases {
            let text = message(integer_in::<u16>(&value, "port", 0..=65535).unwrap_err());
            assert_eq!(
                text,
                format!("Invalid port - expected an integer from 0 to 65535, {got}"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn unbounded_ranges_are_worded() {
        let text =
            message(integer_in::<usize>(&Value::Integer(0), "size", 1..=i64::MAX).unwrap_err());
        assert_eq!(text, "Invalid size - expected a positive integer, got 0");
        let text = message(integer_in::<u64>(&Value::Integer(-2), "n", 0..=i64::MAX).unwrap_err());
        assert_eq!(text, "Invalid n - expected a non-negative integer, got -2");
    }

    #[test]
    fn optional_values() {
        assert_eq!(
            optional_integer_in::<u8>(&Value::Nil, "ttl", 1..=255).unwrap(),
            None
        );
        assert_eq!(optional_boolean(&Value::Nil, "tls").unwrap(), None);
        assert_eq!(
            optional_boolean(&Value::Boolean(true), "tls").unwrap(),
            Some(true)
        );
        let text = message(optional_boolean(&Value::Integer(1), "config.tls").unwrap_err());
        assert_eq!(text, "Invalid config.tls - expected boolean, got number");
    }

    #[test]
    fn seconds() {
        assert_eq!(
            optional_seconds(&Value::Number(1.5), "timeout").unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(optional_seconds(&Value::Nil, "timeout").unwrap(), None);
        assert_eq!(
            optional_seconds(&Value::Number(1e300), "timeout").unwrap(),
            Some(Duration::from_secs_f64(MAX_SECONDS)),
            "a huge duration is capped, so adding it to a clock cannot overflow"
        );
        let far = std::time::Instant::now()
            + optional_seconds(&Value::Number(1e19), "t")
                .unwrap()
                .unwrap();
        assert!(far > std::time::Instant::now());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let text = message(optional_seconds(&Value::Number(bad), "timeout").unwrap_err());
            assert!(
                text.starts_with(
                    "Invalid timeout - expected a number of seconds greater than 0, got "
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn strings_and_bytes() {
        let lua = mlua::Lua::new();
        let s = Value::String(lua.create_string("hi").unwrap());
        assert_eq!(&*bytes(&s, "body").unwrap(), b"hi");
        let buffer = Value::Buffer(lua.create_buffer(b"yo").unwrap());
        assert_eq!(&*bytes(&buffer, "body").unwrap(), b"yo");
        let text = message(bytes(&Value::Integer(5), "body").unwrap_err());
        assert_eq!(text, "Invalid body - expected string or buffer, got number");
        let text = message(string(&Value::Table(lua.create_table().unwrap()), "url").unwrap_err());
        assert_eq!(text, "Invalid url - expected string, got table");
    }
}
