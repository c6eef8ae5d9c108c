#!/usr/bin/env bash
# `bosun ctl status` against `supervisorctl status`, same machine, same run.
#
#   tests/bench/ctl_status.sh
#
# 1. bosun (release build, as PID 1 under unshare) with 100 units (`sleep`):
#    `bosun ctl status` timed CTL_RUNS times (default 200).
# 2. supervisord with the same 100 programs on a private unix socket:
#    `supervisorctl status` timed SUP_RUNS times (default 50: it is ~500x slower,
#    and 200 runs would take minutes).
# 3. bosun with 1000 units: `bosun ctl status` CTL_RUNS times.
#
# Each run is one posix_spawn + waitpid from a small Python timer, stdout to
# /dev/null; the timer's own cost (spawning /bin/true) is measured and printed
# too, and the "net" columns subtract it. Every wait is bounded. Root needed
# (unshare). BOSUN_BIN overrides the binary (default: target/release/bosun).
set -euo pipefail
cd "$(dirname "$0")/../.."

CTL_RUNS=${CTL_RUNS:-200}
SUP_RUNS=${SUP_RUNS:-50}
BOSUN=${BOSUN_BIN:-target/release/bosun}

command -v supervisord >/dev/null || { apt-get update -qq && apt-get install -y -qq supervisor >/dev/null; }
if [ -z "${BOSUN_BIN:-}" ]; then
    cargo build --release -q -p bosun
fi
BOSUN=$(realpath "$BOSUN")
# 1000 units hold 2000 pipe ends in bosun; give it room whatever the shell had.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/bosun-bench-ctl.XXXXXX)
BOSUN_PID=""
SUP_CONF=""
cleanup() {
    # unshare ignores SIGTERM while it waits; SIGKILL it and --kill-child
    # takes bosun (and with it the whole pid namespace) down.
    if [ -n "$BOSUN_PID" ]; then kill -KILL "$BOSUN_PID" 2>/dev/null || true; wait "$BOSUN_PID" 2>/dev/null || true; fi
    if [ -n "$SUP_CONF" ] && [ -f "$WORK/sup/supervisord.pid" ]; then
        kill "$(cat "$WORK/sup/supervisord.pid")" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# timer RUNS CMD ARGS... -> "median_ms p95_ms"
timer() {
    python3 - "$@" <<'PY'
import os, shutil, statistics, sys, time
n = int(sys.argv[1])
argv = sys.argv[2:]
argv[0] = shutil.which(argv[0]) or argv[0]
null = os.open(os.devnull, os.O_WRONLY)
acts = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
times = []
for _ in range(n):
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=acts)
    _, status = os.waitpid(pid, 0)
    times.append((time.perf_counter_ns() - t) / 1e6)
    if status != 0:
        sys.exit(f"{' '.join(argv)} failed with status {status}")
times.sort()
p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
print(f"{statistics.median(times):.3f} {p95:.3f}")
PY
}

# start_bosun UNITS: bosun as PID 1 with UNITS sleeping services; waits until all are ready.
start_bosun() {
    local n=$1 dir="$WORK/bosun-$1"
    mkdir -p "$dir"
    {
        printf '[bosun]\nstate_dir = "%s/state"\ncontrol_socket = "%s/ctl.sock"\n' "$dir" "$dir"
        for i in $(seq 1 "$n"); do
            printf '\n[service.u%04d]\nrun = ["sleep", "100000"]\nstart_secs = "100ms"\noutput = "null"\n' "$i"
        done
    } >"$dir/bosun.toml"
    unshare --pid --fork --mount-proc --kill-child "$BOSUN" run -c "$dir/bosun.toml" >"$dir/bosun.log" 2>&1 &
    BOSUN_PID=$!
    SOCK="$dir/ctl.sock"
    local i
    for i in $(seq 1 600); do
        if "$BOSUN" ctl --socket "$SOCK" health >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "bosun with $n units did not become healthy in 120 s:" >&2
    tail -20 "$dir/bosun.log" >&2
    exit 1
}

stop_bosun() {
    "$BOSUN" ctl --socket "$SOCK" shutdown >/dev/null 2>&1 || true
    local i
    for i in $(seq 1 300); do
        kill -0 "$BOSUN_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BOSUN_PID" 2>/dev/null || true
    wait "$BOSUN_PID" 2>/dev/null || true
    BOSUN_PID=""
}

