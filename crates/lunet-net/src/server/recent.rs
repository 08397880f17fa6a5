//! What one connection's requests repeat: a client sends the same `Host`,
//! `User-Agent`, `Accept` (and, from a browser, a dozen more) with every request on
//! a connection, often for the same path. [`Recent`] remembers, per connection, the
//! last path and the last value of each kept header name
//! ([`super::common_strings`]) as Luau strings, and pushes the remembered string
//! when the bytes are the same again; and the last request's metatable (which
//! holds its header lines, packed, for the lazy `rawHeaders`: see
//! [`super::request`]), pushed again for a request with the same lines.
//!
//! Pushing a Luau string from bytes (`lua_pushlstring`) hashes them and looks them
//! up in the VM's string table: ~310 instructions per string on the HTTP/2 hello
//! bench (callgrind); comparing the bytes with the remembered ones and pushing that
//! string by reference costs a fraction of that. A metatable made afresh is a table,
//! a buffer and two fields per request, and two more objects for the collector. A
//! value that changes costs the comparison and a reference more than before. What
//! is remembered is bounded: one string per kept name and one path, each at most
//! [`MAX_REMEMBERED`] bytes, and one table for at most [`MAX_REMEMBERED_LINES`]
//! bytes of header lines, for as long as the connection lives, so a hostile peer
//! cannot grow it.
//!
//! This module does not build the request table or its metatable (that is
//! [`super::request`]).

use mlua::state::RawLua;
use mlua::{IntoLua, LuaString, Result, Table, Value, ffi};

use super::common_strings::KEPT_NAMES;

/// Longer values are pushed from their bytes and not remembered.
pub(crate) const MAX_REMEMBERED: usize = 256;

/// Header lines (packed) longer than this get a metatable of their own each time.
pub(crate) const MAX_REMEMBERED_LINES: usize = 4096;

/// Which string of a request a slot remembers.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Path,
    /// The value of the kept header name with this index.
    Header(usize),
}

impl Slot {
    fn index(self) -> usize {
        match self {
            Slot::Path => KEPT_NAMES,
            Slot::Header(index) => index,
        }
    }
}

/// A remembered string and a copy of its bytes (comparing with a copy needs no
/// call into the VM).
struct Remembered {
    bytes: Vec<u8>,
    string: LuaString,
}

