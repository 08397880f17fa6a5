//! `@lune/regex`: regular expressions (`Regex`), the matches they find
//! (`RegexMatch`, [`matches`]) and the groups they capture (`RegexCaptures`,
//! [`captures`]), as Lune's library has them, built on the `regex` crate.
//!
//! Patterns use the `regex` crate's syntax (Perl-like, no look-around and no
//! back-references), and a search takes time linear in the text's length for any
//! pattern, so neither a hostile pattern nor a hostile text can make a search
//! backtrack exponentially. A pattern's compiled size is bounded by [`SIZE_LIMIT`]
//! (the crate's default, made explicit) and its nesting by the crate's default of
//! 250; beyond either, `regex.new` fails with the crate's message.
//!
//! Texts are Luau strings taken as bytes (`regex::bytes`): positions are byte
//! positions, as in Luau's `string` library, and a text that is not valid UTF-8 is
//! searched like any other (Lune refuses it); with Unicode on (the default) `.` and
//! classes still match whole UTF-8 characters.
//!
//! Each type is a userdata whose `__index` is its read-only method table (shared by
//! the VM, like `DateTime`'s), plus computed fields for `RegexMatch`; the methods
//! are [`lunet_runtime::create_function`]s, so their errors reach scripts as plain
//! strings. This module owns `Regex` and the constructor; what a match or a set of
//! captures is lives in its own module.

mod captures;
mod matches;

use std::rc::Rc;

use lunet_runtime::args;
use mlua::{
    Lua, LuaString, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods, Value,
};

use captures::RegexCaptures;
use matches::RegexMatch;

/// The most memory one compiled pattern may take (the `regex` crate's default).
const SIZE_LIMIT: usize = 10 * (1 << 20);

/// A compiled regular expression, shared by the matches and captures it makes.
pub(crate) struct Regex(Rc<::regex::bytes::Regex>);

impl UserData for Regex {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::Index, method_table);
        fields.add_meta_field(MetaMethod::Type, "Regex");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(this.0.as_str().to_string())
        });
    }
}

/// The `Regex` a method was called on, or an error telling the script to use `:`.
fn this(value: &Value, method: &str) -> Result<Rc<::regex::bytes::Regex>> {
    let regex = match value {
        Value::UserData(data) => data.borrow::<Regex>().ok().map(|r| r.0.clone()),
        _ => None,
    };
    regex.ok_or_else(|| {
        args::wrong(
            &format!("self in 'Regex:{method}' (call it with ':')"),
            "Regex",
            value,
        )
    })
}

/// The text argument `position` of `Regex:<method>`.
fn text(value: &Value, position: usize, method: &str) -> Result<LuaString> {
    args::string(value, &format!("argument #{position} to 'Regex:{method}'"))
}

/// The shared method table of `Regex`, built once per VM.
struct MethodTable(Table);

fn method_table(lua: &Lua) -> Result<Table> {
    if let Some(table) = lua.app_data_ref::<MethodTable>() {
        return Ok(table.0.clone());
    }
    let methods = lua.create_table()?;
    methods.set(
        "isMatch",
        lunet_runtime::create_function(lua, |_, (this_value, haystack): (Value, Value)| {
            let regex = this(&this_value, "isMatch")?;
            let haystack = text(&haystack, 1, "isMatch")?;
            Ok(regex.is_match(&haystack.as_bytes()))
        })?,
    )?;
    methods.set(
        "find",
        lunet_runtime::create_function(lua, |lua, (this_value, haystack): (Value, Value)| {
            let regex = this(&this_value, "find")?;
            let haystack = text(&haystack, 1, "find")?;
            let found = regex.find(&haystack.as_bytes()).map(|m| m.range());
            match found {
                Some(range) => Ok(Value::UserData(
                    lua.create_userdata(RegexMatch::new(haystack, range))?,
                )),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    methods.set(
        "captures",
        lunet_runtime::create_function(lua, |lua, (this_value, haystack): (Value, Value)| {
            let regex = this(&this_value, "captures")?;
            let haystack = text(&haystack, 1, "captures")?;
            match RegexCaptures::search(regex, haystack) {
                Some(captures) => Ok(Value::UserData(lua.create_userdata(captures)?)),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    methods.set(
        "split",
        lunet_runtime::create_function(lua, |lua, (this_value, haystack): (Value, Value)| {
            let regex = this(&this_value, "split")?;
            let haystack = text(&haystack, 1, "split")?;
            let bytes = haystack.as_bytes();
            let pieces = lua.create_table()?;
            for (i, piece) in regex.split(&bytes).enumerate() {
                pieces.raw_set(i + 1, lua.create_string(piece)?)?;
            }
            Ok(pieces)
        })?,
    )?;
    for (name, all) in [("replace", false), ("replaceAll", true)] {
        methods.set(
            name,
            lunet_runtime::create_function(
                lua,
                move |lua, (this_value, haystack, replacer): (Value, Value, Value)| {
                    let regex = this(&this_value, name)?;
                    let haystack = text(&haystack, 1, name)?;
                    let replacer = text(&replacer, 2, name)?;
                    let (haystack, replacer) = (haystack.as_bytes(), replacer.as_bytes());
                    // `$1`, `$name`, `${name}` and `$$` expand, as in the crate.
                    let replaced = if all {
                        regex.replace_all(&haystack, &*replacer)
                    } else {
                        regex.replace(&haystack, &*replacer)
                    };
                    lua.create_string(&*replaced)
                },
            )?,
        )?;
    }
    methods.set_readonly(true);
    lua.set_app_data(MethodTable(methods.clone()));
    Ok(methods)
}

/// Compiles `pattern`, or fails with the `regex` crate's explanation.
fn compile(pattern: &str) -> Result<::regex::bytes::Regex> {
    ::regex::bytes::RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|error| mlua::Error::runtime(format!("regex.new: invalid pattern: {error}")))
}

pub fn create(lua: &Lua) -> Result<Value> {
    let module = lua.create_table()?;
    module.set(
        "new",
        lunet_runtime::create_function(lua, |lua, pattern: Value| {
            let pattern = args::string(&pattern, "argument #1 to 'regex.new'")?;
            let pattern = pattern.to_str().map_err(|_| {
                args::invalid(
                    "argument #1 to 'regex.new'",
                    "a pattern in UTF-8",
                    "bytes that are not UTF-8",
                )
            })?;
            let regex = compile(&pattern)?;
            lua.create_userdata(Regex(Rc::new(regex)))
        })?,
    )?;
    Ok(Value::Table(super::freeze(module)))
}
