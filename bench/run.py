#!/usr/bin/env python3
"""Runs Lunet's benchmarks against its peers in one session and prints medians and ratios.

Servers are pinned to CPU 0 and load generators / clients to CPU 1 (taskset). Every
scenario runs each contender in turn, `--runs` times, alternating, and reports the
median. Contenders that are not installed (lune, node's ws) are skipped with a note.
Results also go to bench/results/<timestamp>.json.

    python3 bench/run.py                 # everything (about 25 minutes)
    python3 bench/run.py --only serve    # one group: startup, serve, memory, ws-server,
                                         # request, ws-client, tcp, sockets, native, json,
                                         # workers, streaming, tls
    python3 bench/run.py --quick         # shorter runs, for a smoke test
    python3 bench/run.py --baseline OLD  # also run an older lunet binary, for before/after
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SCRIPTS = BENCH / "scripts"
NODE_DIR = BENCH / "node"
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release"
LUNET = str(RELEASE / "lunet")
SERVER_CPU, LOAD_CPU = "0", "1"


def find_lune():
    for candidate in [shutil.which("lune"), str(Path.home() / ".cargo" / "bin" / "lune")]:
        if candidate and Path(candidate).exists():
            return candidate
    return None


LUNE = find_lune()
NODE = shutil.which("node")
HAS_WS = (NODE_DIR / "node_modules" / "ws").exists()


def pinned(cpu, cmd):
    return ["taskset", "-c", cpu] + cmd


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_udp(port, timeout=20.0):
    """Waits until a UDP echo server on the port answers a datagram."""
    deadline = time.time() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.time() < deadline:
            try:
                s.sendto(b"ping", ("127.0.0.1", port))
                s.recvfrom(2048)
                return
            except OSError:
                time.sleep(0.05)
    raise RuntimeError(f"nothing echoes UDP on port {port}")


class Server:
    """A server process pinned to the server CPU, stopped on exit."""

    def __init__(self, cmd, port, cwd=None, cpus=SERVER_CPU, wait=wait_port):
        self.proc = subprocess.Popen(
            pinned(cpus, cmd), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait(port)
        time.sleep(0.2)

    def cpu_seconds(self):
        # All of its threads (workers included): /proc/<pid>/stat sums them.
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_kb(self, field="VmRSS:"):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
        return 0

    def peak_rss_kb(self):
        return self.rss_kb("VmHWM:")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def run_client(cmd, cwd=None, timeout=300):
    """Runs a pinned client; returns (last stdout line as float, peak RSS in KiB)."""
    proc = subprocess.Popen(pinned(LOAD_CPU, cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"{cmd} timed out")
        time.sleep(0.02)
    out = proc.stdout.read().strip().splitlines()
    if status != 0 or not out:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read()[-500:]}")
    return float(out[-1]), usage.ru_maxrss


def wrk(url, seconds, connections=50, lua_script=None):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if lua_script:
        cmd += ["-s", str(lua_script)]
    out = subprocess.run(pinned(LOAD_CPU, cmd + [url]), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale, total


RESULTS = {}


def record(group, scenario, contender, value, unit):
    RESULTS.setdefault(group, {}).setdefault(scenario, {}).setdefault(contender, {"unit": unit, "values": []})
    RESULTS[group][scenario][contender]["values"].append(value)


BASELINE = None  # set by --baseline: an older lunet binary to compare against


def luau_contenders():
    contenders = [("lunet", [LUNET, "run"])]
    if BASELINE:
        contenders.append(("lunet (baseline)", [BASELINE, "run"]))
    if LUNE:
        contenders.append(("lune", [LUNE, "run"]))
    return contenders


# ---------------------------------------------------------------- scenarios


def bench_startup(runs, quick):
    if not shutil.which("hyperfine"):
        print("  (hyperfine missing: skipping startup)")
        return
    commands = []
    for name, cmd in luau_contenders():
        commands.append((f"{name} empty", " ".join(cmd + [str(SCRIPTS / "empty.luau")])))
        commands.append((f"{name} 10k tasks", " ".join(cmd + [str(SCRIPTS / "tasks.luau")])))
    if NODE:
        commands.append(("node -e ''", f"{NODE} -e ''"))
    export = BENCH / "results" / "hyperfine.json"
    export.parent.mkdir(exist_ok=True)
    subprocess.run(
        ["hyperfine", "-N", "--warmup", "3", "--runs", str(10 if quick else 30), "--export-json", str(export)]
        + [c for _, c in commands],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    data = json.loads(export.read_text())["results"]
    for (label, _), result in zip(commands, data):
        scenario = "10k tasks" if "tasks" in label else "empty script"
        record("startup", scenario, label.split(" ")[0], result["median"] * 1000, "ms")


def bench_serve(runs, quick):
    seconds = 3 if quick else 10
    echo_lua = BENCH / "wrk_post_1k.lua"
    scenarios = [
        ("hello world", "serve_hello.luau", "hello", None),
        ("table with headers", "serve_table.luau", "table", None),
        ("1 KiB POST echo", "serve_echo.luau", "echo", echo_lua),
        ("JSON API (50 items)", "serve_json.luau", "json", None),
    ]
    for title, script, node_mode, wrk_script in scenarios:
        for _ in range(runs):
            contenders = [(n, c + [str(SCRIPTS / script)]) for n, c in luau_contenders()]
            if NODE:
                contenders.append(("node", [NODE, str(NODE_DIR / "http_server.js"), node_mode]))
            if node_mode not in ("table", "json"):
                contenders.append(("hyper (ceiling)", [str(RELEASE / "hyper-hello")]))
            for name, cmd in contenders:
                port = free_port()
                with Server(cmd + [str(port)], port) as server:
                    before = server.cpu_seconds()
                    rps, p99, total = wrk(f"http://127.0.0.1:{port}/bench", seconds, lua_script=wrk_script)
                    cpu_us = (server.cpu_seconds() - before) / max(total, 1) * 1e6
                record("serve", title, name, rps, "req/s")
                record("serve", title + " p99", name, p99, "ms")
                record("serve", title + " server CPU/request", name, cpu_us, "us")


def make_certificate():
    """A self-signed P-256 certificate for 127.0.0.1 (the load generators do not verify
    it); returns the paths of the certificate and key PEM files."""
    out = BENCH / "results" / "tls"
    out.mkdir(parents=True, exist_ok=True)
    cert, key = out / "cert.pem", out / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


def post_body_1k():
    """The file h2load POSTs in the HTTP/2 echo (1 KiB, as wrk_post_1k.lua's body)."""
    body = BENCH / "results" / "tls" / "body-1k"
    body.parent.mkdir(parents=True, exist_ok=True)
    body.write_bytes(b"x" * 1024)
    return body


def h2load(url, seconds, data=None):
    """HTTP/2 load over TLS: 10 connections x 10 streams for `seconds`; returns req/s."""
    cmd = ["h2load", "-c10", "-m10", "-t1", f"-D{seconds}", "--warm-up-time=1"]
    if data:
        cmd += ["-d", str(data)]
    out = subprocess.run(pinned(LOAD_CPU, cmd + [url]), capture_output=True, text=True, check=True).stdout
    failed = int(re.search(r"requests: .*?(\d+) failed", out).group(1))
    if failed:
        raise RuntimeError(f"h2load: {failed} requests failed:\n{out[-800:]}")
    return float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))


