//! `net.http.stream` reads only as fast as the script does: a 64 MiB body read
//! slowly keeps the process's memory bounded and blocks the server's writes. Its own
//! test binary (its own process), so that no other test's memory shows in VmRSS.

mod common;

use common::{peers, run_luau};

#[test]
fn a_slow_reader_holds_the_server_back_and_memory_stays_bounded() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local fs = require("@lune/fs")
local base = process.args[1]
local function rss()
    local status = fs.readFile("/proc/self/status")
    return tonumber(string.match(status, "VmRSS:%s*(%d+) kB")) * 1024
end
local MiB = 1024 * 1024
local res = net.http.stream(base .. "/big")
local before = rss()
local total = #res.body:read()
task.wait(0.5)
local sent = tonumber(net.request(base .. "/sent").body)
check(sent < 24 * MiB, "the server is held back while the script does not read (sent " .. sent .. ")")
local peak = 0
local nextWait = 4 * MiB
while true do
    local chunk = res.body:read()
    if chunk == nil then break end
    total += #chunk
    if total >= nextWait then
        nextWait += 4 * MiB
        peak = math.max(peak, rss() - before)
        task.wait(0.01)
    end
end
eq(total, 64 * MiB, "the whole body arrived")
check(peak < 32 * MiB, "memory grew by at most 32 MiB while streaming 64 MiB (grew " .. peak .. ")")
"#,
        &[peer.http_url()],
    );
}
