#!/usr/bin/env bash
# bosun and its peers side by side, in one go (issue 12): supervisord, s6, runit,
# Horust, circus, pm2 and a plain shell, N = 100, 1000 and 5000 services.
#
#   tests/bench/peers.sh                    # build bosun (release), install peers, run
#   BOSUN_BIN=target/release/bosun tests/bench/peers.sh   # reuse a binary
#
# Peers: Debian's supervisor, s6 and runit (apt-get), Horust (`cargo install
# --locked horust`, skipped when ~/.cargo/bin/horust exists), circus in a venv
# under ~/.cache/bosun/circus-venv, pm2 under ~/.cache/bosun/pm2. Knobs
# (tests/bench/peers.py): BENCH_SIZES, BENCH_PEERS, BENCH_IDLE_SECS,
# BENCH_REPEATS, BENCH_RESPAWNS, BENCH_STATUS_RUNS, BENCH_BIG_SECS.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=~/.cache/bosun
need_apt=()
command -v supervisord >/dev/null || need_apt+=(supervisor)
command -v s6-svscan >/dev/null || need_apt+=(s6)
command -v runsvdir >/dev/null || need_apt+=(runit)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
[ -x ~/.cargo/bin/horust ] || command -v horust >/dev/null || cargo install --locked horust -j2
if [ ! -x "$CACHE/circus-venv/bin/circusd" ]; then
    python3 -m venv "$CACHE/circus-venv" && "$CACHE/circus-venv/bin/pip" install -q circus
fi
[ -x "$CACHE/pm2/node_modules/.bin/pm2" ] || { mkdir -p "$CACHE/pm2" && npm install -s --prefix "$CACHE/pm2" pm2; }
if [ -z "${BOSUN_BIN:-}" ]; then
    cargo build --release -q -p bosun
fi
export BOSUN_BIN=$(realpath "${BOSUN_BIN:-target/release/bosun}")
# 5000 units hold 10000 pipe ends in bosun (and as many fds in some peers).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 tests/bench/peers.py
