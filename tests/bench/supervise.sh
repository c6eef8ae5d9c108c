#!/usr/bin/env bash
# bosun vs supervisord vs a plain shell, 100 services. Prints a table.
# Usage: tests/bench/supervise.sh   (BENCH_UNITS, BENCH_IDLE_SECS to change)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v supervisord >/dev/null || { apt-get update -qq && apt-get install -y -qq supervisor >/dev/null; }
cargo build --release -q -p bosun
exec python3 tests/bench/supervise.py
