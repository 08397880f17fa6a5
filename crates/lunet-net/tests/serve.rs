//! `net.serve` driven by real clients: reqwest, raw TCP sockets, and Lunet's own
//! `net.request`. Scripts report their port through `@lune/testkit` and keep serving
//! until the test calls `finish`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{peer_runtime, run_luau, spawn_luau, spawn_server};

/// The handler most tests serve: a route per response form, else a JSON echo.
const ECHO_HANDLER: &str = r#"
function(request)
    if request.path == "/slow" then
        task.wait(0.5)
        return "slow done"
    elseif request.path == "/string" then
        return "just a string"
    elseif request.path == "/no-status" then
        return { body = "no status given" }
    elseif request.path == "/full" then
        return {
            status = 201,
            headers = { ["set-cookie"] = { "a=1", "b=2" }, ["x-kind"] = "full" },
            body = buffer.fromstring("buffer body"),
        }
    elseif request.path == "/inherited" then
        -- Fields a response table inherits through __index count like its own.
        local defaults = { status = 202, headers = { ["x-kind"] = "inherited" } }
        return setmetatable({ body = "from a metatable" }, { __index = defaults })
    elseif request.path == "/yielded-table" then
        task.wait(0.01)
        return { status = 203, headers = { ["x-kind"] = "yielded" }, body = "after a yield" }
    elseif request.path == "/error" then
        error("handler failed on purpose")
    elseif request.path == "/bad-return" then
        return 42
    elseif request.path == "/bad-status" then
        return { status = 42 }
    elseif request.path == "/nothing" then
        return
    elseif request.path == "/nil" then
        return nil
    elseif request.path == "/string-status" then
        return { status = "404", body = "numeric string" }
    elseif request.path == "/status-999" then
        return { status = 999, body = "odd status" }
    elseif request.path == "/status-103" then
        return { status = 103 }
    elseif request.path == "/word-status" then
        return { status = "teapot" }
    elseif request.path == "/mutate-raw" then
        -- A connection's requests with the same header lines share their (frozen)
        -- metatable; what one does to its request must not reach the next.
        -- Its headers table is a copy of one the connection keeps for those lines.
        table.insert(request.rawHeaders, { name = "x-added", value = "1" })
        request.rawHeaders[1].value = "changed"
        request.headers.host = "changed"
        request.headers["user-agent"] = nil
        request.headers["x-added"] = "1"
        local changed = pcall(function() getmetatable(request).packed = nil end)
        local overwritten = pcall(buffer.fill, getmetatable(request).packed, 0, 65)
        return if changed or overwritten then "metatable changed" else "metatable kept"
    elseif request.path == "/nested" then
        local inner = net.request("http://127.0.0.1:" .. request.headers["x-port"] .. "/string")
        return "nested: " .. inner.body
    end
    return serde.encode("json", {
        method = request.method,
        path = request.path,
        query = request.query,
        headers = request.headers,
        rawHeaders = request.rawHeaders,
        headerTypes = (function()
            local types = {}
            for name, value in request.headers do types[name] = type(value) end
            return types
        end)(),
        body = request.body,
        bodyLength = #request.body,
        ip = request.ip,
        port = request.port,
    })
end
"#;

fn client() -> reqwest::Client {
    lunet_net::tls::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A raw client connection to the server on `port`, whose reads give up after
/// `read_limit` (so a server that never answers fails the test instead of hanging it).
fn connect(port: u16, read_limit: Duration) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(read_limit)).unwrap();
    stream
}

fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = connect(port, Duration::from_secs(10));
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn request_fields_reach_the_handler() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let rt = peer_runtime();
    let body: Vec<u8> = (0..=255u8).collect();
    let response = rt
        .block_on(
            client()
                .post(format!(
                    "http://127.0.0.1:{port}/some/path?a=1&multi=x&multi=y&space=a%20b"
                ))
                .header("X-Custom", "value")
                .header("X-Repeat", "one")
                .header("X-Repeat-2", "z")
                .header("x-repeat", "two")
                // One `Cookie` line per RFC 6265, but a client may send several.
                .header("Cookie", "a=1")
                .header("cookie", "b=2")
                .body(body.clone())
                .send(),
        )
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = rt.block_on(response.json()).unwrap();
    assert_eq!(json["method"], "POST");
    assert_eq!(json["path"], "/some/path");
    assert_eq!(json["query"]["a"], "1");
    assert_eq!(
        json["query"]["multi"],
        serde_json::json!(["x", "y"]),
        "a repeated query key is an array"
    );
    assert_eq!(json["query"]["space"], "a b", "query values are decoded");
    assert_eq!(
        json["headers"]["x-custom"], "value",
        "header names are lower-case"
    );
    assert_eq!(
        json["headers"]["x-repeat"], "one, two",
        "a repeated header is one string joined with \", \""
    );
    assert_eq!(
        json["headers"]["cookie"], "a=1; b=2",
        "repeated cookies are joined with \"; \" (a cookie value may hold a comma)"
    );
    for (name, kind) in json["headerTypes"].as_object().unwrap() {
        assert_eq!(kind, "string", "header {name} is a string");
    }
    let raw: Vec<(String, String)> = json["rawHeaders"]
        .as_array()
        .expect("rawHeaders is an array")
        .iter()
        .map(|line| {
            (
                line["name"].as_str().unwrap().to_string(),
                line["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let lines = |name: &str| -> Vec<&str> {
        raw.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(
        lines("x-repeat"),
        ["one", "two"],
        "rawHeaders keeps each line of a repeated header, in order: {raw:?}"
    );
    assert_eq!(lines("x-custom"), ["value"], "{raw:?}");
    assert_eq!(lines("x-repeat-2"), ["z"], "{raw:?}");
    assert_eq!(lines("cookie"), ["a=1", "b=2"], "{raw:?}");
    assert_eq!(
        raw.len(),
        json["headers"].as_object().unwrap().len() + 2,
        "one raw line per header line (two names repeat): {raw:?}"
    );
    assert_eq!(json["bodyLength"], 256, "the body is binary-safe");
    assert_eq!(json["ip"], "127.0.0.1");
    assert!(
        json["port"].as_u64().unwrap() > 0,
        "the client's port is given"
    );
    let head = raw_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        head.contains("\"path\":\"/\""),
        "an empty path is /: {head}"
    );
    // A method and header names outside the common ones Lunet keeps as shared
    // strings arrive as sent.
    let head = raw_exchange(
        port,
        b"PURGE / HTTP/1.1\r\nHost: x\r\nX-Rare-Name-Here: v\r\nConnection: close\r\n\r\n",
    );
    assert!(head.contains("\"method\":\"PURGE\""), "{head}");
    assert!(head.contains("\"x-rare-name-here\":\"v\""), "{head}");
    assert_eq!(script.finish(), 0);
}

/// Reads one response with a `Content-Length` body off a keep-alive connection, and
/// returns its body.
fn read_one_response(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .unwrap_or_else(|| panic!("a content-length in {head}"))
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// A connection's requests repeat their path, header values and header lines, which
/// the server remembers per connection (as Luau strings, and the metatable holding
/// the lines for `rawHeaders`): each request must still see exactly its own, when
/// a value changes, comes back, goes missing, or is too long to be remembered, and
/// whatever an earlier request's handler did to its own request.
#[test]
fn each_request_on_a_connection_sees_its_own_path_and_headers() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let long = "L".repeat(300);
    let requests: [(&str, &str, Option<&str>); 6] = [
        ("/a", "ua-1", Some("text/html")),
        ("/a", "ua-1", Some("text/html")),
        ("/a", "ua-2", Some("text/html")),
        ("/b", "ua-1", None),
        ("/a", &long, Some("")),
        ("/a", &long, Some("text/html")),
    ];
    let mut stream = connect(port, Duration::from_secs(10));
    for (i, (path, agent, accept)) in requests.iter().enumerate() {
        let host = if i % 2 == 0 { "one.test" } else { "two.test" };
        let accept = accept.map_or(String::new(), |accept| format!("Accept: {accept}\r\n"));
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\n{accept}\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&read_one_response(&mut stream)).unwrap();
        let expected_accept = requests[i].2.map(serde_json::Value::from);
        assert_eq!(
            (
                json["path"].as_str(),
                json["headers"]["host"].as_str(),
                json["headers"]["user-agent"].as_str(),
                json["headers"].get("accept").cloned(),
            ),
            (Some(*path), Some(host), Some(*agent), expected_accept),
            "request {i}"
        );
        let mut expected_raw = vec![
            serde_json::json!({ "name": "host", "value": host }),
            serde_json::json!({ "name": "user-agent", "value": agent }),
        ];
        if let Some(accept) = requests[i].2 {
            expected_raw.push(serde_json::json!({ "name": "accept", "value": accept }));
        }
        assert_eq!(
            json["rawHeaders"],
            serde_json::Value::from(expected_raw),
            "request {i}"
        );
    }
    // A handler changing its request's headers and rawHeaders, and trying to change
    // its metatable, then a request with the same header lines; twice, as the first
    // request with these lines builds the tables the connection keeps, and the
    // second gets copies of them.
    let same = "Host: same.test\r\nUser-Agent: ua\r\n\r\n";
    for round in 0..2 {
        stream
            .write_all(format!("GET /mutate-raw HTTP/1.1\r\n{same}").as_bytes())
            .unwrap();
        assert_eq!(read_one_response(&mut stream), "metatable kept");
        stream
            .write_all(format!("GET /after HTTP/1.1\r\n{same}").as_bytes())
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&read_one_response(&mut stream)).unwrap();
        assert_eq!(
            json["rawHeaders"],
            serde_json::json!([
                { "name": "host", "value": "same.test" },
                { "name": "user-agent", "value": "ua" },
            ]),
            "the next request's rawHeaders are its own (round {round})"
        );
        assert_eq!(
            json["headers"],
            serde_json::json!({ "host": "same.test", "user-agent": "ua" }),
            "the next request's headers are its own (round {round})"
        );
    }
    drop(stream);
    assert_eq!(script.finish(), 0);
}

