//! The request a `handleRequest` handler receives:
//! `{ method, path, query, headers, rawHeaders, body, ip, port, httpVersion }`; the
//! same table (with an empty body) is what `acceptWebSocket` and `handleWebSocket`
//! get for a WebSocket's upgrade request.
//!
//! `query` maps each key to a string, or an array when the key repeats; `headers` has
//! lower-case names and string values, a repeated header's values joined with `", "`
//! (RFC 9110 5.3), as Lune's scripts expect (`cookie`'s with `"; "`: [`separator`]); `rawHeaders` lists every header line as
//! `{ name = ..., value = ... }`, so repeated `Set-Cookie`s stay apart. The lines come
//! in `http::HeaderMap` order: names in the order they first appeared, each name's
//! values together, in the order received (hyper keeps no finer order). `body` is a
//! binary-safe string,
//! already decoded when the request had a gzip/deflate/br/zstd `Content-Encoding` (or a list
//! of them).
//!
//! This is the hottest path of `net.serve`. The request table itself is built by a
//! small Luau function ([`REQUEST_BUILDER`]) that receives the handler and the
//! fields as arguments and calls the handler with `{ method = method, ... }` (after
//! the socket, for `handleWebSocket`): Luau
//! builds a table with constant keys faster than any host API can. There is one
//! such function per HTTP version ([`RequestBuilders`]), whose metatable's
//! `__index` (below) answers `httpVersion` from an upvalue: the version costs no
//! argument and no field (a field measured ~140 instructions more per request). The fields go onto
//! the handler thread's stack straight from Rust ([`HandlerArgs`]), with the `query`
//! and `headers` tables built there by Luau's C API: no registry reference and no
//! protected call per request.
//!
//! `rawHeaders` (and `httpVersion`) are read through the metatable: `rawHeaders` is
//! built lazily (decision, serve pass on header strings): most
//! handlers never read it, and building it eagerly would cost a table per header
//! line per request. The request table instead gets a metatable whose `__index`
//! (one function per HTTP version) builds `rawHeaders` on first read, from every
//! line packed into one string (`name NUL value NUL ...`: neither names nor values
//! can hold a NUL) kept in that metatable, and sets it on the request (a
//! weak-keyed side table instead of a metatable measured ~1k instructions more per
//! request, in table growth and GC clearing). The metatable is frozen, and a
//! connection's next request with the same header lines (the usual case: a client
//! sends the same ones each time) gets the same one, which the connection keeps
//! until its lines change ([`super::recent`]): the table and the packed string are
//! made only when the lines change, and being a string (immutable) and frozen,
//! nothing one request's script does to them reaches another. Such a request's
//! `headers` is a copy of a table the connection keeps for those lines (the
//! script's own to change, as every request's is), so its header lines are packed
//! first and compared, and pushed one by one only when they changed. A script that
//! replaces the request's metatable loses `rawHeaders` and `httpVersion` (they read
//! nil); one that tries to change it gets an error (it is read-only).
//!
//! An HTTP/2 request is given the headers an HTTP/1.1 one would have, so that handlers
//! see the same request whatever the protocol ([`Http1View`]). RFC 9113 says what
//! whoever passes an HTTP/2 request on as HTTP/1.1 (or to "a generic HTTP server
//! application") MUST do: create `Host` from `:authority` when it is absent (8.3.1;
//! hyper puts `:authority` in the URI only), and join the several `cookie` fields
//! browsers send into one, with "; " (8.2.3), where other repeated headers are
//! joined with ", ". Both happen as the tables are built, not in hyper's `HeaderMap`
//! (inserting there measured ~800 instructions per HTTP/2 request): `Host` comes
//! after the client's own lines, and the joined `cookie` is one `rawHeaders` line.
//!
//! This module does not decide how the handler thread is
//! run (that is the scheduler's `call`) nor read the body (that is `connection`).

use std::cell::RefCell;

use http::request::Parts;
use mlua::state::RawLua;
use mlua::{
    AnyUserData, Function, IntoLua, IntoLuaMulti, Lua, LuaString, MultiValue, Result, Value, ffi,
};

use super::common_strings::{CommonStrings, KnownName};
use super::recent::{Pushing, Recent, Slot, push_bytes};

