#!/usr/bin/env bash
# End-to-end: bosun as the ENTRYPOINT of a real multi-service image under a real
# container engine (podman + runc; Docker's engine does not run on these machines).
#
#   tests/e2e/podman.sh                 every step; exit 0 only when all PASS
#   BOSUN_E2E_SKIP="4 5b" tests/e2e/podman.sh      skip steps (reported as SKIP)
#   BOSUN_E2E_BIG=1 tests/e2e/podman.sh            also step 7: stop/restore with a ~1 GiB database
#   BOSUN_E2E_IMAGE=notes tests/e2e/podman.sh      test an image built elsewhere (docker/Dockerfile)
#
# What it proves, with docker/example (PostgreSQL, Redis, web app, worker, cron; one
# image, CONTAINERROLE picks the roles):
#   1  run CONTAINERROLE=all with a volume store; data written through the web app; the
#      scheduled cron task shows its next run and ticks on `bosun ctl run cron`
#   2  `podman stop -t 600`: exit 0, well inside the budget, a complete snapshot in the
#      volume (LATEST -> snapshots/ID/MANIFEST.json with the postgres and redis items)
#   3  `podman rm`, a NEW container on the same volume: the data is back (PostgreSQL
#      rows and Redis keys)
#   4  the same with an S3 store: Garage on the host, reached from the container
#   5  split roles on a podman network: web:worker:cron started BEFORE sql:redis; its
#      wait_for gates hold it until the data tier is up; then it works across containers
#   5b the app tier shares the data tier's store (as docassemble's containers share one
#      bucket) and stops last: both stops exit 0 (the app tier keeps no data, so it takes
#      no snapshot), and a new data-tier container still gets the data back
#   6  `podman kill` (SIGKILL) mid-run, then a new container: LATEST untouched by the
#      kill, the last complete snapshot restored (the note written after it is gone),
#      and bosun says it found an unclean stop
#   7  (BOSUN_E2E_BIG=1) a ~1 GiB database (BOSUN_E2E_BIG_KIND=random: base64 random
#      bytes, BOSUN_E2E_BIG_MB=1000; or =pgbench, BOSUN_E2E_BIG_SCALE=70): time of
#      `podman stop -t 600` with its dump, and of the restore into a new container
# Numbers printed at the end: image size, podman run -> `bosun ctl health` = 0, stop times.
#
# Why it is built this way:
# - No registry, no network inside builds: the base image is debootstrapped locally
#   (tests/e2e/base-image.sh, cached by podman), and docker/example/Dockerfile COPYs a
#   bosun built on the host; docker/Dockerfile is the real-world multi-stage build.
# - Podman here needs `--runtime runc` (crun fails on this host's cgroups) and low
#   ulimits; containers get `--network=none` unless a step needs a network. Data goes
#   in and out with `podman exec ... notes.py client` (HTTP to the web app inside the
#   container), so no port publishing is needed.
# - Every wait is bounded; every step prints PASS/FAIL with the reason; the exit code is
#   non-zero if any step failed; containers, volumes, networks and Garage are removed on
#   exit (BOSUN_E2E_KEEP=1 keeps them for a post-mortem).
#
# Needs root (rootful podman, debootstrap). tests/support/install.sh e2e installs what is
# missing with apt-get (netavark and aardvark-dns before podman is first used, podman,
# runc, conmon, debootstrap, iptables, slirp4netns) and makes sure podman's network
# backend is netavark (its DNS lets step 5's containers find each other by name).
# Garage: the one of tests/run.sh when BOSUN_GARAGE_ENV is set, else its own via
# tests/support/garage.sh (the binary must exist: tests/support/install.sh tests).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

ID=e2e$$
PFX=bosun-$ID
IMAGE=${BOSUN_E2E_IMAGE:-localhost/bosun-example:e2e}
RUNOPTS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
SKIP=" ${BOSUN_E2E_SKIP:-} "
WORK=$(mktemp -d /tmp/bosun-e2e.XXXXXX)
SMALL_STOP_LIMIT=${BOSUN_E2E_STOP_LIMIT:-60}   # seconds; stop_budget is 570 s

declare -a RESULTS=() NUMBERS=() CONTAINERS=() VOLUMES=() NETWORKS=()
FAILED=0
GARAGE_DIR=
SNAP2= SNAP3=   # set by steps 2 and 3 (set -u: a failed step 2 must not end the run)

log() { printf '%s e2e: %s\n' "$(date +%T)" "$*" >&2; }
result() { # STEP PASS|FAIL|SKIP REASON
    RESULTS+=("$(printf '%-3s %-4s %s' "$1" "$2" "$3")")
    [[ $2 == FAIL ]] && FAILED=1
    printf '\n=== step %s: %s - %s\n\n' "$1" "$2" "$3" >&2
}
number() { NUMBERS+=("$*"); log "number: $*"; }
skipped() { [[ $SKIP == *" $1 "* ]]; }

