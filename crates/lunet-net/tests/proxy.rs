//! `net.request` through an HTTP proxy named by the environment: plain HTTP in absolute
//! form with the proxy's credentials, HTTPS through a `CONNECT` tunnel (HTTP/2 and
//! HTTP/1.1 inside), a refused tunnel, and loopback going direct.
//!
//! The proxy variables are process-wide, so this file is its own test process: the
//! first test to run starts one proxy and sets `http_proxy` (with credentials) and
//! `https_proxy` (a bare `host:port`) for all of them, before any script runs.

mod common;

use std::sync::OnceLock;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use common::peers::{self, Peer, ProxyLog};
use common::run_luau;
use common::tls::{Leaf, ca, server_config};

/// The user and password in `http_proxy` (the password has a `:`, sent encoded).
const PROXY_USER: &str = "tester";
const PROXY_PASSWORD: &str = "s:cret";

fn proxy() -> &'static (Peer, ProxyLog) {
    static PROXY: OnceLock<(Peer, ProxyLog)> = OnceLock::new();
    PROXY.get_or_init(|| {
        ca();
        let (peer, log) = peers::proxy();
        let port = peer.port();
        // SAFETY: set once, by the first test, before any script (or trust store)
        // reads the environment in this process.
        unsafe {
            std::env::set_var(
                "http_proxy",
                format!("http://{PROXY_USER}:s%3Acret@127.0.0.1:{port}"),
            );
            std::env::set_var("https_proxy", format!("127.0.0.1:{port}"));
        }
        (peer, log)
    })
}

fn log_lines(log: &ProxyLog, needle: &str) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(needle))
        .cloned()
        .collect()
}

#[test]
fn plain_http_goes_to_the_proxy_in_absolute_form_with_its_credentials() {
    let (_, log) = proxy();
    let expected = format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"))
    );
    run_luau(
        r#"
local res = net.request({
    url = "http://api.example.test:8080/items?q=1",
    method = "POST",
    body = "payload",
    query = { page = "2" },
})
eq(res.statusCode, 200, "the proxy answers for the origin")
local seen = serde.decode("json", res.body)
eq(seen.method, "POST", "method")
eq(seen.target, "http://api.example.test:8080/items?q=1&page=2", "absolute-form target with the query")
eq(seen.host, "api.example.test:8080", "Host names the origin, not the proxy")
eq(seen.proxyAuthorization, process.args[1], "the proxy URL's credentials, percent-decoded")
eq(seen.body, "payload", "body")
"#,
        &[expected],
    );
    assert_eq!(
        log_lines(log, "api.example.test").len(),
        1,
        "one request reached the proxy"
    );
}

#[test]
fn https_goes_through_a_connect_tunnel_to_the_origin() {
    let (_, log) = proxy();
    let h2 = peers::http(Some(server_config(
        Leaf::Named("secure.test"),
        &[b"h2", b"http/1.1"],
    )));
    let h1 = peers::http(Some(server_config(
        Leaf::Named("secure.test"),
        &[b"http/1.1"],
    )));
    let h2_url = format!("https://secure.test:{}", h2.port());
    let h1_url = format!("https://secure.test:{}", h1.port());
    run_luau(
        r#"
for _, case in { { process.args[1], "HTTP/2.0" }, { process.args[2], "HTTP/1.1" } } do
    local url, version = case[1], case[2]
    for i = 1, 2 do
        local res = net.request(url .. "/echo?n=" .. i)
        eq(res.statusCode, 200, "the origin answers through the tunnel")
        local echo = serde.decode("json", res.body)
        eq(echo.path, "/echo", "the origin, not the proxy, saw the request")
        eq(echo.query, "n=" .. i, "query")
        eq(echo.version, version, "the protocol the origin chose by ALPN")
    end
end
"#,
        &[h2_url, h1_url],
    );
    for peer in [&h2, &h1] {
        let authority = format!("secure.test:{}", peer.port());
        let lines = log_lines(log, &authority);
        assert_eq!(
            lines,
            vec![format!("CONNECT {authority} -")],
            "one tunnel per origin, reused by the second request; no credentials in https_proxy"
        );
    }
}

#[test]
fn a_refused_tunnel_is_an_error_naming_the_proxy_and_its_answer() {
    proxy();
    run_luau(
        r#"
local message = errors(function()
    net.request("https://refuse.test/")
end, "refused to open a tunnel to refuse.test:443", "a refused CONNECT")
contains(message, "407", "the proxy's status")
contains(message, "https_proxy", "the variable that named the proxy")
contains(message, "https://refuse.test/", "the URL")
"#,
        &[],
    );
}

#[test]
fn loopback_destinations_bypass_the_proxy() {
    let (_, log) = proxy();
    let origin = peers::http(None);
    run_luau(
        r#"
local res = net.request(process.args[1] .. "/echo")
eq(res.statusCode, 200, "status")
eq(serde.decode("json", res.body).path, "/echo", "the origin answered directly")
"#,
        &[origin.http_url()],
    );
    assert!(
        log_lines(log, &origin.port().to_string()).is_empty(),
        "the proxy never saw a request to 127.0.0.1"
    );
}
