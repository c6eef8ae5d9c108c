#!/usr/bin/env bash
# What users feel at a stop (issue 12): `podman stop -t 600` of docker/example with a
# ~1 GiB PostgreSQL database (pgbench data, compressible), bosun backing it up into
# Garage, against the docassemble-style sequence on the same data, the same image and
# the same Garage, in one run. Goal: bosun's stop <= 0.6x as long.
#
#   tests/bench/pgstop.sh                       BENCH_RUNS (default 2) runs of each side
#   BENCH_SHELL_DUMP=custom tests/bench/pgstop.sh   docassemble's own `pg_dump -F c`
#
# Each run, in alternating order (odd runs bosun first, even runs shell first):
# - bosun: the example image (CONTAINERROLE=all: postgres, redis, web, worker, cron) with
#   BACKUP_URL=s3://BUCKET/PREFIX on Garage, as docker/example documents. On
#   `podman stop -t 600` bosun stops the app tier, streams `pg_dumpall` (its
#   [service.postgres.backup]) and the Redis dump into the store (zstd), stops postgres
#   and commits. Checked: exit 0, "snapshot ID committed" in the log, LATEST = ID in the
#   bucket, its MANIFEST.json lists postgres.
# - shell (docassemble-style): the same image, PID 1 is tests/bench/pgstop-docassemble.sh
#   (postgres under a shell whose TERM trap runs `pg_dumpall > file`, then
#   `aws s3 cp file s3://…`, then a fast stop: what docassemble's run-postgresql.sh
#   does). Checked: exit 0 and the object in the bucket has the dump's size.
# Both: the same PGDATA (a podman volume on /var/lib/postgresql, filled once with
# `pgbench -i -s BENCH_SCALE`), a CHECKPOINT just before the stop, the same network
# (slirp4netns to Garage on the host's 127.0.0.1, as tests/e2e/podman.sh step 4), timed
# as the wall clock of `podman stop -t 600` (the shutdown's start to the container gone).
# CPU seconds: the container's cgroup (and its PID 1 alone), its slirp4netns and Garage
# (tests/bench/pgstop.py). bosun's `ctl status` 1.5 s into each of its stops is printed
# (through nsenter: podman refuses `exec` into a stopping container), with bosun's log
# lines of the stop and the shell's phase times.
#
# Environment:
#   BENCH_RUNS        runs of each side (default 2)
#   BENCH_SCALE       pgbench scale (default 68: ~1 GiB; pg_database_size is printed)
#   BENCH_DATA        pgbench (default: its filler columns are blank, zstd keeps ~1 %)
#                     or random (BENCH_MB, default 1000, MB of base64 random text in
#                     one table, as tests/e2e/podman.sh step 7: zstd keeps ~75 %)
#   BENCH_REFERENCE=0 skip the reference timings (run 1, in the shell-side container,
#                     before its stop: `pg_dumpall > /dev/null`, `pg_dump -F c` of the
#                     data's database > /dev/null: what the dump alone costs)
#   BENCH_SHELL_DUMP  dumpall (default, issue 12's sequence) or custom (pg_dump -F c of
#                     each database + `aws s3 sync`, docassemble's own format)
#   BOSUN_BIN         bosun binary for the image (default: cargo build --release -p bosun)
#   BENCH_IMAGE       test this image instead of building localhost/bosun-example:pgstop
#   BENCH_KEEP=1      keep containers, volume, Garage and the work dir
# Needs root (rootful podman), podman + runc (tests/support/install.sh e2e), Garage
# (~/.cargo/bin/garage), awscli (pip, installed if missing, as tests/bench/snapshot.sh).
# Every wait is bounded; everything it started is removed on exit (Garage by its pid);
# kept for the next run: the image and the awscli tree (/tmp/bosun-bench-awscli, ~170 MB).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