def bench_tls(runs, quick):
    """net.serve with `tls`: HTTP/2 (h2load) hello and 1 KiB echo, and HTTPS/1.1
    (wrk, which offers no ALPN) hello, against Node and raw hyper + rustls."""
    has_h2load = shutil.which("h2load") is not None
    if not has_h2load:
        print("  (h2load missing: apt-get install nghttp2-client; skipping the HTTP/2 cases)")
    seconds = 3 if quick else 10
    cert, key = make_certificate()
    body = post_body_1k()
    for _ in range(runs):
        # Lunet only: a --baseline build may predate TLS serving, and Lune serves no TLS.
        contenders = [("lunet", [LUNET, "run", str(SCRIPTS / "serve_tls.luau")], ["{port}", cert, key])]
        if NODE:
            contenders.append(("node", [NODE, str(NODE_DIR / "tls_server.js")], ["h2", "{port}", cert, key]))
        contenders.append(("hyper+rustls (ceiling)", [str(RELEASE / "hyper-tls")], ["{port}", cert, key]))
        # The ceiling sending the same response bytes as Lunet (its `content-type`).
        contenders.append(("hyper+rustls, same headers", [str(RELEASE / "hyper-tls")], ["{port}", cert, key, "text"]))
        # Not a ceiling but a reference: that server with the handler in Luau (mlua),
        # each request a table built plainly, what any Luau runtime's server must do.
        contenders.append(("hyper+rustls+Luau handler", [str(RELEASE / "hyper-tls-luau")], ["{port}", cert, key]))
        for name, cmd, args in contenders:
            port = free_port()
            full = cmd + [a.replace("{port}", str(port)) for a in args]
            with Server(full, port):
                url = f"https://127.0.0.1:{port}/bench"
                if has_h2load:
                    record("tls", "HTTP/2 hello", name, h2load(url, seconds), "req/s")
                    record("tls", "HTTP/2 1 KiB POST echo", name, h2load(url, seconds, body), "req/s")
                if name == "node":
                    continue  # its HTTPS/1.1 run uses node's https module, below
                rps, p99, _ = wrk(url, seconds)
                record("tls", "HTTPS/1.1 hello", name, rps, "req/s")
                record("tls", "HTTPS/1.1 hello p99", name, p99, "ms")
        if NODE:
            port = free_port()
            with Server([NODE, str(NODE_DIR / "tls_server.js"), "https", str(port), cert, key], port):
                rps, p99, _ = wrk(f"https://127.0.0.1:{port}/bench", seconds)
                record("tls", "HTTPS/1.1 hello", "node", rps, "req/s")
                record("tls", "HTTPS/1.1 hello p99", "node", p99, "ms")


