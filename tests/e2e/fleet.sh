#!/usr/bin/env bash
# End-to-end: docker/example as a fleet under podman + runc. Three containers of one
# image on one podman network, each with bosun as PID 1 and FLEET=1:
#
#   db           CONTAINERROLE=sql:redis        PostgreSQL (the fleet's database too), Redis
#   app1, app2   CONTAINERROLE=web:worker:cron  cron: a scheduled task (every minute),
#                                               `singleton = true`
#
# The fleet's PostgreSQL is the sql role's own: the app's database `notes` on db:5432,
# schema `bosun` (bosun creates it). The database password and the API token come in as
# files (podman secrets under /run/secrets, as Kubernetes mounts Secrets), the password
# through app/secrets-env.sh (DBPASSWORD_FILE), which then execs bosun as PID 1.
#
#   1  all three healthy; `bosun ctl fleet` from EACH container lists the three peers
#      (live) and one holder of cron; both app containers show cron's next run; a tick
#      (`bosun ctl run cron`) runs on the holder, and on the other app container it is
#      refused as held by the holder; the tick rows in PostgreSQL come from the holder only
#   2  `bosun ctl fleet run update` (an on-demand task): an "ok (exit 0)" row per peer,
#      exit 0; and the task's output in each container's log
#   3  `podman stop -t 600` of the cron holder: exit 0, a clean stop in its log (the
#      snapshot step, the lease released, "bosun exits with code 0"); the other app
#      container takes cron over (`ctl fleet` on db and on it names it, a new lease
#      term), and the next minute's scheduled tick runs there (waits up to 75 s)
#
#   tests/e2e/fleet.sh                    every step; exit 0 only when all PASS
#   BOSUN_BIN=target/debug/bosun ...      the binary to put in the image (else a release build)
#   BOSUN_E2E_IMAGE=IMG ...               test an image built elsewhere
#   BOSUN_E2E_KEEP=1 ...                  keep containers/network/secrets for a post-mortem
#
# Same conventions as tests/e2e/podman.sh (root, `--runtime runc`, low ulimits, the
# debootstrapped base image, bounded waits, PASS/FAIL per step, cleanup on exit). A
# podman network rather than host networking: two app containers each serve 8080 and
# 9001, and the host's own ports (other tests' PostgreSQL) stay out of it.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

ID=fl$$
PFX=bosun-$ID
IMAGE=${BOSUN_E2E_IMAGE:-localhost/bosun-example:e2e}
RUNOPTS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
WORK=$(mktemp -d /tmp/bosun-e2e-fleet.XXXXXX)
NET=$PFX-net
DB=$PFX-db APP1=$PFX-app1 APP2=$PFX-app2
DBPW=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')   # URL-safe
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

declare -a RESULTS=() NUMBERS=() CONTAINERS=() SECRETS=()
FAILED=0
T_START=$(date +%s)

log() { printf '%s e2e-fleet: %s\n' "$(date +%T)" "$*" >&2; }
result() { # STEP PASS|FAIL REASON
    RESULTS+=("$(printf '%-3s %-4s %s' "$1" "$2" "$3")")
    [[ $2 == FAIL ]] && FAILED=1
    printf '\n=== fleet step %s: %s - %s\n\n' "$1" "$2" "$3" >&2
}
number() { NUMBERS+=("$*"); log "number: $*"; }

