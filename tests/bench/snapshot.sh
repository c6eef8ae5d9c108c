#!/usr/bin/env bash
# bosun's snapshot throughput and memory against `aws s3 cp`, same machine, same Garage
# footing.
#
#   tests/bench/snapshot.sh
#
# Garage (default, BENCH_FRESH_GARAGE=1): before each side's up the script restarts its
# own Garage with empty meta and data dirs (tests/support/garage.sh fresh), so that each
# up is the first write that Garage sees and neither side inherits the background work of
# the other's writes (on 2 cores Garage's CPU per upload grew with the writes before it,
# and the upload ratio with it). Each side's down then reads the object its own up just
# stored, with nothing else written in between. Before every timed transfer the script
# waits until Garage is idle (< 0.02 CPU-s in 0.5 s, at most 30 s). Runs alternate which
# side goes first (run 1 bosun, run 2 aws, ...), so that an order effect shows in the
# table. Garage's pid changes with each restart; its CPU is read from the pid serving the
# transfer. BENCH_FRESH_GARAGE=0: the old way, one Garage for everything, bosun first.
#
# 1. bosun up: bosun (release build, a plain process) supervises one `sleep` with a
#    [service.data.backup] whose dump is `cat PAYLOAD`; on SIGTERM it streams that into
#    the S3 store (zstd + sha256, multipart) and commits the snapshot. Timed from the
#    "dumping its data" log line to "snapshot committed"; bosun's peak RSS (VmHWM).
# 2. bosun down: a second bosun with a fresh state_dir and the same store restores it;
#    its `load` is `cat > /dev/null`. Timed from "verifying its data" to "loaded" (the
#    verifying pass and the loading pass); peak
#    RSS read at the "loaded" line. Then its SIGTERM backs the payload up again (shown
#    as "bosun up #2", not in the table).
# 3. `aws s3 cp PAYLOAD s3://…` and `aws s3 cp s3://… /dev/null` (awscli's defaults: 10
#    concurrent requests, 8 MiB parts; /dev/null is written in order, no temp file),
#    same credentials and region, wall clock of the whole command.
# 4. Reference: openssl sha256, zstd -3 -T1, zstd -d and a cat pipe on the same payload,
#    and one plain GET stream from Garage with curl (BENCH_REFERENCE=0 skips them; in
#    fresh mode the object is put again into a fresh Garage first): what the per-byte
#    work bosun does costs on this machine with stock tools.
#
# Runs steps 1-3 BENCH_RUNS times (default 2; in fresh mode 1-2 on one fresh Garage and 3
# on another) and prints a row per run and direction with the side that went first,
# bosun's, aws's and Garage's CPU seconds and the load, then the medians, with the
# targets (issue 12: up >= 1.0x, down >= 1.5x aws s3 cp, peak RSS <= 64 MB); a missed
# target is printed, not failed. Exits non-zero when a step fails. Every wait
# is bounded (BENCH_TIMEOUT seconds per transfer, default 900).
#
# Environment:
#   BENCH_BYTES        payload size (default 1073741824 = 1 GiB); from /dev/urandom,
#                      made once and cached as /tmp/bosun-bench-payload-BYTES.bin
#   BOSUN_BIN          bosun binary (default: cargo build --release -p bosun, then
#                      target/release/bosun, or $CARGO_TARGET_DIR/release/bosun)
#   BENCH_FRESH_GARAGE 1 (default): a fresh Garage per side, as above, in
#                      ${BENCH_GARAGE_DIR:-/tmp/garage-bench-fresh} on ports 43910/43911/
#                      43913 (GARAGE_S3_PORT/GARAGE_RPC_PORT/GARAGE_ADMIN_PORT override);
#                      the script starts and stops that Garage itself, refuses a dir with
#                      a Garage running in it, and wipes only a dir it marked as its own
#                      (.bosun-bench-fresh). 0: one Garage for all transfers:
#                      tests/support/garage.sh start ${BENCH_GARAGE_DIR:-/tmp/garage-dev}
#                      (idempotent: reuses the one running there; left running)
#   BENCH_ALTERNATE    1: even runs go aws first (default: 1 in fresh mode, 0 otherwise)
#   BOSUN_GARAGE_ENV   env file of a running Garage (as written by garage.sh): use that
#                      one; it cannot be restarted, so this means BENCH_FRESH_GARAGE=0
#   BENCH_KEEP=1       keep the work dir (logs, configs) and the objects in the bucket
#                      (fresh mode: those of the last Garage, in its stopped data dir)
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
FRESH=${BENCH_FRESH_GARAGE:-1}
[[ $FRESH == 0 || $FRESH == 1 ]] || { echo "BENCH_FRESH_GARAGE must be 0 or 1" >&2; exit 2; }
if [[ -n ${BOSUN_GARAGE_ENV:-} && $FRESH == 1 ]]; then
    log "note: BOSUN_GARAGE_ENV names a Garage this script did not start and cannot restart:" \
        "one Garage for all transfers (as BENCH_FRESH_GARAGE=0)"
    FRESH=0
