//! Date & time values as tables (`{ year, month, day, hour, minute, second,
//! millisecond }`): read from scripts for `fromUniversalTime` / `fromLocalTime`, and
//! returned by `toUniversalTime` / `toLocalTime` (read-only, as in Lune).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use lunet_runtime::args;
use mlua::{Error, Lua, Result, Table, Value};

/// The separate values of a date & time.
pub(super) struct Values {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millisecond: u32,
}

/// Each field, whether it may be left out, and its range (Lune's).
const FIELDS: [(&str, bool, i64, i64); 7] = [
    ("year", true, 1400, 9999),
    ("month", true, 1, 12),
    ("day", true, 1, 31),
    ("hour", true, 0, 23),
    ("minute", true, 0, 59),
    ("second", true, 0, 60),
    ("millisecond", false, 0, 999),
];

impl Values {
    /// Reads a values table given to the constructor `function`. Fractions are
    /// rounded down, as Lune documents; a missing field or one out of its range is
    /// an error naming it.
    pub(super) fn from_value(value: &Value, function: &str) -> Result<Values> {
        let table = match value {
            Value::Table(table) => table,
            other => {
                return Err(args::wrong(
                    &format!("argument #1 to '{function}'"),
                    "table of date & time values",
                    other,
                ));
            }
        };
        let mut read = [0i64; 7];
        for (slot, (name, required, min, max)) in read.iter_mut().zip(FIELDS) {
            let field = format!("values.{name}");
            let value: Value = table.get(name)?;
            let number = if required {
                args::number(&value, &field)?
            } else {
                args::optional_number(&value, &field)?.unwrap_or(0.0)
            };
            let whole = number.floor();
            if !(min as f64..=max as f64).contains(&whole) {
                return Err(args::out_of_range(
                    &field,
                    &format!("a number from {min} to {max}"),
                    &value,
                ));
            }
            *slot = whole as i64;
        }
        let [year, month, day, hour, minute, second, millisecond] = read;
        Ok(Values {
            year: year as i32,
            month: month as u32,
            day: day as u32,
            hour: hour as u32,
            minute: minute as u32,
            second: second as u32,
            millisecond: millisecond as u32,
        })
    }

    /// The wall-clock date & time these values name, or an error for a date that
    /// does not exist (February 30th) or a time chrono rejects (second 60).
    pub(super) fn to_naive(&self) -> Result<NaiveDateTime> {
        let date = NaiveDate::from_ymd_opt(self.year, self.month, self.day).ok_or_else(|| {
            Error::runtime(format!(
                "Invalid date - {:04}-{:02}-{:02} does not exist",
                self.year, self.month, self.day
            ))
        })?;
        let time =
            NaiveTime::from_hms_milli_opt(self.hour, self.minute, self.second, self.millisecond)
                .ok_or_else(|| {
                    Error::runtime(format!(
                        "Invalid time - {:02}:{:02}:{:02}.{:03} is not a valid time",
                        self.hour, self.minute, self.second, self.millisecond
                    ))
                })?;
        Ok(NaiveDateTime::new(date, time))
    }

    /// The values of `date` in its own time zone.
    pub(super) fn from_date_time<T: Datelike + Timelike>(date: &T) -> Values {
        Values {
            year: date.year(),
            month: date.month(),
            day: date.day(),
            hour: date.hour(),
            minute: date.minute(),
            second: date.second(),
            // A leap second's nanoseconds run past 10^9; its milliseconds stop at 999.
            millisecond: (date.nanosecond() / 1_000_000).min(999),
        }
    }

    /// A read-only table of these values.
    pub(super) fn into_table(self, lua: &Lua) -> Result<Table> {
        let table = lua.create_table_with_capacity(0, 7)?;
        table.raw_set("year", self.year)?;
        table.raw_set("month", self.month)?;
        table.raw_set("day", self.day)?;
        table.raw_set("hour", self.hour)?;
        table.raw_set("minute", self.minute)?;
        table.raw_set("second", self.second)?;
        table.raw_set("millisecond", self.millisecond)?;
        table.set_readonly(true);
        Ok(table)
    }
}
