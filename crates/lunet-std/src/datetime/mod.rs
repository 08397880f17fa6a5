//! `@lune/datetime`: a moment in time (`DateTime`), its constructors, and its
//! conversions to strings and to date & time values, as Lune's library has them.
//!
//! A `DateTime` is a userdata holding a UTC instant ([`DateTime`]); the time zone
//! only matters when a value is read or built "as local time", which uses chrono's
//! `Local` (the `TZ` environment variable, else the system zone). It is a
//! [`lunet_runtime::object`]: its methods are functions made with
//! [`lunet_runtime::create_function`] in the type's shared method table (so their
//! errors reach scripts as plain strings like every library error), and
//! `unixTimestamp` and `unixTimestampMillis` are properties computed when read. Two
//! `DateTime`s compare with `==`, `<` and `<=` as instants; like Lune, there is no
//! arithmetic. `@lune/fs` builds `DateTime`s for file timestamps
//! ([`DateTime::from_system_time`]).
//!
//! Formatting takes chrono's strftime syntax and one of Lune's locales (`en`, `de`,
//! `es`, `fr`, `it`, `ja`, `pl`, `pt-br`, `pt`, `tr`), mapped to chrono's locale data.

mod values;

use std::fmt::Write;
use std::time::SystemTime;

use chrono::format::{Item, StrftimeItems};
use chrono::{Local, LocalResult, TimeZone, Utc};
use lunet_runtime::args;
use lunet_runtime::object::{self, Object, This};
use mlua::{
    AnyUserData, Lua, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods, Value,
};

use values::Values;

const DEFAULT_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// What `fromUnixTimestamp` accepts (chrono's range of years).
const TIMESTAMP_RANGE: &str = "a finite number of seconds within years -262143 to 262142";

/// Lune's locale names and the chrono locale each stands for.
const LOCALES: &[(&str, chrono::Locale)] = &[
    ("en", chrono::Locale::en_US),
    ("de", chrono::Locale::de_DE),
    ("es", chrono::Locale::es_ES),
    ("fr", chrono::Locale::fr_FR),
    ("it", chrono::Locale::it_IT),
    ("ja", chrono::Locale::ja_JP),
    ("pl", chrono::Locale::pl_PL),
    ("pt-br", chrono::Locale::pt_BR),
    ("pt", chrono::Locale::pt_PT),
    ("tr", chrono::Locale::tr_TR),
];

/// A moment in time, as a UTC instant with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DateTime(chrono::DateTime<Utc>);

impl DateTime {
    /// The moment `time` names, if chrono can represent it.
    pub(crate) fn from_system_time(time: SystemTime) -> Option<DateTime> {
        let since = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        let seconds = i64::try_from(since.as_secs()).ok()?;
        chrono::DateTime::from_timestamp(seconds, since.subsec_nanos()).map(DateTime)
    }

    /// The moment `seconds` after the Unix epoch (a fraction counts down to the
    /// nanosecond; negative timestamps with fractions are handled exactly, where Lune
    /// drops a negative fraction).
    fn from_unix_seconds(seconds: f64) -> Option<DateTime> {
        if !seconds.is_finite() {
            return None;
        }
        let whole = seconds.floor();
        let mut nanos = ((seconds - whole) * 1e9).round();
        let mut whole = whole;
        if nanos >= 1e9 {
            whole += 1.0;
            nanos = 0.0;
        }
        // Beyond ±2^62 seconds chrono refuses anyway; this keeps the cast exact.
        if whole.abs() > 4.6e18 {
            return None;
        }
        chrono::DateTime::from_timestamp(whole as i64, nanos as u32).map(DateTime)
    }

    /// Formats with `format` in `zone`, in `locale`; an invalid format is an error.
    fn format<Tz: TimeZone>(
        &self,
        zone: &Tz,
        format: &str,
        locale: chrono::Locale,
        method: &str,
    ) -> Result<String>
    where
        Tz::Offset: std::fmt::Display,
    {
        let items: Vec<Item> = StrftimeItems::new_with_locale(format, locale).collect();
        if items.iter().any(|item| matches!(item, Item::Error)) {
            return Err(args::invalid(
                &format!("argument #1 to '{method}'"),
                "a strftime format string",
                format!("{format:?}"),
            ));
        }
        let mut out = String::new();
        write!(
            out,
            "{}",
            self.0
                .with_timezone(zone)
                .format_localized_with_items(items.into_iter(), locale)
        )
        .map_err(|_| mlua::Error::runtime(format!("{method}: cannot format {format:?}")))?;
        Ok(out)
    }
}

