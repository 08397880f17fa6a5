//! `RegexCaptures`: the groups of the first match of a pattern in a text, as
//! `Regex:captures` returns them.
//!
//! As in Lune, `get(0)` is the whole match and `get(1)`... the numbered groups
//! (a group that took no part in the match is nil, as is an index past the last),
//! `group(name)` a named group, `#captures` the number of groups (the whole match
//! not counted) and `tostring(captures)` that number. `format` expands the
//! `regex` crate's replacement syntax (`$1`, `$name`, `${name}`, `$$` for a
//! literal `$`) with the groups.
//!
//! The object keeps the searched string (a reference) and the groups' byte
//! ranges; `format` searches again from the match's start, which finds the same
//! match (the search is deterministic and the match was the leftmost), to let the
//! crate do the expansion.

use std::ops::Range;
use std::rc::Rc;

use ::regex::bytes::Regex;
use lunet_runtime::args;
use mlua::{
    Lua, LuaString, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods, Value,
};

use super::matches::RegexMatch;

/// The groups of one match.
pub(crate) struct RegexCaptures {
    regex: Rc<Regex>,
    haystack: LuaString,
    /// Each group's range, the whole match first.
    groups: Vec<Option<Range<usize>>>,
}

impl RegexCaptures {
    /// The groups of `regex`'s first match in `haystack`, if it matches.
    pub(crate) fn search(regex: Rc<Regex>, haystack: LuaString) -> Option<RegexCaptures> {
        let groups = {
            let bytes = haystack.as_bytes();
            let captures = regex.captures(&bytes)?;
            captures.iter().map(|m| m.map(|m| m.range())).collect()
        };
        Some(RegexCaptures {
            regex,
            haystack,
            groups,
        })
    }

    /// The number of groups, not counting the whole match.
    fn count(&self) -> usize {
        self.groups.len() - 1
    }

    fn group_match(&self, index: usize) -> Option<RegexMatch> {
        let range = self.groups.get(index)?.clone()?;
        Some(RegexMatch::new(self.haystack.clone(), range))
    }

    fn format(&self, template: &[u8]) -> Vec<u8> {
        let bytes = self.haystack.as_bytes();
        let start = self.groups[0].as_ref().map_or(0, |whole| whole.start);
        let mut out = Vec::new();
        if let Some(captures) = self.regex.captures_at(&bytes, start) {
            captures.expand(template, &mut out);
        }
        out
    }
}

impl UserData for RegexCaptures {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::Index, method_table);
        fields.add_meta_field(MetaMethod::Type, "RegexCaptures");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.count()));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(this.count().to_string())
        });
    }
}

/// Calls `f` with the `RegexCaptures` a method was called on, or fails telling the
/// script to use `:`.
fn with_this<R>(value: &Value, method: &str, f: impl FnOnce(&RegexCaptures) -> R) -> Result<R> {
    if let Value::UserData(data) = value
        && let Ok(this) = data.borrow::<RegexCaptures>()
    {
        return Ok(f(&this));
    }
    Err(args::wrong(
        &format!("self in 'RegexCaptures:{method}' (call it with ':')"),
        "RegexCaptures",
        value,
    ))
}

/// A found group as a `RegexMatch` userdata, or nil.
fn push(lua: &Lua, found: Option<RegexMatch>) -> Result<Value> {
    match found {
        Some(m) => Ok(Value::UserData(lua.create_userdata(m)?)),
        None => Ok(Value::Nil),
    }
}

/// The shared method table of `RegexCaptures`, built once per VM.
struct MethodTable(Table);

fn method_table(lua: &Lua) -> Result<Table> {
    if let Some(table) = lua.app_data_ref::<MethodTable>() {
        return Ok(table.0.clone());
    }
    let methods = lua.create_table()?;
    methods.set(
        "get",
        lunet_runtime::create_function(lua, |lua, (this, index): (Value, Value)| {
            let index: usize =
                args::integer_in(&index, "argument #1 to 'RegexCaptures:get'", 0..=i64::MAX)?;
            push(lua, with_this(&this, "get", |c| c.group_match(index))?)
        })?,
    )?;
    methods.set(
        "group",
        lunet_runtime::create_function(lua, |lua, (this, name): (Value, Value)| {
            let name = args::string(&name, "argument #1 to 'RegexCaptures:group'")?;
            let found = with_this(&this, "group", |c| {
                let name = std::str::from_utf8(&name.as_bytes()).ok()?.to_string();
                let index = c
                    .regex
                    .capture_names()
                    .position(|group| group == Some(name.as_str()))?;
                c.group_match(index)
            })?;
            push(lua, found)
        })?,
    )?;
    methods.set(
        "format",
        lunet_runtime::create_function(lua, |lua, (this, template): (Value, Value)| {
            let template = args::string(&template, "argument #1 to 'RegexCaptures:format'")?;
            let out = with_this(&this, "format", |c| c.format(&template.as_bytes()))?;
            lua.create_string(out)
        })?,
    )?;
    methods.set_readonly(true);
    lua.set_app_data(MethodTable(methods.clone()));
    Ok(methods)
}
