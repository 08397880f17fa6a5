//! HTTP proxies for `net.request`, configured by the environment variables that curl,
//! reqwest (and so Lune), Deno and most other tools read.
//!
//! `http_proxy` / `HTTP_PROXY` serve `http://` URLs, `https_proxy` / `HTTPS_PROXY`
//! serve `https://` URLs, and `all_proxy` / `ALL_PROXY` serve both when the specific
//! one is unset (lower case wins; empty values count as unset; upper-case
//! `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set, because a CGI client can set
//! it through a `Proxy:` header). `no_proxy` / `NO_PROXY` lists hosts that go direct:
//! `*` for all, a domain (which also covers its subdomains, with or without a leading
//! dot), an IP address, or an IP network in CIDR form; a port on an entry is ignored. Loopback destinations
//! (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`) always go direct, as in Go: a
//! proxy's loopback is not the script's.
//!
//! A plain-HTTP request goes to its proxy in absolute form (`GET http://host/path`),
//! with a `Proxy-Authorization` header when the proxy URL carries credentials. An
//! HTTPS request asks the proxy for a tunnel (`CONNECT host:port`) and then does its
//! TLS handshake with the destination through it, so the proxy never sees the
//! request. Only `http://` proxy URLs are supported (a URL with no scheme is taken as
//! one); an `https://` or SOCKS proxy is an error naming the variable.
//!
//! This module only decides routes and reads the proxy variables; the connections,
//! tunnels included, are opened by [`super::connect`], and the client ([`super`])
//! writes absolute-form requests.

use std::net::IpAddr;

use http::header::HeaderValue;

use super::origin::{Origin, basic_credentials};

/// One proxy server, and the variable that named it (for error messages).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Proxy {
    /// Where the proxy listens (`https` is always false: the proxy is spoken to in
    /// plain HTTP).
    pub(crate) address: Origin,
    /// `Basic ...` from the credentials in the proxy URL, if any.
    pub(crate) authorization: Option<HeaderValue>,
    pub(crate) variable: &'static str,
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the proxy {} (from {})", self.address, self.variable)
    }
}

/// How a request reaches its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    Direct,
    /// Plain HTTP through a proxy: requests are sent to it in absolute form.
    Forward(&'a Proxy),
    /// HTTPS through a proxy: a `CONNECT` tunnel, then TLS with the origin.
    Tunnel(&'a Proxy),
}

/// The proxy configuration of a process.
#[derive(Debug, Default)]
pub(crate) struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: Vec<Exception>,
}

/// One `no_proxy` entry.
#[derive(Debug, PartialEq, Eq)]
enum Exception {
    Everything,
    /// Matches the domain and its subdomains (lower case, without a leading dot).
    Domain(String),
    Network(IpAddr, u8),
}

impl Proxies {
    /// The configuration in the environment as scripts see it
    /// ([`lunet_runtime::env`]: the process's, with a script's `process.env` writes).
    pub(crate) fn from_env() -> Result<Proxies, String> {
        Proxies::from_lookup(|name| lunet_runtime::env::var(name)?.into_string().ok())
    }

    /// The configuration in an environment given by `get` (a variable's value).
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Proxies, String> {
        let get = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        let cgi = get("REQUEST_METHOD").is_some();
        let first = |names: &[&'static str]| -> Result<Option<Proxy>, String> {
            for &name in names {
                if cgi && name == "HTTP_PROXY" {
                    continue;
                }
                if let Some(value) = get(name) {
                    return parse_proxy(&value, name).map(Some);
                }
            }
            Ok(None)
        };
        let http = first(&["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])?;
        let https = first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])?;
        let no_proxy = get("no_proxy")
            .or_else(|| get("NO_PROXY"))
            .map(|list| parse_no_proxy(&list))
            .unwrap_or_default();
        Ok(Proxies {
            http,
            https,
            no_proxy,
        })
    }

