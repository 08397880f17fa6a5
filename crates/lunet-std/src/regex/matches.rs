//! `RegexMatch`: one stretch of a text that a pattern (or one of its groups)
//! matched, as `Regex:find` and `RegexCaptures:get`/`group` return it.
//!
//! It is a [`lunet_runtime::object`] with no methods; its fields are properties
//! computed when read, in Luau's terms: `start` is the 1-based position of the
//! first byte, `finish` that of the last (so `string.sub(text, m.start, m.finish)`
//! is the match, and an empty match has `finish == start - 1`), `len` the length in
//! bytes and `text` the matched text.
//! `#m` is its length and `tostring(m)` its text, as in Lune. It keeps the searched
//! string alive (a reference, not a copy) and copies out only the matched part when
//! `text` is read. It owns nothing else.

use std::ops::Range;

use lunet_runtime::object::{self, Object};
use mlua::{
    Lua, LuaString, MetaMethod, Result, Table, UserData, UserDataFields, UserDataMethods, Value,
};

/// A match: the searched text and the byte range that matched.
pub(crate) struct RegexMatch {
    haystack: LuaString,
    range: Range<usize>,
}

impl RegexMatch {
    pub(crate) fn new(haystack: LuaString, range: Range<usize>) -> RegexMatch {
        RegexMatch { haystack, range }
    }

    fn text(&self, lua: &Lua) -> Result<LuaString> {
        lua.create_string(&self.haystack.as_bytes()[self.range.clone()])
    }
}

impl Object for RegexMatch {
    const NAME: &'static str = "RegexMatch";
    const VARIABLE: &'static str = "match";
    /// Nothing: a `RegexMatch` has no methods to share it with.
    type Shared = ();

    fn shared(&self) {}

    fn build_methods(lua: &Lua) -> Result<Table> {
        lua.create_table()
    }

    fn property(&self, lua: &Lua, key: &[u8]) -> Result<Value> {
        Ok(match key {
            b"start" => Value::Integer((self.range.start + 1) as i64),
            b"finish" => Value::Integer(self.range.end as i64),
            b"len" => Value::Integer(self.range.len() as i64),
            b"text" => Value::String(self.text(lua)?),
            _ => Value::Nil,
        })
    }
}

impl UserData for RegexMatch {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
        fields.add_meta_field(MetaMethod::Type, "RegexMatch");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.range.len()));
        methods.add_meta_method(MetaMethod::ToString, |lua, this, ()| this.text(lua));
    }
}
