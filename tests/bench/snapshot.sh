#!/usr/bin/env bash
# bosun's snapshot throughput and memory against `aws s3 cp`, same machine, same Garage,
# one run.
#
#   tests/bench/snapshot.sh
#
# 1. bosun up: bosun (release build, a plain process) supervises one `sleep` with a
#    [service.data.backup] whose dump is `cat PAYLOAD`; on SIGTERM it streams that into
#    the S3 store (zstd + sha256, multipart) and commits the snapshot. Timed from the
#    "dumping its data" log line to "snapshot committed"; bosun's peak RSS (VmHWM).
# 2. bosun down: a second bosun with a fresh state_dir and the same store restores it;
#    its `load` is `cat > /dev/null`. Timed from "loading its data" to "loaded"; peak
#    RSS read at the "loaded" line. Then its SIGTERM backs the payload up again (shown
#    as "bosun up #2", not in the table).
# 3. `aws s3 cp PAYLOAD s3://…` and `aws s3 cp s3://… /dev/null` (awscli's defaults: 10
#    concurrent requests, 8 MiB parts; /dev/null is written in order, no temp file),
#    same credentials and region, wall clock of the whole command.
# 4. Reference: openssl sha256, zstd -3 -T1, zstd -d and a cat pipe on the same payload,
#    and one plain GET stream from Garage with curl (BENCH_REFERENCE=0 skips them):
#    what the per-byte work bosun does costs on this machine with stock tools.
#
# Runs steps 1-3 BENCH_RUNS times (default 2) and prints a row per run with bosun's, aws's
# and Garage's CPU seconds and the load, then the medians, with the targets (issue 12:
# up >= 1.0x, down >= 1.5x aws s3 cp, peak RSS <= 64 MB);
# a missed target is printed, not failed. Exits non-zero when a step fails. Every wait
# is bounded (BENCH_TIMEOUT seconds per transfer, default 900).
#
# Environment:
#   BENCH_BYTES        payload size (default 1073741824 = 1 GiB); from /dev/urandom,
#                      made once and cached as /tmp/bosun-bench-payload-BYTES.bin
#   BOSUN_BIN          bosun binary (default: cargo build --release -p bosun, then
#                      target/release/bosun, or $CARGO_TARGET_DIR/release/bosun)
#   BOSUN_GARAGE_ENV   env file of a running Garage (as written by garage.sh); default:
#                      tests/support/garage.sh start ${BENCH_GARAGE_DIR:-/tmp/garage-dev}
#                      (idempotent: reuses the one running there)
#   BENCH_KEEP=1       keep the work dir (logs, configs) and the objects in the bucket
#   BENCH_TIMEOUT      seconds per transfer before the step counts as failed
#   BENCH_REFERENCE=0  skip the reference timings
#
# To see what the build profile costs, build another binary and point BOSUN_BIN at it:
#   CARGO_PROFILE_RELEASE_OPT_LEVEL=3 CARGO_TARGET_DIR=/tmp/t-o3 cargo build --release -p bosun
#   BOSUN_BIN=/tmp/t-o3/release/bosun tests/bench/snapshot.sh
# The machine's other load moves these numbers a lot (2 shared cores, and Garage itself
# spends CPU on every byte): the table prints the load average; compare runs with care.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

BYTES=${BENCH_BYTES:-1073741824}
TIMEOUT=${BENCH_TIMEOUT:-900}
[[ $BYTES =~ ^[0-9]+$ && $BYTES -gt 0 ]] || { echo "BENCH_BYTES must be a positive integer" >&2; exit 2; }

