//! The HTTP clients behind `net.request`: built once, on first use, and reused, so
//! connections are pooled and kept alive across requests.
//!
//! Decompression is a client setting in reqwest, so there are two clients: one that
//! decodes gzip/deflate/br/zstd (and advertises them in `Accept-Encoding`) and one
//! that leaves bodies as received. Both follow at most 10 redirects (reqwest drops
//! `Authorization`/`Cookie` when a redirect changes origin) and send Lunet's
//! `User-Agent` and `Accept: */*` unless the script sets its own.

use std::cell::OnceCell;

use http::header::{ACCEPT, HeaderMap, HeaderValue, USER_AGENT};
use mlua::{Error, Result};

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 10;

pub struct Clients {
    user_agent: String,
    decoding: OnceCell<reqwest::Client>,
    raw: OnceCell<reqwest::Client>,
}

impl Clients {
    pub fn new(user_agent: String) -> Clients {
        Clients {
            user_agent,
            decoding: OnceCell::new(),
            raw: OnceCell::new(),
        }
    }

    fn build(&self, decompress: bool) -> Result<reqwest::Client> {
        let mut defaults = HeaderMap::new();
        defaults.insert(ACCEPT, HeaderValue::from_static("*/*"));
        if let Ok(agent) = HeaderValue::from_str(&self.user_agent) {
            defaults.insert(USER_AGENT, agent);
        }
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::tls::http_client_config())
            .default_headers(defaults)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .tcp_nodelay(true)
            .gzip(decompress)
            .deflate(decompress)
            .brotli(decompress)
            .zstd(decompress);
        builder
            .build()
            .map_err(|e| Error::runtime(format!("cannot build the HTTP client: {e}")))
    }

    /// The client for a request that does (or does not) decompress responses.
    pub fn get(&self, decompress: bool) -> Result<&reqwest::Client> {
        let cell = if decompress {
            &self.decoding
        } else {
            &self.raw
        };
        if let Some(client) = cell.get() {
            return Ok(client);
        }
        let client = self.build(decompress)?;
        Ok(cell.get_or_init(|| client))
    }
}

/// `lunet/0.1.0+...` from `_VERSION` (`Lunet 0.1.0+...`): the lower-cased first word,
/// a slash, and the second word.
pub fn user_agent_from_version(version: &str) -> String {
    let mut words = version.split_whitespace();
    let name = words.next().unwrap_or("lunet").to_ascii_lowercase();
    match words.next() {
        Some(ver) => format!("{name}/{ver}"),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_is_derived_from_version() {
        assert_eq!(
            user_agent_from_version("Lunet 0.1.0+0.740"),
            "lunet/0.1.0+0.740"
        );
        assert_eq!(user_agent_from_version("Lune 0.10.4"), "lune/0.10.4");
    }
}