cleanup() {
    local rc=$?
    if [[ ${BOSUN_E2E_KEEP:-0} == 1 ]]; then
        log "BOSUN_E2E_KEEP=1: leaving ${CONTAINERS[*]:-} $NET ${SECRETS[*]:-} $WORK"
        return
    fi
    for c in "${CONTAINERS[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
    podman network rm -f "$NET" >/dev/null 2>&1
    for s in "${SECRETS[@]}"; do podman secret rm "$s" >/dev/null 2>&1; done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

x() { local name=$1; shift; timeout 60 podman exec "$name" "$@"; }
running() { [[ $(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }
exit_code() { podman inspect -f '{{.State.ExitCode}}' "$1" 2>/dev/null; }
logs() { podman logs "$1" 2>&1; }
# Not `grep -q`: under pipefail its early exit kills `podman logs` with SIGPIPE.
in_log() { podman logs "$1" 2>&1 | grep -E -- "$2" >/dev/null; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
json_get() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# fleet_json NAME: `bosun ctl fleet --json` inside NAME.
fleet_json() { x "$1" bosun ctl fleet --json 2>&1; }
# holder NAME: the live holder of cron as NAME's `ctl fleet` sees it (empty: none).
holder() {
    json_get "$(fleet_json "$1")" \
        '([s["holder"] for s in j["singletons"] if s["unit"] == "cron" and s["held"]] or [""])[0]' 2>/dev/null
}
# term NAME: the fencing term of cron's live lease as NAME's `ctl fleet` sees it.
term() {
    json_get "$(fleet_json "$1")" \
        '([s["term"] for s in j["singletons"] if s["unit"] == "cron" and s["held"]] or [""])[0]' 2>/dev/null
}
# holder_is NAME WHO: NAME's `ctl fleet` names WHO as cron's holder.
holder_is() { [[ $(holder "$1") == "$2" ]]; }

# stats NAME: the app's /stats through NAME (tick_hosts: the rows in `ticks` by host).
stats() { x "$1" python3 /app/notes.py client stats 2>&1; }
# tick_hosts NAME: the hosts the tick rows in PostgreSQL come from, sorted.
tick_hosts() { json_get "$(stats "$1")" '" ".join(sorted(j["tick_hosts"]))' 2>/dev/null; }
# ticks_from NAME HOST: how many tick rows HOST wrote (read through NAME).
ticks_from() { json_get "$(stats "$1")" "j['tick_hosts'].get('$2', 0)" 2>/dev/null; }

# cron_now NAME: `bosun ctl run cron` (a tick now) and its output; once more after 2 s
# if it was refused because the schedule's own run was going at that moment.
cron_now() {
    local out
    out=$(x "$1" bosun ctl run cron 2>&1) && { printf '%s\n' "$out"; return 0; }
    [[ $out == *"already running"* ]] || { printf '%s\n' "$out"; return 1; }
    sleep 2
    x "$1" bosun ctl run cron 2>&1
}

# run NAME ROLES [podman run options...]: one fleet member, detached.
run() {
    local name=$1 roles=$2
    shift 2
    CONTAINERS+=("$name")
    timeout 60 podman run -d --name "$name" --hostname "$name" "${RUNOPTS[@]}" \
        --network "$NET" --entrypoint '["/app/secrets-env.sh", "bosun", "run"]' \
        --secret "$PFX-dbpw,type=mount,target=db-password" \
        -e CONTAINERROLE="$roles" -e FLEET=1 -e DBPASSWORD_FILE=/run/secrets/db-password \
        -e DBHOST="$DB" -e REDIS_HOST="$DB" "$@" "$IMAGE" \
        >"$WORK/$name.id" 2>"$WORK/$name.run.err" || {
        log "podman run $name failed: $(tail -3 "$WORK/$name.run.err")"
        return 1
    }
}

# run_app NAME: an app-tier member with the TCP API on 9001 (token from a secret).
# The db's address goes into /etc/hosts (--add-host): on this podman (4.3, netavark +
# aardvark-dns) name resolution on the network was seen to fail for ~30 s after another
# container left it, which stalls the app's per-tick database connections (not the
# fleet's: its one connection stays open). Docker's and Kubernetes' DNS do not do that.
run_app() {
    run "$1" web:worker:cron --add-host "$DB:$DBIP" \
        --secret "$PFX-token,type=mount,target=bosun-token" \
        -e BOSUN_HTTP_LISTEN=0.0.0.0:9001 -e BOSUN_HTTP_TOKEN_FILE=/run/secrets/bosun-token \
        -e BOSUN_FLEET_URL="http://$1:9001"
}

# wait_health NAME SECONDS: until `bosun ctl health` exits 0 inside NAME.
wait_health() {
    local name=$1 deadline=$(($(date +%s) + $2))
    while :; do
        timeout 10 podman exec "$name" bosun ctl health >/dev/null 2>&1 && return 0
        if ! running "$name"; then
            log "$name exited (code $(exit_code "$name")) before it was healthy; its log:"
            logs "$name" | tail -40 >&2
            return 1
        fi
        if (($(date +%s) >= deadline)); then
            log "$name not healthy after $2 s; status and log:"
            x "$name" bosun ctl status >&2 2>&1
            logs "$name" | tail -40 >&2
            return 1
        fi
        sleep 0.5
    done
}

# eventually SECONDS CMD...: CMD succeeds within SECONDS (polled every 0.5 s).
eventually() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@"; do
        (($(date +%s) >= deadline)) && return 1
        sleep 0.5
    done
}

# ------------------------------------------------------------------ setup

setup() {
    if [[ $EUID -ne 0 ]]; then
        log "needs root (rootful podman, debootstrap)"
        return 1
    fi
    tests/support/install.sh e2e || return 1
    if [[ -n ${BOSUN_E2E_IMAGE:-} ]]; then
        podman image exists "$IMAGE" || { log "no image $IMAGE"; return 1; }
    else
        # The same image tests/e2e/podman.sh builds (same context, so podman's layer
        # cache makes this a few seconds after it).
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
        local base ctx=$WORK/context
        base=$(tests/e2e/base-image.sh) || { log "base image failed"; return 1; }
        mkdir -p "$ctx"
        cp "$bin" "$ctx/bosun"
        cp docker/example/bosun.toml "$ctx/"
        cp -r docker/example/app "$ctx/app"
        rm -rf "$ctx/app/__pycache__"
        local old_id new_id
        old_id=$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null)
        log "podman build $IMAGE FROM $base"
        timeout 600 podman build --runtime runc --pull=never --network=none --format docker \
            --build-arg BASE="$base" -f docker/example/Dockerfile -t "$IMAGE" "$ctx" \
            >"$WORK/build.log" 2>&1 || {
            tail -30 "$WORK/build.log" >&2
            return 1
        }
        new_id=$(podman image inspect -f '{{.Id}}' "$IMAGE")
        if [[ -n $old_id && $old_id != "$new_id" ]]; then podman rmi "$old_id" >/dev/null 2>&1; fi
    fi
    podman network create --internal "$NET" >/dev/null 2>"$WORK/net.err" ||
        { log "podman network create: $(cat "$WORK/net.err")"; return 1; }
    printf '%s' "$DBPW" | podman secret create "$PFX-dbpw" - >/dev/null || return 1
    SECRETS+=("$PFX-dbpw")
    printf '%s\n' "$TOKEN" | podman secret create "$PFX-token" - >/dev/null || return 1
    SECRETS+=("$PFX-token")
}

# ------------------------------------------------------------------ steps

HOLDER= OTHER= DBIP= TERM1=

step1() {
    local t0 why=() c
    t0=$(now)
    run "$DB" sql:redis || { result 1 FAIL "podman run db"; return 1; }
    DBIP=$(podman inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$DB")
    [[ $DBIP =~ ^[0-9.]+$ ]] || { result 1 FAIL "no address for $DB on $NET: '$DBIP'"; return 1; }
    run_app "$APP1" || { result 1 FAIL "podman run app1"; return 1; }
    run_app "$APP2" || { result 1 FAIL "podman run app2"; return 1; }
    for c in "$DB" "$APP1" "$APP2"; do
        wait_health "$c" 240 || { result 1 FAIL "$c not healthy within 240 s"; return 1; }
    done
    number "three podman runs -> all healthy: $(since "$t0")s"
    # Every peer registers; give the last one a heartbeat to be seen by all.
    seen() {
        local c n
        for c in "$DB" "$APP1" "$APP2"; do
            n=$(json_get "$(fleet_json "$c")" 'sum(1 for p in j["peers"] if p["state"] == "live")' 2>/dev/null)
            [[ $n == 3 ]] || return 1
            [[ -n $(holder "$c") ]] || return 1
        done
    }
    eventually 60 seen || why+=("not every container sees 3 live peers and a cron holder")
    local text h
    for c in "$DB" "$APP1" "$APP2"; do
        text=$(x "$c" bosun ctl fleet 2>&1)
        printf '%s: bosun ctl fleet\n%s\n' "$c" "$text" >"$WORK/fleet-$c.txt"
        for p in "$DB" "$APP1" "$APP2"; do
            grep -E "^$p( \*)? " <<<"$text" >/dev/null || why+=("$c's ctl fleet has no row for $p")
        done
        grep -E '^cron +[^ ]+' <<<"$text" >/dev/null || why+=("$c's ctl fleet shows no cron holder")
        [[ $text == *"$DBPW"* ]] && why+=("$c's ctl fleet shows the database password")
    done
    cat "$WORK/fleet-$APP2.txt" >&2
    h=$(holder "$DB")
    for c in "$APP1" "$APP2"; do
        [[ $(holder "$c") == "$h" ]] || why+=("$c says cron is held by '$(holder "$c")', db says '$h'")
    done
    case $h in
        "$APP1") HOLDER=$APP1 OTHER=$APP2 ;;
        "$APP2") HOLDER=$APP2 OTHER=$APP1 ;;
        *) why+=("cron held by '$h', not an app container") ;;
    esac
    if [[ -n $HOLDER ]]; then
        TERM1=$(term "$DB")
        # cron is a scheduled singleton: each app container shows its next run; a tick
        # runs where the lease is held, and only there.
        local st out
        for c in "$HOLDER" "$OTHER"; do
            st=$(x "$c" bosun ctl status cron 2>&1)
            printf '%s: %s\n' "$c" "$(tail -1 <<<"$st")" >&2
            grep -E '^cron +task .*next [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} \+00:00 \(in ' <<<"$st" >/dev/null ||
                why+=("cron's status on $c shows no next run: $(tail -1 <<<"$st")")
        done
        # ... and the other one says the run is not its own (before any refused run;
        # its permit follows the lease within renew_every).
        elsewhere() { x "$OTHER" bosun ctl status cron 2>&1 | grep -F "not run here: singleton held by $HOLDER" >/dev/null; }
        eventually 15 elsewhere ||
            why+=("cron's status on $OTHER does not say it is held by $HOLDER: $(x "$OTHER" bosun ctl status cron 2>&1 | tail -1)")
        st=$(x "$HOLDER" bosun ctl status cron 2>&1 | tail -1)
        [[ $st == *"not run here"* ]] && why+=("cron's status on the holder $HOLDER says it is not run there: $st")
        out=$(cron_now "$HOLDER")
        [[ $? == 0 && $out == *"tick: "*" on $HOLDER as nobody"* ]] ||
            why+=("bosun ctl run cron on the holder $HOLDER: $out")
        if out=$(x "$OTHER" bosun ctl run cron 2>&1); then
            why+=("bosun ctl run cron on $OTHER (not the holder) ran it: $out")
        fi
        printf '%s: bosun ctl run cron: %s\n' "$OTHER" "$out" >&2
        [[ $out == *"held by $HOLDER"* ]] || why+=("bosun ctl run cron on $OTHER does not say cron is held by $HOLDER: $out")
        out=$(tick_hosts "$OTHER")
        [[ $out == "$HOLDER" ]] || why+=("the tick rows come from '$out', not from the holder $HOLDER only")
    fi
    # The TCP API, token from the secret file: /health open, /v1/fleet needs the token.
    local api
    api=$(x "$OTHER" python3 -c '
import sys, urllib.request
tok = open("/run/secrets/bosun-token").read().strip()
h = urllib.request.urlopen("http://127.0.0.1:9001/health", timeout=10).status
r = urllib.request.Request("http://127.0.0.1:9001/v1/fleet", headers={"Authorization": "Bearer " + tok})
import json; f = json.load(urllib.request.urlopen(r, timeout=10))
print(h, len(f["peers"]))' 2>&1)
    [[ $api == "200 3" ]] || why+=("TCP API with the secret token: '$api'")
    if ((${#why[@]})); then
        result 1 FAIL "$(IFS=';'; echo "${why[*]}")"
        return 1
    fi
    result 1 PASS "3 peers live in every container's ctl fleet; cron held by $HOLDER (term $TERM1): it ticks there, and is refused as held by $HOLDER on $OTHER; API on 9001 with the secret token"
}

step2() {
    local t0 out code why=()
    t0=$(now)
    out=$(timeout 120 podman exec "$OTHER" bosun ctl fleet run update 2>&1)
    code=$?
    number "ctl fleet run update over 3 peers: $(since "$t0")s (podman exec included)"
    printf '%s\n' "$out" >&2
    [[ $code == 0 ]] || why+=("exit $code")
    local c
    for c in "$DB" "$APP1" "$APP2"; do
        grep -E "^$c +ok \(exit 0\)" <<<"$out" >/dev/null || why+=("no 'ok (exit 0)' row for $c")
        eventually 10 in_log "$c" "update: $c up to date" || why+=("no update output in $c's log")
    done
    if ((${#why[@]})); then
        result 2 FAIL "$(IFS=';'; echo "${why[*]}")"
    else
        result 2 PASS "an ok (exit 0) row for each of the 3 peers, exit 0; each container logged its run"
    fi
}

step3() {
    local t0 secs code why=()
    t0=$(now)
    timeout 660 podman stop -t 600 "$HOLDER" >/dev/null 2>"$WORK/stop.err"
    secs=$(since "$t0")
    code=$(exit_code "$HOLDER")
    number "podman stop -t 600 of the cron holder: ${secs}s (exit $code)"
    [[ $code == 0 ]] || why+=("the holder's exit code is $code, not 0")
    logs "$HOLDER" >"$WORK/holder.log"
    grep -E 'snapshot|backup' "$WORK/holder.log" >/dev/null || why+=("no snapshot/backup step in the holder's log")
    grep -E 'left the fleet \(released [1-9]' "$WORK/holder.log" >/dev/null || why+=("no 'left the fleet (released N lease(s))' in the holder's log")
    grep -E 'bosun exits with code 0' "$WORK/holder.log" >/dev/null || why+=("no 'bosun exits with code 0' in the holder's log")
    grep -E 'stopped in|snapshot|backup|fleet|lease|exits with' "$WORK/holder.log" | tail -15 | sed 's/^/    holder | /' >&2
    # The other app container takes the cron lease over: db's ctl fleet and its own name it.
    if eventually 30 holder_is "$DB" "$OTHER"; then
        number "db names $OTHER as cron's holder $(since "$t0")s after the stop began"
    else
        why+=("db's ctl fleet does not name $OTHER as cron's holder: $(x "$DB" bosun ctl fleet 2>&1 | tail -2)")
    fi
    holder_is "$OTHER" "$OTHER" || why+=("$OTHER's own ctl fleet names '$(holder "$OTHER")' as cron's holder")
    local term2
    term2=$(term "$DB")
    [[ $term2 =~ ^[0-9]+$ && ${TERM1:-x} =~ ^[0-9]+$ ]] && ((term2 > TERM1)) || why+=("cron's lease term went from '$TERM1' to '$term2', not up")
    x "$DB" bosun ctl fleet 2>&1 | sed 's/^/    db | /' >&2
    # The schedule's own run, at the next minute: its tick row comes from the new holder
    # (which had none: its ctl run was refused in step 1).
    ticked() { local n; n=$(ticks_from "$OTHER" "$OTHER"); [[ $n =~ ^[0-9]+$ ]] && ((n >= 1)); }
    if eventually 75 ticked; then
        number "first scheduled tick on $OTHER $(since "$t0")s after the stop began"
    else
        why+=("no scheduled tick from $OTHER within 75 s: $(stats "$OTHER")")
        logs "$OTHER" | grep -E 'cron' | tail -20 | sed "s/^/    $OTHER | /" >&2
    fi
    local st
    last_ok() { x "$OTHER" bosun ctl status cron 2>&1 | grep -E 'last run [0-9a-z]+ ago exit 0' >/dev/null; }
    eventually 10 last_ok ||
        why+=("cron's status on $OTHER shows no 'last run ... exit 0': $(x "$OTHER" bosun ctl status cron 2>&1 | tail -1)")
    st=$(x "$OTHER" bosun ctl status cron 2>&1 | tail -1)
    log "$OTHER: $st"
    [[ $st == *"not run here"* ]] && why+=("cron's status on the new holder $OTHER says it is not run there: $st")
    if ((${#why[@]})); then
        logs "$HOLDER" | tail -30 >&2
        result 3 FAIL "$(IFS=';'; echo "${why[*]}")"
    else
        result 3 PASS "holder $HOLDER stopped cleanly (exit 0 in ${secs}s); $OTHER took cron over (term $TERM1 -> $term2) and its scheduled tick ran there ($(tick_hosts "$OTHER"))"
    fi
}

# ------------------------------------------------------------------ main

log "work dir $WORK"
if ! setup; then
    result 0 FAIL "setup (packages, image, network, secrets): see above"
else
    result 0 PASS "image $IMAGE, network $NET, secrets ready"
    if step1; then
        step2
        step3
    fi
fi
number "whole run: $(($(date +%s) - T_START))s"

printf '\n==== bosun e2e (fleet under podman) summary\n' >&2
printf '  %s\n' "${RESULTS[@]}" >&2
printf '==== numbers\n' >&2
printf '  %s\n' "${NUMBERS[@]}" >&2
if ((FAILED)); then
    printf '==== FAILED: %s\n' "$(printf '%s\n' "${RESULTS[@]}" | awk '$2 == "FAIL" { printf "%s ", $1 }')" >&2
    exit 1
fi
printf '==== all fleet steps passed\n' >&2