/// Makes, for an `httpVersion` string, the function that calls `handler(request)`
/// (or `handler(socket, request)` when given a socket) with the request table built
/// from the fields it is given.
pub(crate) const REQUEST_BUILDER: &str = r#"
local split = string.split
local rawset = rawset
local getmetatable = getmetatable
local setmetatable = setmetatable
return function(httpVersion)
	-- Answers httpVersion, and builds rawHeaders on first read, from the packed
	-- header lines the request's metatable holds (shared by a connection's requests
	-- with the same lines).
	local function lazyIndex(request, key)
		if key == "httpVersion" then
			return httpVersion
		elseif key ~= "rawHeaders" then
			return nil
		end
		local meta = getmetatable(request)
		local packed = meta and meta.packed
		if packed == nil then
			return nil
		end
		local parts = split(packed, "\0")
		local lines = table.create((#parts - 1) // 2)
		for i = 1, #parts - 1, 2 do
			lines[(i + 1) // 2] = { name = parts[i], value = parts[i + 1] }
		end
		rawset(request, "rawHeaders", lines)
		return lines
	end
	return function(handler, method, path, query, headers, meta, body, ip, port, socket)
		local request = {
			method = method,
			path = path,
			query = query,
			headers = headers,
			body = body,
			ip = ip,
			port = port,
		}
		setmetatable(request, meta)
		if socket ~= nil then
			return handler(socket, request)
		end
		return handler(request)
	end, lazyIndex
end
"#;

/// One HTTP version's [`REQUEST_BUILDER`]: the function that builds the request and
/// calls the handler, and the `__index` of its requests' metatables.
struct Builder {
    call: Function,
    lazy_index: Function,
}

impl Builder {
    fn new(make: &Function, version: &str) -> Result<Builder> {
        let (call, lazy_index) = make.call(version)?;
        Ok(Builder { call, lazy_index })
    }
}

/// The [`REQUEST_BUILDER`] of each HTTP version a request may come in, and the
/// strings requests share.
pub(crate) struct RequestBuilders {
    http10: Builder,
    http11: Builder,
    http2: Builder,
    strings: CommonStrings,
}

impl RequestBuilders {
    /// Compiles [`REQUEST_BUILDER`] and makes one function per version.
    pub(crate) fn new(lua: &Lua) -> Result<RequestBuilders> {
        let make: Function = lua.load(REQUEST_BUILDER).set_name("=[net.serve]").eval()?;
        Ok(RequestBuilders {
            http10: Builder::new(&make, "1.0")?,
            http11: Builder::new(&make, "1.1")?,
            http2: Builder::new(&make, "2")?,
            strings: CommonStrings::new(lua)?,
        })
    }

    fn builder(&self, version: http::Version) -> &Builder {
        if version == http::Version::HTTP_11 {
            &self.http11
        } else if version == http::Version::HTTP_2 {
            &self.http2
        } else {
            &self.http10
        }
    }

    /// The builder whose requests say `version`.
    pub(crate) fn get(&self, version: http::Version) -> &Function {
        &self.builder(version).call
    }
}

/// The arguments of [`REQUEST_BUILDER`] for one request.
pub(crate) struct HandlerArgs<'a> {
    pub(crate) handler: &'a Function,
    pub(crate) parts: &'a Parts,
    pub(crate) body: &'a [u8],
    /// With `streamRequestBody`: the `BodyStream` that is `request.body` instead.
    pub(crate) stream: Option<&'a AnyUserData>,
    /// For `handleWebSocket`: the `WebSocket`, passed before the request.
    pub(crate) socket: Option<&'a AnyUserData>,
    /// The connection's peer address, made into a Luau string once per connection.
    pub(crate) ip: &'a LuaString,
    pub(crate) port: u16,
    /// The server's builders (for their strings and their requests' metatables).
    pub(crate) builders: &'a RequestBuilders,
    /// The connection's [`Recent`] (none for a request that is its connection's
    /// last, as a WebSocket's is).
    pub(crate) recent: Option<&'a RefCell<Recent>>,
}

/// How an HTTP/2 request's header lines read as HTTP/1.1's (see the module's
/// documentation); for other versions, as they are.
#[derive(Clone, Copy)]
struct Http1View<'a> {
    h2: bool,
    /// `:authority`, the `Host` of an HTTP/2 request that has none.
    authority: Option<&'a str>,
}

impl<'a> Http1View<'a> {
    fn of(version: http::Version, uri: &'a http::Uri) -> Http1View<'a> {
        let h2 = version == http::Version::HTTP_2;
        Http1View {
            h2,
            authority: if h2 {
                uri.authority().map(|authority| authority.as_str())
            } else {
                None
            },
        }
    }

    /// Whether `name`'s repeated values make one line, not one line each.
    fn one_line(self, name: &http::HeaderName) -> bool {
        self.h2 && name == http::header::COOKIE
    }

    /// The `Host` line to add after the request's own, given whether it had one.
    fn added_host(self, had_host: bool) -> Option<&'a str> {
        if had_host { None } else { self.authority }
    }
}

/// What joins `name`'s repeated values into one: "; " for `cookie` (whose value is
/// not a comma list, RFC 9110 5.3; RFC 6265 5.4 and RFC 9113 8.2.3 join cookies with
/// "; "), ", " for the rest. On HTTP/1.1 too, where a client should send one `Cookie`
/// line but may send several: they stay apart in `rawHeaders`, as received.
fn separator(name: &http::HeaderName) -> &'static [u8] {
    if name == http::header::COOKIE {
        b"; "
    } else {
        b", "
    }
}

