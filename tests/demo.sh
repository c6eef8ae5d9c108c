#!/usr/bin/env bash
# The README's demo, run the way the README says, on a machine where it never ran:
#
#   tests/demo.sh
#
#   A  `cargo run --release -- run -c config/demo.toml` from the repo root, verbatim, on an
#      empty /tmp/bosun-demo; wait (bounded) until `bosun ctl health` = 0, then the
#      README's `cargo run --release -- ctl --socket /tmp/bosun-demo/ctl.sock status`
#      must show every unit ready; SIGINT (what Ctrl-C sends) to bosun -> exit 0 and a
#      committed snapshot
#   B  the same command again on the same disk (a restarted container): bosun says the
#      disk already holds that snapshot, run A's files are there, exit 0 again
#   C  again after deleting everything but the store (a new container): bosun restores
#      the snapshot of B; run A's files (in [snapshot.paths] data and in the db's dump of
#      www) are back
#   D  as an ordinary user (system user bosun-demo-test, made when missing; root only):
#      the built binary on an empty /tmp/bosun-demo; ready, SIGINT -> exit 0, a snapshot,
#      and nothing under /tmp/bosun-demo owned by anyone else
#
# It refuses to start while a bosun demo runs (it would delete that demo's state), and
# removes /tmp/bosun-demo when done (BOSUN_DEMO_KEEP=1 keeps it, and its logs). Every wait
# is bounded; bosun processes it started are ended by pid on exit. The release build (fat
# LTO) is timed first, so that the runs themselves do not wait for it.
set -uo pipefail
cd "$(dirname "$0")/.."

DEMO=/tmp/bosun-demo
SOCK=$DEMO/ctl.sock
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/bosun
USER_NAME=bosun-demo-test
READY_SECS=60   # the demo is ready in ~2 s
STOP_SECS=60    # stop_budget is 30 s
WORK=$(mktemp -d /tmp/bosun-demo-test.XXXXXX)
STARTED=()      # pids of the bosun runs we started

log() { printf '%s demo: %s\n' "$(date +%T)" "$*" >&2; }
fail() {
    log "FAIL: $*"
    exit 1
}

