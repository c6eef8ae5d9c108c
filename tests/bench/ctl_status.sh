#!/usr/bin/env bash
# `bosun ctl status` against `supervisorctl status`, same machine, same run.
#
#   tests/bench/ctl_status.sh
#
# Three daemons run side by side:
#   - bosun (release build, PID 1 of its own pid namespace) with 100 units (`sleep`),
#   - supervisord with the same 100 programs on a private unix socket,
#   - bosun with 1000 units.
# Then one timer runs the clients in rounds, round-robin (bosun 100 table,
# bosun 100 --json, bosun 1000 table, /bin/true, and supervisorctl in the first
# SUP_RUNS rounds), so that load from elsewhere on the machine hits every
# command alike. CTL_RUNS rounds (default 200); supervisorctl SUP_RUNS times
# (default 50: it is ~100x slower).
#
# Each run is one posix_spawn + waitpid from a small Python timer, output to
# /dev/null. `/bin/true` measures the timer's own cost; the "net" column
# subtracts it. Every wait is bounded. Root needed (unshare). BOSUN_BIN
# overrides the binary (default: build and use target/release/bosun).
set -euo pipefail
cd "$(dirname "$0")/../.."

CTL_RUNS=${CTL_RUNS:-200}
SUP_RUNS=${SUP_RUNS:-50}

command -v supervisord >/dev/null || { apt-get update -qq && apt-get install -y -qq supervisor >/dev/null; }
if [ -z "${BOSUN_BIN:-}" ]; then
    cargo build --release -q -p bosun
fi
BOSUN=$(realpath "${BOSUN_BIN:-target/release/bosun}")
# 1000 units hold 2000 pipe ends in bosun; give it room whatever the shell had.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/bosun-bench-ctl.XXXXXX)
UNSHARE_PIDS=()
SUP_CONF=""
cleanup() {
    local p
    for p in "${UNSHARE_PIDS[@]}"; do
        # unshare ignores SIGTERM while it waits; SIGKILL it and --kill-child
        # takes bosun (and with it the whole pid namespace) down.
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ -n "$SUP_CONF" ]; then
        supervisorctl -c "$SUP_CONF" shutdown >/dev/null 2>&1 || true
        for _ in $(seq 1 100); do [ -S "$WORK/sup/supervisor.sock" ] || break; sleep 0.1; done
        if [ -f "$WORK/sup/supervisord.pid" ]; then kill "$(cat "$WORK/sup/supervisord.pid")" 2>/dev/null || true; fi
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_bosun UNITS: bosun as PID 1 with UNITS sleeping services; prints its
# socket once every unit is ready.
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
    UNSHARE_PIDS+=($!)
    for _ in $(seq 1 600); do
        if "$BOSUN" ctl --socket "$dir/ctl.sock" health >/dev/null 2>&1; then
            local rows
            rows=$("$BOSUN" ctl --socket "$dir/ctl.sock" status | tail -n +3 | wc -l)
            [ "$rows" -eq "$n" ] || { echo "bosun: expected $n rows, got $rows" >&2; exit 1; }
            return 0
        fi
        sleep 0.2
    done
    echo "bosun with $n units did not become healthy in 120 s:" >&2
    tail -20 "$dir/bosun.log" >&2
    exit 1
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
    local running
    for _ in $(seq 1 300); do
        running=$(supervisorctl -c "$SUP_CONF" status 2>/dev/null | grep -c RUNNING || true)
        [ "$running" -eq "$n" ] && return 0
        sleep 0.2
    done
    echo "supervisord did not run $n programs in 60 s" >&2
    exit 1
}

echo "starting bosun (100 units), supervisord (100 programs), bosun (1000 units) ..." >&2
start_bosun 100
start_supervisord 100
start_bosun 1000
echo "timing: $CTL_RUNS rounds ..." >&2

python3 - "$CTL_RUNS" "$SUP_RUNS" "$BOSUN" "$WORK" "$SUP_CONF" <<'PY'
import os, shutil, statistics, sys, time

rounds, sup_runs, bosun, work, sup_conf = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:]
s100, s1000 = f"{work}/bosun-100/ctl.sock", f"{work}/bosun-1000/ctl.sock"
cmds = {
    "true": ["/bin/true"],
    "b100": [bosun, "ctl", "--socket", s100, "status"],
    "b100j": [bosun, "ctl", "--socket", s100, "status", "--json"],
    "sup": [shutil.which("supervisorctl"), "-c", sup_conf, "status"],
    "b1000": [bosun, "ctl", "--socket", s1000, "status"],
}
null = os.open(os.devnull, os.O_WRONLY)
acts = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
times = {k: [] for k in cmds}

def run(key):
    argv = cmds[key]
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=acts)
    _, status = os.waitpid(pid, 0)
    times[key].append((time.perf_counter_ns() - t) / 1e6)
    # supervisorctl status exits 3 when a program is not RUNNING; all are.
    if status != 0:
        sys.exit(f"{' '.join(argv)} failed with status {status}")

for key in cmds:  # warm the page cache
    run(key)
    times[key].clear()
for i in range(rounds):
    for key in ("true", "b100", "b100j", "b1000"):
        run(key)
    if i < sup_runs:
        run("sup")

def stats(key):
    t = sorted(times[key])
    return statistics.median(t), t[min(len(t) - 1, int(len(t) * 0.95))], t[0]

base = stats("true")[0]
ref = stats("b100")[0]
print(f"timer overhead (posix_spawn + waitpid of /bin/true): median {base:.3f} ms")
print(f"| {'command':<24} | {'units':>5} | {'runs':>4} | {'median ms':>9} | {'p95 ms':>8} | {'min ms':>7} | {'net median ms':>13} | {'vs bosun 100':>12} |")
print(f"|{'-'*26}|{'-'*7}|{'-'*6}|{'-'*11}|{'-'*10}|{'-'*9}|{'-'*15}|{'-'*14}|")
for key, name, units in [("b100", "bosun ctl status", 100), ("b100j", "bosun ctl status --json", 100),
                         ("sup", "supervisorctl status", 100), ("b1000", "bosun ctl status", 1000)]:
    med, p95, lo = stats(key)
    print(f"| {name:<24} | {units:>5} | {len(times[key]):>4} | {med:>9.3f} | {p95:>8.3f} | {lo:>7.3f} | {max(0.0, med - base):>13.3f} | {med / ref:>11.1f}x |")
sup = stats("sup")[0]
print(f"supervisorctl status / bosun ctl status, 100 units, median: {sup / ref:.0f}x (net of the timer: {(sup - base) / max(1e-9, ref - base):.0f}x)")
PY
