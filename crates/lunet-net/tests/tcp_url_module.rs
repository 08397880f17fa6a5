//! `net.tcp.connect` against tokio TCP servers, URL coding, and the module's shape.

mod common;

use common::{peers, run_luau};

#[test]
fn tcp_echo_reads_writes_and_fields() {
    let echo = peers::tcp_echo(None, "127.0.0.1:0");
    let echo6 = peers::tcp_echo(None, "[::1]:0");
    run_luau(
        r#"
local port, port6 = tonumber(process.args[1]), tonumber(process.args[2])
local stream = net.tcp.connect("127.0.0.1", port)
eq(stream.remoteIp, "127.0.0.1", "remoteIp")
eq(stream.remotePort, port, "remotePort")
eq(stream.localIp, "127.0.0.1", "localIp")
check(stream.localPort > 0 and stream.localPort ~= port, "localPort")
stream:write("hello")
eq(stream:read(), "hello", "an echo comes back")
local payload = string.rep("0123456789", 100000)
stream:write(buffer.fromstring(payload))
local got = {}
local total = 0
while total < #payload do
    local chunk = stream:read()
    table.insert(got, chunk)
    total += #chunk
end
eq(table.concat(got), payload, "1 MB written with one write comes back whole")
local big = string.rep("abcdefghijklmnop", 65536)
stream:write(big)
got, total = {}, 0
while total < #big do
    local chunk = stream:read(1024 * 1024)
    check(#chunk <= 1024 * 1024, "read(1 MiB) returns at most 1 MiB")
    table.insert(got, chunk)
    total += #chunk
end
eq(table.concat(got), big, "a 1 MiB string comes back whole through reads larger than the default")
stream:write("abcdef")
local first = stream:read(2)
eq(first, "ab", "read(size) returns at most size bytes")
local rest = ""
while #rest < 4 do rest ..= stream:read(10) end
eq(rest, "cdef", "the rest follows")
-- Cancelling a thread waiting in read() abandons only that wait: what arrives
-- later is kept for the next read.
local cancelledRead = task.spawn(function()
    stream:read()
    error("a thread cancelled while waiting in read() was resumed")
end)
task.wait(0.05)
task.cancel(cancelledRead)
stream:write("kept")
eq(stream:read(), "kept", "data after a cancelled read goes to the next read")
errors(function() stream:write(42) end, "Invalid data - expected string or buffer, got number", "write rejects a number")
errors(function() stream:read(0) end, "expected a positive integer, got 0", "read rejects size 0")
errors(function() stream:read("many") end, "expected a positive integer, got string", "read rejects a string size")
errors(function() stream.write("no self") end, "must be called on a TcpStream", "a method without self is a clear error")
eq(stream.noSuchField, nil, "an unknown field is nil")
stream:close()
errors(function() stream:write("x") end, "closed", "write after close errors")

local byName = net.tcp.connect("localhost", port)
byName:write("named")
eq(byName:read(), "named", "a DNS name connects")
byName:close()

local v6 = net.tcp.connect("::1", port6)
eq(v6.remoteIp, "::1", "an IPv6 literal connects")
v6:write("six")
eq(v6:read(), "six", "IPv6 loopback echoes")
v6:close()
local bracketed = net.tcp.connect("[::1]", port6, { tls = false, ttl = 64 })
bracketed:write("b")
eq(bracketed:read(), "b", "a bracketed IPv6 literal and a ttl work")
bracketed:close()
"#,
        &[echo.port().to_string(), echo6.port().to_string()],
    );
}

#[test]
fn tcp_partial_reads_and_end_of_stream() {
    let greeter = peers::tcp_greeter(b"partial reads arrive in pieces", 7);
    run_luau(
        r#"
local stream = net.tcp.connect("127.0.0.1", tonumber(process.args[1]))
local pieces = {}
while true do
    local chunk = stream:read()
    if chunk == nil then break end
    table.insert(pieces, chunk)
end
check(#pieces > 1, "data sent in pieces arrives in more than one read")
eq(table.concat(pieces), "partial reads arrive in pieces", "every byte arrives")
eq(stream:read(), nil, "read keeps returning nil at end of stream")
"#,
        &[greeter.port().to_string()],
    );
}

#[test]
fn tcp_bad_arguments_and_refused() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    run_luau(
        r#"
errors(function() net.tcp.connect("127.0.0.1", tonumber(process.args[1])) end, "Connection refused", "a refused connection says so")
errors(function() net.tcp.connect(5, 80) end, "Invalid host - expected string, got number", "a non-string host")
errors(function() net.tcp.connect("", 80) end, "Invalid host", "an empty host")
errors(function() net.tcp.connect("127.0.0.1", 0) end, "1 to 65535", "port 0")
errors(function() net.tcp.connect("127.0.0.1", 70000) end, "1 to 65535", "a port above 65535")
errors(function() net.tcp.connect("127.0.0.1", "80") end, "Invalid port - expected an integer from 1 to 65535, got string", "a string port")
errors(function() net.tcp.connect("127.0.0.1", 80, "tls") end, "Invalid config", "a string config")
errors(function() net.tcp.connect("127.0.0.1", 80, { tls = "yes" }) end, "Invalid config.tls", "a bad tls field")
errors(function() net.tcp.connect("127.0.0.1", 80, { ttl = 0 }) end, "Invalid config.ttl", "a bad ttl")
errors(function() net.tcp.connect("no-such-host.invalid", 80) end, "no-such-host.invalid", "a DNS failure names the host")
"#,
        &[closed_port.to_string()],
    );
}

#[test]
fn url_encoding_round_trips_and_errors() {
    run_luau(
        r#"
eq(net.urlEncode("a b&c=d/é~-_."), "a%20b%26c%3Dd%2F%C3%A9~-_.", "everything but unreserved is encoded")
eq(net.urlDecode("a%20b+c%2B"), "a b+c+", "decode handles %XX only; + stays +")
eq(net.urlDecode("100%"), "100%", "a lone % stays")
local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
local all = table.concat(bytes)
local encoded = net.urlEncode(all, true)
check(not string.find(encoded, "[^%w%%%-_%.~]"), "the encoding uses only unreserved characters and %")
eq(net.urlDecode(encoded, true), all, "every byte value round trips in binary mode")
for i = 0, 255 do
    eq(net.urlDecode(net.urlEncode(string.char(i), true), true), string.char(i), "byte " .. i .. " round trips")
end
errors(function() net.urlEncode("\255") end, "not valid UTF-8", "encoding invalid UTF-8 without binary is an error")
errors(function() net.urlDecode("%FF") end, "not valid UTF-8", "decoding to invalid UTF-8 without binary is an error")
errors(function() net.urlEncode(5) end, "Invalid input - expected string, got number", "urlEncode needs a string")
eq(net.urlDecode(net.urlEncode("héllo wörld")), "héllo wörld", "UTF-8 text round trips")
"#,
        &[],
    );
}

#[test]
fn module_shape_is_read_only_with_aliases() {
    run_luau(
        r#"
for _, name in { "request", "socket", "serve", "urlEncode", "urlDecode" } do
    eq(type(net[name]), "function", "net." .. name .. " is a function")
end
eq(net.http.request, net.request, "net.http.request is net.request")
eq(net.http.serve, net.serve, "net.http.serve is net.serve")
eq(net.ws.connect, net.socket, "net.ws.connect is net.socket")
eq(type(net.tcp.connect), "function", "net.tcp.connect is a function")
errors(function() net.request = nil end, "readonly", "the net table is read-only")
errors(function() net.http.extra = 1 end, "readonly", "net.http is read-only")
errors(function() net.tcp.connect = nil end, "readonly", "net.tcp is read-only")
eq(require("@lune/net"), net, "requiring @lune/net again gives the same table")
"#,
        &[],
    );
}

/// `close()` ends a write stuck on a peer that does not read and a read waiting on
/// a peer that sends nothing, and returns without waiting on that peer.
#[test]
fn close_ends_waiting_reads_and_writes_on_a_silent_peer() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds the connection, reading and writing nothing.
    let holder = std::thread::spawn(move || {
        let held = listener.accept().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop(held);
    });
    run_luau(
        r#"
local stream = net.tcp.connect("127.0.0.1", tonumber(process.args[1]))
local wrote, read = nil, "not yet"
task.spawn(function()
    wrote = { pcall(function() stream:write(string.rep("x", 64 * 1024 * 1024)) end) }
end)
task.spawn(function()
    read = stream:read()
end)
task.wait(0.3)
eq(wrote, nil, "the write is stuck on the silent peer")
local started = os.clock()
stream:close()
check(os.clock() - started < 2, "close does not wait on the peer")
task.wait(0.05)
check(wrote ~= nil and wrote[1] == false and string.find(wrote[2], "closed", 1, true) ~= nil, "the stuck write fails: " .. tostring(wrote and wrote[2]))
eq(read, nil, "the waiting read ends like the end of the stream")
"#,
        &[port.to_string()],
    );
    holder.join().unwrap();
}