start_supervisord() {
    local n=$1 dir="$WORK/sup"
    mkdir -p "$dir"
    SUP_CONF="$dir/supervisord.conf"
    {
        printf '[unix_http_server]\nfile=%s/supervisor.sock\nchmod=0700\n\n' "$dir"
        printf '[supervisord]\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nchildlogdir=%s\n\n' "$dir" "$dir" "$dir"
        printf '[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n'
        printf '[supervisorctl]\nserverurl=unix://%s/supervisor.sock\n' "$dir"
        for i in $(seq 1 "$n"); do
            printf '\n[program:u%04d]\ncommand=sleep 100000\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n' "$i"
        done
    } >"$SUP_CONF"
    supervisord -c "$SUP_CONF"
    local i running
    for i in $(seq 1 300); do
        running=$(supervisorctl -c "$SUP_CONF" status 2>/dev/null | grep -c RUNNING || true)
        [ "$running" -eq "$n" ] && return 0
        sleep 0.2
    done
    echo "supervisord did not run $n programs in 60 s" >&2
    exit 1
}

stop_supervisord() {
    supervisorctl -c "$SUP_CONF" shutdown >/dev/null 2>&1 || true
    local i
    for i in $(seq 1 300); do
        [ -S "$WORK/sup/supervisor.sock" ] || break
        sleep 0.1
    done
}

echo "timer overhead (spawn /bin/true) ..." >&2
read -r base_med base_p95 < <(timer "$CTL_RUNS" /bin/true)

echo "bosun, 100 units ..." >&2
start_bosun 100
# Sanity: the table has 100 rows.
rows=$("$BOSUN" ctl --socket "$SOCK" status | tail -n +3 | wc -l)
[ "$rows" -eq 100 ] || { echo "expected 100 rows, got $rows" >&2; exit 1; }
read -r b100_med b100_p95 < <(timer "$CTL_RUNS" "$BOSUN" ctl --socket "$SOCK" status)
read -r b100j_med b100j_p95 < <(timer "$CTL_RUNS" "$BOSUN" ctl --socket "$SOCK" status --json)
stop_bosun

echo "supervisord, 100 programs ..." >&2
start_supervisord 100
read -r s100_med s100_p95 < <(timer "$SUP_RUNS" supervisorctl -c "$SUP_CONF" status)
stop_supervisord

echo "bosun, 1000 units ..." >&2
start_bosun 1000
read -r b1000_med b1000_p95 < <(timer "$CTL_RUNS" "$BOSUN" ctl --socket "$SOCK" status)
stop_bosun

python3 - "$base_med" "$base_p95" "$CTL_RUNS" "$SUP_RUNS" \
    "$b100_med" "$b100_p95" "$b100j_med" "$b100j_p95" "$s100_med" "$s100_p95" "$b1000_med" "$b1000_p95" <<'PY'
import sys
a = sys.argv[1:]
base, base95 = float(a[0]), float(a[1])
ctl_runs, sup_runs = a[2], a[3]
rows = [
    ("bosun ctl status", 100, ctl_runs, float(a[4]), float(a[5])),
    ("bosun ctl status --json", 100, ctl_runs, float(a[6]), float(a[7])),
    ("supervisorctl status", 100, sup_runs, float(a[8]), float(a[9])),
    ("bosun ctl status", 1000, ctl_runs, float(a[10]), float(a[11])),
]
ref = rows[0][3]
print(f"timer overhead (spawn+wait /bin/true): median {base:.3f} ms, p95 {base95:.3f} ms")
print(f"| {'command':<26} | {'units':>5} | {'runs':>4} | {'median ms':>9} | {'p95 ms':>8} | {'net median ms':>13} | {'x bosun (100)':>13} |")
print(f"|{'-'*28}|{'-'*7}|{'-'*6}|{'-'*11}|{'-'*10}|{'-'*15}|{'-'*15}|")
for name, units, runs, med, p95 in rows:
    print(f"| {name:<26} | {units:>5} | {runs:>4} | {med:>9.3f} | {p95:>8.3f} | {max(0.0, med - base):>13.3f} | {med / ref:>12.1f}x |")
sup = rows[2][3]
print(f"supervisorctl / bosun ctl (100 units, median): {sup / ref:.0f}x")
PY