impl Object for DateTime {
    const NAME: &'static str = "DateTime";
    const VARIABLE: &'static str = "dateTime";
    type Shared = DateTime;

    fn shared(&self) -> DateTime {
        *self
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }

    fn property(&self, _lua: &Lua, key: &[u8]) -> Result<Value> {
        Ok(match key {
            b"unixTimestamp" => Value::Number(self.0.timestamp() as f64),
            b"unixTimestampMillis" => Value::Number(self.0.timestamp_millis() as f64),
            _ => Value::Nil,
        })
    }
}

impl UserData for DateTime {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_function(MetaMethod::Eq, |_, (a, b): (Value, Value)| {
            Ok(matches!((as_date_time(&a), as_date_time(&b)), (Some(a), Some(b)) if a == b))
        });
        methods.add_meta_function(MetaMethod::Lt, |_, (a, b): (Value, Value)| {
            let (a, b) = operands(&a, &b, "<")?;
            Ok(a < b)
        });
        methods.add_meta_function(MetaMethod::Le, |_, (a, b): (Value, Value)| {
            let (a, b) = operands(&a, &b, "<=")?;
            Ok(a <= b)
        });
    }
}

/// The `DateTime` a value holds, if it holds one.
fn as_date_time(value: &Value) -> Option<DateTime> {
    match value {
        Value::UserData(data) => data.borrow::<DateTime>().ok().map(|d| *d),
        _ => None,
    }
}

/// Both operands of a comparison, or an error naming the operator.
fn operands(a: &Value, b: &Value, operator: &str) -> Result<(DateTime, DateTime)> {
    let field = format!("operand of '{operator}'");
    let a = as_date_time(a).ok_or_else(|| args::wrong(&field, "DateTime", a))?;
    let b = as_date_time(b).ok_or_else(|| args::wrong(&field, "DateTime", b))?;
    Ok((a, b))
}

/// The locale argument of a format method (nil means English).
fn locale(value: &Value, method: &str) -> Result<chrono::Locale> {
    let field = format!("argument #2 to '{method}'");
    let Some(name) = args::optional_string(value, &field)? else {
        return Ok(chrono::Locale::en_US);
    };
    let name = name
        .to_string_lossy()
        .to_ascii_lowercase()
        .replace('_', "-");
    LOCALES
        .iter()
        .find(|(lune, _)| *lune == name)
        .map(|(_, locale)| *locale)
        .ok_or_else(|| {
            args::invalid(
                &field,
                "one of en, de, es, fr, it, ja, pl, pt-br, pt, tr",
                format!("{name:?}"),
            )
        })
}

/// The format argument of a format method (nil means `%Y-%m-%d %H:%M:%S`).
fn format_string(value: &Value, method: &str) -> Result<String> {
    Ok(
        args::optional_string(value, &format!("argument #1 to '{method}'"))?
            .map(|s| s.to_string_lossy())
            .unwrap_or_else(|| DEFAULT_FORMAT.to_string()),
    )
}

/// A method that writes a moment as text.
type ToText = fn(&DateTime) -> Result<String>;