#[test]
fn response_forms() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let rt = peer_runtime();
    let client = client();
    let get = |path: &str| {
        rt.block_on(async {
            let response = client
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let cookies: Vec<String> = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            let kind = response
                .headers()
                .get("x-kind")
                .map(|v| v.to_str().unwrap().to_string());
            (status, cookies, kind, response.text().await.unwrap())
        })
    };
    assert_eq!(
        get("/string"),
        (200, vec![], None, "just a string".to_string()),
        "a string is a 200 body"
    );
    assert_eq!(get("/no-status").0, 200, "status defaults to 200");
    assert_eq!(get("/no-status").3, "no status given");
    let (status, cookies, kind, body) = get("/full");
    assert_eq!(status, 201);
    assert_eq!(
        cookies,
        vec!["a=1", "b=2"],
        "array header values are sent as repeated headers"
    );
    assert_eq!(kind.as_deref(), Some("full"));
    assert_eq!(body, "buffer body", "a buffer body is sent");
    assert_eq!(
        get("/inherited"),
        (
            202,
            vec![],
            Some("inherited".to_string()),
            "from a metatable".to_string()
        ),
        "status and headers inherited through __index are used"
    );
    assert_eq!(
        get("/yielded-table"),
        (
            203,
            vec![],
            Some("yielded".to_string()),
            "after a yield".to_string()
        ),
        "a handler that yields before returning a table"
    );
    for path in [
        "/error",
        "/bad-return",
        "/bad-status",
        "/status-103",
        "/word-status",
    ] {
        let (status, _, _, body) = get(path);
        assert_eq!(status, 500, "{path} answers 500");
        assert_eq!(body, "Internal Server Error\n");
    }
    assert_eq!(
        get("/string").0,
        200,
        "the server keeps serving after handler errors"
    );
    let head = rt
        .block_on(
            client
                .head(format!("http://127.0.0.1:{port}/string"))
                .send(),
        )
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        "13",
        "HEAD keeps the content length"
    );
    assert_eq!(
        rt.block_on(head.bytes()).unwrap().len(),
        0,
        "HEAD has no body"
    );
    assert_eq!(script.finish(), 0);
}