def bench_memory(runs, quick):
    contenders = [(n, c + [str(SCRIPTS / "serve_hello.luau")]) for n, c in luau_contenders()]
    if NODE:
        contenders.append(("node", [NODE, str(NODE_DIR / "http_server.js"), "hello"]))
    for name, cmd in contenders:
        port = free_port()
        with Server(cmd + [str(port)], port) as server:
            time.sleep(0.5)
            record("memory", "idle RSS", name, server.rss_kb() / 1024, "MiB")
            sockets = []
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                sockets.append(s)
            answered = 0
            for s in sockets:
                try:
                    if s.recv(4096):
                        answered += 1
                except OSError:
                    pass
            time.sleep(0.5)
            record("memory", "RSS with 1000 keep-alive connections", name, server.rss_kb() / 1024, "MiB")
            record("memory", "connections answered (of 1000)", name, answered, "count")
            for s in sockets:
                s.close()


def bench_ws_server(runs, quick):
    seconds = "3" if quick else "5"
    load = str(RELEASE / "ws-load")
    for _ in range(runs):
        contenders = [(n, c + [str(SCRIPTS / "ws_echo_server.luau")]) for n, c in luau_contenders()]
        if NODE and HAS_WS:
            contenders.append(("node ws", [NODE, str(NODE_DIR / "ws_server.js")]))
        contenders.append(("tungstenite (ceiling)", [str(RELEASE / "ws-echo-server")]))
        for name, cmd in contenders:
            port = free_port()
            with Server(cmd + [str(port)], port):
                url = f"ws://127.0.0.1:{port}"
                rate, _ = run_client([load, "rtt", url, seconds])
                record("ws-server", "1 client round trips", name, rate, "rt/s")
                rate, _ = run_client([load, "clients", url, "50", seconds])
                record("ws-server", "50 clients", name, rate, "msg/s")


def bench_request(runs, quick):
    total = "500" if quick else "2000"
    port = free_port()
    with Server([str(RELEASE / "hyper-hello"), str(port)], port):
        url = f"http://127.0.0.1:{port}/"
        for _ in range(runs):
            for concurrency, title in [("1", "sequential"), ("50", "50 concurrent")]:
                contenders = [(n, c + [str(SCRIPTS / "request.luau"), url, total, concurrency]) for n, c in luau_contenders()]
                if NODE:
                    contenders.append(("node fetch", [NODE, str(NODE_DIR / "fetch.js"), url, total, concurrency]))
                contenders.append(("reqwest (ceiling)", [str(RELEASE / "http-client"), url, total, concurrency]))
                for name, cmd in contenders:
                    rate, peak_kb = run_client(cmd)
                    record("request", f"{total} GETs {title}", name, rate, "req/s")
                    if concurrency == "50":
                        record("request", "peak RSS (concurrent run)", name, peak_kb / 1024, "MiB")


