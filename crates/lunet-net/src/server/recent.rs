//! What one connection's requests repeat: a client sends the same `Host`,
//! `User-Agent`, `Accept` (and, from a browser, a dozen more) with every request on
//! a connection, often for the same path. [`Recent`] remembers, per connection, the
//! last path and the last value of each kept header name
//! ([`super::common_strings`]) as Luau strings, and pushes the remembered string
//! when the bytes are the same again; and the last request's `headers` table and
//! metatable (which holds its header lines, packed, for the lazy `rawHeaders`: see
//! [`super::request`]): a request with the same lines (and HTTP version) gets a
//! copy of the `headers` table (one `lua_clonetable`, where building it costs a
//! table, and a name, a value and a table write per line) and the same frozen
//! metatable.
//!
//! Pushing a Luau string from bytes (`lua_pushlstring`) hashes them and looks them
//! up in the VM's string table: ~310 instructions per string on the HTTP/2 hello
//! bench (callgrind); comparing the bytes with a copy of the remembered ones and
//! reading the remembered string from a table costs a fraction of that. A
//! metatable made afresh is two objects per request for the allocator and the
//! collector. A value that changes costs the comparison and a table write more
//! than before.
//!
//! What is remembered lives in one Luau table per connection, the store (one mlua
//! reference per connection: mlua keeps references on one stack per VM, of
//! bounded size, so a reference per remembered string would let many connections
//! exhaust it), which is on the stack while a request's values are pushed
//! ([`Pushing`]). It is bounded: one string per kept name and one path, each at
//! most [`MAX_REMEMBERED`] bytes, and two tables for at most
//! [`MAX_REMEMBERED_LINES`] bytes of header lines, with a copy of their bytes in
//! Rust, for as long as the connection lives, so a hostile peer cannot grow it.
//!
//! A connection's first request is pushed as before, and only the later ones go
//! through the store ([`Recent::begin`]): many connections carry one request (a
//! script's one-off `curl`, a client that closes after each), and for them the
//! store and the copies would be work and memory with nothing to gain.
//!
//! This module does not build the request table or its metatable (that is
//! [`super::request`]).

use std::ffi::c_int;

use mlua::state::RawLua;
use mlua::{IntoLua, Result, Table, Value, ffi};

use super::common_strings::KEPT_NAMES;

/// Longer values are pushed from their bytes and not remembered.
pub(crate) const MAX_REMEMBERED: usize = 256;

/// Header lines (packed) longer than this get their own `headers` table and
/// metatable each time.
pub(crate) const MAX_REMEMBERED_LINES: usize = 4096;

/// Which string of a request a slot remembers.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Path,
    /// The value of the kept header name with this index.
    Header(usize),
}

impl Slot {
    /// Its index in the store (from 1).
    fn index(self) -> usize {
        match self {
            Slot::Path => KEPT_NAMES + 1,
            Slot::Header(index) => index + 1,
        }
    }
}

/// The store's index of the remembered metatable.
const TABLE_INDEX: c_int = KEPT_NAMES as c_int + 2;

/// The store's index of the remembered `headers` table, of which each request with
/// the same lines gets a copy.
const HEADERS_INDEX: c_int = TABLE_INDEX + 1;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Recent {
    /// The Luau table holding what is remembered, each at its [`Slot::index`] (and
    /// the table at [`TABLE_INDEX`]): one mlua reference per connection, however
    /// much it holds (references live on one stack per VM, of bounded size).
    /// Made on first use.
    store: Option<Table>,
    /// A copy of the bytes of each remembered string, by [`Slot::index`] (comparing
    /// with a copy needs no call into the VM).
    bytes: Vec<Option<Vec<u8>>>,
    /// What the remembered tables were made for: an HTTP version and its header
    /// lines, packed.
    table: Option<(http::Version, Vec<u8>)>,
    /// Whether the connection's first request has been pushed.
    past_first: bool,
}

impl Recent {
    /// Pushes the store, for the pushes of one request (see [`Pushing`]); nothing
    /// for the connection's first request (see the module documentation).
    ///
    /// # Safety
    /// `lua`'s state is locked by the caller, with room for three more values on
    /// its stack, and for two more with each push through the result.
    pub(crate) unsafe fn begin(&mut self, lua: &RawLua) -> Result<Option<Pushing<'_>>> {
        if !std::mem::replace(&mut self.past_first, true) {
            return Ok(None);
        }
        let state = lua.state();
        match &self.store {
            // SAFETY: the caller's contract.
            Some(store) => unsafe { store.push_into_stack(lua)? },
            None => {
                // SAFETY: the caller's contract; the copy is popped as the reference
                // `pop_value` makes.
                let store = unsafe {
                    ffi::lua_createtable(state, HEADERS_INDEX, 0);
                    ffi::lua_pushvalue(state, -1);
                    lua.pop_value()
                };
                if let Value::Table(store) = store {
                    self.store = Some(store);
                }
                self.bytes.resize_with(KEPT_NAMES + 2, || None);
            }
        }
        Ok(Some(Pushing {
            recent: self,
            state,
            // SAFETY: the state is locked by the caller.
            store: unsafe { ffi::lua_gettop(state) },
        }))
    }
}