/// Lune's handler results: nil, numeric-string statuses, any status up to 999, and
/// `text/plain` for a string.
#[test]
fn handler_results_as_lune_gives_them() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let rt = peer_runtime();
    let client = client();
    let get = |path: &str| {
        rt.block_on(async {
            let response = client
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            (status, content_type, response.text().await.unwrap())
        })
    };
    assert_eq!(
        get("/string"),
        (200, Some("text/plain".to_string()), "just a string".into()),
        "a string is a 200 text/plain body, Lune's exact content-type"
    );
    assert_eq!(
        get("/nothing"),
        (200, None, String::new()),
        "a handler returning nothing answers 200 with an empty body"
    );
    assert_eq!(
        get("/nil"),
        (200, None, String::new()),
        "a handler returning nil answers 200 with an empty body"
    );
    assert_eq!(
        get("/string-status"),
        (404, None, "numeric string".into()),
        "status may be a numeric string"
    );
    assert_eq!(
        get("/no-status").1,
        None,
        "a table response gets no content-type of its own"
    );
    let odd = raw_exchange(
        port,
        b"GET /status-999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        odd.starts_with("HTTP/1.1 999 ") && odd.ends_with("odd status"),
        "a status past 599 is sent as given: {odd}"
    );
    // A 1xx cannot be a final response: a 500, on a connection that stays usable.
    let mut stream = connect(port, Duration::from_secs(10));
    stream
        .write_all(b"GET /status-103 HTTP/1.1\r\nHost: x\r\n\r\nGET /string HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut both = Vec::new();
    let _ = stream.read_to_end(&mut both);
    let both = String::from_utf8_lossy(&both);
    assert!(
        both.starts_with("HTTP/1.1 500 ") && both.contains("just a string"),
        "a 1xx status answers 500 and the connection keeps serving: {both}"
    );
    assert_eq!(script.finish(), 0);
}

/// File work in handlers (`@lune/fs`) yields like network I/O: while one request
/// writes and reads back 128 MiB, hello requests on another connection keep being
/// answered (were the file work blocking the event loop, only a handful could be:
/// one between each file call).
#[test]
fn file_work_in_handlers_does_not_hold_up_other_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let (script, port) = spawn_server(&format!(
        r#"function(request)
    local fs = require("@lune/fs")
    if request.path == "/file" then
        local data = string.rep("0123456789abcdef", 8 * 1024 * 1024)
        fs.writeFile({path:?}, data)
        local back = fs.readFile({path:?})
        fs.removeFile({path:?})
        return tostring(#back == #data)
    end
    return "hello"
end"#
    ));
    let rt = peer_runtime();
    let client = client();
    let (file, hellos) = rt.block_on(async {
        let file = tokio::spawn({
            let client = client.clone();
            async move {
                let response = client.get(format!("http://127.0.0.1:{port}/file")).send();
                response.await.unwrap().text().await.unwrap()
            }
        });
        // Measure hello requests while the file request is in progress.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut hellos = 0;
        while !file.is_finished() {
            let hello = client.get(format!("http://127.0.0.1:{port}/")).send();
            assert_eq!(hello.await.unwrap().text().await.unwrap(), "hello");
            hellos += 1;
        }
        (file.await.unwrap(), hellos)
    });
    assert_eq!(file, "true", "the file round trip");
    assert!(
        hellos >= 20,
        "hello requests are answered while the handler does file work: {hellos}"
    );
    assert_eq!(script.finish(), 0);
}