def bench_ws_client(runs, quick):
    seconds = "3" if quick else "5"
    messages = "20000" if quick else "100000"
    echo_port, sink_port = free_port(), free_port()
    server = str(RELEASE / "ws-echo-server")
    with Server([server, str(echo_port), "echo"], echo_port), Server([server, str(sink_port), "sink"], sink_port):
        echo_url, sink_url = f"ws://127.0.0.1:{echo_port}", f"ws://127.0.0.1:{sink_port}"
        for _ in range(runs):
            contenders = []
            for name, cmd in luau_contenders():
                contenders.append((name, cmd + [str(SCRIPTS / "ws_rtt.luau"), echo_url, seconds], cmd + [str(SCRIPTS / "ws_oneway.luau"), sink_url, messages]))
            if NODE and HAS_WS:
                js = str(NODE_DIR / "ws_client.js")
                contenders.append(("node ws", [NODE, js, "rtt", echo_url, seconds], [NODE, js, "oneway", sink_url, messages]))
            load = str(RELEASE / "ws-load")
            contenders.append(("tungstenite (ceiling)", [load, "rtt", echo_url, seconds], [load, "oneway", sink_url, messages]))
            for name, rtt_cmd, oneway_cmd in contenders:
                rate, _ = run_client(rtt_cmd)
                record("ws-client", "sequential round trips", name, rate, "rt/s")
                rate, _ = run_client(oneway_cmd)
                record("ws-client", f"{messages} pipelined 1 KiB messages, one way", name, rate, "msg/s")


def baseline_has_native():
    """Whether the --baseline build knows `lunet run --native`."""
    help_text = subprocess.run([BASELINE, "run", "--help"], capture_output=True, text=True).stdout
    return "--native" in help_text


def bench_native(runs, quick):
    """CPU-bound Luau (bench/scripts/cpu/): natively compiled (`lunet run`'s default,
    the same as a `--!native` line in each file), interpreted (`--interpreted`), and
    Lune (which compiles natively by default too). Each script prints its own elapsed
    milliseconds, so process start-up is not counted."""
    for script in sorted((SCRIPTS / "cpu").glob("*.luau")):
        for _ in range(runs):
            contenders = [(name, cmd + [str(script)]) for name, cmd in luau_contenders()
                          if name != "lunet (baseline)"]
            contenders.insert(1, ("lunet --interpreted", [LUNET, "run", "--interpreted", str(script)]))
            # An older build interprets by default: compared natively, or not at all.
            if BASELINE and baseline_has_native():
                contenders.insert(2, ("lunet (baseline) --native", [BASELINE, "run", "--native", str(script)]))
            for name, cmd in contenders:
                millis, _ = run_client(cmd)
                record("native", script.stem, name, millis, "ms")


def bench_tcp(runs, quick):
    megabytes = "64" if quick else "256"
    port = free_port()
    with Server([str(RELEASE / "tcp-echo"), "server", str(port)], port):
        for _ in range(runs):
            contenders = [(n, c + [str(SCRIPTS / "tcp_throughput.luau"), str(port), megabytes]) for n, c in luau_contenders()]
            if NODE:
                contenders.append(("node net", [NODE, str(NODE_DIR / "tcp_client.js"), str(port), megabytes]))
            contenders.append(("tokio (ceiling)", [str(RELEASE / "tcp-echo"), "client", str(port), megabytes]))
            for name, cmd in contenders:
                rate, _ = run_client(cmd)
                record("tcp", "echo throughput, 64 KiB writes", name, rate, "MB/s")


