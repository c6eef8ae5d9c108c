#!/usr/bin/env bash
# The fleet's numbers (issue 11), not run by CI:
#
#   tests/bench/fleet.sh                      # everything, 20 rounds of each fault
#   BOSUN_BENCH_ROUNDS=5 tests/bench/fleet.sh faults
#   BOSUN_BENCH_FAULTS=partition,db-pause tests/bench/fleet.sh faults
#   tests/bench/fleet.sh fanout idle
#
# faults  3 bosun peers, each PID 1 of its own PID namespace and in its own network
#         namespace (veth to a bridge; PostgreSQL 15 on the bridge's address), with
#         the DEFAULT lease_ttl/renew_every, and BOSUN_BENCH_ROUNDS (20) rounds each of:
#         SIGKILL of the holder, the holder's link cut (then restored), the database
#         SIGSTOPped for lease_ttl + renew_every + 1 s (then SIGCONT), the database
#         restarted (immediate shutdown, 1 s down). Prints per round the failover, the
#         gap from the old copy's stop to the new one's start, how long before its
#         lease's expiry (database clock) the old copy was dead, and the overlap of two
#         copies measured from the singleton's own start/beat/stop log (goal: 0 ms).
# fanout  `ctl fleet run` of a no-op on-demand task over 3 and over 50 peers (root
#         namespace, loopback; max_connections sized for them): time until every ack.
# idle    statements and transactions per peer per minute at idle (pg_stat_statements,
#         pg_stat_database), and each bosun's utime+stime over 20 s.
#
# Root needed (unshare, ip netns). The numbers are noisy when the machine is busy:
# each part prints the load average next to them. Uses the debug build of the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(faults fanout idle)
for part in "${parts[@]}"; do
    case "$part" in
        faults) name=bench_faults_default_timings ;;
        fanout) name=bench_fan_out_3_and_50_peers ;;
        idle) name=bench_idle_cost_default_timings ;;
        *) echo "unknown part $part (faults, fanout, idle)" >&2; exit 2 ;;
    esac
    echo "== $part ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
    cargo test -j2 -q -p bosun --test fleet_net "$name" -- --ignored --exact --nocapture --test-threads=1
done
