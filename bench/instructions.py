#!/usr/bin/env python3
"""Instructions per request (valgrind's callgrind), for when throughput cannot settle
a few percent: on a shared 2-core VM, req/s of one binary moves +-12% between runs,
while the instructions a server executes per request are the same to within 1%.

Each scenario starts the server under callgrind, warms it up with its load generator
for 2 s, zeroes the counters, loads it for 5 s, dumps the counters and divides them
by the requests (or messages) the load generator completed (HTTP/2: 8,000 then
20,000 requests, the same for every contender, see `h2_load`). The count covers the
whole process (the kernel's work is not in it), so compare it between builds and
against the raw ceilings, not with req/s.

    python3 bench/instructions.py                        # every scenario
    python3 bench/instructions.py --only hello --only h2
    python3 bench/instructions.py --baseline OLD_LUNET   # an older build beside this one

Scenarios: hello, table, echo (1 KiB POST), json (the 50-item API), h2 (HTTP/2 hello
over TLS, h2load), h2-echo (HTTP/2 1 KiB POST echo), h2-same (HTTP/2 hello, its
ceiling sending Lunet's `content-type` too), h2-luau and h2-call (HTTP/2 hello, its
ceiling the raw server with a Luau handler: a table per request, or only the call),
ws (WebSocket echo, 10 clients). Needs valgrind, wrk, h2load.

With `--cache`, callgrind also simulates the caches (32 KiB 8-way L1s) and the
instruction-cache misses per request are printed too: a server whose per-request
code no longer fits the L1 instruction cache runs slower than its instruction
count says (HTTP/2 over TLS is such a case, see bench/README.md).
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: paths, ports, certificates)

WARM_SECONDS, SECONDS = 2, 5


def wrk_load(script=None):
    def load(port, seconds):
        cmd = ["wrk", "-t1", "-c10", f"-d{seconds}s"]
        if script:
            cmd += ["-s", str(script)]
        out = subprocess.run(cmd + [f"http://127.0.0.1:{port}/bench"], capture_output=True, text=True, check=True).stdout
        return int(re.search(r"(\d+) requests in", out).group(1))
    return load


def h2_load(port, seconds, data=None):
    # A fixed number of requests (4,000 per second of the other loads), the same
    # for every contender: each load opens 10 new TLS connections, whose handshakes
    # (~1.2M instructions each run) a timed load would spread over fewer requests
    # for the slower server under callgrind, charging it ~450 more per request.
    body = ["-d", str(data)] if data else []
    out = subprocess.run(
        ["h2load", "-c10", "-m10", "-t1", "-n", str(4000 * seconds)] + body + [f"https://127.0.0.1:{port}/bench"],
        capture_output=True, text=True, check=True,
    ).stdout
    return int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))


def ws_load(port, seconds):
    err = subprocess.run(
        [str(run.RELEASE / "ws-load"), "clients", f"ws://127.0.0.1:{port}", "10", str(seconds)],
        capture_output=True, text=True, check=True,
    ).stderr
    # (stdout has the rate, whose time includes the handshakes and closes.)
    return int(re.search(r"messages: (\d+)", err).group(1))


def scenarios():
    cert, key = run.make_certificate()
    hyper = [str(run.RELEASE / "hyper-hello")]
    return {
        "hello": (["serve_hello.luau", "{port}"], hyper + ["{port}"], wrk_load()),
        "table": (["serve_table.luau", "{port}"], None, wrk_load()),
        "echo": (["serve_echo.luau", "{port}"], hyper + ["{port}"], wrk_load(run.BENCH / "wrk_post_1k.lua")),
        "json": (["serve_json.luau", "{port}"], None, wrk_load()),
        "h2": (["serve_tls.luau", "{port}", cert, key], [str(run.RELEASE / "hyper-tls"), "{port}", cert, key], h2_load),
        "h2-echo": (["serve_tls.luau", "{port}", cert, key], [str(run.RELEASE / "hyper-tls"), "{port}", cert, key], lambda port, seconds: h2_load(port, seconds, run.post_body_1k())),
        # The same ceiling sending Lunet's response bytes (its `content-type`).
        "h2-same": (["serve_tls.luau", "{port}", cert, key], [str(run.RELEASE / "hyper-tls"), "{port}", cert, key, "text"], h2_load),
        # The same server with the handler in Luau (mlua): a table per request, and
        # (h2-call) only the call, with one table built at the first request.
        "h2-luau": (["serve_tls.luau", "{port}", cert, key], [str(run.RELEASE / "hyper-tls-luau"), "{port}", cert, key], h2_load),
        "h2-call": (["serve_tls.luau", "{port}", cert, key], [str(run.RELEASE / "hyper-tls-luau"), "{port}", cert, key, "call"], h2_load),
        # No ceiling: the raw tokio-tungstenite server is multi-threaded, and under
        # callgrind (which runs one thread at a time) its idle workers' polling
        # counts as work (~270k instructions per message).
        "ws": (["ws_echo_server.luau", "{port}"], None, ws_load),
    }


def measure(cmd, load, cache=False):
    """Instructions (and with `cache`, L1 instruction-cache misses) per completed
    request of the server `cmd` under `load`."""
    port = run.free_port()
    cmd = [part.replace("{port}", str(port)) for part in cmd]
    out = Path(f"/tmp/lunet-callgrind-{port}.out")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        + (["--cache-sim=yes"] if cache else []) + cmd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        run.wait_port(port, timeout=60)
        load(port, WARM_SECONDS)
        subprocess.run(["callgrind_control", "-z", str(server.pid)], capture_output=True, check=True)
        done = load(port, SECONDS)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], capture_output=True, check=True)
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait()
    dump = Path(f"{out}.1")
    text = dump.read_text()
    events = re.search(r"^events: (.*)$", text, re.M).group(1).split()
    totals = [int(v) for v in re.search(r"^(?:summary|totals): (.*)$", text, re.M).group(1).split()]
    for path in out.parent.glob(f"{out.name}*"):
        path.unlink()
    per_request = {event: total / max(done, 1) for event, total in zip(events, totals)}
    return per_request, done


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["hello", "table", "echo", "json", "h2", "h2-echo", "h2-same", "h2-luau", "h2-call", "ws"])
    parser.add_argument("--baseline", help="an older lunet binary to measure beside this one")
    parser.add_argument("--cache", action="store_true", help="also count L1 instruction-cache misses")
    args = parser.parse_args()
    table = scenarios()
    for name in args.only or list(table):
        script, ceiling, load = table[name]
        script = [str(run.SCRIPTS / script[0])] + script[1:]
        contenders = [("lunet", [run.LUNET, "run"] + script)]
        # (A baseline from before TLS serving fails the h2 scenarios: leave them out.)
        if args.baseline:
            contenders.append(("lunet (baseline)", [args.baseline, "run"] + script))
        if ceiling:
            contenders.append(("ceiling", ceiling))
        results = {}
        for who, cmd in contenders:
            results[who], done = measure(cmd, load, args.cache)
            misses = f", {results[who]['I1mr']:6.0f} I1 misses" if args.cache else ""
            print(f"{name:7} {who:17} {results[who]['Ir']:9.0f} instructions{misses} per request ({done} done)", flush=True)
        for who, counts in results.items():
            if who != "lunet":
                ratio = f"lunet/{who} = {results['lunet']['Ir'] / counts['Ir']:.3f}x"
                if args.cache:
                    ratio += f", I1 misses {results['lunet']['I1mr'] / counts['I1mr']:.3f}x"
                print(f"{name:7} {ratio}")


if __name__ == "__main__":
    main()
