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
//! It is a [`lunet_runtime::object`] with methods and no properties. It keeps the
//! searched string (a reference) and the groups' byte ranges, behind an `Rc` that
//! its methods' calls share; `format` searches again from the match's start, which
//! finds the same match (the search is deterministic and the match was the
//! leftmost), to let the crate do the expansion.

use std::ops::Range;
use std::rc::Rc;

use ::regex::bytes::Regex;
use lunet_runtime::args;
use lunet_runtime::object::{self, Object, This};
use mlua::{
    Lua, LuaString, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods, Value,
};

use super::matches::RegexMatch;

/// `RegexCaptures`: the groups of one match, shared with its methods' calls.
pub(crate) struct RegexCaptures(Rc<Groups>);

/// The groups of one match.
pub(crate) struct Groups {
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
        Some(RegexCaptures(Rc::new(Groups {
            regex,
            haystack,
            groups,
        })))
    }
}

impl Groups {
    /// The number of groups, not counting the whole match.
    fn count(&self) -> usize {
        self.groups.len() - 1
    }

    fn group_match(&self, index: usize) -> Option<RegexMatch> {
        let range = self.groups.get(index)?.clone()?;
        Some(RegexMatch::new(self.haystack.clone(), range))
    }

    /// The index of the group called `name`, if there is one.
    fn named(&self, name: &[u8]) -> Option<usize> {
        let name = std::str::from_utf8(name).ok()?;
        self.regex
            .capture_names()
            .position(|group| group == Some(name))
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

impl Object for RegexCaptures {
    const NAME: &'static str = "RegexCaptures";
    const VARIABLE: &'static str = "captures";
    type Shared = Rc<Groups>;

    fn shared(&self) -> Rc<Groups> {
        self.0.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }
}

impl UserData for RegexCaptures {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
        fields.add_meta_field(MetaMethod::Type, "RegexCaptures");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.count()));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(this.0.count().to_string())
        });
    }
}

/// A found group as a `RegexMatch` userdata, or nil.
fn push(lua: &Lua, found: Option<RegexMatch>) -> Result<Value> {
    match found {
        Some(m) => Ok(Value::UserData(lua.create_userdata(m)?)),
        None => Ok(Value::Nil),
    }
}

/// The method functions, created once per VM (through [`object::methods`]) and
/// shared by every `RegexCaptures`.
fn build_methods(lua: &Lua) -> Result<Table> {
    let methods = lua.create_table()?;
    methods.raw_set(
        "get",
        lunet_runtime::create_function(lua, |lua, (this, index): (This<RegexCaptures>, Value)| {
            let groups = this.get("get")?;
            let index: usize =
                args::integer_in(&index, "argument #1 to 'RegexCaptures:get'", 0..=i64::MAX)?;
            push(lua, groups.group_match(index))
        })?,
    )?;
    methods.raw_set(
        "group",
        lunet_runtime::create_function(lua, |lua, (this, name): (This<RegexCaptures>, Value)| {
            let groups = this.get("group")?;
            let name = args::string(&name, "argument #1 to 'RegexCaptures:group'")?;
            let found = groups
                .named(&name.as_bytes())
                .and_then(|index| groups.group_match(index));
            push(lua, found)
        })?,
    )?;
    methods.raw_set(
        "format",
        lunet_runtime::create_function(
            lua,
            |lua, (this, template): (This<RegexCaptures>, Value)| {
                let groups = this.get("format")?;
                let template = args::string(&template, "argument #1 to 'RegexCaptures:format'")?;
                lua.create_string(groups.format(&template.as_bytes()))
            },
        )?,
    )?;
    Ok(methods)
}
