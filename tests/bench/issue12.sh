#!/usr/bin/env bash
# Issue 12's benchmark in one go: bosun against its peers (tests/bench/peers.sh:
# supervisord, s6, runit, Horust, circus, pm2 and the plain shell at 100, 1000 and
# 5000 services, with s6-svstat and sv status for the status column), the snapshot
# part against `aws s3 cp` on Garage (tests/bench/snapshot.sh), and the stop of the
# example with a 1 GiB PostgreSQL against the docassemble-style shell
# (tests/bench/pgstop.sh). One release binary for all three; each part prints its own
# tables, with the load next to them; the README's "Issue 12's goals" table is made
# from them.
#
#   tests/bench/issue12.sh                      # ~45 min: builds bosun (release), runs all
#   BOSUN_BIN=target/release/bosun tests/bench/issue12.sh
#   BENCH_PARTS="peers snapshot" tests/bench/issue12.sh   # a subset
#
# The parts' own knobs pass through (BENCH_SIZES, BENCH_PEERS, BENCH_RUNS, ...);
# BENCH_RUNS defaults to 3 here for the snapshot and stop parts. Root, podman + runc
# (pgstop), Garage in ~/.cargo/bin (snapshot, pgstop; built if missing by the parts).
# The output also goes to BENCH_LOG (default /tmp/bosun-issue12-DATE.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
PARTS=${BENCH_PARTS:-peers snapshot pgstop}
LOG=${BENCH_LOG:-/tmp/bosun-issue12-$(date -u +%Y%m%dT%H%M%SZ).log}
if [ -z "${BOSUN_BIN:-}" ]; then
    cargo build --release -q -p bosun
fi
export BOSUN_BIN=$(realpath "${BOSUN_BIN:-target/release/bosun}")
export BENCH_RUNS=${BENCH_RUNS:-3}

part() {
    local name=$1
    shift
    echo
    echo "######## $name: $* (load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%SZ))"
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    echo "######## $name: exit $rc after $((SECONDS - t0)) s (load $(cut -d' ' -f1-3 /proc/loadavg))"
    return "$rc"
}

status=0
{
    echo "bosun issue 12 benchmark: $BOSUN_BIN ($("$BOSUN_BIN" --version)), $(nproc) CPUs, parts: $PARTS"
    failed=""
    for p in $PARTS; do
        case $p in
            peers) part peers tests/bench/peers.sh || failed="$failed peers" ;;
            snapshot) part snapshot env BENCH_REFERENCE="${BENCH_REFERENCE:-0}" tests/bench/snapshot.sh || failed="$failed snapshot" ;;
            pgstop) part pgstop tests/bench/pgstop.sh || failed="$failed pgstop" ;;
            *) echo "unknown part '$p' (peers, snapshot, pgstop)"; failed="$failed $p" ;;
        esac
    done
    echo
    if [ -n "$failed" ]; then
        echo "######## done; failed parts:$failed (their output is above)"
    else
        echo "######## done: every part ran"
    fi
    [ -z "$failed" ]
} 2>&1 | tee "$LOG" || status=$?
echo "(all of it is in $LOG)"
exit "$status"