/// The bytes of the header lines a handler sees (names and values, with the `Host`
/// an HTTP/2 request without one is given: [`Http1View`]), which `maxHeaderSize`
/// bounds.
pub(crate) fn header_bytes(
    version: http::Version,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> usize {
    let mut had_host = false;
    let mut bytes = 0;
    for (name, value) in headers {
        had_host |= name == http::header::HOST;
        bytes += name.as_str().len() + value.len();
    }
    let added = Http1View::of(version, uri).added_host(had_host);
    bytes + added.map_or(0, |host| "host".len() + host.len())
}

impl HandlerArgs<'_> {
    fn path(&self) -> &str {
        match self.parts.uri.path() {
            "" => "/",
            path => path,
        }
    }

    fn query_pairs(
        &self,
    ) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
        let query = self.parts.uri.query().unwrap_or("");
        url::form_urlencoded::parse(query.as_bytes())
    }

    /// Pushes header `name` as a Luau string (the server's own string for a kept
    /// name), and returns that kept name, if it is one.
    ///
    /// # Safety
    /// As for [`Pushing::push`].
    unsafe fn push_name(
        &self,
        lua: &RawLua,
        name: &http::HeaderName,
    ) -> Result<Option<&KnownName>> {
        let known = self.builders.strings.header_name(name);
        match known {
            // SAFETY: the caller's contract.
            Some(known) => unsafe { (&known.string).push_into_stack(lua)? },
            // SAFETY: the caller's contract.
            None => unsafe { push_bytes(lua.state(), name.as_str().as_bytes()) },
        }
        Ok(known)
    }

    /// Pushes the `headers` table: each name (a repeated one's values joined, see
    /// [`separator`]), then `added_host` (see [`Http1View`]); values through the
    /// connection's [`Recent`] when at hand.
    ///
    /// # Safety
    /// As for [`Pushing::push`], with room for five more values.
    unsafe fn push_headers(
        &self,
        lua: &RawLua,
        view: Http1View<'_>,
        added_host: Option<&str>,
        mut recent: Option<&mut Pushing<'_>>,
    ) -> Result<()> {
        let state = lua.state();
        // SAFETY: the caller's contract; each name and value pair is set (and
        // popped) before the next is pushed, on the table pushed first, which has
        // no metatable (see `join_repeated` for the repeated names).
        unsafe {
            let keys = self.parts.headers.keys_len() + usize::from(view.h2);
            ffi::lua_createtable(state, 0, keys as i32);
            let mut last: Option<&http::HeaderName> = None;
            for (name, value) in self.parts.headers.iter() {
                let known = self.push_name(lua, name)?;
                if last == Some(name) {
                    join_repeated(state, value.as_bytes(), separator(name));
                } else {
                    push_value(state, recent.as_deref_mut(), known, value.as_bytes());
                    ffi::lua_rawset(state, -3);
                }
                last = Some(name);
            }
            if let Some(host) = added_host {
                let known = self.push_name(lua, &http::header::HOST)?;
                push_value(state, recent, known, host.as_bytes());
                ffi::lua_rawset(state, -3);
            }
        }
        Ok(())
    }
}

