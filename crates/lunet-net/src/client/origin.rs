//! What a request is and where it goes: [`Outgoing`] (a checked request, as
//! redirects rewrite it), its [`Origin`] (scheme, host and port, the key connections
//! are pooled and routed by), and the `Basic` credentials a URL may carry.
//!
//! This module holds plain data and no I/O: it does not open connections (see
//! [`super::connect`]), keep them ([`super::pool`]) or choose proxies
//! ([`super::proxy`]).

use std::rc::Rc;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderValue;

/// A request as it goes out: checked by [`super::params`], rewritten in place by
/// each redirect ([`super::redirect::follow`]).
pub(crate) struct Outgoing {
    pub(crate) url: url::Url,
    pub(crate) method: http::Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Payload>,
}

/// A request body: bytes, or a Luau function that produces it piece by piece (which
/// can be sent only once).
#[derive(Clone)]
pub(crate) enum Payload {
    Bytes(Bytes),
    Function(Rc<crate::body::producer::Producer>),
}

/// Where a connection goes. Requests to the same origin share connections.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub(crate) https: bool,
    /// The host as a name or an IP address, without IPv6 brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Origin {
    /// The origin of an http or https URL (the caller has checked the scheme).
    pub(crate) fn of(url: &url::Url) -> Origin {
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => String::new(),
        };
        let https = url.scheme() == "https";
        Origin {
            https,
            host,
            port: url
                .port_or_known_default()
                .unwrap_or(if https { 443 } else { 80 }),
        }
    }
}

/// `host:port`, with brackets around an IPv6 address, as errors name it.
impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `Basic <base64(user:password)>` from the percent-decoded credentials in `url`, if
/// it has any: for `Authorization` and, from a proxy URL, `Proxy-Authorization`.
pub(crate) fn basic_credentials(url: &url::Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |part: &str| percent_encoding::percent_decode_str(part).collect::<Vec<u8>>();
    let mut pair = decode(url.username());
    pair.push(b':');
    pair.extend(decode(url.password().unwrap_or("")));
    // Base64 is always a valid header value.
    HeaderValue::from_str(&format!("Basic {}", BASE64_STANDARD.encode(pair))).ok()
}