/// The method functions, created once per VM (through [`object::methods`]) and
/// shared by every `DateTime`.
fn build_methods(lua: &Lua) -> Result<Table> {
    let methods = lua.create_table()?;
    let simple: &[(&'static str, ToText)] = &[
        ("toIsoDate", |d| Ok(d.0.to_rfc3339())),
        ("toRfc3339", |d| Ok(d.0.to_rfc3339())),
        // chrono panics formatting RFC 2822 outside years 0-9999 (its four-digit
        // field); such dates get an error instead.
        ("toRfc2822", |d| {
            let year = chrono::Datelike::year(&d.0);
            if !(0..=9999).contains(&year) {
                return Err(mlua::Error::runtime(format!(
                    "DateTime:toRfc2822 - the year {year} cannot be written in RFC 2822 (years 0 to 9999)"
                )));
            }
            Ok(d.0.to_rfc2822())
        }),
    ];
    for &(name, to_string) in simple {
        methods.raw_set(
            name,
            lunet_runtime::create_function(lua, move |_, this: This<DateTime>| {
                to_string(&this.get(name)?)
            })?,
        )?;
    }
    methods.raw_set(
        "toUniversalTime",
        lunet_runtime::create_function(lua, |lua, this: This<DateTime>| {
            Values::from_date_time(&this.get("toUniversalTime")?.0).into_table(lua)
        })?,
    )?;
    methods.raw_set(
        "toLocalTime",
        lunet_runtime::create_function(lua, |lua, this: This<DateTime>| {
            let local = this.get("toLocalTime")?.0.with_timezone(&Local);
            Values::from_date_time(&local).into_table(lua)
        })?,
    )?;
    methods.raw_set(
        "formatUniversalTime",
        format_method(lua, "formatUniversalTime", Utc)?,
    )?;
    methods.raw_set(
        "formatLocalTime",
        format_method(lua, "formatLocalTime", Local)?,
    )?;
    Ok(methods)
}

/// `DateTime:<name>(format, locale)`: the moment formatted in `zone`.
fn format_method<Tz>(lua: &Lua, name: &'static str, zone: Tz) -> Result<mlua::Function>
where
    Tz: TimeZone + Copy + 'static,
    Tz::Offset: std::fmt::Display,
{
    let method = format!("DateTime:{name}");
    lunet_runtime::create_function(
        lua,
        move |_, (this, format, loc): (This<DateTime>, Value, Value)| {
            let date = this.get(name)?;
            date.format(
                &zone,
                &format_string(&format, &method)?,
                locale(&loc, &method)?,
                &method,
            )
        },
    )
}

/// Wraps a moment for Luau.
fn push(lua: &Lua, date: DateTime) -> Result<AnyUserData> {
    lua.create_userdata(date)
}

/// Parses a string with `parse`, for the constructor `name`.
fn parse_with(
    value: &Value,
    name: &str,
    what: &str,
    parse: fn(&str) -> chrono::ParseResult<chrono::DateTime<chrono::FixedOffset>>,
) -> Result<DateTime> {
    let text = args::string(value, &format!("argument #1 to '{name}'"))?;
    let text = text.to_str()?;
    parse(&text)
        .map(|d| DateTime(d.with_timezone(&Utc)))
        .map_err(|e| {
            mlua::Error::runtime(format!(
                "{name}: {:?} is not a valid {what} date-time ({e})",
                &*text
            ))
        })
}

pub fn create(lua: &Lua) -> Result<Value> {
    let module = lua.create_table()?;
    module.set(
        "now",
        lunet_runtime::create_function(lua, |lua, ()| push(lua, DateTime(Utc::now())))?,
    )?;
    module.set(
        "fromUnixTimestamp",
        lunet_runtime::create_function(lua, |lua, value: Value| {
            const FIELD: &str = "argument #1 to 'DateTime.fromUnixTimestamp'";
            let seconds = args::number(&value, FIELD)?;
            let date = DateTime::from_unix_seconds(seconds)
                .ok_or_else(|| args::out_of_range(FIELD, TIMESTAMP_RANGE, &value))?;
            push(lua, date)
        })?,
    )?;
    module.set(
        "fromUniversalTime",
        lunet_runtime::create_function(lua, |lua, value: Value| {
            let values = Values::from_value(&value, "DateTime.fromUniversalTime")?;
            push(lua, DateTime(values.to_naive()?.and_utc()))
        })?,
    )?;
    module.set(
        "fromLocalTime",
        lunet_runtime::create_function(lua, |lua, value: Value| {
            let values = Values::from_value(&value, "DateTime.fromLocalTime")?;
            let naive = values.to_naive()?;
            // A wall-clock time the clocks skip (a DST gap) names no moment; one they
            // pass twice (a DST fold) is taken at its first occurrence, where Lune
            // refuses it.
            let local = match Local.from_local_datetime(&naive) {
                LocalResult::Single(d) => d,
                // The earlier of the two instants (chrono does not promise an order).
                LocalResult::Ambiguous(a, b) => a.min(b),
                LocalResult::None => {
                    return Err(mlua::Error::runtime(format!(
                        "DateTime.fromLocalTime: {naive} does not exist in the local time zone (the clocks skip it)"
                    )));
                }
            };
            push(lua, DateTime(local.with_timezone(&Utc)))
        })?,
    )?;
    for (name, what, parse) in [
        (
            "fromIsoDate",
            "ISO 8601 (RFC 3339)",
            chrono::DateTime::parse_from_rfc3339 as fn(&str) -> _,
        ),
        (
            "fromRfc3339",
            "RFC 3339",
            chrono::DateTime::parse_from_rfc3339,
        ),
        (
            "fromRfc2822",
            "RFC 2822",
            chrono::DateTime::parse_from_rfc2822,
        ),
    ] {
        let full = format!("DateTime.{name}");
        module.set(
            name,
            lunet_runtime::create_function(lua, move |lua, value: Value| {
                push(lua, parse_with(&value, &full, what, parse)?)
            })?,
        )?;
    }
    Ok(Value::Table(super::freeze(module)))
}