/// A remembered table, and the HTTP version and bytes it was made for.
struct RememberedTable {
    version: http::Version,
    bytes: Vec<u8>,
    table: Table,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Recent {
    /// By [`Slot::index`]; made on first use.
    slots: Vec<Option<Remembered>>,
    table: Option<RememberedTable>,
}

impl Recent {
    /// Pushes `bytes` as a Luau string: the one `slot` remembers when it has these
    /// bytes, else a new one, which `slot` then remembers.
    ///
    /// # Safety
    /// As for `request::push_bytes`: `lua`'s state is locked by the caller, with
    /// room for two more values on its stack.
    pub(crate) unsafe fn push(&mut self, lua: &RawLua, slot: Slot, bytes: &[u8]) -> Result<()> {
        let state = lua.state();
        if bytes.len() > MAX_REMEMBERED {
            // SAFETY: the caller's contract.
            unsafe { push_bytes(state, bytes) };
            return Ok(());
        }
        if self.slots.is_empty() {
            self.slots.resize_with(KEPT_NAMES + 1, || None);
        }
        let remembered = &mut self.slots[slot.index()];
        if let Some(known) = remembered
            && known.bytes == bytes
        {
            // SAFETY: the caller's contract.
            return unsafe { (&known.string).push_into_stack(lua) };
        }
        // SAFETY: the caller's contract (room for the string and its copy); the
        // copy is popped as the reference `pop_value` makes.
        let string = unsafe {
            push_bytes(state, bytes);
            ffi::lua_pushvalue(state, -1);
            lua.pop_value()
        };
        if let Value::String(string) = string {
            match remembered {
                Some(known) => {
                    known.bytes.clear();
                    known.bytes.extend_from_slice(bytes);
                    known.string = string;
                }
                None => {
                    *remembered = Some(Remembered {
                        bytes: bytes.to_vec(),
                        string,
                    })
                }
            }
        }
        Ok(())
    }
}

impl Recent {
    /// Pushes the table remembered for `bytes` of a `version` request, or else the
    /// one `make` pushes, which is then remembered (when `bytes` is not too long).
    ///
    /// # Safety
    /// As for [`Recent::push`], with the room `make` needs and one more.
    pub(crate) unsafe fn push_table(
        &mut self,
        lua: &RawLua,
        version: http::Version,
        bytes: &[u8],
        make: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if let Some(known) = &self.table
            && known.version == version
            && known.bytes == bytes
        {
            // SAFETY: the caller's contract.
            return unsafe { (&known.table).push_into_stack(lua) };
        }
        make()?;
        if bytes.len() > MAX_REMEMBERED_LINES {
            return Ok(());
        }
        // SAFETY: the caller's contract (room for the copy), which is popped as the
        // reference `pop_value` makes.
        let table = unsafe {
            ffi::lua_pushvalue(lua.state(), -1);
            lua.pop_value()
        };
        if let Value::Table(table) = table {
            match &mut self.table {
                Some(known) => {
                    known.version = version;
                    known.bytes.clear();
                    known.bytes.extend_from_slice(bytes);
                    known.table = table;
                }
                None => {
                    self.table = Some(RememberedTable {
                        version,
                        bytes: bytes.to_vec(),
                        table,
                    })
                }
            }
        }
        Ok(())
    }
}

/// Pushes `bytes` as a Luau string.
///
/// # Safety
/// `state` is a live Luau state this thread has locked, with room for one more
/// value on its stack. (Pushing a string cannot raise: the VM has no memory limit,
/// mlua aborts on allocation failure, and request parts are far below Luau's string
/// size limit.)
pub(crate) unsafe fn push_bytes(state: *mut ffi::lua_State, bytes: &[u8]) {
    // SAFETY: the pointer and length come from one live slice, which Luau copies
    // before returning; the state and the room are the caller's contract.
    unsafe { ffi::lua_pushlstring_(state, bytes.as_ptr().cast(), bytes.len()) };
}

#[cfg(test)]
mod tests {
    use std::ffi::c_int;

    use super::*;
    use mlua::{IntoLuaMulti, Lua, MultiValue};

    /// Arguments that `push` pushes, as mlua has a call's arguments pushed (the VM
    /// locked, onto the stack the call reads them from).
    struct Pushing<F>(F);

    impl<F: FnOnce(&RawLua) -> c_int> IntoLuaMulti for Pushing<F> {
        fn into_lua_multi(self, _: &Lua) -> Result<MultiValue> {
            unreachable!("mlua pushes arguments through push_into_stack_multi")
        }

        unsafe fn push_into_stack_multi(self, lua: &RawLua) -> Result<c_int> {
            Ok((self.0)(lua))
        }
    }

    /// Calls `collect` (Luau source of a function of `...`) with what `push` pushes.
    fn collect<R: mlua::FromLuaMulti>(
        lua: &Lua,
        collect: &str,
        push: impl FnOnce(&RawLua) -> c_int,
    ) -> R {
        let collect = lua.load(collect).eval::<mlua::Function>().unwrap();
        collect.call(Pushing(push)).unwrap()
    }