def bench_sockets(runs, quick):
    """Servers compared under one load generator (`sockets tcp-load` / `udp-load`):
    many short TCP connections (accept, echo 32 bytes, close) and UDP echo round
    trips. Lune has no TCP or UDP server, so it is not a contender."""
    seconds = "2" if quick else "8"
    load = str(RELEASE / "sockets")
    kinds = [
        ("tcp", "TCP accept + echo, 32 short connections at a time", "conn/s", wait_port),
        ("udp", "UDP echo round trips, 32 in flight", "round trips/s", wait_udp),
    ]
    for kind, scenario, unit, wait in kinds:
        # (A --baseline build may predate listeners and UDP: it is left out.)
        servers = [("lunet", [LUNET, "run", str(SCRIPTS / f"sockets_{kind}_echo.luau")])]
        if NODE:
            servers.append((f"node {'net' if kind == 'tcp' else 'dgram'}", [NODE, str(NODE_DIR / f"sockets_{kind}_echo.js")]))
        servers.append(("tokio (ceiling)", [load, f"{kind}-server"]))
        for _ in range(runs):
            for name, cmd in servers:
                port = free_port()
                with Server(cmd + [str(port)], port, wait=wait):
                    rate, _ = run_client([load, f"{kind}-load", str(port), seconds, "32"])
                    record("sockets", scenario, name, rate, unit)


