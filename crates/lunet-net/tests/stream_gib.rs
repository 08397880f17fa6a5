//! A 1 GiB response read in chunks with `net.http.stream` keeps memory flat: more
//! than Luau's largest string, so it could not be read at all were it buffered. Its
//! own test binary (its own process), so that no other test's memory shows in VmRSS.

mod common;

use common::{peers, run_luau};

#[test]
fn a_gib_download_read_in_chunks_keeps_memory_flat() {
    let (peer, _state) = peers::streaming(None);
    run_luau(
        r#"
local fs = require("@lune/fs")
local function rss()
    local status = fs.readFile("/proc/self/status")
    return tonumber(string.match(status, "VmRSS:%s*(%d+) kB")) * 1024
end
local MiB = 1024 * 1024
local res = net.http.stream(process.args[1] .. "/gib")
eq(res.statusCode, 200)
local before = rss()
local total, peak, nextCheck, chunks = 0, 0, 64 * MiB, 0
while true do
    local chunk = res.body:read()
    if chunk == nil then break end
    -- Each 64 KiB block of the peer starts at byte value 0 (the pattern is i % 251).
    if total % 65536 == 0 then
        eq(string.byte(chunk, 1), (total % 65536) % 251, "chunk content")
    end
    total += #chunk
    chunks += 1
    if total >= nextCheck then
        nextCheck += 64 * MiB
        peak = math.max(peak, rss() - before)
    end
end
eq(total, 1024 * MiB, "the whole GiB arrived")
check(chunks >= 1024, "read in many chunks, not one (" .. chunks .. ")")
check(peak < 32 * MiB, "memory grew by at most 32 MiB while reading 1 GiB (grew " .. peak .. ")")
"#,
        &[peer.http_url()],
    );
}