    /// Pushes each of `values` through `recent`, and returns what was pushed.
    fn push_all(lua: &Lua, recent: &mut Recent, values: &[(Slot, &[u8])]) -> Vec<Vec<u8>> {
        let pushed: Vec<LuaString> = collect(lua, "return function(...) return {...} end", |lua| {
            // SAFETY: mlua's contract for `push_into_stack_multi`; room is made first.
            unsafe {
                ffi::lua_checkstack(lua.state(), 2 + values.len() as c_int);
                for &(slot, bytes) in values {
                    recent.push(lua, slot, bytes).unwrap();
                }
            }
            values.len() as c_int
        });
        pushed.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn pushes_each_value_as_given_whether_remembered_or_not() {
        let lua = Lua::new();
        let mut recent = Recent::default();
        let long = vec![b'x'; MAX_REMEMBERED + 1];
        let values: Vec<(Slot, &[u8])> = vec![
            (Slot::Path, b"/a"),
            (Slot::Header(0), b"example.com"),
            (Slot::Path, b"/a"),
            (Slot::Path, b"/b"),
            (Slot::Header(0), b"example.com"),
            (Slot::Header(1), b"example.com"),
            (Slot::Header(0), b"example.org"),
            (Slot::Header(0), b""),
            (Slot::Header(0), &long),
            (Slot::Header(0), &long),
            (Slot::Path, b"/b"),
        ];
        let pushed = push_all(&lua, &mut recent, &values);
        let expected: Vec<Vec<u8>> = values.iter().map(|(_, v)| v.to_vec()).collect();
        assert_eq!(pushed, expected);
        // Across calls too: the slot holds the last value pushed through it.
        let again = push_all(
            &lua,
            &mut recent,
            &[
                (Slot::Header(0), b""),
                (Slot::Path, b"/b"),
                (Slot::Path, b"/c"),
            ],
        );
        assert_eq!(again, [b"".to_vec(), b"/b".to_vec(), b"/c".to_vec()]);
    }

    #[test]
    fn remembers_one_short_string_per_slot() {
        let lua = Lua::new();
        let mut recent = Recent::default();
        let long = vec![b'y'; MAX_REMEMBERED + 1];
        push_all(
            &lua,
            &mut recent,
            &[
                (Slot::Path, b"/a"),
                (Slot::Header(3), b"v1"),
                (Slot::Header(3), b"v2"),
                (Slot::Header(4), &long),
            ],
        );
        let remembered: Vec<(usize, Vec<u8>, Vec<u8>)> = recent
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                slot.as_ref()
                    .map(|known| (i, known.bytes.clone(), known.string.as_bytes().to_vec()))
            })
            .collect();
        assert_eq!(
            remembered,
            [
                (3, b"v2".to_vec(), b"v2".to_vec()),
                (KEPT_NAMES, b"/a".to_vec(), b"/a".to_vec()),
            ]
        );
    }

    #[test]
    fn remembers_the_last_table_for_its_version_and_bytes() {
        let lua = Lua::new();
        let mut recent = Recent::default();
        let (h1, h2) = (http::Version::HTTP_11, http::Version::HTTP_2);
        let long = vec![b'z'; MAX_REMEMBERED_LINES + 1];
        let keys: [(http::Version, &[u8]); 8] = [
            (h1, b"a"),
            (h1, b"a"),
            (h2, b"a"),
            (h2, b"b"),
            (h2, b"b"),
            (h2, &long),
            (h2, &long),
            (h2, b"b"),
        ];
        // Each table made afresh is `{ n = <tables made so far> }`.
        let source =
            "return function(...) local n = {} for i, t in {...} do n[i] = t.n end return n end";
        let made: Vec<i64> = collect(&lua, source, |lua| {
            let count = std::cell::Cell::new(0);
            // SAFETY: mlua's contract for `push_into_stack_multi`; room is made first.
            unsafe {
                let state = lua.state();
                ffi::lua_checkstack(state, 3 + keys.len() as c_int);
                for (version, bytes) in keys {
                    let make = || {
                        count.set(count.get() + 1);
                        ffi::lua_createtable(state, 0, 1);
                        ffi::lua_pushinteger(state, count.get());
                        ffi::lua_rawsetfield(state, -2, c"n".as_ptr());
                        Ok(())
                    };
                    recent.push_table(lua, version, bytes, make).unwrap();
                }
            }
            keys.len() as c_int
        });
        // Made afresh: the first, another version, other bytes, and each time
        // for lines too long to remember (which leave the last table remembered).
        assert_eq!(made, [1, 1, 2, 3, 3, 4, 5, 3]);
    }
}