#[test]
fn yielding_handlers_run_concurrently() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let rt = peer_runtime();
    let client = client();
    let start = Instant::now();
    let bodies = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                client
                    .get(format!("http://127.0.0.1:{port}/slow"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }));
        }
        let mut bodies = Vec::new();
        for task in tasks {
            bodies.push(task.await.unwrap());
        }
        bodies
    });
    assert!(bodies.iter().all(|b| b == "slow done"));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "10 handlers waiting 0.5 s each overlap: {:?}",
        start.elapsed()
    );
    let nested = rt
        .block_on(
            client
                .get(format!("http://127.0.0.1:{port}/nested"))
                .header("x-port", port.to_string())
                .send(),
        )
        .unwrap();
    assert_eq!(
        rt.block_on(nested.text()).unwrap(),
        "nested: just a string",
        "a handler may call net.request on its own server"
    );
    assert_eq!(script.finish(), 0);
}

#[test]
fn stop_finishes_in_flight_requests_then_refuses() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let in_flight = std::thread::spawn(move || {
        raw_exchange(
            port,
            b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    });
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        script.finish(),
        0,
        "stopping the server lets the script end"
    );
    let answer = in_flight.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight request finishes: {answer}"
    );
    assert!(answer.ends_with("slow done"), "{answer}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a stopped server refuses connections"
    );
}

/// Stopping the server closes a keep-alive connection that waits for its next
/// request at once (its client sees the end of the stream), and the script ends.
#[test]
fn stop_closes_idle_keep_alive_connections_at_once() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let mut idle = connect(port, Duration::from_secs(10));
    idle.write_all(b"GET /string HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while !received.ends_with(b"just a string") {
        let n = idle.read(&mut chunk).unwrap();
        assert!(n > 0, "the server answered before closing");
        received.extend_from_slice(&chunk[..n]);
    }
    let stopped = Instant::now();
    assert_eq!(script.finish(), 0, "the script ends after stop()");
    let n = idle
        .read(&mut chunk)
        .expect("the connection is closed, not left open");
    assert_eq!(n, 0, "nothing more arrives: the connection ends");
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "closed at once, not after a timeout: {:?}",
        stopped.elapsed()
    );
}

