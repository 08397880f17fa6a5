//! `net.request` against a real hyper server on loopback (plain HTTP).

mod common;

use common::{peers, run_luau};

fn base(peer: &peers::Peer) -> Vec<String> {
    vec![peer.http_url()]
}

#[test]
fn every_method_with_query_and_header_arrays() {
    let peer = peers::http(None);
    run_luau(
        r#"
local base = process.args[1]
for _, method in { "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "post", "Custom" } do
    local res = net.request({ url = base .. "/echo", method = method, body = if method == "GET" then nil else "payload" })
    eq(res.statusCode, 200, method .. " status")
    local echo = serde.decode("json", res.body)
    eq(echo.method, string.upper(method), method .. " is sent upper-cased")
end
local head = net.request({ url = base .. "/echo", method = "HEAD" })
eq(head.statusCode, 200, "HEAD status")
eq(head.body, "", "HEAD has an empty body")

local res = net.request({
    url = base .. "/echo?existing=1",
    query = { k = { "a", "b" }, space = "x y", ["s&p"] = "=" },
    headers = { ["X-Multi"] = { "one", "two" }, ["X-Single"] = "solo" },
})
local echo = serde.decode("json", res.body)
eq(echo.query, "existing=1&k=a&k=b&s%26p=%3D&space=x%20y", "query pairs are percent-encoded and appended")
local multi, single = {}, nil
for _, pair in echo.headers do
    if pair[1] == "x-multi" then table.insert(multi, pair[2]) end
    if pair[1] == "x-single" then single = pair[2] end
end
eq(table.concat(multi, ","), "one,two", "an array header value is sent as repeated headers")
eq(single, "solo", "a string header value is sent once")
"#,
        &base(&peer),
    );
}

#[test]
fn default_headers_and_user_agent() {
    let peer = peers::http(None);
    run_luau(
        r#"
local base = process.args[1]
local function headersOf(res)
    local map = {}
    for _, pair in serde.decode("json", res.body).headers do map[pair[1]] = pair[2] end
    return map
end
local h = headersOf(net.request(base .. "/echo"))
check(string.match(h["user-agent"], "^lunet/%d+%.%d+%.%d+$") ~= nil, "the user agent is lunet/<version>, got " .. tostring(h["user-agent"]))
eq(h["accept"], "*/*", "Accept defaults to */*")
for _, coding in { "gzip", "deflate", "br", "zstd" } do
    contains(h["accept-encoding"], coding, "Accept-Encoding lists " .. coding)
end
local raw = headersOf(net.request({ url = base .. "/echo", options = { decompress = false } }))
eq(raw["accept-encoding"], nil, "no Accept-Encoding while decompression is off")
local custom = headersOf(net.request({ url = base .. "/echo", headers = { ["user-agent"] = "mine/1", accept = "text/plain" } }))
eq(custom["user-agent"], "mine/1", "a script's User-Agent wins")
eq(custom["accept"], "text/plain", "a script's Accept wins")

local withCredentials = string.gsub(base, "http://", "http://user:p%%40ss@") .. "/echo"
local auth = headersOf(net.request(withCredentials))
eq(auth["authorization"], "Basic dXNlcjpwQHNz", "URL credentials become Basic auth (percent-decoded)")
eq(auth["host"], string.gsub(base, "http://", ""), "the credentials are not part of Host")
local own = headersOf(net.request({ url = withCredentials, headers = { Authorization = "Bearer mine" } }))
eq(own["authorization"], "Bearer mine", "a script's Authorization wins over URL credentials")
local message = errors(function() net.request("http://user:secret@127.0.0.1:1/") end, "net.request failed", "a refused request with credentials fails")
check(not string.find(message, "secret", 1, true), "the error does not show the password: " .. message)
"#,
        &base(&peer),
    );
}

#[test]
fn binary_bodies_both_ways() {
    let peer = peers::http(None);
    run_luau(
        r#"
local base = process.args[1]
local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
local all = table.concat(bytes)
local res = net.request({ url = base .. "/raw", method = "POST", body = all .. "\0tail" })
eq(res.body, all .. "\0tail", "a string body with NUL bytes and invalid UTF-8 round trips")
local fromBuffer = net.request({ url = base .. "/raw", method = "POST", body = buffer.fromstring(all) })
eq(fromBuffer.body, all, "a buffer body is sent as its bytes")
local binary = net.request(base .. "/binary")
eq(#binary.body, 1024, "a binary response keeps its length")
eq(string.byte(binary.body, 256), 255, "a binary response keeps every byte")
local big = net.request(base .. "/big")
eq(#big.body, 10 * 1024 * 1024, "a 10 MB response arrives whole")
eq(string.byte(big.body, 252), 0, "a 10 MB response keeps its content")
local bigUp = net.request({ url = base .. "/raw", method = "PUT", body = string.rep("z", 10 * 1024 * 1024) })
eq(#bigUp.body, 10 * 1024 * 1024, "a 10 MB request body is sent whole")
"#,
        &base(&peer),
    );
}

#[test]
fn statuses_never_throw() {
    let peer = peers::http(None);
    run_luau(
        r#"
local base = process.args[1]
local cases = {
    { 200, true, "OK" }, { 201, true, "Created" }, { 204, true, "No Content" }, { 299, true, "" },
    { 304, false, "Not Modified" }, { 404, false, "Not Found" }, { 418, false, "I'm a teapot" },
    { 500, false, "Internal Server Error" }, { 503, false, "Service Unavailable" }, { 599, false, "" },
}
for _, case in cases do
    local res = net.request(base .. "/status/" .. case[1])
    eq(res.statusCode, case[1], "status " .. case[1])
    eq(res.ok, case[2], "ok for " .. case[1])
    eq(res.statusMessage, case[3], "status message for " .. case[1])
end
eq(net.request(base .. "/empty").body, "", "an empty body is an empty string")
"#,
        &base(&peer),
    );
}

#[test]
fn response_headers_are_strings_with_every_line_in_raw_headers() {
    let peer = peers::http(None);
    run_luau(
        r#"
local res = net.request(process.args[1] .. "/headers")
eq(res.headers["set-cookie"], "a=1, b=2", "a repeated header is one string joined with ', '")
eq(res.headers["x-single"], "one", "a single header is a string")
eq(res.headers["x-binary"], "f\255o", "a header value that is not UTF-8 is kept as raw bytes")
for name, value in res.headers do
    eq(name, string.lower(name), "header names are lower-case")
    eq(type(value), "string", "every header value is a string (" .. name .. ")")
end
check(type(res.rawHeaders) == "table", "rawHeaders is a table")
local cookies, binary = {}, nil
for i, line in ipairs(res.rawHeaders) do
    eq(type(line.name), "string", "rawHeaders[" .. i .. "].name")
    eq(type(line.value), "string", "rawHeaders[" .. i .. "].value")
    eq(line.name, string.lower(line.name), "raw header names are lower-case")
    if line.name == "set-cookie" then table.insert(cookies, line.value) end
    if line.name == "x-binary" then binary = line.value end
end
eq(table.concat(cookies, "|"), "a=1|b=2", "rawHeaders keeps each Set-Cookie line, in order")
eq(binary, "f\255o", "rawHeaders keeps raw bytes")
"#,
        &base(&peer),
    );
}

/// A raw HTTP/1.1 server that answers each request with its own head (as received,
/// up to the blank line) as the body, then closes the connection.
fn head_echo() -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                head.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.write_all(&head);
        }
    });
    (port, thread)
}

