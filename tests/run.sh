#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs
# formatting, lints and every test. Usage: tests/run.sh [cargo test args...]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# Everything the tests need, installed before anything slow, so that a prerequisite
# that cannot be had stops the run in its first minute, saying what and how to get it:
# PostgreSQL 15, supervisor, util-linux, procps, curl, python3 + prometheus_client,
# Chromium, Garage (cargo install, once, ~20 min; waits for one already building), and
# for the e2e netavark + aardvark-dns (before podman's first use), podman, runc, conmon,
# debootstrap, iptables, slirp4netns. See tests/support/install.sh.
log "installing what is missing (tests/support/install.sh)"
if [ "${BOSUN_SKIP_E2E:-0}" != 1 ]; then
  tests/support/install.sh all
else
  tests/support/install.sh tests
fi
export PATH="$HOME/.cargo/bin:$PATH"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

log "cargo test"
# Garage for the S3 half of the snapshot tests, torn down on exit.
garage_dir=$(mktemp -d /tmp/bosun-garage.XXXXXX)
cleanup() { [ -x tests/support/garage.sh ] && tests/support/garage.sh stop "$garage_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT
if [ -x tests/support/garage.sh ]; then
  # Free ports, so a Garage left running by someone else cannot collide with ours.
  read -r GARAGE_S3_PORT GARAGE_RPC_PORT GARAGE_ADMIN_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
  export GARAGE_S3_PORT GARAGE_RPC_PORT GARAGE_ADMIN_PORT
  tests/support/garage.sh start "$garage_dir" >/dev/null
  export BOSUN_GARAGE_ENV="$garage_dir/env"
fi
cargo test --workspace "$@" -- --test-threads=2

# The README's demo, verbatim (cargo run --release: builds the release binary, fat LTO,
# ~3 min on 2 cores), three times as root and once as an ordinary user.
# BOSUN_SKIP_DEMO=1 skips it.
if [ "${BOSUN_SKIP_DEMO:-0}" != 1 ]; then
  log "demo: the README's demo command (tests/demo.sh)"
  tests/demo.sh
fi

# End to end: docker/example under podman + runc, with bosun as the image's
# ENTRYPOINT (root; the first run debootstraps a cached base image, ~3 min). Reuses
# the debug binary cargo test built and the Garage above. BOSUN_SKIP_E2E=1 skips it.
if [ "${BOSUN_SKIP_E2E:-0}" != 1 ]; then
  log "e2e: docker/example under podman (tests/e2e/podman.sh)"
  cargo build -q -p bosun
  BOSUN_BIN="$PWD/target/debug/bosun" tests/e2e/podman.sh
  # The same image as a fleet: sql:redis + two web:worker:cron containers (cron a
  # singleton), ctl fleet, ctl fleet run, failover on podman stop (~1 min).
  log "e2e: docker/example as a fleet under podman (tests/e2e/fleet.sh)"
  BOSUN_BIN="$PWD/target/debug/bosun" tests/e2e/fleet.sh
fi