/// A response that is still being written when the server stops (its handler has
/// returned, the client reads slowly) is delivered whole before the connection closes.
#[test]
fn stop_delivers_a_response_still_being_written() {
    const SIZE: usize = 16 * 1024 * 1024;
    let script = spawn_luau(
        r#"
local testkit = require("@lune/testkit")
local handle
handle = net.serve(0, function()
    -- Stop once the big response is on its way.
    task.delay(0.2, function() handle.stop() end)
    return string.rep("x", tonumber(process.args[1]))
end)
testkit.ready(handle.port)
"#,
        &[SIZE.to_string()],
    );
    let port: u16 = script.ready().parse().unwrap();
    let mut stream = connect(port, Duration::from_secs(20));
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Read a little, then nothing until well after the stop.
    let mut first = [0u8; 1024];
    let n = stream.read(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let mut received = first[..n].to_vec();
    received.extend(rest);
    let text = String::from_utf8_lossy(&received[..200.min(received.len())]).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    assert_eq!(
        received.len() - head_end,
        SIZE,
        "the whole body arrives although the server stopped while writing it"
    );
    assert_eq!(script.wait(), 0, "the script ends once the response is out");
}

#[test]
fn stop_semantics_in_luau() {
    run_luau(
        r#"
local handle = net.serve(0, function() return "hi" end)
check(handle.port > 0, "port 0 gives a real port")
eq(handle.ip, "127.0.0.1", "the default address is 127.0.0.1")
eq(net.request("http://127.0.0.1:" .. handle.port).body, "hi", "the server answers")
handle.stop()
local again = errors(function() handle.stop() end, "stopped", "a second stop errors")
contains(again, tostring(handle.port), "the error names the server")
local second = net.serve(0, function() return "method" end)
second:stop()
errors(function() second:stop() end, "already stopped", "handle:stop() works too")
errors(function() net.request("http://127.0.0.1:" .. handle.port) end, "net.request failed", "a stopped server no longer answers")

"#,
        &[],
    );
}

#[test]
fn addresses_ports_and_config_errors() {
    run_luau(
        r#"
local function serveOn(address)
    local handle = net.serve(0, { address = address, handleRequest = function() return "ok" end })
    local host = if string.find(handle.ip, ":") then "[" .. handle.ip .. "]" else handle.ip
    if handle.ip == "0.0.0.0" then host = "127.0.0.1" elseif handle.ip == "::" then host = "[::1]" end
    eq(net.request("http://" .. host .. ":" .. handle.port).body, "ok", "serving on " .. address)
    handle.stop()
    return handle
end
eq(serveOn("127.0.0.1").ip, "127.0.0.1", "an IPv4 literal")
eq(serveOn("http://127.0.0.1").ip, "127.0.0.1", "an http:// prefix is accepted")
eq(serveOn("0.0.0.0").ip, "0.0.0.0", "0.0.0.0")
eq(serveOn("localhost").ip, "127.0.0.1", "localhost")
eq(serveOn("::1").ip, "::1", "an IPv6 literal")
eq(serveOn("[::1]").ip, "::1", "a bracketed IPv6 literal")
eq(serveOn("::").ip, "::", "the IPv6 any address")

local taken = net.serve(0, function() return "" end)
local inUse = errors(function() net.serve(taken.port, function() return "" end) end, "already in use", "a port in use is an error")
contains(inUse, tostring(taken.port), "the error names the port")
taken.stop()

errors(function() net.serve(0, { address = "example.com", handleRequest = function() end }) end, "127.0.0.1", "a bad address shows a valid example")
errors(function() net.serve(0, { address = 5, handleRequest = function() end }) end, "Invalid address - expected string, got number", "a non-string address")
errors(function() net.serve(0, {}) end, "handleRequest or handleWebSocket", "a config needs a handler")
errors(function() net.serve(0, { handleRequest = "nope" }) end, "Invalid handleRequest - expected function, got string", "a bad handler")
errors(function() net.serve(70000, function() end) end, "Invalid port", "a port above 65535")
errors(function() net.serve(-1, function() end) end, "Invalid port", "a negative port")
errors(function() net.serve("80", function() end) end, "Invalid port", "a string port")
errors(function() net.serve(0, 42) end, "expected function or table, got number", "a number handler")
"#,
        &[],
    );
}

#[test]
fn malformed_oversized_and_vanishing_clients() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let garbage = raw_exchange(port, b"THIS IS NOT HTTP\r\n\r\n");
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "garbage gets 400 or a closed connection: {garbage}"
    );
    let bad_header = raw_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n",
    );
    assert!(
        bad_header.is_empty() || bad_header.starts_with("HTTP/1.1 400"),
        "{bad_header}"
    );
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let answer = raw_exchange(port, huge_header.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "oversized headers get 431: {}",
        &answer[..answer.len().min(80)]
    );
    let huge_body = raw_exchange(
        port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n",
    );
    assert!(
        huge_body.starts_with("HTTP/1.1 413"),
        "an oversized body gets 413: {huge_body}"
    );
    // A client that vanishes mid-body.
    {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a little")
            .unwrap();
    }
    // A client that stalls after half a request line does not block others.
    let _stalled = {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"GET /str").unwrap();
        stream
    };
    let fine = raw_exchange(
        port,
        b"GET /string HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        fine.starts_with("HTTP/1.1 200"),
        "the server still serves others: {fine}"
    );
    assert_eq!(script.finish(), 0);
}

