#!/usr/bin/env bash
# Builds Lunet and the benchmark peers, installs what the benchmarks compare against
# when missing (wrk and hyperfine from apt, Lune from crates.io, Node's ws from npm),
# then runs bench/run.py with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
command -v wrk >/dev/null && command -v hyperfine >/dev/null || {
	apt-get update -qq && apt-get install -y -qq wrk hyperfine
}
command -v lune >/dev/null || [ -x "$HOME/.cargo/bin/lune" ] || cargo install lune --version 0.11.1 --locked
[ -d bench/node/node_modules/ws ] || (cd bench/node && npm install --silent)
exec python3 bench/run.py "$@"
