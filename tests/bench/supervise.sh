#!/usr/bin/env bash
# bosun vs supervisord vs a plain shell, 100 services: the quick subset of
# tests/bench/peers.sh (same script, same knobs; BENCH_SIZES to change N).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v supervisord >/dev/null || { apt-get update -qq && apt-get install -y -qq supervisor >/dev/null; }
if [ -z "${BOSUN_BIN:-}" ]; then
    cargo build --release -q -p bosun
fi
export BOSUN_BIN=$(realpath "${BOSUN_BIN:-target/release/bosun}")
export BENCH_PEERS=${BENCH_PEERS:-"bosun shell supervisord"} BENCH_SIZES=${BENCH_SIZES:-100}
exec python3 tests/bench/peers.py