#[test]
fn keep_alive_pipelining_chunked_expect_and_encoded_bodies() {
    let (script, port) = spawn_server(ECHO_HANDLER);
    let pipelined = raw_exchange(
        port,
        b"GET /string HTTP/1.1\r\nHost: x\r\n\r\nGET /no-status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        pipelined.matches("HTTP/1.1 200").count(),
        2,
        "two pipelined requests get two responses: {pipelined}"
    );
    let first = pipelined.find("just a string").unwrap();
    let second = pipelined.find("no status given").unwrap();
    assert!(first < second, "pipelined responses keep their order");

    let chunked = raw_exchange(
        port,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert!(
        chunked.contains("\"body\":\"hello world\""),
        "a chunked body arrives whole: {chunked}"
    );

    let mut stream = connect(port, Duration::from_secs(10));
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert!(
        String::from_utf8_lossy(&interim).starts_with("HTTP/1.1 100 Continue"),
        "Expect: 100-continue is answered"
    );
    stream.write_all(b"12345").unwrap();
    let mut rest = String::new();
    let _ = stream.read_to_string(&mut rest);
    assert!(
        rest.contains("\"body\":\"12345\""),
        "the body after 100 Continue arrives: {rest}"
    );

    let gz = lunet_runtime::codec::compression::compress(
        lunet_runtime::codec::compression::Codec::Gzip,
        b"zipped body",
        None,
    )
    .unwrap();
    let rt = peer_runtime();
    let decoded: serde_json::Value = rt.block_on(async {
        client()
            .post(format!("http://127.0.0.1:{port}/echo"))
            .header("content-encoding", "gzip")
            .body(gz.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(
        decoded["body"], "zipped body",
        "a gzip request body is decoded for the handler"
    );
    let stacked = lunet_runtime::codec::compression::compress(
        lunet_runtime::codec::compression::Codec::Brotli,
        &gz,
        None,
    )
    .unwrap();
    let post = |coding: &'static str, body: Vec<u8>| {
        rt.block_on(async {
            let response = client()
                .post(format!("http://127.0.0.1:{port}/echo"))
                .header("content-encoding", coding)
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let (status, body) = post("gzip, br", stacked);
    assert_eq!(status, 200, "a body with stacked codings is accepted");
    assert!(
        body.contains("\"body\":\"zipped body\""),
        "stacked codings are undone last first: {body}"
    );
    let (status, body) = post("compress", b"whatever".to_vec());
    assert_eq!(status, 415, "an unknown coding is refused: {body}");
    let (status, body) = post("gzip", b"not gzip at all".to_vec());
    assert_eq!(status, 400, "a body that is not gzip is refused: {body}");
    assert_eq!(
        body, "Bad Request: the body does not match its Content-Encoding\n",
        "a corrupt body is told apart from one that could not be read"
    );
    assert_eq!(script.finish(), 0);
}

#[test]
fn websocket_only_server_answers_426() {
    let (script, port) = spawn_server("{ handleWebSocket = function(socket) socket:close() end }");
    let answer = raw_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 426"),
        "plain HTTP to a WebSocket-only server gets 426: {answer}"
    );
    let old_version = raw_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    );
    assert!(
        old_version.starts_with("HTTP/1.1 426"),
        "an unsupported WebSocket version gets 426: {old_version}"
    );
    assert!(
        old_version
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "426 names the supported version"
    );
    assert_eq!(script.finish(), 0);
}

/// How much each compression bomb below expands to: four times the 64 MiB limit (a
/// bigger one takes seconds to make in a debug build and tests nothing more).
const BOMB_BYTES: u64 = 256 << 20;

/// `BOMB_BYTES` of zeros in `coding` (an HTTP content coding), made as a stream.
fn bomb(coding: &str) -> Vec<u8> {
    use async_compression::Level;
    use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder};
    use tokio::io::{AsyncRead, AsyncReadExt};
    let zeros = tokio::io::BufReader::with_capacity(1 << 20, tokio::io::repeat(0).take(BOMB_BYTES));
    let mut encoder: Box<dyn AsyncRead + Unpin> = match coding {
        "br" => Box::new(BrotliEncoder::with_quality(zeros, Level::Precise(5))),
        "gzip" => Box::new(GzipEncoder::with_quality(zeros, Level::Fastest)),
        "deflate" => Box::new(ZlibEncoder::with_quality(zeros, Level::Fastest)),
        "zstd" => Box::new(ZstdEncoder::with_quality(zeros, Level::Default)),
        other => panic!("no bomb for {other}"),
    };
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let mut out = Vec::new();
            encoder.read_to_end(&mut out).await.unwrap();
            out
        })
}

/// The peak (`VmHWM`) resident memory of this process so far, in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// Compression bombs (from 400 bytes to 1.2 MiB, each expanding to 256 MiB) get 413 as soon as the
/// decoded body passes the 64 MiB limit: quickly, holding at most about the limit in
/// memory, and while one is decoded, another connection's requests are answered
/// without waiting for it (within 100 ms each).
///
/// The wait is measured from a client thread, so a test machine that deschedules the
/// server (two cores, other tests running beside this one) can stretch one answer
/// past the bound; the bombs are sent a second time before that counts as a failure.
/// A decoder that blocks the server's thread fails both passes.
#[test]
fn compression_bombs_get_413_without_memory_or_stalling_others() {
    let bombs: Vec<(&str, Vec<u8>)> = ["br", "gzip", "zstd", "deflate"]
        .into_iter()
        .map(|coding| (coding, bomb(coding)))
        .collect();
    let (script, port) = spawn_server(ECHO_HANDLER);
    let before = peak_memory();
    let mut passes = Vec::new();
    for _ in 0..2 {
        let (worst, answered) = refuse_bombs_while_saying_hello(port, &bombs);
        assert!(answered > 0, "hello requests were answered meanwhile");
        passes.push(worst);
        if worst < Duration::from_millis(100) {
            break;
        }
    }
    let growth = peak_memory().saturating_sub(before);
    assert!(
        passes
            .iter()
            .any(|worst| *worst < Duration::from_millis(100)),
        "a hello request waited {passes:?} (the worst of each pass) while bombs were refused"
    );
    assert!(
        growth < 200 * 1024 * 1024,
        "peak memory grew by {} MiB for bombs of {} MiB each",
        growth >> 20,
        BOMB_BYTES >> 20
    );
    assert_eq!(script.finish(), 0);
}

/// Sends each bomb on its own connection and checks it gets 413 quickly, while
/// another connection asks for a small response every 2 ms; returns the longest
/// that one waited, and how many it got.
fn refuse_bombs_while_saying_hello(port: u16, bombs: &[(&str, Vec<u8>)]) -> (Duration, usize) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hello = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut stream = connect(port, Duration::from_secs(10));
            let mut worst = Duration::ZERO;
            let mut answered = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let start = Instant::now();
                stream
                    .write_all(b"GET /string HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut response = Vec::new();
                let mut buffer = [0u8; 1024];
                while !String::from_utf8_lossy(&response).contains("just a string") {
                    let n = stream.read(&mut buffer).unwrap();
                    assert!(n > 0, "the hello connection closed");
                    response.extend_from_slice(&buffer[..n]);
                }
                worst = worst.max(start.elapsed());
                answered += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            (worst, answered)
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    for (coding, bomb) in bombs {
        let start = Instant::now();
        let mut stream = connect(port, Duration::from_secs(20));
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n",
            bomb.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        // The server stops reading at the limit, so the rest may never be taken.
        let mut writer = stream.try_clone().unwrap();
        let body = bomb.clone();
        let writing = std::thread::spawn(move || {
            let _ = writer.write_all(&body);
        });
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 413"),
            "a {coding} bomb of {} bytes gets 413: {response}",
            bomb.len()
        );
        assert!(
            response.to_ascii_lowercase().contains("connection: close"),
            "{response}"
        );
        let _ = stream.shutdown(std::net::Shutdown::Both);
        writing.join().unwrap();
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "a {coding} bomb is refused quickly, not after {took:?}"
        );
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    hello.join().unwrap()
}