/// Every header line as [`Http1View`] reads it, packed as `name NUL value NUL ...`
/// into `out` (cleared first), for the lazy `rawHeaders` of [`REQUEST_BUILDER`]
/// (and, with the HTTP version, as the key of what a connection remembers: the
/// request's tables follow from it). Returns the `Host` it added last, if any.
fn pack_headers<'a>(
    headers: &http::HeaderMap,
    view: Http1View<'a>,
    out: &mut Vec<u8>,
) -> Option<&'a str> {
    out.clear();
    let mut had_host = false;
    let mut last: Option<&http::HeaderName> = None;
    for (name, value) in headers.iter() {
        had_host |= name == http::header::HOST;
        // A `HeaderMap` yields a name's values together: an HTTP/2 cookie after
        // another joins its line.
        if last == Some(name) && view.one_line(name) {
            out.pop();
            out.extend_from_slice(b"; ");
        } else {
            out.extend_from_slice(name.as_str().as_bytes());
            out.push(0);
        }
        out.extend_from_slice(value.as_bytes());
        out.push(0);
        last = Some(name);
    }
    let added_host = view.added_host(had_host);
    if let Some(host) = added_host {
        out.extend_from_slice(b"host\0");
        out.extend_from_slice(host.as_bytes());
        out.push(0);
    }
    added_host
}