    /// How a request to `origin` travels.
    pub(crate) fn route(&self, origin: &Origin) -> Route<'_> {
        let proxy = if origin.https {
            &self.https
        } else {
            &self.http
        };
        let Some(proxy) = proxy else {
            return Route::Direct;
        };
        if self.bypasses(&origin.host) {
            return Route::Direct;
        }
        if origin.https {
            Route::Tunnel(proxy)
        } else {
            Route::Forward(proxy)
        }
    }

    fn bypasses(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.to_canonical().is_loopback())
            || host == "localhost"
            || host.ends_with(".localhost")
        {
            return true;
        }
        self.no_proxy.iter().any(|exception| match exception {
            Exception::Everything => true,
            Exception::Domain(domain) => {
                host == *domain
                    || (host.len() > domain.len()
                        && host.ends_with(domain.as_str())
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
            }
            Exception::Network(network, bits) => {
                ip.is_some_and(|ip| in_network(ip.to_canonical(), *network, *bits))
            }
        })
    }
}

fn parse_proxy(value: &str, variable: &'static str) -> Result<Proxy, String> {
    let value = value.trim();
    let text = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let invalid = |why: String| format!("{variable} is not a usable proxy URL ('{value}'): {why}");
    let url = url::Url::parse(&text).map_err(|e| invalid(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(invalid(format!(
            "the scheme '{}' is not supported (expected an http:// proxy)",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(invalid("it has no host".to_string()));
    }
    Ok(Proxy {
        // An http URL: the origin is spoken to in plain HTTP, on port 80 by default.
        address: Origin::of(&url),
        authorization: basic_credentials(&url),
        variable,
    })
}

fn parse_no_proxy(list: &str) -> Vec<Exception> {
    list.split(',')
        .filter_map(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                return None;
            }
            if entry == "*" {
                return Some(Exception::Everything);
            }
            // A port on an entry (`host:8080`, `[::1]:8080`) is ignored: the entry
            // covers the host on every port.
            let entry = match entry.rsplit_once(':') {
                Some((host, port))
                    if !port.is_empty()
                        && port.bytes().all(|b| b.is_ascii_digit())
                        && (!host.contains(':') || host.ends_with(']')) =>
                {
                    host.to_string()
                }
                _ => entry,
            };
            let unbracketed = entry.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = unbracketed.parse::<IpAddr>() {
                let ip = ip.to_canonical();
                return Some(Exception::Network(ip, if ip.is_ipv4() { 32 } else { 128 }));
            }
            if let Some((address, bits)) = entry.split_once('/')
                && let (Ok(ip), Ok(bits)) = (address.parse::<IpAddr>(), bits.parse::<u8>())
            {
                let ip = ip.to_canonical();
                let max = if ip.is_ipv4() { 32 } else { 128 };
                return (bits <= max).then_some(Exception::Network(ip, bits));
            }
            let domain = entry.trim_start_matches("*.").trim_start_matches('.');
            let domain = domain.trim_end_matches('.');
            (!domain.is_empty()).then(|| Exception::Domain(domain.to_string()))
        })
        .collect()
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::prelude::{BASE64_STANDARD, Engine as _};
    use std::collections::HashMap;

    fn proxies(vars: &[(&str, &str)]) -> Result<Proxies, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxies::from_lookup(|name| vars.get(name).cloned())
    }

    fn origin(url: &str) -> Origin {
        Origin::of(&url::Url::parse(url).unwrap())
    }

    fn via(proxies: &Proxies, url: &str) -> Option<String> {
        match proxies.route(&origin(url)) {
            Route::Direct => None,
            Route::Forward(p) | Route::Tunnel(p) => Some(format!("{} {}", p.variable, p.address)),
        }
    }

    #[test]
    fn scheme_specific_variables_win_over_all_proxy_and_lower_case_over_upper() {
        let p = proxies(&[
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:2"),
            ("ALL_PROXY", "all:3"),
        ])
        .unwrap();
        assert_eq!(
            via(&p, "http://a.test/").as_deref(),
            Some("http_proxy lower:1")
        );
        assert_eq!(
            via(&p, "https://a.test/").as_deref(),
            Some("ALL_PROXY all:3")
        );
        assert!(matches!(
            p.route(&origin("http://a.test/")),
            Route::Forward(_)
        ));
        assert!(matches!(
            p.route(&origin("https://a.test/")),
            Route::Tunnel(_)
        ));
        let none = proxies(&[("https_proxy", "")]).unwrap();
        assert_eq!(via(&none, "https://a.test/"), None, "empty means unset");
    }

    #[test]
    fn upper_case_http_proxy_is_ignored_under_cgi() {
        let p = proxies(&[("HTTP_PROXY", "evil:1"), ("REQUEST_METHOD", "GET")]).unwrap();
        assert_eq!(via(&p, "http://a.test/"), None);
        let p = proxies(&[("http_proxy", "ok:1"), ("REQUEST_METHOD", "GET")]).unwrap();
        assert_eq!(
            via(&p, "http://a.test/").as_deref(),
            Some("http_proxy ok:1")
        );
    }

    #[test]
    fn proxy_urls_default_to_http_and_port_80_and_carry_credentials() {
        let p = proxies(&[("http_proxy", "http://us%40r:p%3Ass@[::1]")]).unwrap();
        let Route::Forward(proxy) = p.route(&origin("http://a.test/")) else {
            panic!("http goes through the proxy");
        };
        assert_eq!(proxy.address.to_string(), "[::1]:80");
        let expected = format!("Basic {}", BASE64_STANDARD.encode("us@r:p:ss"));
        assert_eq!(proxy.authorization.as_ref().unwrap(), expected.as_str());
        let bare = proxies(&[("https_proxy", "proxy.test:3128")]).unwrap();
        assert_eq!(
            via(&bare, "https://a.test/").as_deref(),
            Some("https_proxy proxy.test:3128")
        );
    }

    #[test]
    fn unsupported_proxy_urls_are_errors_naming_the_variable() {
        let error = proxies(&[("HTTPS_PROXY", "socks5://proxy:1080")]).unwrap_err();
        assert!(error.contains("HTTPS_PROXY"), "{error}");
        assert!(error.contains("socks5"), "{error}");
        let error = proxies(&[("all_proxy", "http://")]).unwrap_err();
        assert!(error.contains("all_proxy"), "{error}");
    }

    #[test]
    fn no_proxy_matches_domains_subdomains_ips_and_networks() {
        let p = proxies(&[
            ("http_proxy", "proxy:1"),
            (
                "NO_PROXY",
                " internal.test, .corp.test ,*.wild.test, 10.0.0.0/8, 192.168.1.7, [fd00::1], fe80::/10, ported.test:8080, 172.16.0.9:80, [fd00::9]:443",
            ),
        ])
        .unwrap();
        for direct in [
            "http://internal.test/",
            "http://a.internal.test/",
            "http://corp.test/",
            "http://x.y.corp.test/",
            "http://wild.test/",
            "http://10.1.2.3/",
            "http://192.168.1.7/",
            "http://[fd00::1]/",
            "http://[fe80::1234]/",
            "http://INTERNAL.test./",
            "http://ported.test/",
            "http://172.16.0.9:9000/",
            "http://[fd00::9]/",
        ] {
            assert_eq!(via(&p, direct), None, "{direct} goes direct");
        }
        for proxied in [
            "http://notinternal.test/",
            "http://internal.test.evil/",
            "http://11.0.0.1/",
            "http://192.168.1.8/",
            "http://[fd00::2]/",
        ] {
            assert!(
                via(&p, proxied).is_some(),
                "{proxied} goes through the proxy"
            );
        }
        let all = proxies(&[("http_proxy", "proxy:1"), ("no_proxy", "*")]).unwrap();
        assert_eq!(via(&all, "http://anything.test/"), None);
    }

    #[test]
    fn loopback_always_goes_direct() {
        let p = proxies(&[("all_proxy", "proxy:1")]).unwrap();
        for url in [
            "http://localhost:8080/",
            "http://app.localhost/",
            "http://127.0.0.1/",
            "http://127.8.9.10/",
            "https://[::1]:8443/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(via(&p, url), None, "{url} goes direct");
        }
    }
}