/// One request's pushes through its connection's [`Recent`], whose store is on
/// the stack (below what they push) until [`Pushing::end`].
pub(crate) struct Pushing<'a> {
    recent: &'a mut Recent,
    state: *mut ffi::lua_State,
    /// The store's stack index.
    store: c_int,
}

impl Pushing<'_> {
    /// Pushes `bytes` as a Luau string: the one `slot` remembers when it has these
    /// bytes, else a new one, which `slot` then remembers.
    ///
    /// # Safety
    /// As for [`push_bytes`], with room for two more values; the store is still
    /// where [`Recent::begin`] pushed it.
    pub(crate) unsafe fn push(&mut self, slot: Slot, bytes: &[u8]) {
        let state = self.state;
        let index = slot.index();
        // SAFETY (for the calls below): the caller's contract. The store is a table
        // without a metatable, not frozen, so the raw get and set call no Luau
        // code and cannot raise (growing it would only allocate).
        unsafe {
            if bytes.len() > MAX_REMEMBERED {
                push_bytes(state, bytes);
                return;
            }
            let known = &mut self.recent.bytes[index];
            if known.as_deref() == Some(bytes) {
                ffi::lua_rawgeti_(state, self.store, index as c_int);
                return;
            }
            push_bytes(state, bytes);
            ffi::lua_pushvalue(state, -1);
            ffi::lua_rawseti_(state, self.store, index as c_int);
            copy_into(known.get_or_insert_default(), bytes);
        }
    }

    /// Pushes a request's `headers` table and its metatable, whose header lines are
    /// `lines` (packed) on a `version` request: a copy of the `headers` table and
    /// the metatable remembered for the same lines (a table's contents follow from
    /// its lines and version), or else the ones `headers` and `meta` push, which
    /// are then remembered (the metatable itself, frozen, and a copy of the
    /// `headers` table, so that what a script does to its own reaches no other
    /// request) when `lines` is not too long.
    ///
    /// # Safety
    /// As for [`Pushing::push`], with the room `headers` and `meta` need and two
    /// more; `headers` and `meta` each push one table, and `headers` leaves the
    /// store where it was.
    pub(crate) unsafe fn push_tables(
        &mut self,
        version: http::Version,
        lines: &[u8],
        headers: impl FnOnce(&mut Self) -> Result<()>,
        meta: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let state = self.state;
        // SAFETY: as for `push`; the remembered `headers` table has no metatable
        // and is not frozen, and copying it only allocates.
        unsafe {
            if let Some((known_version, known)) = &self.recent.table
                && *known_version == version
                && known.as_slice() == lines
            {
                ffi::lua_rawgeti_(state, self.store, HEADERS_INDEX);
                ffi::lua_clonetable(state, -1);
                ffi::lua_replace(state, -2);
                ffi::lua_rawgeti_(state, self.store, TABLE_INDEX);
                return Ok(());
            }
            headers(self)?;
            meta()?;
            if lines.len() > MAX_REMEMBERED_LINES {
                return Ok(());
            }
            ffi::lua_clonetable(state, -2);
            ffi::lua_rawseti_(state, self.store, HEADERS_INDEX);
            ffi::lua_pushvalue(state, -1);
            ffi::lua_rawseti_(state, self.store, TABLE_INDEX);
        }
        let (known_version, known) = self
            .recent
            .table
            .get_or_insert_with(|| (version, Vec::new()));
        *known_version = version;
        copy_into(known, lines);
        Ok(())
    }

    /// Takes the store off the stack (what was pushed since moves down one).
    ///
    /// # Safety
    /// The store is still where [`Recent::begin`] pushed it.
    pub(crate) unsafe fn end(self) {
        // SAFETY: the caller's contract.
        unsafe { ffi::lua_remove(self.state, self.store) };
    }
}

