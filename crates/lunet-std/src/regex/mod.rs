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
//! Each type is a [`lunet_runtime::object`]: its methods are
//! [`lunet_runtime::create_function`]s in one read-only table per VM (so their
//! errors reach scripts as plain strings), and `RegexMatch`'s fields are properties
//! computed when read. This module owns `Regex` and the constructor; what a match or
//! a set of captures is lives in its own module.

mod captures;
mod matches;

use std::rc::Rc;

use lunet_runtime::args;
use lunet_runtime::object::{self, Object, This};
use mlua::{
    Lua, LuaString, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods, Value,
};

use captures::RegexCaptures;
use matches::RegexMatch;

/// The most memory one compiled pattern may take (the `regex` crate's default).
const SIZE_LIMIT: usize = 10 * (1 << 20);

/// A compiled regular expression, shared by the matches and captures it makes.
pub(crate) struct Regex(Rc<::regex::bytes::Regex>);

impl Object for Regex {
    const NAME: &'static str = "Regex";
    const VARIABLE: &'static str = "re";
    type Shared = Rc<::regex::bytes::Regex>;

    fn shared(&self) -> Self::Shared {
        self.0.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }
}

impl UserData for Regex {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
        fields.add_meta_field(MetaMethod::Type, "Regex");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(this.0.as_str().to_string())
        });
    }
}

/// The text argument `position` of `Regex:<method>`.
fn text(value: &Value, position: usize, method: &str) -> Result<LuaString> {
    args::string(value, &format!("argument #{position} to 'Regex:{method}'"))
}

/// The method functions, created once per VM (through [`object::methods`]) and
/// shared by every `Regex`.
fn build_methods(lua: &Lua) -> Result<Table> {
    let methods = lua.create_table()?;
    methods.raw_set(
        "isMatch",
        lunet_runtime::create_function(lua, |_, (this, haystack): (This<Regex>, Value)| {
            let regex = this.get("isMatch")?;
            let haystack = text(&haystack, 1, "isMatch")?;
            Ok(regex.is_match(&haystack.as_bytes()))
        })?,
    )?;
    methods.raw_set(
        "find",
        lunet_runtime::create_function(lua, |lua, (this, haystack): (This<Regex>, Value)| {
            let regex = this.get("find")?;
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
    methods.raw_set(
        "captures",
        lunet_runtime::create_function(lua, |lua, (this, haystack): (This<Regex>, Value)| {
            let regex = this.get("captures")?;
            let haystack = text(&haystack, 1, "captures")?;
            match RegexCaptures::search(regex, haystack) {
                Some(captures) => Ok(Value::UserData(lua.create_userdata(captures)?)),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    methods.raw_set(
        "split",
        lunet_runtime::create_function(lua, |lua, (this, haystack): (This<Regex>, Value)| {
            let regex = this.get("split")?;
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
        methods.raw_set(
            name,
            lunet_runtime::create_function(
                lua,
                move |lua, (this, haystack, replacer): (This<Regex>, Value, Value)| {
                    let regex = this.get(name)?;
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
