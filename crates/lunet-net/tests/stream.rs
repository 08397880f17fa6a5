//! `net.http.stream` and function request bodies against a real hyper server that
//! streams (`peers::streaming`): chunks reach the script before the response ends,
//! Server-Sent Events, decompression while streaming, `close()`, uploads produced by
//! a function, and HTTP/2.

mod common;

use common::tls::{Leaf, ca, server_config};
use common::{peers, run_luau};

fn base(peer: &peers::Peer) -> Vec<String> {
    vec![peer.http_url()]
}

#[test]
fn the_first_chunk_arrives_before_the_last_is_sent() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local base = process.args[1]
local res = net.http.stream(base .. "/chunks")
eq(res.statusCode, 200, "status")
eq(res.ok, true, "ok")
eq(res.statusMessage, "OK", "status message")
eq(typeof(res.body), "BodyStream", "the body is a BodyStream")
-- The server sends "two" only once it is signalled, which needs this chunk first.
eq(res.body:read(), "one", "the first chunk")
eq(net.request(base .. "/signal").body, "ok", "signal")
eq(res.body:readAll(), "twothree", "the rest, after the signal")
eq(res.body:read(), nil, "nil at the end")
eq(res.body:read(), nil, "nil again after the end")
eq(res.body:readAll(), "", "readAll at the end is empty")
res.body:close()
errors(function() res.body:read() end, "the body stream is closed", "read after close")
errors(function() res.body.read() end, "BodyStream:read must be called on a BodyStream", "read without self")
"#,
        &base(&peer),
    );
}

#[test]
fn server_sent_events_split_across_chunks() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local res = net.http.stream(process.args[1] .. "/sse")
eq(res.headers["content-type"], "text/event-stream", "content type")
local got = {}
for event in res.body:events() do
    table.insert(got, event)
end
eq(#got, 2, "two finished events (the unfinished last one is dropped)")
eq(got[1].event, "message", "event defaults to message")
eq(got[1].data, "first", "data across chunks, CRLF split between chunks, BOM stripped")
eq(got[1].id, "1", "id")
eq(got[1].retry, 250, "retry")
eq(got[2].event, "update", "event name across chunks")
eq(got[2].data, "a\nb", "data lines joined by a newline (CR ends a line)")
eq(got[2].id, "1", "the last event id stays")
eq(got[2].retry, nil, "retry belongs to its own event")
eq(res.body:read(), nil, "the stream has ended")
"#,
        &base(&peer),
    );
}

#[test]
fn lines_split_on_any_line_ending() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local lines = {}
for line in net.http.stream(process.args[1] .. "/sse").body:lines() do
    table.insert(lines, line)
end
eq(table.concat(lines, "|"), "\u{FEFF}data: first|id: 1|retry: 250||: keep-alive||event: update|data: a|data: b||data: unfinished", "lines")
"#,
        &base(&peer),
    );
}

#[test]
fn gzip_is_decoded_while_streaming() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local base = process.args[1]
local res = net.http.stream(base .. "/gzip")
eq(res.headers["content-encoding"], nil, "Content-Encoding is gone once decoded")
eq(res.body:read(), "hello ", "the first member, decoded before the second is sent")
net.request(base .. "/signal")
eq(res.body:readAll(), "world", "the second member")
local raw = net.http.stream({ url = base .. "/gzip", options = { decompress = false } })
eq(raw.headers["content-encoding"], "gzip", "kept without decompression")
local first = raw.body:read()
eq(string.byte(first, 1), 0x1f, "gzip bytes as received")
raw.body:close()
"#,
        &base(&peer),
    );
}

#[test]
fn close_mid_stream_closes_the_connection() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local base = process.args[1]
local res = net.http.stream(base .. "/endless")
check(#res.body:read() > 0, "a chunk of the endless body")
-- A thread waiting in read() when the stream is closed gets the error.
local waitError = nil
task.spawn(function()
    local ok, err = pcall(function()
        while true do res.body:read() end
    end)
    waitError = err
end)
res.body:close()
task.wait()
contains(waitError, "the body stream is closed", "a waiting read fails at close")
res.body:close()
errors(function() res.body:read() end, "the body stream is closed", "read after close")
errors(function() res.body:readAll() end, "the body stream is closed", "readAll after close")
local closed = "no"
for _ = 1, 200 do
    closed = net.request(base .. "/closed").body
    if closed == "yes" then break end
    task.wait(0.02)
end
eq(closed, "yes", "the server saw the connection go")
"#,
        &base(&peer),
    );
}