/// Makes `copy` hold `bytes` (in the room it has, when that is enough).
fn copy_into(copy: &mut Vec<u8>, bytes: &[u8]) {
    copy.clear();
    copy.extend_from_slice(bytes);
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
    use super::*;
    use mlua::{IntoLuaMulti, Lua, LuaString, MultiValue};

    /// Arguments that `push` pushes, as mlua has a call's arguments pushed (the VM
    /// locked, onto the stack the call reads them from).
    struct Pushes<F>(F);

    impl<F: FnOnce(&RawLua) -> c_int> IntoLuaMulti for Pushes<F> {
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
        collect.call(Pushes(push)).unwrap()
    }

    /// A connection's `Recent` after its first request.
    fn past_first() -> Recent {
        Recent {
            past_first: true,
            ..Recent::default()
        }
    }

    #[test]
    fn the_first_request_is_pushed_without_the_store() {
        let lua = Lua::new();
        let mut recent = Recent::default();
        let mut through = Vec::new();
        for _ in 0..3 {
            let () = collect(&lua, "return function() end", |lua| {
                // SAFETY: mlua's contract for `push_into_stack_multi`; room is made
                // first, and the store (if pushed) is taken off again.
                unsafe {
                    ffi::lua_checkstack(lua.state(), 4);
                    let pushing = recent.begin(lua).unwrap();
                    through.push(pushing.is_some());
                    if let Some(pushing) = pushing {
                        pushing.end();
                    }
                }
                0
            });
        }
        assert_eq!(through, [false, true, true]);
        assert!(recent.store.is_some());
    }

    /// Pushes each of `values` through `recent`, and returns what was pushed.
    fn push_all(lua: &Lua, recent: &mut Recent, values: &[(Slot, &[u8])]) -> Vec<Vec<u8>> {
        let source = "return function(...) return {...} end";
        let pushed: Vec<LuaString> = collect(lua, source, |lua| {
            // SAFETY: mlua's contract for `push_into_stack_multi`; room is made first.
            unsafe {
                ffi::lua_checkstack(lua.state(), 4 + values.len() as c_int);
                let mut pushing = recent.begin(lua).unwrap().expect("past the first request");
                for &(slot, bytes) in values {
                    pushing.push(slot, bytes);
                }
                pushing.end();
            }
            values.len() as c_int
        });
        pushed.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn pushes_each_value_as_given_whether_remembered_or_not() {
        let lua = Lua::new();
        let mut recent = past_first();
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
    fn remembers_one_short_string_per_slot_in_one_table() {
        let lua = Lua::new();
        let mut recent = past_first();
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
        let store = recent.store.clone().expect("the store");
        let remembered: Vec<(i64, Vec<u8>)> = store
            .pairs::<i64, LuaString>()
            .map(|pair| pair.map(|(i, s)| (i, s.as_bytes().to_vec())).unwrap())
            .collect();
        let mut remembered = remembered;
        remembered.sort();
        let path = Slot::Path.index() as i64;
        assert_eq!(remembered, [(4, b"v2".to_vec()), (path, b"/a".to_vec())]);
        let copies: Vec<(usize, Vec<u8>)> = recent
            .bytes
            .iter()
            .enumerate()
            .filter_map(|(i, bytes)| bytes.clone().map(|bytes| (i, bytes)))
            .collect();
        assert_eq!(
            copies,
            [(4, b"v2".to_vec()), (path as usize, b"/a".to_vec())]
        );
    }

    #[test]
    fn remembers_the_last_tables_for_their_version_and_lines() {
        let lua = Lua::new();
        let mut recent = past_first();
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
        // Each pair of tables made afresh is `{ n = <pairs made so far> }` twice
        // (headers, then metatable). For each request: the two `n`s, and whether
        // each table is the very one the request before got.
        let source = r#"return function(...)
            local args, out = {...}, {}
            for i = 1, #args, 2 do
                local headers, meta = args[i], args[i + 1]
                table.insert(out, headers.n)
                table.insert(out, meta.n)
                table.insert(out, if i > 1 and headers == args[i - 2] then 1 else 0)
                table.insert(out, if i > 1 and meta == args[i - 1] then 1 else 0)
            end
            return out
        end"#;
        let seen: Vec<i64> = collect(&lua, source, |lua| {
            let count = std::cell::Cell::new(0);
            // SAFETY: mlua's contract for `push_into_stack_multi`; room is made first.
            unsafe {
                let state = lua.state();
                ffi::lua_checkstack(state, 4 + 2 * keys.len() as c_int);
                let mut pushing = recent.begin(lua).unwrap().expect("past the first request");
                for (version, bytes) in keys {
                    let table = |n: i64| {
                        ffi::lua_createtable(state, 0, 1);
                        ffi::lua_pushinteger(state, n);
                        ffi::lua_rawsetfield(state, -2, c"n".as_ptr());
                    };
                    let headers = |_: &mut Pushing<'_>| {
                        count.set(count.get() + 1);
                        table(count.get());
                        Ok(())
                    };
                    let meta = || {
                        table(count.get());
                        Ok(())
                    };
                    pushing.push_tables(version, bytes, headers, meta).unwrap();
                }
                pushing.end();
            }
            2 * keys.len() as c_int
        });
        let made: Vec<i64> = seen.chunks(4).map(|r| r[0]).collect();
        let metas: Vec<i64> = seen.chunks(4).map(|r| r[1]).collect();
        // Made afresh: the first, another version, other lines, and each time for
        // lines too long to remember (which leave the last tables remembered).
        assert_eq!(made, [1, 1, 2, 3, 3, 4, 5, 3]);
        assert_eq!(metas, made, "a metatable goes with its headers table");
        let same_headers: Vec<i64> = seen.chunks(4).map(|r| r[2]).collect();
        let same_meta: Vec<i64> = seen.chunks(4).map(|r| r[3]).collect();
        assert_eq!(
            same_headers, [0; 8],
            "each request gets its own headers table, a copy when remembered"
        );
        assert_eq!(
            same_meta,
            [0, 1, 0, 0, 1, 0, 0, 0],
            "a remembered metatable is shared"
        );
    }
}
