//! TLS everywhere `@lune/net` speaks it: `net.request` over HTTPS (HTTP/2 when
//! offered), `net.socket` over wss, and `net.tcp.connect` with TLS. The test CA is
//! trusted through `SSL_CERT_FILE`; bad certificates must fail with errors that say so.

mod common;

use common::tls::{Leaf, ca, server_config};
use common::{peers, run_luau};

fn https_url(peer: &peers::Peer, host: &str) -> String {
    format!("https://{host}:{}", peer.port())
}

#[test]
fn https_request_trusts_ssl_cert_file_and_uses_http2() {
    ca();
    let peer = peers::http(Some(server_config(Leaf::Good, &[b"h2", b"http/1.1"])));
    run_luau(
        r#"
local res = net.request(process.args[1] .. "/echo")
eq(res.statusCode, 200, "an HTTPS request to a server signed by SSL_CERT_FILE's CA works")
local echo = serde.decode("json", res.body)
eq(echo.version, "HTTP/2.0", "HTTP/2 is used when the TLS server offers it")
local second = serde.decode("json", net.request(process.args[1] .. "/echo").body)
eq(second.version, "HTTP/2.0", "later requests reuse HTTP/2")
local byIp = net.request(process.args[2] .. "/echo")
eq(byIp.statusCode, 200, "an IP address in the certificate is accepted")
"#,
        &[https_url(&peer, "localhost"), https_url(&peer, "127.0.0.1")],
    );
}

/// Spawns `n` requests to `url` at once; returns the bodies once all have answered.
const BURST: &str = r#"
local function burst(url, n)
    local bodies, done = {}, 0
    for i = 1, n do
        task.spawn(function()
            local res = net.request(url)
            eq(res.statusCode, 200, "request " .. i .. " of a burst")
            bodies[i] = res.body
            done += 1
        end)
    end
    local waited = 0
    while done < n do
        waited += task.wait(0.01)
        check(waited < 10, "a burst of requests finishes")
    end
    return bodies
end
"#;

#[test]
fn a_burst_of_https_requests_shares_one_http2_connection() {
    ca();
    let peer = peers::http(Some(server_config(Leaf::Good, &[b"h2", b"http/1.1"])));
    run_luau(
        &format!(
            "{BURST}{}",
            r#"
local bodies = burst(process.args[1] .. "/client-port", 20)
for i = 2, 20 do
    eq(bodies[i], bodies[1], "request " .. i .. " of a first burst shares the one HTTP/2 connection")
end
eq(net.request(process.args[1] .. "/client-port").body, bodies[1], "a later request reuses it")
"#
        ),
        &[https_url(&peer, "localhost")],
    );
}

#[test]
fn https_request_over_http1_only_server() {
    ca();
    let peer = peers::http(Some(server_config(Leaf::Good, &[b"http/1.1"])));
    run_luau(
        &format!(
            "{BURST}{}",
            r#"
local echo = serde.decode("json", net.request(process.args[1] .. "/echo").body)
eq(echo.version, "HTTP/1.1", "HTTP/1.1 is used when the server offers only that")
local ports = {}
for _, port in burst(process.args[1] .. "/client-port", 5) do ports[port] = true end
local distinct = 0
for _ in ports do distinct += 1 end
eq(distinct, 5, "concurrent HTTPS requests over HTTP/1.1 get a connection each")
"#
        ),
        &[https_url(&peer, "localhost")],
    );
}

#[test]
fn bad_certificates_fail_with_a_clear_error() {
    ca();
    let expired = peers::http(Some(server_config(Leaf::Expired, &[b"http/1.1"])));
    let wrong_host = peers::http(Some(server_config(Leaf::WrongHost, &[b"http/1.1"])));
    let self_signed = peers::http(Some(server_config(Leaf::SelfSigned, &[b"http/1.1"])));
    run_luau(
        r#"
local expired = errors(function() net.request(process.args[1]) end, "certificate", "an expired certificate fails")
contains(string.lower(expired), "expired", "the error says the certificate expired")
local wrong = errors(function() net.request(process.args[2]) end, "certificate", "a wrong-host certificate fails")
contains(string.lower(wrong), "not valid for name", "the error says the name does not match")
local unknown = errors(function() net.request(process.args[3]) end, "certificate", "a self-signed certificate fails")
contains(string.lower(unknown), "unknownissuer", "the error says the issuer is unknown")
"#,
        &[
            https_url(&expired, "localhost"),
            https_url(&wrong_host, "localhost"),
            https_url(&self_signed, "localhost"),
        ],
    );
}

#[test]
fn wss_socket_uses_the_same_trust() {
    ca();
    let good = peers::websocket(Some(server_config(Leaf::Good, &[])));
    let bad = peers::websocket(Some(server_config(Leaf::SelfSigned, &[])));
    run_luau(
        r#"
local socket = net.socket(process.args[1])
socket:send("over tls")
eq(socket:next(), "over tls", "a wss echo round trip works")
socket:close()
errors(function() net.socket(process.args[2]) end, "certificate", "wss to an untrusted certificate fails")
"#,
        &[
            format!("wss://localhost:{}", good.port()),
            format!("wss://localhost:{}", bad.port()),
        ],
    );
}

#[test]
fn tcp_tls_with_sni_and_host_check() {
    ca();
    let good = peers::tcp_echo(Some(server_config(Leaf::Good, &[])), "127.0.0.1:0");
    let wrong = peers::tcp_echo(Some(server_config(Leaf::WrongHost, &[])), "127.0.0.1:0");
    run_luau(
        r#"
local port = tonumber(process.args[1])
local stream = net.tcp.connect("localhost", port, true)
stream:write("secure hello")
eq(stream:read(), "secure hello", "a TLS stream echoes")
stream:close()
local explicit = net.tcp.connect("localhost", port, { tls = true })
explicit:write(buffer.fromstring("buf"))
eq(explicit:read(), "buf", "{ tls = true } works too")
explicit:close()
errors(function() net.tcp.connect("localhost", tonumber(process.args[2]), true) end, "certificate", "TLS to a wrong-host certificate fails")
"#,
        &[good.port().to_string(), wrong.port().to_string()],
    );
}