cleanup() {
    local rc=$?
    for p in "${STARTED[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            log "killing bosun pid $p (ours, still running)"
            kill -KILL "$p" 2>/dev/null
        fi
    done
    if [[ ${BOSUN_DEMO_KEEP:-0} == 1 ]]; then
        log "BOSUN_DEMO_KEEP=1: leaving $DEMO and the logs in $WORK"
    else
        ((${#STARTED[@]})) && rm -rf "$DEMO"
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A bosun demo somebody else runs uses /tmp/bosun-demo too: never delete under it.
demo_running() {
    local others
    others=$(pgrep -af -- 'run -c [^ ]*demo\.toml' 2>/dev/null)
    if [[ -n $others ]]; then
        echo "$others"
        return 0
    fi
    [[ -S $SOCK ]] && timeout 5 "$BIN" ctl --socket "$SOCK" --timeout 2 status >/dev/null 2>&1 &&
        echo "a bosun answers on $SOCK"
}

# bosun_pid PID: PID, or its child, once it is the bosun binary (cargo run execs bosun in
# its place on Unix; its child otherwise). Bounded by READY_SECS (the build is done).
bosun_pid() {
    local p=$1 bin c i
    bin=$(readlink -f "$BIN")
    for ((i = 0; i < READY_SECS * 10; i++)); do
        kill -0 "$p" 2>/dev/null || return 1
        if [[ $(readlink -f "/proc/$p/exe" 2>/dev/null) == "$bin" ]]; then
            echo "$p"
            return 0
        fi
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
            if [[ $(readlink -f "/proc/$c/exe" 2>/dev/null) == "$bin" ]]; then
                echo "$c"
                return 0
            fi
        done
        sleep 0.1
    done
    return 1
}

# as_user CMD...: CMD as USER_NAME (no supplementary groups, a plain environment);
# empty when we are that user already (not root).
AS=()
as_user() { "${AS[@]}" "$@"; }

# wait_ready PID LOG: until `bosun ctl health` exits 0; fails when bosun exits first.
wait_ready() {
    local pid=$1 out=$2 i
    for ((i = 0; i < READY_SECS * 5; i++)); do
        as_user "$BIN" ctl --socket "$SOCK" --timeout 5 health >/dev/null 2>&1 && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$out" >&2
            fail "bosun (pid $pid) exited before it was ready (its log above)"
        fi
        sleep 0.2
    done
    as_user "$BIN" ctl --socket "$SOCK" status >&2
    tail -n 30 "$out" >&2
    fail "not ready within ${READY_SECS}s (status and log above)"
}

# all_ready: every unit of `ctl status --json` is ready.
all_ready() {
    as_user "$BIN" ctl --socket "$SOCK" status --json | python3 -c '
import json, sys
units = json.load(sys.stdin)["units"]
names = sorted(u["name"] for u in units)
want = ["db", "listener", "prepare", "ticker", "worker"]
if names != want:
    sys.exit("units %s, expected %s" % (names, want))
notready = ["%s (%s)" % (u["name"], u["state"]) for u in units if not u["ready"]]
if notready:
    sys.exit("not ready: " + ", ".join(notready))'
}

# stop PID WAITPID LOG: SIGINT to bosun, then its exit code must be 0. WAITPID is the
# job to reap (cargo run's pid: bosun itself when cargo exec'd it).
stop() {
    local pid=$1 job=$2 out=$3 i rc
    kill -INT "$pid" || fail "cannot signal bosun pid $pid"
    for ((i = 0; i < STOP_SECS * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { tail -n 30 "$out" >&2; fail "bosun pid $pid still runs ${STOP_SECS}s after SIGINT"; }
    wait "$job"
    rc=$?
    grep -q 'bosun exits with code 0' "$out" && ((rc == 0)) ||
        { tail -n 30 "$out" >&2; fail "after SIGINT: exit $rc, not 0 (log above)"; }
}

# committed LOG: the id of the snapshot the log says was committed.
committed() {
    sed -n 's/.*INFO snapshot \([^ ]*\) committed:.*/\1/p' "$1" | tail -n 1
}

# start NAME CMD...: runs CMD in the background with its own process group (job
# control on, so it does not start with SIGINT ignored, as `&` would give it), output to
# $WORK/NAME.log; sets JOB (the job's pid) and PID (bosun's).
start() {
    local name=$1
    shift
    set -m
    "$@" </dev/null >"$WORK/$name.log" 2>&1 &
    JOB=$!
    set +m
    STARTED+=("$JOB")
    PID=$(bosun_pid "$JOB") || { tail -n 30 "$WORK/$name.log" >&2; fail "$name: no bosun process came up (log above)"; }
    [[ $PID == "$JOB" ]] || STARTED+=("$PID")
}

# ------------------------------------------------------------------ setup

others=$(demo_running) && fail "a bosun demo runs already (it uses $DEMO): $others; stop it first"
command -v python3 >/dev/null || fail "python3 missing (the demo's db is python3 -m http.server)"
if [[ -z ${DEMO_PORT:-} ]] && ss -Hltn 'sport = :18080' 2>/dev/null | grep -q .; then
    DEMO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export DEMO_PORT
    log "port 18080 is taken here: DEMO_PORT=$DEMO_PORT"
fi

log "cargo build --release (fat LTO; \`cargo run --release\` below then starts at once)"
t0=$SECONDS
# `--bin bosun` without `-p`: the same package selection (and so the same feature
# unification across the workspace) as `cargo run --release`, which then builds nothing.
cargo build --release --bin bosun >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; fail "release build"; }
log "release build: $((SECONDS - t0))s"

# ------------------------------------------------------------------ A: verbatim, empty state

rm -rf "$DEMO"
log "A: cargo run --release -- run -c config/demo.toml (empty $DEMO)"
start a cargo run --release -- run -c config/demo.toml
t0=$SECONDS
wait_ready "$PID" "$WORK/a.log"
log "A: ready ($((SECONDS - t0))s after bosun started); the README's status command:"
status=$(cargo run -q --release -- ctl --socket /tmp/bosun-demo/ctl.sock status 2>&1) ||
    fail "cargo run --release -- ctl --socket /tmp/bosun-demo/ctl.sock status: $status"
printf '%s\n' "$status" >&2
why=$(all_ready 2>&1) || fail "A: $why"
token=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
echo "$token" >"$DEMO/data/demo-test.txt"       # [snapshot.paths] data
echo "$token" >"$DEMO/www/demo-test.html"       # the db's dump (tar of www)
stop "$PID" "$JOB" "$WORK/a.log"
snap_a=$(committed "$WORK/a.log")
[[ -n $snap_a && -f $DEMO/backup/snapshots/$snap_a/MANIFEST.json ]] ||
    fail "A: no committed snapshot in $DEMO/backup after the stop (log: $(grep -i snapshot "$WORK/a.log" | tail -n 3))"
log "A: PASS: every unit ready; SIGINT -> exit 0; snapshot $snap_a committed"

# ------------------------------------------------------------------ B: again, same disk

log "B: the same command again, same $DEMO (a restarted container)"
start b cargo run --release -- run -c config/demo.toml
wait_ready "$PID" "$WORK/b.log"
why=$(all_ready 2>&1) || fail "B: $why"
grep -q "already holds snapshot $snap_a" "$WORK/b.log" ||
    fail "B: bosun did not say the disk already holds $snap_a: $(grep -i snapshot "$WORK/b.log" | head -n 3)"
[[ $(cat "$DEMO/data/demo-test.txt" 2>/dev/null) == "$token" ]] || fail "B: run A's $DEMO/data/demo-test.txt is gone"
stop "$PID" "$JOB" "$WORK/b.log"
snap_b=$(committed "$WORK/b.log")
[[ -n $snap_b ]] || fail "B: no snapshot committed on the stop"
log "B: PASS: 'already holds snapshot $snap_a' (no reload of its own data); exit 0; snapshot $snap_b"

# ------------------------------------------------------------------ C: a new disk, same store

log "C: everything but the store deleted (a new container on the same store)"
rm -rf "$DEMO/state" "$DEMO/data" "$DEMO/www" "$DEMO/log"
start c cargo run --release -- run -c config/demo.toml
wait_ready "$PID" "$WORK/c.log"
why=$(all_ready 2>&1) || fail "C: $why"
grep -q "restoring snapshot $snap_b" "$WORK/c.log" ||
    fail "C: no 'restoring snapshot $snap_b' in the log: $(grep -i snapshot "$WORK/c.log" | head -n 3)"
[[ $(cat "$DEMO/data/demo-test.txt" 2>/dev/null) == "$token" ]] ||
    fail "C: $DEMO/data/demo-test.txt (run A's, in [snapshot.paths]) not restored"
page=$(curl -sf "http://127.0.0.1:${DEMO_PORT:-18080}/demo-test.html") || page=
[[ $page == "$token" ]] || fail "C: the db does not serve run A's demo-test.html (its dump/load): '$page'"
stop "$PID" "$JOB" "$WORK/c.log"
log "C: PASS: restored $snap_b: run A's data file and the db's page are back; exit 0"

# ------------------------------------------------------------------ D: an ordinary user

if [[ $EUID -ne 0 ]]; then
    log "D: SKIP: not root, so A-C already ran as an ordinary user ($(id -un))"
    exit 0
fi
if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    log "D: useradd --system $USER_NAME"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$USER_NAME" ||
        fail "D: cannot create the system user $USER_NAME"
fi
uid=$(id -u "$USER_NAME")
gid=$(id -g "$USER_NAME")
# The repo (a clone under /root on CI) need not be readable by that user: a copy of the
# binary and the config in a directory it can read.
udir=$WORK/user
mkdir -p "$udir"
cp "$BIN" "$udir/bosun"
cp config/demo.toml "$udir/demo.toml"
chmod 0755 "$WORK" "$udir" "$udir/bosun"
chmod 0644 "$udir/demo.toml"
BIN=$udir/bosun
AS=(setpriv --reuid="$uid" --regid="$gid" --clear-groups
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/nonexistent LANG=C.UTF-8)
[[ -n ${DEMO_PORT:-} ]] && AS+=("DEMO_PORT=$DEMO_PORT")
rm -rf "$DEMO"
log "D: $BIN run -c demo.toml as $USER_NAME ($uid:$gid), empty $DEMO"
start d sh -c 'cd "$1" && shift && exec "$@"' sh "$udir" "${AS[@]}" "$BIN" run -c demo.toml
wait_ready "$PID" "$WORK/d.log"
why=$(all_ready 2>&1) || fail "D: $why"
[[ $(stat -c %u "/proc/$PID") == "$uid" ]] || fail "D: bosun runs as uid $(stat -c %u "/proc/$PID"), not $uid"
stop "$PID" "$JOB" "$WORK/d.log"
snap_d=$(committed "$WORK/d.log")
[[ -n $snap_d ]] || fail "D: no snapshot committed on the stop"
foreign=$(find "$DEMO" ! -user "$USER_NAME" -printf '%u %p\n' | head -n 5)
[[ -z $foreign ]] || fail "D: files under $DEMO not owned by $USER_NAME: $foreign"
log "D: PASS: as $USER_NAME: every unit ready; SIGINT -> exit 0; snapshot $snap_d; all of $DEMO is its own"
log "all demo runs passed"
