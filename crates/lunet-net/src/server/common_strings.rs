//! The Luau strings a request table is made of that repeat from request to request:
//! the standard methods, the common request header names, and the empty body. Each
//! is made once per server and pushed by reference for every request.
//!
//! Pushing a Luau string from bytes (`lua_pushlstring`) hashes them and looks them up
//! in the VM's string table, ~225 instructions per string on the hello serve bench
//! (callgrind); pushing one already made is a copy of a reference, ~60. A request
//! has a method, usually an empty body and several standard headers, so this saves
//! several hundred instructions per request. Which names are kept is a fixed list
//! (a hostile peer cannot grow it); any other name is pushed from its bytes, as is
//! every value.
//!
//! This module does not build the request table (that is [`super::request`]).

use http::{HeaderName, Method, header};
use mlua::{Lua, LuaString, Result};
use rustc_hash::FxHashMap;

/// The methods kept, most common first (they are searched in order).
const METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// How many of the `http` crate's standard header names are kept.
const STANDARD_NAMES: usize = 34;

/// The standard header names kept: those browsers, proxies, HTTP clients and
/// WebSocket clients commonly send.
const HEADER_NAMES: [HeaderName; STANDARD_NAMES] = [
    header::HOST,
    header::USER_AGENT,
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::ACCEPT_CHARSET,
    header::CONNECTION,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
    header::COOKIE,
    header::AUTHORIZATION,
    header::CACHE_CONTROL,
    header::PRAGMA,
    header::ORIGIN,
    header::REFERER,
    header::UPGRADE,
    header::UPGRADE_INSECURE_REQUESTS,
    header::DNT,
    header::TE,
    header::EXPECT,
    header::RANGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::FORWARDED,
    header::VIA,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::ACCESS_CONTROL_REQUEST_METHOD,
    header::ACCESS_CONTROL_REQUEST_HEADERS,
];

/// Header names outside the `http` crate's standard ones that proxies and browsers
/// commonly send.
const OTHER_HEADER_NAMES: [&str; 9] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "x-requested-with",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "priority",
];

/// How many header names are kept (each has an index below this: see
/// [`KnownName`]).
pub(crate) const KEPT_NAMES: usize = STANDARD_NAMES + OTHER_HEADER_NAMES.len();

/// A header name kept as a Luau string, with its index among the kept names (for
/// whoever keeps something per name, as [`super::recent::Recent`] does).
pub(crate) struct KnownName {
    pub(crate) index: usize,
    pub(crate) string: LuaString,
}

/// See the module documentation.
pub(crate) struct CommonStrings {
    methods: Vec<(Method, LuaString)>,
    header_names: FxHashMap<HeaderName, KnownName>,
    empty: LuaString,
}

impl CommonStrings {
    pub(crate) fn new(lua: &Lua) -> Result<CommonStrings> {
        let methods = METHODS
            .into_iter()
            .map(|method| Ok((method.clone(), lua.create_string(method.as_str())?)))
            .collect::<Result<_>>()?;
        let header_names = HEADER_NAMES
            .into_iter()
            .chain(OTHER_HEADER_NAMES.into_iter().map(HeaderName::from_static))
            .enumerate()
            .map(|(index, name)| {
                let string = lua.create_string(name.as_str())?;
                Ok((name, KnownName { index, string }))
            })
            .collect::<Result<_>>()?;
        Ok(CommonStrings {
            methods,
            header_names,
            empty: lua.create_string("")?,
        })
    }

    /// `method` as a Luau string, when it is one of the standard methods.
    pub(crate) fn method(&self, method: &Method) -> Option<&LuaString> {
        self.methods
            .iter()
            .find(|(known, _)| known == method)
            .map(|(_, string)| string)
    }

    /// `name` as a Luau string, when it is one of the names kept.
    pub(crate) fn header_name(&self, name: &HeaderName) -> Option<&KnownName> {
        self.header_names.get(name)
    }

    /// The empty string (the body of most requests).
    pub(crate) fn empty(&self) -> &LuaString {
        &self.empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_standard_methods_and_common_names_as_their_own_text() {
        let lua = Lua::new();
        let strings = CommonStrings::new(&lua).unwrap();
        for method in METHODS {
            assert_eq!(strings.method(&method).unwrap(), method.as_str());
        }
        assert!(
            strings
                .method(&Method::from_bytes(b"PURGE").unwrap())
                .is_none()
        );
        let mut indices = std::collections::HashSet::new();
        for name in HEADER_NAMES {
            let known = strings.header_name(&name).unwrap();
            assert_eq!(known.string, name.as_str());
            assert!(known.index < KEPT_NAMES && indices.insert(known.index));
        }
        let forwarded = HeaderName::from_static("x-forwarded-for");
        let known = strings.header_name(&forwarded).unwrap();
        assert_eq!(known.string, "x-forwarded-for");
        assert!(known.index < KEPT_NAMES && indices.insert(known.index));
        let custom = HeaderName::from_static("x-custom");
        assert!(strings.header_name(&custom).is_none());
        assert_eq!(strings.empty(), "");
    }
}
