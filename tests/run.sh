#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs
# formatting, lints and every test. Usage: tests/run.sh [cargo test args...]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_pkgs+=(postgresql)
have supervisord || need_pkgs+=(supervisor)
have unshare || need_pkgs+=(util-linux)
have setpriv || need_pkgs+=(util-linux)
have python3 || need_pkgs+=(python3)
have ps || need_pkgs+=(procps)
have chromium || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# Debian starts a cluster on install; the tests run their own servers.
if have pg_lsclusters && pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_ctlcluster 15 main stop 2>/dev/null || true
fi
python3 -c 'import prometheus_client' 2>/dev/null || pip install -q prometheus_client >/dev/null 2>&1 || true

# Garage (a real S3 server) for the snapshot tests: built once, cached in ~/.cargo/bin.
if ! have garage && [ ! -x "$HOME/.cargo/bin/garage" ]; then
  log "building garage 2.5.0 (once; cached in ~/.cargo/bin)"
  cargo install --locked garage@2.5.0 >/dev/null
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

# End to end: docker/example under podman + runc, with bosun as the image's
# ENTRYPOINT (root; installs podman/runc/debootstrap if missing; the first run
# debootstraps a cached base image). Reuses the debug binary cargo test built and
# the Garage above. BOSUN_SKIP_E2E=1 skips it.
if [ "${BOSUN_SKIP_E2E:-0}" != 1 ]; then
  log "e2e: docker/example under podman (tests/e2e/podman.sh)"
  cargo build -q -p bosun
  BOSUN_BIN="$PWD/target/debug/bosun" tests/e2e/podman.sh
fi