/// A hostile redirect: a 302 whose body claims 1 GiB and keeps coming. Following it
/// reads only a little of that body, then drops the connection, and the request
/// ends at `/ok`.
#[test]
fn a_redirect_with_an_endless_body_costs_its_connection_not_memory() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                if head.starts_with(b"GET /ok ") {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                    return;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 1073741824\r\n\r\n",
                );
                let chunk = vec![b'x'; 64 * 1024];
                while stream.write_all(&chunk).is_ok() {
                    if counted.fetch_add(chunk.len(), Ordering::Relaxed) > 1 << 30 {
                        return;
                    }
                }
            });
        }
    });
    run_luau(
        r#"
local response = net.request(process.args[1])
eq(response.statusCode, 200, "the redirect is followed")
eq(response.body, "ok", "to its target")
"#,
        &[format!("http://127.0.0.1:{port}/start")],
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent < 16 << 20,
        "the redirect's body was abandoned, not read: the server got {sent} bytes out"
    );
}

#[test]
fn bodiless_post_put_and_patch_send_content_length_zero() {
    let (port, _server) = head_echo();
    run_luau(
        r#"
local base = process.args[1]
local function lengthOf(head)
    return string.match(string.lower(head), "\r\ncontent%-length: *([^\r]*)\r\n")
end
for _, method in { "POST", "PUT", "PATCH" } do
    local head = net.request({ url = base, method = method }).body
    eq(lengthOf(head), "0", method .. " without a body sends Content-Length: 0 (head: " .. head .. ")")
    local empty = net.request({ url = base, method = method, body = "" }).body
    eq(lengthOf(empty), "0", method .. " with an empty body sends Content-Length: 0")
    local full = net.request({ url = base, method = method, body = "abc" }).body
    eq(lengthOf(full), "3", method .. " with a body sends its length")
end
local get = net.request(base).body
eq(lengthOf(get), nil, "a GET without a body sends no Content-Length")
local own = net.request({ url = base, method = "POST", headers = { ["content-length"] = "0" } }).body
local _, count = string.gsub(string.lower(own), "content%-length", "")
eq(count, 1, "a script's own Content-Length is not doubled")
"#,
        &[format!("http://127.0.0.1:{port}/")],
    );
}