#[test]
fn a_stream_read_to_its_end_gives_its_connection_back() {
    let peer = peers::http(None);
    run_luau(
        r#"
local base = process.args[1]
local res = net.http.stream(base .. "/client-port")
local port = res.body:readAll()
eq(net.request(base .. "/client-port").body, port, "the next request reuses the connection")
-- Takes the pooled connection, then abandons it.
local abandoned = net.http.stream(base .. "/big")
abandoned.body:read()
abandoned.body:close()
local other = net.request(base .. "/client-port").body
check(other ~= port, "a closed stream's connection is not pooled")
local big = net.http.stream(base .. "/big")
eq(#big.body:readAll(), 10 * 1024 * 1024, "readAll")
"#,
        &base(&peer),
    );
}

#[test]
fn cancelling_a_read_keeps_the_data_for_the_next() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local base = process.args[1]
local res = net.http.stream(base .. "/chunks")
eq(res.body:read(), "one", "first")
local thread = task.spawn(function() res.body:read() error("never resumed") end)
task.cancel(thread)
net.request(base .. "/signal")
eq(res.body:read(), "two", "the chunk the cancelled read waited for")
eq(res.body:read(), "three", "then the next")
"#,
        &base(&peer),
    );
}

#[test]
fn a_function_body_is_sent_as_it_is_produced() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local base = process.args[1]
local calls = 0
local res = net.request({ url = base .. "/upload", method = "POST", body = function()
    calls += 1
    if calls == 1 then return "first" end
    if calls == 2 then
        -- Only return the second chunk once the server has the first.
        for _ = 1, 500 do
            if net.request(base .. "/got-first").body == "yes" then
                return buffer.fromstring("second")
            end
            task.wait(0.01)
        end
        error("the server never received the first chunk")
    end
    return nil
end })
eq(res.body, "first|second;true;HTTP/1.1", "chunks as sent, chunked encoding")
eq(calls, 3, "called until nil")

local streamed = net.http.stream({ url = base .. "/upload", method = "PUT", body = function()
    calls += 1
    return if calls < 6 then tostring(calls) else nil
end })
eq(streamed.body:readAll(), "4|5;true;HTTP/1.1", "net.http.stream takes function bodies too")

local err = errors(function()
    net.request({ url = base .. "/upload", method = "POST", body = function()
        task.wait(0.01)
        error("producer broke")
    end })
end, "producer broke", "an error in the function fails the request")
contains(err, "net.request failed for POST " .. base .. "/upload: the request body function failed", "worded as a request failure")
errors(function()
    net.request({ url = base .. "/upload", method = "POST", body = function() return 5 end })
end, "Invalid body chunk - expected string or buffer, got number", "a bad chunk")
errors(function()
    net.request({ url = base .. "/temporary", method = "POST", body = function()
        calls += 1
        return if calls % 2 == 0 then "x" else nil
    end })
end, "cannot follow the 307 redirect to " .. base .. "/upload: the request body was a function, which cannot be sent again", "307 with a function body")
"#,
        &base(&peer),
    );
}

#[test]
fn bad_arguments_are_reported() {
    run_luau(
        r#"
errors(function() net.http.stream(5) end, "Invalid request - expected string or table, got number", "a number")
errors(function() net.http.stream({ url = "ftp://x/" }) end, "unsupported scheme", "a bad scheme")
errors(function() net.http.stream({ url = "http://127.0.0.1:1/", body = true }) end, "Invalid body - expected string, buffer or function, got boolean", "a bad body")
"#,
        &[],
    );
}

#[test]
fn streams_and_function_bodies_over_http2() {
    ca();
    let (peer, _state) = peers::streaming(Some(server_config(Leaf::Good, &[b"h2", b"http/1.1"])));
    run_luau(
        r#"
local base = process.args[1]
local res = net.http.stream(base .. "/chunks")
eq(res.body:read(), "one", "the first chunk over HTTP/2")
net.request(base .. "/signal")
eq(res.body:readAll(), "twothree", "the rest")
local n = 0
local up = net.request({ url = base .. "/upload", method = "POST", body = function()
    n += 1
    if n == 2 then task.wait(0.01) end
    return if n <= 2 then "part" .. n else nil
end })
eq(up.body, "part1|part2;false;HTTP/2.0", "DATA frames as produced")
local sse = net.http.stream(base .. "/sse")
local count = 0
for event in sse.body:events() do count += 1 end
eq(count, 2, "events over HTTP/2")
local endless = net.http.stream(base .. "/endless")
endless.body:read()
endless.body:close()
local closed = "no"
for _ = 1, 200 do
    closed = net.request(base .. "/closed").body
    if closed == "yes" then break end
    task.wait(0.02)
end
eq(closed, "yes", "closing an HTTP/2 stream resets it")
"#,
        &[format!("https://localhost:{}", peer.port())],
    );
}