fi
ALTERNATE=${BENCH_ALTERNATE:-$FRESH}
[[ $ALTERNATE == 0 || $ALTERNATE == 1 ]] || { echo "BENCH_ALTERNATE must be 0 or 1" >&2; exit 2; }
GARAGE_DIR=""
GARAGE_OURS=0 # 1 once this script may have a Garage of its own running (fresh mode)
# shellcheck disable=SC2317 # called from the EXIT trap
stop_our_garage() {
    [[ $GARAGE_OURS == 1 ]] || return 0
    # Only the server in our own dir: garage.sh stop ends the pid in its pidfile.
    timeout 60 tests/support/garage.sh stop "$GARAGE_DIR" >/dev/null 2>&1 ||
        echo "could not stop the Garage in $GARAGE_DIR: tests/support/garage.sh stop $GARAGE_DIR" >&2
}
trap stop_our_garage EXIT # until cleanup() below takes over
trap 'exit 130' INT TERM
if [[ -n ${BOSUN_GARAGE_ENV:-} ]]; then
    GARAGE_ENV=$BOSUN_GARAGE_ENV
else
    if ! command -v garage >/dev/null 2>&1 && [[ ! -x $HOME/.cargo/bin/garage && -z ${GARAGE_BIN:-} ]]; then
        log "building garage 2.5.0 (once; cached in ~/.cargo/bin)"
        nice cargo install -q --locked garage@2.5.0 >&2
    fi
    if [[ $FRESH == 1 ]]; then
        GARAGE_DIR=${BENCH_GARAGE_DIR:-/tmp/garage-bench-fresh}
        # Ports of its own, so that a dev Garage on the defaults (43900...) can keep running.
        export GARAGE_S3_PORT=${GARAGE_S3_PORT:-43910} GARAGE_RPC_PORT=${GARAGE_RPC_PORT:-43911} \
            GARAGE_ADMIN_PORT=${GARAGE_ADMIN_PORT:-43913}
        # Its meta and data get wiped: only a new or empty dir, or one this script marked.
        if [[ -e $GARAGE_DIR && ! -e $GARAGE_DIR/.bosun-bench-fresh ]] &&
            [[ -n $(ls -A "$GARAGE_DIR" 2>/dev/null) ]]; then
            echo "$GARAGE_DIR is not empty and not a snapshot.sh fresh-Garage dir (no .bosun-bench-fresh):" \
                "its data would be wiped; pick another BENCH_GARAGE_DIR" >&2
            exit 2
        fi
        if tests/support/garage.sh status "$GARAGE_DIR" 2>/dev/null; then
            echo "a Garage is running in $GARAGE_DIR (pid $(cat "$GARAGE_DIR/garage.pid")): another snapshot.sh?" \
                "If it is a leftover: tests/support/garage.sh stop $GARAGE_DIR" >&2
            exit 2
        fi
        mkdir -p "$GARAGE_DIR"
        : >"$GARAGE_DIR/.bosun-bench-fresh"
        log "fresh Garage per side in $GARAGE_DIR (127.0.0.1:$GARAGE_S3_PORT)"
        GARAGE_OURS=1
        # The env file (endpoint, key) stays the same across `garage.sh fresh`.
        timeout 180 tests/support/garage.sh fresh "$GARAGE_DIR" >&2 || {
            echo "could not start a Garage in $GARAGE_DIR (log: $GARAGE_DIR/garage.log)" >&2
            exit 1
        }
    else
        GARAGE_DIR=${BENCH_GARAGE_DIR:-/tmp/garage-dev}
        log "Garage in $GARAGE_DIR"
        tests/support/garage.sh start "$GARAGE_DIR" >&2
    fi
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
# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    if [[ -n $PY_PID ]] && kill -0 "$PY_PID" 2>/dev/null; then
        kill -TERM "$PY_PID" 2>/dev/null || true # it kills its bosun processes
        for _ in $(seq 1 100); do kill -0 "$PY_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PY_PID" 2>/dev/null || true
    fi
    stop_our_garage
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        if [[ $GARAGE_OURS == 1 ]]; then
            echo "kept $WORK and the last Garage's data in $GARAGE_DIR (stopped; start it with" \
                "tests/support/garage.sh start $GARAGE_DIR), s3://$BUCKET/$PREFIX/" >&2
        else
            echo "kept $WORK and s3://$BUCKET/$PREFIX/" >&2
        fi
    else
        if [[ $GARAGE_OURS == 1 ]]; then
            rm -rf "${GARAGE_DIR:?}/meta" "${GARAGE_DIR:?}/data" # 1-2 GiB of objects, nobody's but ours
        else
            timeout 300 aws s3 rm --recursive --only-show-errors "s3://$BUCKET/$PREFIX/" \
                --endpoint-url "$S3ENDPOINTURL" --region "${S3REGION:-garage}" >/dev/null 2>&1 || true
        fi
        if [[ $STATUS == 0 ]]; then rm -rf "$WORK"; else echo "logs kept in $WORK" >&2; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "bosun $BOSUN, store s3://$BUCKET/$PREFIX/ at $S3ENDPOINTURL"
python3 tests/bench/snapshot.py \
    --bosun "$BOSUN" --payload "$PAYLOAD" --bytes "$BYTES" --work "$WORK" \
    --bucket "$BUCKET" --prefix "$PREFIX" --garage-pid "$GARAGE_PID" \
    --fresh "$FRESH" --alternate "$ALTERNATE" --garage-dir "${GARAGE_DIR:-}" \
    --garage-sh "$ROOT/tests/support/garage.sh" \
    --timeout "$TIMEOUT" --reference "${BENCH_REFERENCE:-1}" --runs "${BENCH_RUNS:-2}" &
PY_PID=$!
set +e
wait "$PY_PID"
STATUS=$?
set -e
PY_PID=""
exit "$STATUS"