#[test]
fn decompression_of_every_coding_and_raw_mode() {
    let peer = peers::http(None);
    run_luau(
        r#"
local base = process.args[1]
local text = "hello compressed world, hello compressed world"
for _, coding in { "gzip", "deflate", "br", "zstd" } do
    local res = net.request(base .. "/encoded/" .. coding)
    eq(res.body, text, coding .. " is decoded")
    eq(res.headers["content-encoding"], nil, coding .. ": content-encoding is removed once decoded")
    eq(res.headers["content-length"], nil, coding .. ": content-length is removed once decoded")
    local raw = net.request({ url = base .. "/encoded/" .. coding, options = { decompress = false } })
    eq(raw.headers["content-encoding"], coding, coding .. ": decompress = false keeps content-encoding")
    check(raw.headers["content-length"] ~= nil, coding .. ": decompress = false keeps content-length")
    check(raw.body ~= text, coding .. ": decompress = false keeps the body encoded")
    eq(tonumber(raw.headers["content-length"]), #raw.body, coding .. ": the raw body matches its length")
end
"#,
        &base(&peer),
    );
}

#[test]
fn redirects_chains_limits_methods_and_origins() {
    let peer = peers::http(None);
    run_luau(
        r#"
local base = process.args[1]
eq(net.request(base .. "/redirect/10").body, "redirect done", "a chain of 10 redirects is followed")
errors(function() net.request(base .. "/redirect/11") end, "redirect", "more than 10 redirects is an error")
errors(function() net.request(base .. "/loop") end, "redirect", "a redirect loop is an error")

local function echoOf(params) return serde.decode("json", net.request(params).body) end
local seeOther = echoOf({ url = base .. "/see-other", method = "POST", body = "data" })
eq(seeOther.method, "GET", "303 turns POST into GET")
eq(seeOther.bodyLength, 0, "303 drops the body")
local moved = echoOf({ url = base .. "/moved", method = "POST", body = "data" })
eq(moved.method, "GET", "301 turns POST into GET")
eq(moved.bodyLength, 0, "301 drops the body")
local found = echoOf({ url = base .. "/relative", method = "POST", body = "data" })
eq(found.method, "GET", "302 turns POST into GET")
eq(found.bodyLength, 0, "302 drops the body")
local head = net.request({ url = base .. "/see-other", method = "HEAD" })
eq(head.statusCode, 200, "a HEAD is redirected")
eq(head.body, "", "and stays a HEAD (no body comes back)")
local temporary = echoOf({ url = base .. "/temporary", method = "POST", body = "data" })
eq(temporary.method, "POST", "307 keeps the method")
eq(temporary.body, "data", "307 keeps the body")
local permanent = echoOf({ url = base .. "/permanent", method = "PUT", body = "data" })
eq(permanent.method, "PUT", "308 keeps the method")
eq(permanent.body, "data", "308 keeps the body")

local relative = echoOf(base .. "/relative")
eq(relative.path, "/echo", "a relative Location resolves against the current URL")
eq(relative.query, "kept=yes", "a relative Location keeps its query")

local function headerMap(echo)
    local map = {}
    for _, pair in echo.headers do map[pair[1]] = pair[2] end
    return map
end
local secret = { Authorization = "Bearer secret", Cookie = "session=1", ["X-Other"] = "kept" }
local cross = headerMap(echoOf({ url = base .. "/cross-origin", headers = secret }))
eq(cross["authorization"], nil, "Authorization is dropped across origins")
eq(cross["cookie"], nil, "Cookie is dropped across origins")
eq(cross["x-other"], "kept", "other headers survive a cross-origin redirect")
local same = headerMap(echoOf({ url = base .. "/same-origin", headers = secret }))
eq(same["authorization"], "Bearer secret", "Authorization is kept on a same-origin redirect")
"#,
        &base(&peer),
    );
}

#[test]
fn transport_errors_throw_with_url_and_cause() {
    let reset = peers::resetting();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let garbage = peers::raw_http(b"this is not http\r\n\r\n");
    run_luau(
        r#"
local refusedUrl = "http://127.0.0.1:" .. process.args[1] .. "/x"
local message = errors(function() net.request(refusedUrl) end, "Connection refused", "a refused connection says so")
contains(message, refusedUrl, "the error names the URL")
errors(function() net.request(process.args[2] .. "/x") end, "net.request failed", "a reset connection is an error")
errors(function() net.request(process.args[3] .. "/x") end, "net.request failed", "a non-HTTP answer is an error")
errors(function() net.request("http://nonexistent.invalid/") end, "nonexistent.invalid", "a DNS failure names the host")
"#,
        &[
            closed_port.to_string(),
            reset.http_url(),
            garbage.http_url(),
        ],
    );
}

#[test]
fn bad_params_name_the_field() {
    run_luau(
        r#"
errors(function() net.request(42) end, "expected string or table, got number", "a number is not a request")
errors(function() net.request({}) end, "url", "a missing url is named")
errors(function() net.request({ url = 5 }) end, "Invalid url - expected string, got number", "a url that is not a string")
errors(function() net.request("not a url") end, "Invalid url 'not a url'", "an unparsable url")
errors(function() net.request("ftp://example.com/") end, "unsupported scheme 'ftp'", "an unsupported scheme")
errors(function() net.request({ url = "http://127.0.0.1/", body = 5 }) end, "Invalid body - expected string, buffer or function, got number", "a bad body")
errors(function() net.request({ url = "http://127.0.0.1/", method = 1 }) end, "Invalid method - expected string, got number", "a bad method type")
errors(function() net.request({ url = "http://127.0.0.1/", method = "GE T" }) end, "Invalid method 'GE T'", "an invalid method")
errors(function() net.request({ url = "http://127.0.0.1/", headers = "x" }) end, "Invalid headers - expected table, got string", "bad headers")
local huge = {}
for i = 1, 30000 do huge["x-h" .. i] = "v" end
errors(function() net.request({ url = "http://127.0.0.1/", headers = huge }) end, "Invalid headers - expected at most 8192 header lines", "30,000 headers are an error, not a crash")
errors(function() net.request({ url = "http://127.0.0.1/", headers = { ["bad name"] = "x" } }) end, "'bad name' is not a valid header name", "an invalid header name")
errors(function() net.request({ url = "http://127.0.0.1/", headers = { x = "a\nb" } }) end, "Invalid headers value for 'x'", "an invalid header value")
errors(function() net.request({ url = "http://127.0.0.1/", headers = { x = { 1 } } }) end, "array containing number", "a header array of numbers")
errors(function() net.request({ url = "http://127.0.0.1/", query = { q = true } }) end, "Invalid query value for 'q'", "a bad query value")
errors(function() net.request({ url = "http://127.0.0.1/", query = 3 }) end, "Invalid query - expected table, got number", "a bad query")
errors(function() net.request({ url = "http://127.0.0.1/", options = { decompress = "yes" } }) end, "Invalid options.decompress - expected boolean, got string", "a bad decompress option")
"#,
        &[],
    );
}

#[test]
fn keep_alive_connections_are_reused_and_replaced() {
    let peer = peers::http(None);
    let closing = peers::closing_idle(std::time::Duration::from_millis(100));
    run_luau(
        r#"
local base, closing = process.args[1], process.args[2]
local first = net.request(base .. "/client-port").body
for i = 1, 5 do
    eq(net.request(base .. "/client-port").body, first, "sequential request " .. i .. " reuses the connection")
end
eq(net.request({ url = base .. "/client-port", method = "POST", body = "x" }).body, first, "a POST reuses it too")

-- Requests in flight at the same time need connections of their own.
local ports, done = {}, 0
for i = 1, 3 do
    task.spawn(function()
        ports[i] = net.request(base .. "/client-port").body
        done += 1
    end)
end
while done < 3 do task.wait(0.01) end
check(ports[1] ~= ports[2] and ports[2] ~= ports[3] and ports[1] ~= ports[3], "concurrent requests use separate connections")

-- A response with Connection: close is not reused.
local closed = net.request(base .. "/close").body
check(net.request(base .. "/client-port").body ~= closed, "a connection the server closed is not reused")

-- A server that drops its idle keep-alive connections: the next request opens a new one.
local before = net.request(closing).body
task.wait(0.4)
local after = net.request(closing)
eq(after.statusCode, 200, "a request after the server dropped the idle connection succeeds")
check(after.body ~= before, "it went over a new connection")
"#,
        &[peer.http_url(), closing.http_url()],
    );
}

#[test]
fn concurrent_requests_overlap() {
    let peer = peers::http(None);
    run_luau(
        r#"
local base = process.args[1]
local done = 0
local function spawnOne(i)
    task.spawn(function()
        local res = net.request(base .. "/slow")
        eq(res.body, "slow", "slow response " .. i)
        done += 1
    end)
end
local waited = 0
for i = 1, 10 do spawnOne(i) end
while done < 10 do waited += task.wait(0.02) end
check(waited < 3, "10 requests to a 0.5 s endpoint overlap (took " .. waited .. " s)")
"#,
        &base(&peer),
    );
}

#[test]
fn timeout_bounds_the_exchange_and_drops_its_connection() {
    let (peer, counts) = peers::hanging();
    run_luau(
        r#"
local base = process.args[1]
local function counts() return net.request(base .. "/count").body end
local function waitFor(expected, what)
    local seen
    for _ = 1, 150 do
        seen = counts()
        if seen == expected then return end
        task.wait(0.02)
    end
    error(what .. ": the server saw " .. tostring(seen) .. ", expected " .. expected)
end

local start = os.clock()
errors(function() net.request({ url = base .. "/hang", timeout = 0.3 }) end,
    "net.request timed out after 0.3 s for GET " .. base .. "/hang", "a silent server")
local took = os.clock() - start
check(took >= 0.29 and took < 3, "the request failed after about 0.3 s (took " .. took .. " s)")
waitFor("0/1", "the timed-out connection is closed, not kept")

start = os.clock()
errors(function() net.request({ url = base .. "/hang-body", method = "get", timeout = 0.3 }) end,
    "net.request timed out after 0.3 s for GET " .. base .. "/hang-body", "a body that stops")
took = os.clock() - start
check(took >= 0.29 and took < 3, "the body read failed after about 0.3 s (took " .. took .. " s)")
waitFor("0/2", "the connection of the unfinished body is closed")

local ok = net.request({ url = base .. "/count", timeout = 5 })
eq(ok.statusCode, 200, "a request well within its timeout succeeds")

local expected = "Invalid timeout - expected a number of seconds greater than 0, got "
local url = base .. "/count"
errors(function() net.request({ url = url, timeout = 0 }) end, expected .. "0", "a zero timeout")
errors(function() net.request({ url = url, timeout = -1 }) end, expected .. "-1", "a negative timeout")
errors(function() net.request({ url = url, timeout = 0 / 0 }) end, expected, "a NaN timeout")
errors(function() net.request({ url = url, timeout = "1" }) end, expected .. "string", "a string timeout")
"#,
        &[peer.http_url()],
    );
    assert_eq!(
        counts.closed.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "both timed-out connections were closed by the client"
    );
}

#[test]
fn cancelling_a_thread_in_net_request_closes_its_connection() {
    let (peer, counts) = peers::hanging();
    run_luau(
        r#"
local base = process.args[1]
local function counts() return net.request(base .. "/count").body end
local function waitFor(expected, what, limit)
    local seen
    local start = os.clock()
    while os.clock() - start < limit do
        seen = counts()
        if seen == expected then return os.clock() - start end
        task.wait(0.01)
    end
    error(what .. ": the server saw " .. tostring(seen) .. ", expected " .. expected)
end

local resumed = 0
for round, path in { "/hang", "/hang-body" } do
    local thread = task.spawn(function()
        pcall(net.request, base .. path)
        resumed += 1
    end)
    waitFor("1/" .. (round - 1), path .. ": the request reached the server", 10)
    task.cancel(thread)
    waitFor("0/" .. round, path .. ": the cancelled request's connection is closed within 1 s", 1)
end
task.wait(0.1)
eq(resumed, 0, "a cancelled thread is never resumed")
eq(net.request(base .. "/count").statusCode, 200, "later requests to the same server work")
"#,
        &[peer.http_url()],
    );
    assert_eq!(
        counts.closed.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "both cancelled requests' connections were closed by the client"
    );
}