log() { printf '== %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------
if ! command -v aws >/dev/null 2>&1; then
    log "installing awscli from PyPI"
    python3 -m pip install -q awscli >&2
    hash -r
    command -v aws >/dev/null 2>&1 || { echo "aws is still not on PATH after pip install awscli" >&2; exit 1; }
fi
command -v zstd >/dev/null 2>&1 || [[ ${BENCH_REFERENCE:-1} == 0 ]] || {
    apt-get update -qq && apt-get install -y -qq zstd >/dev/null
}

if [[ -n ${BOSUN_BIN:-} ]]; then
    BOSUN=$BOSUN_BIN
else
    log "cargo build --release -p bosun"
    if ! nice cargo build --release -q -p bosun; then
        echo "the workspace does not build right now; build bosun elsewhere and set BOSUN_BIN" >&2
        exit 1
    fi
    BOSUN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bosun
fi
BOSUN=$(realpath "$BOSUN")
[[ -x $BOSUN ]] || { echo "no bosun binary at $BOSUN" >&2; exit 1; }

# --- Garage --------------------------------------------------------------------------
if [[ -n ${BOSUN_GARAGE_ENV:-} ]]; then
    GARAGE_ENV=$BOSUN_GARAGE_ENV
else
    GARAGE_DIR=${BENCH_GARAGE_DIR:-/tmp/garage-dev}
    if ! command -v garage >/dev/null 2>&1 && [[ ! -x $HOME/.cargo/bin/garage && -z ${GARAGE_BIN:-} ]]; then
        log "building garage 2.5.0 (once; cached in ~/.cargo/bin)"
        nice cargo install -q --locked garage@2.5.0 >&2
    fi
    log "Garage in $GARAGE_DIR"
    tests/support/garage.sh start "$GARAGE_DIR" >&2
    GARAGE_ENV=$GARAGE_DIR/env
fi
[[ -r $GARAGE_ENV ]] || { echo "no Garage env file at $GARAGE_ENV" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$GARAGE_ENV"
set +a
: "${S3ENDPOINTURL:?not in $GARAGE_ENV}" "${AWS_ACCESS_KEY_ID:?not in $GARAGE_ENV}"
BUCKET=${BOSUN_TEST_BUCKET:-bosun-test}
GARAGE_PID=0
[[ -r $(dirname "$GARAGE_ENV")/garage.pid ]] && GARAGE_PID=$(cat "$(dirname "$GARAGE_ENV")/garage.pid")
# awscli must not pick up a profile's settings that bosun does not see.
export AWS_DEFAULT_REGION=${S3REGION:-garage}
unset AWS_PROFILE

# --- payload -------------------------------------------------------------------------
PAYLOAD=/tmp/bosun-bench-payload-$BYTES.bin
if [[ ! -f $PAYLOAD || $(stat -c %s "$PAYLOAD") -ne $BYTES ]]; then
    log "making $PAYLOAD ($BYTES bytes from /dev/urandom, once)"
    head -c "$BYTES" /dev/urandom >"$PAYLOAD.tmp.$$"
    mv "$PAYLOAD.tmp.$$" "$PAYLOAD"
fi
cat "$PAYLOAD" >/dev/null # into the page cache, so that no side pays for the disk

# --- run -----------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/bosun-bench-snapshot.XXXXXX)
PREFIX=bench-snapshot-$(date -u +%Y%m%dT%H%M%SZ)-$$
PY_PID=""
STATUS=1
cleanup() {
    trap - EXIT INT TERM
    if [[ -n $PY_PID ]] && kill -0 "$PY_PID" 2>/dev/null; then
        kill -TERM "$PY_PID" 2>/dev/null || true # it kills its bosun processes
        for _ in $(seq 1 100); do kill -0 "$PY_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PY_PID" 2>/dev/null || true
    fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "kept $WORK and s3://$BUCKET/$PREFIX/" >&2
    else
        timeout 300 aws s3 rm --recursive --only-show-errors "s3://$BUCKET/$PREFIX/" \
            --endpoint-url "$S3ENDPOINTURL" --region "${S3REGION:-garage}" >/dev/null 2>&1 || true
        if [[ $STATUS == 0 ]]; then rm -rf "$WORK"; else echo "logs kept in $WORK" >&2; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "bosun $BOSUN, store s3://$BUCKET/$PREFIX/ at $S3ENDPOINTURL"
python3 tests/bench/snapshot.py \
    --bosun "$BOSUN" --payload "$PAYLOAD" --bytes "$BYTES" --work "$WORK" \
    --bucket "$BUCKET" --prefix "$PREFIX" --garage-pid "$GARAGE_PID" \
    --timeout "$TIMEOUT" --reference "${BENCH_REFERENCE:-1}" --runs "${BENCH_RUNS:-2}" &
PY_PID=$!
set +e
wait "$PY_PID"
STATUS=$?
set -e
PY_PID=""
exit "$STATUS"