cleanup() {
    local rc=$?
    if [[ ${BOSUN_E2E_KEEP:-0} == 1 ]]; then
        log "BOSUN_E2E_KEEP=1: leaving ${CONTAINERS[*]:-} ${VOLUMES[*]:-} ${NETWORKS[*]:-} $WORK"
        return
    fi
    for c in "${CONTAINERS[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
    for v in "${VOLUMES[@]}"; do podman volume rm -f "$v" >/dev/null 2>&1; done
    for n in "${NETWORKS[@]}"; do podman network rm -f "$n" >/dev/null 2>&1; done
    if [[ -n $GARAGE_DIR ]]; then tests/support/garage.sh stop "$GARAGE_DIR" >/dev/null 2>&1; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ helpers

# run NAME [podman run options...]: start a container of the example image, detached.
# Podman's own stderr (healthcheck timers need systemd, absent here) goes to a file.
run() {
    local name=$1
    shift
    CONTAINERS+=("$name")
    timeout 60 podman run -d --name "$name" --hostname "$name" "${RUNOPTS[@]}" "$@" "$IMAGE" \
        >"$WORK/$name.id" 2>"$WORK/$name.run.err" || {
        log "podman run $name failed: $(tail -3 "$WORK/$name.run.err")"
        return 1
    }
}

# x NAME CMD...: podman exec, bounded.
x() { local name=$1; shift; timeout 60 podman exec "$name" "$@"; }

# client NAME ARGS...: the example's HTTP client, inside the container.
client() { local name=$1; shift; timeout 60 podman exec "$name" python3 /app/notes.py client "$@"; }

# cron_now NAME: `bosun ctl run cron` (the scheduled tick, now) and its output; once more
# after 2 s if it was refused because the schedule's own run was going at that moment.
cron_now() {
    local out
    out=$(x "$1" bosun ctl run cron 2>&1) && { printf '%s\n' "$out"; return 0; }
    [[ $out == *"already running"* ]] || { printf '%s\n' "$out"; return 1; }
    sleep 2
    x "$1" bosun ctl run cron 2>&1
}

running() { [[ $(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }
exit_code() { podman inspect -f '{{.State.ExitCode}}' "$1" 2>/dev/null; }
logs() { podman logs "$1" 2>&1; }
# in_log NAME ERE: the container's log has a matching line. (Not `grep -q`: under
# pipefail, grep -q exiting at the first match makes `podman logs` die of SIGPIPE.)
in_log() { podman logs "$1" 2>&1 | grep -E -- "$2" >/dev/null; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# wait_health NAME SECONDS [START]: until `bosun ctl health` exits 0 inside NAME.
# Sets HEALTH_SECS (from START, default now). Fails early when the container exits.
wait_health() {
    local name=$1 limit=$2 t0=${3:-$(now)} deadline
    deadline=$(awk -v a="$(now)" -v l="$limit" 'BEGIN { printf "%d", a + l }')
    while :; do
        if timeout 10 podman exec "$name" bosun ctl health >/dev/null 2>&1; then
            HEALTH_SECS=$(since "$t0")
            return 0
        fi
        if ! running "$name"; then
            log "$name exited (code $(exit_code "$name")) before it was healthy; its log:"
            logs "$name" | tail -40 >&2
            return 1
        fi
        if (($(date +%s) >= deadline)); then
            log "$name not healthy after ${limit}s; ctl health / status / log:"
            x "$name" bosun ctl health >&2 2>&1
            x "$name" bosun ctl status >&2 2>&1
            logs "$name" | tail -40 >&2
            return 1
        fi
        sleep 0.2
    done
}

# stop_timed NAME: `podman stop -t 600`, sets STOP_SECS and STOP_CODE.
stop_timed() {
    local t0
    t0=$(now)
    timeout 660 podman stop -t 600 "$1" >/dev/null 2>"$WORK/$1.stop.err"
    STOP_SECS=$(since "$t0")
    STOP_CODE=$(exit_code "$1")
}

# vol_path VOLUME: where a podman volume's data lives on the host.
vol_path() { podman volume inspect -f '{{.Mountpoint}}' "$1"; }

# check_snapshot DIR ITEM...: DIR (a file store) has LATEST naming a complete snapshot
# with these items. Prints the snapshot id; the reason on failure.
check_snapshot() {
    python3 - "$@" <<'PY'
import json, os, sys
d, want = sys.argv[1], sys.argv[2:]
try:
    latest = open(os.path.join(d, "LATEST")).read().strip()
except OSError as e:
    sys.exit("no LATEST in the store (%s)" % e.strerror)
mpath = os.path.join(d, "snapshots", latest, "MANIFEST.json")
try:
    m = json.load(open(mpath))
except (OSError, ValueError) as e:
    sys.exit("LATEST names %s but its MANIFEST.json is unreadable: %s" % (latest, e))
items = {i["name"]: i for i in m.get("items", [])}
missing = [w for w in want if w not in items]
if missing:
    sys.exit("snapshot %s lacks items %s (has %s)" % (latest, missing, sorted(items)))
for i in items.values():
    p = os.path.join(d, "snapshots", latest, i["object"])
    if os.path.getsize(p) != i["stored_size"]:
        sys.exit("%s: %d bytes on disk, manifest says %d" % (p, os.path.getsize(p), i["stored_size"]))
print(latest)
PY
}

# json_get JSON EXPR: evaluate a python expression on the parsed JSON `j`.
json_get() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# ------------------------------------------------------------------ setup

setup() {
    if [[ $EUID -ne 0 ]]; then
        log "needs root (rootful podman, debootstrap)"
        return 1
    fi
    # Packages (netavark + aardvark-dns before podman's first use), and podman's network
    # backend: netavark, or step 5's containers cannot resolve each other's names.
    tests/support/install.sh e2e || return 1

    if [[ -n ${BOSUN_E2E_IMAGE:-} ]]; then
        # An image built elsewhere (e.g. by docker/Dockerfile): test it as it is.
        podman image exists "$IMAGE" || { log "no image $IMAGE"; return 1; }
        number "image size: $(podman image inspect -f '{{.Size}}' "$IMAGE") bytes  [podman image inspect --format {{.Size}} $IMAGE]"
        return 0
    fi
    local bin=${BOSUN_BIN:-}
    if [[ -z $bin ]]; then
        log "cargo build --release -p bosun"
        nice cargo build --release -p bosun >"$WORK/cargo.log" 2>&1 || {
            tail -30 "$WORK/cargo.log" >&2
            return 1
        }
        bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/bosun
    fi
    [[ -x $bin ]] || { log "no bosun binary at $bin"; return 1; }

    local base
    base=$(tests/e2e/base-image.sh) || { log "base image failed"; return 1; }

    # The build context: only what the image needs (not the repository, not target/).
    local ctx=$WORK/context
    mkdir -p "$ctx"
    cp "$bin" "$ctx/bosun"
    cp docker/example/bosun.toml "$ctx/"
    cp -r docker/example/app "$ctx/app"
    rm -rf "$ctx/app/__pycache__"
    local old_id
    old_id=$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null)
    log "podman build $IMAGE FROM $base"
    timeout 600 podman build --runtime runc --pull=never --network=none --format docker \
        --build-arg BASE="$base" -f docker/example/Dockerfile -t "$IMAGE" "$ctx" \
        >"$WORK/build.log" 2>&1 || {
        tail -30 "$WORK/build.log" >&2
        return 1
    }
    # The previous build of this tag (a new bosun binary makes a new image): remove it,
    # so that CI machines do not collect ~10 MB of dangling layers per run.
    local new_id
    new_id=$(podman image inspect -f '{{.Id}}' "$IMAGE")
    if [[ -n $old_id && $old_id != "$new_id" ]]; then podman rmi "$old_id" >/dev/null 2>&1; fi
    local size
    size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
    number "image size: $size bytes ($((size / 1000000)) MB; base $(( $(podman image inspect -f '{{.Size}}' "$base") / 1000000 )) MB, bosun $(( $(stat -c %s "$bin") / 1000 )) kB)  [podman image inspect --format {{.Size}} $IMAGE]"
}

# ------------------------------------------------------------------ steps

VOL=$PFX-backup   # the volume store of steps 1, 2, 3 and 6

step1() {
    VOLUMES+=("$VOL")
    podman volume create "$VOL" >/dev/null || { result 1 FAIL "podman volume create"; return; }
    local t0
    t0=$(now)
    run "$PFX-c1" --network=none -e CONTAINERROLE=all -v "$VOL:/var/lib/bosun/backup" ||
        { result 1 FAIL "podman run"; return; }
    wait_health "$PFX-c1" 180 "$t0" || { result 1 FAIL "not healthy within 180 s"; return; }
    number "podman run -> ctl health = 0 (empty store, initdb): ${HEALTH_SECS}s"
    local hc
    hc=$(timeout 30 podman healthcheck run "$PFX-c1" 2>&1) || { result 1 FAIL "image HEALTHCHECK (podman healthcheck run): $hc"; return; }
    # Non-root units: each service's main process runs as its own user.
    local users
    users=$(x "$PFX-c1" ps -eo user:12,args | awk '
        /postgres -D/ && !p++ { print "postgres=" $1 }
        /redis-server/ && !r++ { print "redis=" $1 }
        /notes.py web/ && !w++ { print "web=" $1 }
        /notes.py worker/ && !k++ { print "worker=" $1 }' | sort | tr '\n' ' ')
    [[ $users == "postgres=postgres redis=redis web=www-data worker=www-data " ]] ||
        { result 1 FAIL "unit users: '$users'"; return; }
    # cron is a scheduled task (every minute): its status shows the next run, and
    # `ctl run` ticks now (as nobody), to its exit code.
    local st tick
    st=$(x "$PFX-c1" bosun ctl status cron 2>&1)
    grep -E '^cron +task .*next [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} \+00:00 \(in [0-9][0-9ms]*\)' <<<"$st" >/dev/null ||
        { result 1 FAIL "cron's status has no 'next ... (in Ns)': $(tail -1 <<<"$st")"; return; }
    tick=$(cron_now "$PFX-c1") || { result 1 FAIL "bosun ctl run cron: $tick"; return; }
    [[ $tick == *"tick: "*" on $PFX-c1 as nobody"* ]] || { result 1 FAIL "bosun ctl run cron printed: $tick"; return; }
    for n in 1 2 3; do
        client "$PFX-c1" post "note $n written before the stop" >/dev/null || { result 1 FAIL "POST /notes $n"; return; }
    done
    local s
    s=$(client "$PFX-c1" wait-words 3 30) || { result 1 FAIL "the worker did not process 3 notes in 30 s: $s"; return; }
    [[ $(json_get "$s" 'j["posted"]') == 3 ]] || { result 1 FAIL "redis counter: $s"; return; }
    [[ $(json_get "$s" "j['tick_hosts'].get('$PFX-c1', 0) >= 1") == True ]] 2>/dev/null || { result 1 FAIL "no tick row from $PFX-c1: $s"; return; }
    result 1 PASS "healthy in ${HEALTH_SECS}s; users: $users, cron ticked as nobody (ctl run; $(grep -Eo 'next .*\)' <<<"$st")); 3 notes written through the web app, processed by the worker ($s)"
}

step2() {
    running "$PFX-c1" || { result 2 FAIL "container of step 1 not running"; return; }
    stop_timed "$PFX-c1"
    number "podman stop -t 600, small database: ${STOP_SECS}s (exit $STOP_CODE)"
    local why=()
    [[ $STOP_CODE == 0 ]] || why+=("exit code $STOP_CODE, not 0")
    lt "$STOP_SECS" "$SMALL_STOP_LIMIT" || why+=("stop took ${STOP_SECS}s (limit ${SMALL_STOP_LIMIT}s)")
    local id
    id=$(check_snapshot "$(vol_path "$VOL")" postgres redis 2>&1) || why+=("volume: $id")
    in_log "$PFX-c1" 'bosun exits with code 0' || why+=("no 'bosun exits with code 0' in the log")
    # The order of the stop: the app tier down, then the dump while postgres is still up,
    # then postgres down, then the commit.
    local order
    order=$(logs "$PFX-c1" | awk '
        /stopped in .*unit="?web/ { o = o " web-stopped" }
        /dumping its data .*unit="?postgres/ { o = o " pg-dump" }
        /backing up postgres: done/ { o = o " pg-dumped" }
        /stopped in .*unit="?postgres/ { o = o " pg-stopped" }
        /snapshot committed/ { o = o " committed" }
        END { print o }')
    [[ $order == " web-stopped pg-dump pg-dumped pg-stopped committed" ]] || why+=("stop order:$order")
    if ((${#why[@]})); then
        logs "$PFX-c1" | tail -30 >&2
        result 2 FAIL "$(IFS=';'; echo "${why[*]}")"
    else
        SNAP2=$id
        result 2 PASS "exit 0 in ${STOP_SECS}s; order:$order; LATEST=$id with items postgres, redis"
    fi
}

step3() {
    podman rm "$PFX-c1" >/dev/null 2>&1
    local t0
    t0=$(now)
    run "$PFX-c2" --network=none -v "$VOL:/var/lib/bosun/backup" || { result 3 FAIL "podman run"; return; }
    wait_health "$PFX-c2" 180 "$t0" || { result 3 FAIL "not healthy within 180 s"; return; }
    number "podman run -> ctl health = 0 (restore of the small snapshot): ${HEALTH_SECS}s"
    local notes stats why=()
    notes=$(client "$PFX-c2" list) || why+=("GET /notes failed")
    stats=$(client "$PFX-c2" stats) || why+=("GET /stats failed")
    [[ $(json_get "$notes" 'len(j)') == 3 ]] 2>/dev/null || why+=("expected 3 notes in PostgreSQL, got: ${notes:0:300}")
    [[ $(json_get "$notes" '[n["words"] for n in j] == [6, 6, 6]') == True ]] 2>/dev/null || why+=("word counts not restored: ${notes:0:300}")
    [[ $(json_get "$stats" 'j["posted"]') == 3 ]] 2>/dev/null || why+=("Redis counter notes:posted not restored: $stats")
    in_log "$PFX-c2" "restoring snapshot ${SNAP2:-}" || why+=("no 'restoring snapshot ${SNAP2:-?}' in the log")
    if ((${#why[@]})); then
        result 3 FAIL "$(IFS=';'; echo "${why[*]}")"
        return
    fi
    # One more note, then a clean stop: step 6 starts from this snapshot (4 notes).
    client "$PFX-c2" post "note 4 written after the restore" >/dev/null
    client "$PFX-c2" wait-words 4 30 >/dev/null
    stop_timed "$PFX-c2"
    SNAP3=$(check_snapshot "$(vol_path "$VOL")" postgres redis 2>&1)
    if [[ $STOP_CODE != 0 || $SNAP3 == "$SNAP2" ]]; then
        result 3 FAIL "data back, but the second stop: exit $STOP_CODE, snapshot $SNAP3"
        return
    fi
    podman rm "$PFX-c2" >/dev/null 2>&1
    result 3 PASS "new container: 3 notes, word counts and the Redis counter back from $SNAP2 (healthy in ${HEALTH_SECS}s); stopped again -> $SNAP3"
}

step4() {
    local genv s3p rpcp admp
    if [[ -n ${BOSUN_GARAGE_ENV:-} && -r ${BOSUN_GARAGE_ENV:-} ]]; then
        genv=$BOSUN_GARAGE_ENV
    else
        local gbin=${GARAGE_BIN:-$(command -v garage || echo "$HOME/.cargo/bin/garage")}
        [[ -x $gbin ]] || { result 4 FAIL "no garage binary (cargo install --locked garage@2.5.0, as tests/run.sh does)"; return; }
        GARAGE_DIR=$WORK/garage
        # Free ports of our own: tests/run.sh's Garage, or another e2e's, may be up (fixed
        # ports once made two runs on one machine collide: "Garage did not start").
        local ports
        ports=$(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
        read -r s3p rpcp admp <<<"$ports"
        GARAGE_BIN=$gbin GARAGE_S3_PORT=$s3p GARAGE_RPC_PORT=$rpcp GARAGE_ADMIN_PORT=$admp \
            timeout 120 tests/support/garage.sh start "$GARAGE_DIR" >"$WORK/garage.log" 2>&1 || {
            tail -20 "$WORK/garage.log" >&2
            # The reason of a panic is above its backtrace, out of tail's reach.
            grep -h -A2 'panicked' "$GARAGE_DIR/garage.log" 2>/dev/null | head -5 >&2
            GARAGE_DIR=
            result 4 FAIL "Garage did not start (ports $s3p $rpcp $admp)"
            return
        }
        genv=$GARAGE_DIR/env
    fi
    # shellcheck disable=SC1090
    (set -a; . "$genv"; env | grep -E '^(S3ENDPOINTURL|S3REGION|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|BOSUN_TEST_BUCKET)=') >"$WORK/s3.env"
    local endpoint bucket
    endpoint=$(sed -n 's/^S3ENDPOINTURL=//p' "$WORK/s3.env")
    bucket=$(sed -n 's/^BOSUN_TEST_BUCKET=//p' "$WORK/s3.env")
    # The container reaches the host's loopback through slirp4netns at 10.0.2.2
    # (allow_host_loopback): no --network=host, so the container's 5432/6379/8080 do
    # not collide with anything on the shared host.
    local cendpoint=${endpoint/127.0.0.1/10.0.2.2}
    cendpoint=${cendpoint/localhost/10.0.2.2}
    local s3=(--network slirp4netns:allow_host_loopback=true --env-file "$WORK/s3.env"
              -e "S3ENDPOINTURL=$cendpoint" -e "BACKUP_URL=s3://$bucket/$ID")
    run "$PFX-s1" "${s3[@]}" || { result 4 FAIL "podman run"; return; }
    wait_health "$PFX-s1" 180 || { result 4 FAIL "not healthy within 180 s (store s3://$bucket/$ID at $cendpoint)"; return; }
    client "$PFX-s1" post "a note kept in S3" >/dev/null && client "$PFX-s1" post "another one" >/dev/null &&
        client "$PFX-s1" wait-words 2 30 >/dev/null || { result 4 FAIL "writing through the web app"; return; }
    stop_timed "$PFX-s1"
    number "podman stop -t 600, small database, S3 store (Garage): ${STOP_SECS}s (exit $STOP_CODE)"
    [[ $STOP_CODE == 0 ]] || { logs "$PFX-s1" | tail -30 >&2; result 4 FAIL "stop: exit $STOP_CODE"; return; }
    local id
    id=$(logs "$PFX-s1" | sed -n 's/.*snapshot \([0-9TZ-]*-[0-9a-z-]*\) committed.*/\1/p' | tail -1)
    [[ -n $id ]] || { result 4 FAIL "no 'snapshot ... committed' in the log"; return; }
    podman rm "$PFX-s1" >/dev/null 2>&1
    run "$PFX-s2" "${s3[@]}" || { result 4 FAIL "podman run (restore)"; return; }
    wait_health "$PFX-s2" 180 || { result 4 FAIL "restoring container not healthy within 180 s"; return; }
    local notes
    notes=$(client "$PFX-s2" list)
    if [[ $(json_get "$notes" 'len(j)') == 2 ]] 2>/dev/null && in_log "$PFX-s2" "restoring snapshot $id"; then
        result 4 PASS "s3://$bucket/$ID on Garage: stop exit 0 -> $id; a new container restored 2 notes (healthy in ${HEALTH_SECS}s)"
    else
        result 4 FAIL "after restore from $id: ${notes:0:300}"
    fi
    stop_timed "$PFX-s2"
}

step5() {
    local net=$PFX-net db=$PFX-db app=$PFX-app vol5=$PFX-split
    NETWORKS+=("$net")
    VOLUMES+=("$vol5")
    podman network create --internal "$net" >/dev/null 2>"$WORK/net.err" ||
        { result 5 FAIL "podman network create: $(cat "$WORK/net.err")"; return; }
    podman volume create "$vol5" >/dev/null
    # The app tier first: its wait_for gates (postgres://notes@db, tcp://db:6379) must hold
    # migrate, and so web/worker/cron, until the data tier exists.
    run "$app" --network "$net" -e CONTAINERROLE=web:worker:cron -e "DBHOST=$db" -e "REDIS_HOST=$db" \
        -v "$vol5:/var/lib/bosun/backup" || { result 5 FAIL "podman run app"; return; }
    # Bounded poll until migrate shows its gate, then a little longer: still gated.
    local st why=() i
    for i in $(seq 1 60); do
        st=$(x "$app" bosun ctl status 2>&1)
        grep -E '^migrate' <<<"$st" | grep 'waiting for' >/dev/null && break
        sleep 0.5
    done
    sleep 3
    st=$(x "$app" bosun ctl status 2>&1)
    if x "$app" bosun ctl health >/dev/null 2>&1; then why+=("app tier healthy before the data tier exists"); fi
    grep -E '^migrate' <<<"$st" | grep -q 'waiting for' || why+=("migrate not 'waiting for' its gates: $(grep -E '^migrate' <<<"$st")")
    grep -E '^web ' <<<"$st" | grep -q ready && why+=("web ready before the database")
    run "$db" --network "$net" -e CONTAINERROLE=sql:redis -v "$vol5:/var/lib/bosun/backup" ||
        { result 5 FAIL "podman run db"; return; }
    wait_health "$db" 180 || { result 5 FAIL "data tier not healthy within 180 s"; return; }
    wait_health "$app" 180 || { result 5 FAIL "app tier not healthy within 180 s after the data tier"; return; }
    client "$app" post "split roles note one" >/dev/null && client "$app" post "split roles note two" >/dev/null || why+=("POST /notes on the app tier")
    local s
    s=$(client "$app" wait-words 2 30) || why+=("the worker (app container) did not process the notes: $s")
    # The scheduled cron task, now rather than at the next minute: its row lands in the
    # data tier's PostgreSQL, from the app container.
    local tick
    tick=$(cron_now "$app") || why+=("bosun ctl run cron on the app tier: $tick")
    s=$(client "$app" stats)
    [[ $(json_get "$s" "j['tick_hosts'].get('$app', 0) > 0") == True ]] 2>/dev/null || why+=("no cron tick from $app in PostgreSQL: $s")
    local n
    n=$(x "$db" psql -X -tA -h /run/postgresql -U postgres -d notes -c 'select count(*) from notes where words = 4' 2>&1)
    [[ $n == 2 ]] || why+=("the data tier's PostgreSQL holds '$n' processed notes, not 2")
    if ((${#why[@]})); then
        result 5 FAIL "$(IFS=';'; echo "${why[*]}")"
    else
        result 5 PASS "app tier waited ('$(grep -E '^migrate' <<<"$st" | sed 's/  */ /g' | cut -c1-120)'), then web/worker/cron worked against the sql:redis container ($s)"
    fi

    if skipped 5b; then
        result 5b SKIP "BOSUN_E2E_SKIP"
    else
        # 5b: both tiers use the same store (one BACKUP_URL for every container, as with
        # docassemble's S3 bucket). The data tier stops first (or dies; or an app container
        # is replaced while the data tier runs), then the app tier: its stop must not make
        # an empty snapshot LATEST, or the next data-tier container starts empty.
        stop_timed "$db"
        local dbcode=$STOP_CODE dbsnap
        dbsnap=$(check_snapshot "$(vol_path "$vol5")" postgres redis 2>&1)
        # The app tier keeps no data: with its database gone, its stop is still a
        # clean stop (exit 0) that takes no snapshot; exit 1 would mean data was lost.
        stop_timed "$app"
        local appcode=$STOP_CODE applog
        applog=$(logs "$app" | grep -E 'nothing to keep|ERROR|bosun exits' | tail -3 | tr '\n' ' ')
        podman rm "$db" "$app" >/dev/null 2>&1
        if [[ $dbcode != 0 || $appcode != 0 ]]; then
            result 5b FAIL "data tier stop exit $dbcode, app tier stop exit $appcode (both must be 0); the app tier's log: $applog"
            return
        fi
        run "$db-2" --network "$net" -e CONTAINERROLE=sql:redis -v "$vol5:/var/lib/bosun/backup" ||
            { result 5b FAIL "podman run db-2"; return; }
        wait_health "$db-2" 180 || { result 5b FAIL "new data tier not healthy"; return; }
        n=$(x "$db-2" psql -X -tA -h /run/postgresql -U postgres -d notes -c 'select count(*) from notes' 2>&1)
        if [[ $n == 2 ]]; then
            result 5b PASS "data tier stop (exit $dbcode, $dbsnap), app tier stop (exit $appcode); a new sql:redis container has the 2 notes"
        else
            local latest
            latest=$(cat "$(vol_path "$vol5")/LATEST" 2>/dev/null)
            result 5b FAIL "the app tier's stop (exit $appcode) replaced LATEST ($dbsnap -> $latest, roles $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["roles"])' "$(vol_path "$vol5")/snapshots/$latest/MANIFEST.json" 2>/dev/null)); the new sql:redis container has: $(head -1 <<<"$n")"
        fi
        stop_timed "$db-2"
    fi
}

step6() {
    local store
    store=$(vol_path "$VOL")
    local before
    before=$(cat "$store/LATEST" 2>/dev/null) || { result 6 FAIL "no LATEST in the volume (steps 2-3 failed?)"; return; }
    run "$PFX-k1" --network=none -v "$VOL:/var/lib/bosun/backup" || { result 6 FAIL "podman run"; return; }
    wait_health "$PFX-k1" 180 || { result 6 FAIL "not healthy within 180 s"; return; }
    local n0
    n0=$(json_get "$(client "$PFX-k1" list)" 'len(j)' 2>/dev/null)
    client "$PFX-k1" post "note 5: written after the last snapshot, lost with the kill" >/dev/null
    client "$PFX-k1" wait-words 5 30 >/dev/null
    timeout 30 podman kill -s KILL "$PFX-k1" >/dev/null 2>&1
    timeout 30 podman wait "$PFX-k1" >/dev/null 2>&1
    local after why=()
    after=$(cat "$store/LATEST" 2>/dev/null)
    [[ $after == "$before" ]] || why+=("LATEST changed by a SIGKILL: $before -> $after")
    ls "$store"/running/* >/dev/null 2>&1 || why+=("no running/ marker left in the store by the killed container")
    podman rm "$PFX-k1" >/dev/null 2>&1
    run "$PFX-k2" --network=none -v "$VOL:/var/lib/bosun/backup" || { result 6 FAIL "podman run (after kill)"; return; }
    wait_health "$PFX-k2" 180 || { result 6 FAIL "container after the kill not healthy within 180 s"; return; }
    local notes
    notes=$(client "$PFX-k2" list)
    [[ $(json_get "$notes" 'len(j)') == "${n0:-x}" ]] 2>/dev/null ||
        why+=("expected the $n0 notes of $before, got: ${notes:0:300}")
    in_log "$PFX-k2" "restoring snapshot $before" || why+=("no 'restoring snapshot $before' in the log")
    local said
    said=$(logs "$PFX-k2" | grep -i 'unclean stop' | head -1)
    [[ -n $said ]] || why+=("the log does not mention an unclean stop")
    stop_timed "$PFX-k2"
    [[ $STOP_CODE == 0 ]] || why+=("final stop exit $STOP_CODE")
    ls "$store"/running/* >/dev/null 2>&1 && why+=("running/ marker still there after a clean stop")
    if ((${#why[@]})); then
        result 6 FAIL "$(IFS=';'; echo "${why[*]}")"
    else
        result 6 PASS "SIGKILL left LATEST=$before; the new container restored its $n0 notes (note 5 gone) and said: ${said#*WARN }"
    fi
}

step7() {
    # pgbench: the standard data set (-s 70 is ~1 GiB), but its filler columns are blank
    # and compress ~60:1, which flatters the stop. random: ~1 GiB of base64 random bytes
    # (about as incompressible as text gets: zstd keeps ~75 %), the honest worst case.
    local kind=${BOSUN_E2E_BIG_KIND:-random} scale=${BOSUN_E2E_BIG_SCALE:-70}
    local rows_mb=${BOSUN_E2E_BIG_MB:-1000} volb=$PFX-big-$kind
    VOLUMES+=("$volb")
    podman volume create "$volb" >/dev/null
    run "$PFX-b1" --network=none -v "$volb:/var/lib/bosun/backup" || { result 7 FAIL "podman run"; return; }
    wait_health "$PFX-b1" 180 || { result 7 FAIL "not healthy"; return; }
    local t0 size fill check want
    if [[ $kind == pgbench ]]; then
        fill="pgbench -h /run/postgresql -i -q -s $scale bench"
        check="select count(*) from pgbench_accounts"
        want=$((scale * 100000))
    else
        # 1 MB of table per 1000 rows of 1000 base64 characters (750 random bytes).
        want=$((rows_mb * 1000))
        fill="psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -d bench -c 'create extension pgcrypto' -c \"create table blobs as select g as id, encode(gen_random_bytes(750), 'base64') as body from generate_series(1, $want) g\""
        check="select count(*) from blobs"
    fi
    t0=$(now)
    timeout 1800 podman exec -u postgres "$PFX-b1" sh -c "createdb -h /run/postgresql bench && $fill" \
        >"$WORK/fill.log" 2>&1 || { tail -5 "$WORK/fill.log" >&2; result 7 FAIL "filling the database ($kind)"; return; }
    size=$(x "$PFX-b1" psql -X -tA -h /run/postgresql -U postgres -c "select pg_size_pretty(sum(pg_database_size(datname))::bigint) from pg_database")
    number "$kind data: filled in $(since "$t0")s, cluster size $size"
    stop_timed "$PFX-b1"
    local stored
    stored=$(du -sh "$(vol_path "$volb")" | cut -f1)
    local stop1=$STOP_SECS
    number "podman stop -t 600, $kind database of $size: ${STOP_SECS}s (exit $STOP_CODE), store holds $stored"
    logs "$PFX-b1" | grep -E 'backing up .*done|stopped in|committed' | sed 's/^/    /' >&2
    [[ $STOP_CODE == 0 ]] || { logs "$PFX-b1" | tail -20 >&2; result 7 FAIL "stop exit $STOP_CODE after ${STOP_SECS}s"; return; }
    podman rm "$PFX-b1" >/dev/null 2>&1
    t0=$(now)
    run "$PFX-b2" --network=none -v "$volb:/var/lib/bosun/backup" || { result 7 FAIL "podman run (restore)"; return; }
    wait_health "$PFX-b2" 1800 "$t0" || { result 7 FAIL "restore of $size not healthy within 1800 s"; return; }
    number "podman run -> ctl health = 0 with a restore of the $kind database ($size): ${HEALTH_SECS}s"
    logs "$PFX-b2" | grep -E 'loaded|restore complete' | sed 's/^/    /' >&2
    local rows
    rows=$(x "$PFX-b2" psql -X -tA -h /run/postgresql -U postgres -d bench -c "$check")
    stop_timed "$PFX-b2"
    if [[ $rows == "$want" ]]; then
        result 7 PASS "$kind, $size: stop ${stop1}s; restore to healthy ${HEALTH_SECS}s; $rows rows back"
    else
        result 7 FAIL "after restore: '$rows' rows, expected $want"
    fi
}

# ------------------------------------------------------------------ main

log "work dir $WORK"
if ! setup; then
    result 0 FAIL "setup (packages, bosun build, base image, example image): see above"
else
    result 0 PASS "image $IMAGE ready"
    for s in 1 2 3 4 5 6; do
        if skipped "$s"; then result "$s" SKIP "BOSUN_E2E_SKIP"; else "step$s"; fi
    done
    if [[ ${BOSUN_E2E_BIG:-0} == 1 ]]; then step7; fi
fi

printf '\n==== bosun e2e (podman) summary\n' >&2
printf '  %s\n' "${RESULTS[@]}" >&2
printf '==== numbers\n' >&2
printf '  %s\n' "${NUMBERS[@]}" >&2
if ((FAILED)); then
    printf '==== FAILED: %s\n' "$(printf '%s\n' "${RESULTS[@]}" | awk '$2 == "FAIL" { printf "%s ", $1 }')" >&2
    exit 1
fi
printf '==== all steps passed\n' >&2