thread_local! {
    /// The buffer [`pack_headers`] fills, kept so that no request allocates one.
    static PACKED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sets `headers[name] = value`, joining a repeated header's values with
/// `separator`. The general (slow) path, for [`IntoLuaMulti::into_lua_multi`].
fn join(lua: &Lua, table: &mlua::Table, name: &[u8], value: &[u8], separator: &[u8]) -> Result<()> {
    let joined = match table.raw_get::<Option<LuaString>>(lua.create_string(name)?)? {
        None => lua.create_string(value)?,
        Some(first) => {
            let mut bytes = first.as_bytes().to_vec();
            bytes.extend_from_slice(separator);
            bytes.extend_from_slice(value);
            lua.create_string(bytes)?
        }
    };
    table.raw_set(lua.create_string(name)?, joined)
}

/// Adds `value` under `key` in `table`, where a repeated key turns the entry into an
/// array of every value, in order. The general (slow) path, for [`IntoLuaMulti::into_lua_multi`].
fn append(lua: &Lua, table: &mlua::Table, key: &[u8], value: &[u8]) -> Result<()> {
    let value = lua.create_string(value)?;
    match table.raw_get::<Value>(lua.create_string(key)?)? {
        Value::Nil => table.raw_set(lua.create_string(key)?, value),
        Value::Table(list) => list.raw_push(value),
        first => {
            let list = lua.create_sequence_from([first, Value::String(value)])?;
            table.raw_set(lua.create_string(key)?, list)
        }
    }
}

impl IntoLuaMulti for HandlerArgs<'_> {
    fn into_lua_multi(self, lua: &Lua) -> Result<MultiValue> {
        let query = lua.create_table()?;
        for (key, value) in self.query_pairs() {
            append(lua, &query, key.as_bytes(), value.as_bytes())?;
        }
        let view = Http1View::of(self.parts.version, &self.parts.uri);
        let mut packed = Vec::new();
        let added_host = pack_headers(&self.parts.headers, view, &mut packed);
        let headers = lua.create_table_with_capacity(0, self.parts.headers.keys_len())?;
        for (name, value) in self.parts.headers.iter() {
            let separator = separator(name);
            join(
                lua,
                &headers,
                name.as_str().as_bytes(),
                value.as_bytes(),
                separator,
            )?;
        }
        if let Some(host) = added_host {
            headers.raw_set("host", host)?;
        }
        let meta = lua.create_table_with_capacity(0, 2)?;
        meta.raw_set(
            "__index",
            &self.builders.builder(self.parts.version).lazy_index,
        )?;
        meta.raw_set("packed", lua.create_string(packed)?)?;
        meta.set_readonly(true);
        let mut args = MultiValue::from_vec(vec![
            Value::Function(self.handler.clone()),
            self.parts.method.as_str().into_lua(lua)?,
            self.path().into_lua(lua)?,
            Value::Table(query),
            Value::Table(headers),
            Value::Table(meta),
            match self.stream {
                Some(stream) => Value::UserData(stream.clone()),
                None => Value::String(lua.create_string(self.body)?),
            },
            Value::String(self.ip.clone()),
            Value::Integer(i64::from(self.port)),
        ]);
        if let Some(socket) = self.socket {
            args.push_back(Value::UserData(socket.clone()));
        }
        Ok(args)
    }

    /// The fast path mlua takes when it pushes arguments for a call or a resume.
    ///
    /// # Safety
    /// mlua's contract for `push_into_stack_multi`: `lua`'s state is locked by the
    /// caller for the whole call, and the values pushed are the caller's to pop.
    unsafe fn push_into_stack_multi(self, lua: &RawLua) -> Result<std::ffi::c_int> {
        let state = lua.state();
        // SAFETY: `state` is the locked state mlua is pushing onto. Room for the
        // (at most ten) values, the connection's store below them, and the four
        // temporaries `append_entry` and `join_repeated` use (`Pushing::push`,
        // `Pushing::push_tables` and `push_metatable` use fewer) is made first, and
        // every helper leaves the stack as it found it plus the values it pushes
        // (one, or the two tables of `push_tables`), so `push_bytes` always has room, and `append_entry` and
        // `join_repeated` find the table `lua_createtable` just pushed (and a name
        // above it) at the top, with room for four. None of these calls can raise a Luau
        // error here (which would unwind past Rust frames): the VM has no memory
        // limit (mlua aborts on allocation failure instead), strings are far below
        // Luau's size limit (requests are capped at 64 MiB), and no key is nil or
        // NaN. That is why no protected call is needed.
        unsafe {
            if ffi::lua_checkstack(state, 16) == 0 {
                return Err(mlua::Error::StackError);
            }
            // No Luau code runs while this is borrowed (a borrow that fails would
            // only mean pushing every string from its bytes). The connection's
            // store goes below the values, and is taken off at the end.
            let mut borrowed = self.recent.and_then(|recent| recent.try_borrow_mut().ok());
            let mut recent = match borrowed.as_deref_mut() {
                Some(recent) => recent.begin(lua)?,
                None => None,
            };
            self.handler.push_into_stack(lua)?;
            match self.builders.strings.method(&self.parts.method) {
                Some(method) => method.push_into_stack(lua)?,
                None => push_bytes(state, self.parts.method.as_str().as_bytes()),
            }
            match recent.as_mut() {
                Some(recent) => recent.push(Slot::Path, self.path().as_bytes()),
                None => push_bytes(state, self.path().as_bytes()),
            }
            ffi::lua_createtable(state, 0, 0);
            for (key, value) in self.query_pairs() {
                append_entry(state, key.as_bytes(), value.as_bytes());
            }
            let view = Http1View::of(self.parts.version, &self.parts.uri);
            let lazy_index = &self.builders.builder(self.parts.version).lazy_index;
            // The lines are packed first: a connection's request with the same lines
            // as the one before gets copies of its tables, with no header pushed.
            PACKED.with_borrow_mut(|packed| {
                let added_host = pack_headers(&self.parts.headers, view, packed);
                let headers = |recent: Option<&mut Pushing<'_>>| {
                    self.push_headers(lua, view, added_host, recent)
                };
                let meta = || push_metatable(lua, lazy_index, packed);
                match recent.as_mut() {
                    Some(recent) => recent.push_tables(
                        self.parts.version,
                        packed,
                        |recent| headers(Some(recent)),
                        meta,
                    ),
                    None => headers(None).and_then(|()| meta()),
                }
            })?;
            match self.stream {
                Some(stream) => stream.push_into_stack(lua)?,
                None if self.body.is_empty() => {
                    self.builders.strings.empty().push_into_stack(lua)?
                }
                None => push_bytes(state, self.body),
            }
            self.ip.push_into_stack(lua)?;
            ffi::lua_pushinteger_(state, i32::from(self.port));
            let mut count = 9;
            if let Some(socket) = self.socket {
                socket.push_into_stack(lua)?;
                count = 10;
            }
            if let Some(recent) = recent {
                recent.end();
            }
            Ok(count)
        }
    }
}