RUNS=${BENCH_RUNS:-2}
SCALE=${BENCH_SCALE:-68}
DUMP=${BENCH_SHELL_DUMP:-dumpall}
DATA=${BENCH_DATA:-pgbench}
MB=${BENCH_MB:-1000}
ID=pgstop$$
IMAGE=${BENCH_IMAGE:-localhost/bosun-example:pgstop}
RUNOPTS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
WORK=$(mktemp -d /tmp/bosun-pgstop.XXXXXX)
PGVOL=bosun-$ID-pgdata
RESULTS=$WORK/results.tsv
declare -a CONTAINERS=() REFS=()
GARAGE_DIR= FILLED=0 FAILED=0
[[ $RUNS =~ ^[1-9][0-9]*$ && $SCALE =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS and BENCH_SCALE: positive integers" >&2; exit 2; }
[[ $DUMP == dumpall || $DUMP == custom ]] || { echo "BENCH_SHELL_DUMP: dumpall or custom, not '$DUMP'" >&2; exit 2; }
[[ $DATA == pgbench || $DATA == random ]] || { echo "BENCH_DATA: pgbench or random, not '$DATA'" >&2; exit 2; }
[[ $MB =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_MB: a positive integer" >&2; exit 2; }

log() { printf '%s pgstop: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        log "BENCH_KEEP=1: leaving ${CONTAINERS[*]:-} $PGVOL, Garage in ${GARAGE_DIR:-?}, $WORK"
        exit "$rc"
    fi
    for c in "${CONTAINERS[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
    podman volume rm -f "$PGVOL" >/dev/null 2>&1
    if [[ -n $GARAGE_DIR ]]; then tests/support/garage.sh stop "$GARAGE_DIR" >/dev/null 2>&1; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ tools and image

[[ $EUID -eq 0 ]] || die "needs root (rootful podman)"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then tests/support/install.sh e2e || die "install.sh e2e"; fi
if ! command -v aws >/dev/null 2>&1; then
    log "installing awscli from PyPI"
    python3 -m pip install -q awscli >&2 && hash -r
    command -v aws >/dev/null 2>&1 || die "aws is not on PATH after pip install awscli"
fi
haws() { timeout 300 aws --endpoint-url "$S3ENDPOINTURL" --region "${S3REGION:-garage}" "$@"; }

# The image, as tests/e2e/podman.sh's setup() builds it (base by debootstrap, bosun from
# the host): under its own tag, so that a concurrent e2e run keeps its image.
if [[ -z ${BENCH_IMAGE:-} ]]; then
    bin=${BOSUN_BIN:-}
    if [[ -z $bin ]]; then
        log "cargo build --release -p bosun"
        nice cargo build --release -q -p bosun >&2 || die "cargo build"
        bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/bosun
    fi
    [[ -x $bin ]] || die "no bosun binary at $bin"
    base=$(tests/e2e/base-image.sh) || die "tests/e2e/base-image.sh"
    ctx=$WORK/context
    mkdir -p "$ctx"
    cp "$bin" "$ctx/bosun" && cp docker/example/bosun.toml "$ctx/" && cp -r docker/example/app "$ctx/app"
    rm -rf "$ctx/app/__pycache__"
    old_id=$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null)
    log "podman build $IMAGE FROM $base"
    timeout 600 podman build --runtime runc --pull=never --network=none --format docker \
        --build-arg BASE="$base" -f docker/example/Dockerfile -t "$IMAGE" "$ctx" \
        >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log" >&2; die "podman build"; }
    new_id=$(podman image inspect -f '{{.Id}}' "$IMAGE")
    if [[ -n $old_id && $old_id != "$new_id" ]]; then podman rmi "$old_id" >/dev/null 2>&1; fi
fi
podman image exists "$IMAGE" || die "no image $IMAGE"

# awscli for the shell side, inside the container: a pip --target tree of the host's
# Python, mounted read-only (the image has no awscli; its Python is bookworm's 3.11).
cpy=$(timeout 60 podman run --rm "${RUNOPTS[@]}" --network=none --entrypoint python3 "$IMAGE" \
    -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || die "python3 in $IMAGE"
hpy=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $cpy == "$hpy" ]] || die "the image's Python is $cpy, the host's $hpy: awscli's tree (PyYAML's wheel) would not load"
AWSCLI=/tmp/bosun-bench-awscli
if [[ ! -d $AWSCLI/awscli ]]; then
    log "pip install --target $AWSCLI awscli (once)"
    python3 -m pip install -q --target "$AWSCLI.tmp.$$" awscli >&2 && mv "$AWSCLI.tmp.$$" "$AWSCLI" || die "pip install awscli"
fi

# ------------------------------------------------------------------ Garage

gbin=${GARAGE_BIN:-$(command -v garage || echo "$HOME/.cargo/bin/garage")}
[[ -x $gbin ]] || die "no garage binary (cargo install --locked garage@2.5.0)"
GARAGE_DIR=$WORK/garage
read -r s3p rpcp admp < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
GARAGE_BIN=$gbin GARAGE_S3_PORT=$s3p GARAGE_RPC_PORT=$rpcp GARAGE_ADMIN_PORT=$admp \
    timeout 120 tests/support/garage.sh start "$GARAGE_DIR" >"$WORK/garage-start.log" 2>&1 ||
    { tail -20 "$WORK/garage-start.log" >&2; die "Garage did not start"; }
GARAGE_PID=$(cat "$GARAGE_DIR/garage.pid")
set -a
# shellcheck disable=SC1091
. "$GARAGE_DIR/env"
set +a
unset AWS_PROFILE
BUCKET=$BOSUN_TEST_BUCKET
# The container reaches the host's loopback through slirp4netns at 10.0.2.2.
CENDPOINT=${S3ENDPOINTURL/127.0.0.1/10.0.2.2}
grep -E '^(S3REGION|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=' "$GARAGE_DIR/env" >"$WORK/s3.env"
NET=(--network slirp4netns:allow_host_loopback=true --env-file "$WORK/s3.env" -e "S3ENDPOINTURL=$CENDPOINT")
log "Garage pid $GARAGE_PID at $S3ENDPOINTURL (containers: $CENDPOINT), bucket $BUCKET"

podman volume create "$PGVOL" >/dev/null || die "podman volume create"

# ------------------------------------------------------------------ helpers

run() { # NAME [podman run options...]
    local name=$1
    shift
    CONTAINERS+=("$name")
    timeout 60 podman run -d --name "$name" --hostname "$name" "${RUNOPTS[@]}" "${NET[@]}" \
        -v "$PGVOL:/var/lib/postgresql" "$@" >/dev/null 2>"$WORK/$name.run.err" ||
        { log "podman run $name: $(tail -3 "$WORK/$name.run.err")"; return 1; }
}
x() { local name=$1; shift; timeout 120 podman exec "$name" "$@"; }
psql_c() { local name=$1; shift; x "$name" psql -X -tA -h /run/postgresql -U postgres "$@"; }
running() { [[ $(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }

wait_ready() { # NAME SECONDS CMD...: until CMD exits 0 inside NAME
    local name=$1 limit=$2 deadline
    shift 2
    deadline=$((SECONDS + limit))
    until timeout 10 podman exec "$name" "$@" >/dev/null 2>&1; do
        running "$name" || { podman logs "$name" 2>&1 | tail -30 >&2; log "$name exited before it was ready"; return 1; }
        ((SECONDS < deadline)) || { podman logs "$name" 2>&1 | tail -30 >&2; log "$name not ready in ${limit}s"; return 1; }
        sleep 0.5
    done
}

fill() { # NAME: the data, once (the volume keeps it for every later container)
    local name=$1 t0 cmd
    ((FILLED)) && return 0
    if [[ $DATA == pgbench ]]; then
        cmd="pgbench -h /run/postgresql -i -q -s $SCALE bench"
    else
        # 1 MB of table per 1000 rows of 1000 base64 characters (750 random bytes).
        cmd="psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -d bench -c 'create extension pgcrypto' -c \"create table blobs as select g as id, encode(gen_random_bytes(750), 'base64') as body from generate_series(1, $((MB * 1000))) g\""
    fi
    t0=$(now)
    log "filling ($DATA, once): $cmd"
    timeout 1800 podman exec -u postgres "$name" sh -c "createdb -h /run/postgresql bench && $cmd" \
        >"$WORK/fill.log" 2>&1 || { tail -5 "$WORK/fill.log" >&2; return 1; }
    FILLED=1
    log "filled in $(since "$t0")s: $(psql_c "$name" -c "select pg_size_pretty(pg_database_size('bench'))") in bench"
}

# reference NAME: what the dump alone costs, inside NAME (postgres up, nothing else).
reference() {
    local name=$1 t0 what
    for what in "pg_dumpall -h /run/postgresql -U postgres --clean --if-exists" \
                "pg_dump -F c -h /run/postgresql -U postgres bench"; do
        t0=$(now)
        timeout 900 podman exec "$name" sh -c "$what >/dev/null" || { log "reference: $what failed"; return 1; }
        REFS+=("$what > /dev/null: $(since "$t0")s")
        log "reference: ${REFS[-1]}"
    done
}

# stop_timed NAME SIDE RUN: CHECKPOINT, then `podman stop -t 600` timed, with the CPU
# sampler around it. Appends side/run/secs/code/cpu/load/size to $RESULTS (the caller
# adds bytes stored via EXTRA).
stop_timed() {
    local name=$1 side=$2 runno=$3 cg netns spid t0 secs load0 size
    size=$(psql_c "$name" -c "select sum(pg_database_size(datname))::bigint from pg_database") || return 1
    psql_c "$name" -c checkpoint >/dev/null || return 1
    cg=$(podman inspect -f '{{.State.CgroupPath}}' "$name")
    netns=$(podman inspect -f '{{.NetworkSettings.SandboxKey}}' "$name")
    python3 tests/bench/pgstop.py sample --cgroup "$cg" --netns "$netns" --garage-pid "$GARAGE_PID" \
        --pid1 "$(podman inspect -f '{{.State.Pid}}' "$name")" --out "$WORK/$name.cpu.json" &
    spid=$!
    sleep 0.3 # the sampler's first reading
    load0=$(load1)
    log "run $runno $side: podman stop -t 600 $name (cluster $((size / 1048576)) MiB, load $load0)"
    t0=$(now)
    timeout 660 podman stop -t 600 "$name" >/dev/null 2>"$WORK/$name.stop.err"
    secs=$(since "$t0")
    kill -TERM "$spid" 2>/dev/null
    timeout 10 tail --pid="$spid" -f /dev/null
    code=$(podman inspect -f '{{.State.ExitCode}}' "$name" 2>/dev/null) # global: the caller checks it
    STOP_ROW="run=$runno	side=$side	secs=$secs	code=$code	load0=$load0	load1=$(load1)	cluster=$size"
    STOP_ROW+=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("".join("\tcpu_%s=%s" % (k, "?" if v is None else "%.1f" % v) for k, v in j.items()))' "$WORK/$name.cpu.json" 2>/dev/null || printf '\tcpu_container=?\tcpu_slirp=?\tcpu_garage=?')
    log "run $runno $side: ${secs}s, exit $code"
}

# ------------------------------------------------------------------ the two sides

bosun_side() { # RUN
    local r=$1 name=bosun-$ID-b$1 prefix=$ID/r$1-bosun id latest items
    run "$name" -e CONTAINERROLE=all -e "BACKUP_URL=s3://$BUCKET/$prefix" "$IMAGE" || return 1
    wait_ready "$name" 300 bosun ctl health || return 1
    fill "$name" || return 1
    # What bosun says about itself mid-stop (the dump is going on by then). Not
    # `podman exec`: podman refuses exec sessions into a stopping container.
    local pid1
    pid1=$(podman inspect -f '{{.State.Pid}}' "$name")
    (sleep 1.5; timeout 10 nsenter -t "$pid1" -m -p -- bosun ctl status >"$WORK/$name.status" 2>&1) &
    local stpid=$!
    stop_timed "$name" bosun "$r" || return 1
    wait "$stpid"
    log "run $r bosun: \`bosun ctl status\` 1.5 s into the stop:"
    sed 's/^/    /' "$WORK/$name.status" >&2
    podman logs "$name" >"$WORK/$name.log" 2>&1
    grep -E 'dumping its data|backing up .*done|stopped in|committed|exits with' "$WORK/$name.log" | sed 's/^/    /' >&2
    local why=()
    [[ $code == 0 ]] || why+=("exit code $code")
    id=$(sed -n 's/.*snapshot \([0-9TZ-]*-[0-9a-z-]*\) committed.*/\1/p' "$WORK/$name.log" | tail -1)
    [[ -n $id ]] || why+=("no 'snapshot ... committed' in the log")
    latest=$(haws s3 cp "s3://$BUCKET/$prefix/LATEST" - 2>/dev/null | tr -d '[:space:]')
    [[ -n $id && $latest == "$id" ]] || why+=("LATEST in the bucket is '$latest', the log committed '$id'")
    haws s3 cp "s3://$BUCKET/$prefix/snapshots/$latest/MANIFEST.json" "$WORK/$name.manifest.json" --only-show-errors >/dev/null 2>&1
    read -r stored raw items < <(python3 tests/bench/pgstop.py manifest "$WORK/$name.manifest.json" 2>/dev/null)
    [[ ,${items:-}, == *,postgres,* ]] || why+=("the manifest lists '${items:-nothing}', no postgres")
    podman rm "$name" >/dev/null 2>&1
    haws s3 rm --recursive --only-show-errors "s3://$BUCKET/$prefix/" >/dev/null 2>&1
    if ((${#why[@]})); then tail -30 "$WORK/$name.log" >&2; log "run $r bosun FAIL: ${why[*]}"; FAILED=1; return 1; fi
    printf '%s\tstored=%s\traw=%s\n' "$STOP_ROW" "$stored" "$raw" >>"$RESULTS"
    log "run $r bosun: snapshot $id committed, items $items, $stored bytes stored ($raw raw)"
}

shell_side() { # RUN
    local r=$1 name=bosun-$ID-s$1 prefix=$ID/r$1-shell
    run "$name" -e "PGSTOP_DEST=s3://$BUCKET/$prefix" -e "PGSTOP_DUMP=$DUMP" -e PYTHONPATH=/opt/awscli \
        -v "$AWSCLI:/opt/awscli:ro" -v "$ROOT/tests/bench/pgstop-docassemble.sh:/pgstop-docassemble.sh:ro" \
        --entrypoint /pgstop-docassemble.sh "$IMAGE" || return 1
    wait_ready "$name" 120 pg_isready -q -h /run/postgresql -U postgres || return 1
    if ! ((FILLED)); then fill "$name" || return 1; fi
    if [[ $r == 1 && ${BENCH_REFERENCE:-1} == 1 ]]; then reference "$name" || return 1; fi
    stop_timed "$name" shell "$r" || return 1
    podman logs "$name" >"$WORK/$name.log" 2>&1
    grep '^pgstop:' "$WORK/$name.log" | sed 's/^/    /' >&2
    local why=() dumped stored
    [[ $code == 0 ]] || why+=("exit code $code")
    dumped=$(sed -n 's/^pgstop: dump .* bytes \([0-9]*\) .*/\1/p' "$WORK/$name.log")
    stored=$(haws s3 ls --recursive --summarize "s3://$BUCKET/$prefix/" 2>/dev/null | sed -n 's/.*Total Size: *//p')
    [[ -n $dumped && $stored == "$dumped" ]] || why+=("the bucket holds '${stored:-nothing}' bytes, the dump was '${dumped:-?}'")
    podman rm "$name" >/dev/null 2>&1
    haws s3 rm --recursive --only-show-errors "s3://$BUCKET/$prefix/" >/dev/null 2>&1
    if ((${#why[@]})); then tail -30 "$WORK/$name.log" >&2; log "run $r shell FAIL: ${why[*]}"; FAILED=1; return 1; fi
    printf '%s\tstored=%s\traw=%s\n' "$STOP_ROW" "$stored" "$dumped" >>"$RESULTS"
}

# ------------------------------------------------------------------ main

what="pgbench scale $SCALE"
[[ $DATA == random ]] && what="$MB MB of random base64"
log "image $IMAGE, $RUNS runs, $what, shell dump: $DUMP, work dir $WORK"
: >"$RESULTS"
for r in $(seq 1 "$RUNS"); do
    if ((r % 2)); then
        bosun_side "$r" || FAILED=1
        shell_side "$r" || FAILED=1
    else
        shell_side "$r" || FAILED=1
        bosun_side "$r" || FAILED=1
    fi
    ((FILLED)) || die "the database was never filled"
done

printf '\n==== podman stop -t 600, %s cores, %s, shell: %s (%s)\n' "$(nproc)" "$what" "$DUMP" "$(date -u +%FT%TZ)"
if ((${#REFS[@]})); then printf '  reference: %s\n' "${REFS[@]}"; fi
python3 tests/bench/pgstop.py table "$RESULTS"
((FAILED == 0)) || { log "a step failed (see above)"; exit 1; }