def run_cases(cmd, timeout=300):
    """Runs a benchmark pinned to CPU 0; returns its "<case> <value>" lines as a dict."""
    out = subprocess.run(pinned(SERVER_CPU, cmd), capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {out.stderr[-500:]}")
    cases = {}
    for line in out.stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        cases[name] = float(value)
    return cases


def bench_json(runs, quick):
    titles = {
        "small-encode": "encode 50-item list (3.5 KB)",
        "small-decode": "decode 50-item list (3.5 KB)",
        "big-encode": "encode 5,000 records (1.2 MB)",
        "big-decode": "decode 5,000 records (1.2 MB)",
        "small-decode-heap": "decode 50-item list, the 1.2 MB document alive",
        "big-floor": "build the 5,000 records without parsing (a decoder's floor)",
    }
    for _ in range(runs):
        contenders = [(n, c + [str(SCRIPTS / "json_codec.luau")]) for n, c in luau_contenders()]
        if NODE:
            contenders.append(("node", [NODE, str(NODE_DIR / "json_codec.js")]))
        contenders.append(("serde_json structs (ceiling)", [str(RELEASE / "json-ceiling")]))
        for name, cmd in contenders:
            for case, us in run_cases(cmd).items():
                record("json", titles.get(case, case), name, us, "us/op")


def bench_workers(runs, quick):
    """`--workers 1` against `--workers 2`: a CPU-bound handler (~1-2 ms of Luau per
    request) and hello world. One worker is pinned to CPU 0; two workers get CPUs 0
    and 1, and wrk (pinned to CPU 1) shares a core with the second worker: this
    machine has two cores, so the hello-world figure for two workers is bounded by
    the load generator, not by Lunet."""
    seconds = 3 if quick else 10
    scenarios = [("CPU-bound handler", "serve_cpu.luau"), ("hello world", "serve_hello.luau")]
    for title, script in scenarios:
        for _ in range(runs):
            for workers, cpus in [(1, SERVER_CPU), (2, f"{SERVER_CPU},{LOAD_CPU}")]:
                port = free_port()
                cmd = [LUNET, "run", "--workers", str(workers), str(SCRIPTS / script), str(port)]
                with Server(cmd, port, cpus=cpus) as server:
                    before = server.cpu_seconds()
                    rps, p99, total = wrk(f"http://127.0.0.1:{port}/", seconds, connections=50)
                    cpu_us = (server.cpu_seconds() - before) / max(total, 1) * 1e6
                name = "lunet" if workers == 2 else "lunet 1 worker"
                record("workers", f"{title} (lunet = 2 workers)", name, rps, "req/s")
                record("workers", f"{title} server CPU/request", name, cpu_us, "us")


def bench_streaming(runs, quick):
    """Streamed bodies (issue 17): 1 GiB read with `net.http.stream` + `read()` from a
    raw hyper streaming server, against Node's fetch reader and a raw hyper client; 1
    GiB served by a function body (64 KiB chunks), read by a raw hyper client, against
    Node's res.write and raw hyper; and time to first byte of a streamed response."""
    total = (256 << 20) if quick else (1 << 30)
    mib = total >> 20
    reader = str(RELEASE / "stream-client")
    port = free_port()
    # Lune has neither `net.http.stream` nor function bodies, and an older build
    # (--baseline) may have no streaming to compare: both left out.
    luau = [(n, c) for n, c in luau_contenders() if n == "lunet"]
    with Server([str(RELEASE / "stream-server"), str(port)], port):
        url = f"http://127.0.0.1:{port}/?n={total}&chunk=65536"
        for _ in range(runs):
            contenders = [(n, c + [str(SCRIPTS / "stream_read.luau"), url]) for n, c in luau]
            if NODE:
                contenders.append(("node fetch", [NODE, str(NODE_DIR / "stream.js"), "read", url]))
            contenders.append(("hyper client (ceiling)", [reader, "read", url]))
            # What any Luau runtime must add: each chunk made a Luau string (hashed
            # and interned by Luau), the ceiling for `read()`.
            contenders.append(("hyper client + Luau strings", [reader, "read-luau", url]))
            for name, cmd in contenders:
                rate, peak_kb = run_client(cmd)
                record("streaming", f"read {mib} MiB (client)", name, rate, "MiB/s")
                record("streaming", f"read {mib} MiB: peak RSS", name, peak_kb / 1024, "MiB")
    for _ in range(runs):
        contenders = [(n, c + [str(SCRIPTS / "serve_stream.luau")]) for n, c in luau]
        if NODE:
            contenders.append(("node res.write", [NODE, str(NODE_DIR / "stream.js"), "serve"]))
        contenders.append(("hyper (ceiling)", [str(RELEASE / "stream-server")]))
        for name, cmd in contenders:
            port = free_port()
            with Server(cmd + [str(port)], port) as server:
                rate, _ = run_client([reader, "read", f"http://127.0.0.1:{port}/?n={total}&chunk=65536"])
                record("streaming", f"serve {mib} MiB (function body)", name, rate, "MiB/s")
                record("streaming", f"serve {mib} MiB: server peak RSS", name, server.peak_rss_kb() / 1024, "MiB")
                ttfb, _ = run_client([reader, "ttfb", f"http://127.0.0.1:{port}/?n=16&chunk=16", "500" if quick else "2000"])
                record("streaming", "time to first byte (lower is better)", name, ttfb, "us")


GROUPS = {
    "startup": bench_startup,
    "serve": bench_serve,
    "memory": bench_memory,
    "ws-server": bench_ws_server,
    "request": bench_request,
    "ws-client": bench_ws_client,
    "tcp": bench_tcp,
    "sockets": bench_sockets,
    "native": bench_native,
    "json": bench_json,
    "workers": bench_workers,
    "streaming": bench_streaming,
    "tls": bench_tls,
}


def report(groups=None):
    lines = []
    for group, scenarios in RESULTS.items():
        if groups and group not in groups:
            continue
        lines.append(f"\n## {group}")
        for scenario, contenders in scenarios.items():
            medians = {n: statistics.median(c["values"]) for n, c in contenders.items()}
            unit = next(iter(contenders.values()))["unit"]
            base = medians.get("lunet")
            lines.append(f"  {scenario} ({unit}, median of {len(next(iter(contenders.values()))['values'])})")
            for name, value in medians.items():
                ratio = f"  lunet/{name} = {base / value:.2f}x" if base and name != "lunet" and value else ""
                lines.append(f"    {name:24s} {value:12.1f}{ratio}")
    text = "\n".join(lines)
    print(text, flush=True)
    if groups:
        return
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{stamp}.json").write_text(json.dumps(RESULTS, indent=2))
    (out / f"{stamp}.txt").write_text(text + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(GROUPS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--baseline",
        help="another lunet binary (an older build) to run beside this one, for before/after ratios",
    )
    args = parser.parse_args()
    global BASELINE
    BASELINE = args.baseline
    if not Path(LUNET).exists():
        sys.exit("build first: cargo build --release --workspace")
    print(f"lunet: {LUNET}\nlune: {LUNE or 'not installed (cargo install lune)'}\nnode: {NODE or 'missing'}"
          f"{'' if HAS_WS else ' (ws not installed: npm install in bench/node)'}")
    for name in args.only or list(GROUPS):
        print(f"running {name} ...", flush=True)
        GROUPS[name](1 if args.quick else args.runs, args.quick)
        report([name])
    report()


if __name__ == "__main__":
    main()