/// Pushes a new metatable for requests whose header lines `packed` holds
/// ([`pack_headers`]): `{ __index = lazy_index, packed = <a string of them> }`,
/// frozen, so that one may serve every request of a connection that sends the same
/// lines (see [`Pushing::push_tables`]) without a script's change to it
/// reaching another request.
///
/// # Safety
/// As for [`push_bytes`], with room for three more values.
unsafe fn push_metatable(lua: &RawLua, lazy_index: &Function, packed: &[u8]) -> Result<()> {
    let state = lua.state();
    // SAFETY: the caller's contract. The new table has no metatable and is not
    // frozen until both fields are set, so the raw sets cannot raise (nor can making
    // their short keys, or the packed string: see `push_bytes`).
    unsafe {
        ffi::lua_createtable(state, 0, 2);
        lazy_index.push_into_stack(lua)?;
        ffi::lua_rawsetfield(state, -2, c"__index".as_ptr());
        push_bytes(state, packed);
        ffi::lua_rawsetfield(state, -2, c"packed".as_ptr());
        ffi::lua_setreadonly(state, -1, 1);
    }
    Ok(())
}

/// Pushes a header's value: through the connection's [`Recent`] when its name is one
/// of the kept ones (and the connection's are at hand), else from its bytes.
///
/// # Safety
/// As for [`Pushing::push`].
#[inline]
unsafe fn push_value(
    state: *mut ffi::lua_State,
    recent: Option<&mut Pushing<'_>>,
    name: Option<&KnownName>,
    value: &[u8],
) {
    match (name, recent) {
        // SAFETY: the caller's contract.
        (Some(name), Some(recent)) => unsafe { recent.push(Slot::Header(name.index), value) },
        // SAFETY: the caller's contract.
        _ => unsafe { push_bytes(state, value) },
    }
}

/// Sets `t[name] = t[name] .. separator .. value`, where `name` is the string at
/// the top of the stack and `t` the table below it, whose `name` entry is a string
/// (the caller's promise: `http::HeaderMap` yields a name's values one after
/// another, so a name differing from the line before is new and is set without
/// this). Uses three more stack slots, and leaves the stack as it found it without
/// the name.
///
/// # Safety
/// `state` is a live Luau state this thread has locked; the value at the top of its
/// stack is a string, and below it a table without a metatable that only the
/// request's builder has filled (so every value in it is a string), and there is
/// room for three more values.
unsafe fn join_repeated(state: *mut ffi::lua_State, value: &[u8], separator: &[u8]) {
    // SAFETY: as for `append_entry`: the name's copy, then the existing entry, are
    // pushed above the name, so the table is at -3 for `lua_rawget`/`lua_rawset`.
    // The entry is a string (the caller's promise); concatenating three strings
    // calls no metamethod and cannot raise (no memory limit, and a joined value
    // stays far below Luau's string size limit, as requests are capped).
    unsafe {
        // [t, name, first] -> [t, name, first .. separator .. value]
        ffi::lua_pushvalue(state, -1);
        ffi::lua_rawget(state, -3);
        push_bytes(state, separator);
        push_bytes(state, value);
        ffi::lua_concat(state, 3);
        ffi::lua_rawset(state, -3);
    }
}

