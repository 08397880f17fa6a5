//! `RegexMatch`: one stretch of a text that a pattern (or one of its groups)
//! matched, as `Regex:find` and `RegexCaptures:get`/`group` return it.
//!
//! Its fields are computed when read, in Luau's terms: `start` is the 1-based
//! position of the first byte, `finish` that of the last (so
//! `string.sub(text, m.start, m.finish)` is the match, and an empty match has
//! `finish == start - 1`), `len` the length in bytes and `text` the matched text.
//! `#m` is its length and `tostring(m)` its text, as in Lune. It keeps the searched
//! string alive (a reference, not a copy) and copies out only the matched part when
//! `text` is read. It owns nothing else.

use std::ops::Range;

use mlua::{
    Function, Lua, LuaString, MetaMethod, Result, UserData, UserDataFields, UserDataMethods,
    UserDataRef, Value,
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

impl UserData for RegexMatch {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::Index, create_index);
        fields.add_meta_field(MetaMethod::Type, "RegexMatch");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.range.len()));
        methods.add_meta_method(MetaMethod::ToString, |lua, this, ()| this.text(lua));
    }
}

/// The type's `__index`: its four fields (nil for any other key).
fn create_index(lua: &Lua) -> Result<Function> {
    lua.create_function(|lua, (this, key): (UserDataRef<RegexMatch>, Value)| {
        let Value::String(key) = &key else {
            return Ok(Value::Nil);
        };
        Ok(match &*key.as_bytes() {
            b"start" => Value::Integer((this.range.start + 1) as i64),
            b"finish" => Value::Integer(this.range.end as i64),
            b"len" => Value::Integer(this.range.len() as i64),
            b"text" => Value::String(this.text(lua)?),
            _ => Value::Nil,
        })
    })
}