/// Sets `t[key] = value` for the table at the top of the stack, where a repeated key
/// turns the entry into an array of every value, in order. Uses three stack slots,
/// and leaves the stack as it found it.
///
/// # Safety
/// `state` is a live Luau state this thread has locked; the value at the top of its
/// stack is a table without a metatable that only this function has filled (so
/// every value in it is a string or an array this function made), and there is
/// room for three more values.
unsafe fn append_entry(state: *mut ffi::lua_State, key: &[u8], value: &[u8]) {
    // SAFETY: with the table at -1 and room for three values (the contract), each
    // step below keeps the indices it uses pointing where the comments say: the key
    // and its copy, then the existing entry, are pushed above the table, so the
    // table is at -3 for `lua_rawget`/`lua_rawset`. Raw gets and sets call no
    // metamethods, and a key is never nil or NaN, so none of these raise. An
    // existing entry is either nil, a string (one earlier value) or an array this
    // function made, the three cases matched.
    unsafe {
        push_bytes(state, key);
        ffi::lua_pushvalue(state, -1);
        let existing = ffi::lua_rawget(state, -3);
        match existing {
            ffi::LUA_TNIL => {
                ffi::lua_pop(state, 1);
                push_bytes(state, value);
                ffi::lua_rawset(state, -3);
            }
            ffi::LUA_TSTRING => {
                // [t, key, first] -> t[key] = { first, value }
                ffi::lua_createtable(state, 2, 0);
                ffi::lua_insert(state, -2);
                ffi::lua_rawseti_(state, -2, 1);
                push_bytes(state, value);
                ffi::lua_rawseti_(state, -2, 2);
                ffi::lua_rawset(state, -3);
            }
            _ => {
                // [t, key, list] -> list[#list + 1] = value
                let next = ffi::lua_objlen_(state, -1) + 1;
                push_bytes(state, value);
                ffi::lua_rawseti_(state, -2, next);
                ffi::lua_pop(state, 2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that describes its request as one string: every field, the
    /// tables' entries sorted, `rawHeaders` in order, and `httpVersion`.
    const DESCRIBE: &str = r#"
        local function sorted(t)
            local keys = {}
            for k in t do
                table.insert(keys, k)
            end
            table.sort(keys)
            local out = {}
            for _, k in keys do
                local v = t[k]
                if type(v) == "table" then
                    v = "[" .. table.concat(v, ",") .. "]"
                end
                table.insert(out, k .. "=" .. v)
            end
            return table.concat(out, "&")
        end
        return function(request)
            local raw = {}
            for _, line in request.rawHeaders do
                table.insert(raw, line.name .. ":" .. line.value)
            end
            return table.concat({
                request.method, request.path, sorted(request.query),
                sorted(request.headers), table.concat(raw, "|"), request.body,
                request.ip, tostring(request.port), request.httpVersion,
                typeof(getmetatable(request)),
            }, "\n")
        end
    "#;

    fn parts(version: http::Version, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(uri)
            .version(version);
        for &(name, value) in headers {
            request = request.header(name, value);
        }
        request.body(()).unwrap().into_parts().0
    }

    /// mlua's general conversion (`into_lua_multi`: what `Lua::pack_multi`,
    /// `Function::bind` and `yield_with` take; the server itself does not) gives
    /// the handler the request the fast path (`push_into_stack_multi`, what every
    /// call and resume takes) gives it, with and without the
    /// connection's remembered values, on each HTTP version's quirks: repeated
    /// query keys, repeated headers, `Cookie` lines, HTTP/2's `Host` from
    /// `:authority`.
    #[test]
    fn the_general_conversion_builds_the_request_the_fast_path_builds() {
        let lua = Lua::new();
        let builders = RequestBuilders::new(&lua).unwrap();
        let handler: Function = lua.load(DESCRIBE).eval().unwrap();
        let ip = lua.create_string("127.0.0.1").unwrap();
        let requests = [
            parts(
                http::Version::HTTP_11,
                "/a/b?x=1&y=2&x=3&z",
                &[
                    ("host", "example.test"),
                    ("accept", "text/plain"),
                    ("x-many", "one"),
                    ("x-many", "two"),
                    ("cookie", "a=1"),
                    ("cookie", "b=2"),
                ],
            ),
            parts(
                http::Version::HTTP_2,
                "https://example.test:8443/h2?q=%20s",
                &[("cookie", "a=1"), ("cookie", "b=2"), ("user-agent", "t")],
            ),
            parts(http::Version::HTTP_10, "/", &[]),
        ];
        for parts in &requests {
            let recent = RefCell::new(Recent::default());
            let args = |recent| HandlerArgs {
                handler: &handler,
                parts,
                body: b"the body",
                stream: None,
                socket: None,
                ip: &ip,
                port: 4321,
                builders: &builders,
                recent,
            };
            let builder = builders.get(parts.version);
            let general = args(None).into_lua_multi(&lua).unwrap();
            let general: String = builder.call(general).unwrap();
            assert!(general.contains("\ntable"), "{general}");
            // Three times with the connection's values: the first request, the
            // second (which fills them) and the third (which reuses them).
            for _ in 0..3 {
                let fast: String = builder.call(args(Some(&recent))).unwrap();
                assert_eq!(fast, general, "{:?} {}", parts.version, parts.uri);
            }
            let fast: String = builder.call(args(None)).unwrap();
            assert_eq!(fast, general, "{:?} {}", parts.version, parts.uri);
        }
    }
}
