#!/usr/bin/env bash
# A single-node Garage (S3 server) for tests.
#
#   tests/support/garage.sh start DIR   start (or find running) Garage with its data under DIR,
#                                       set up bucket + key, write DIR/env; idempotent
#   tests/support/garage.sh stop DIR    stop it (data stays in DIR)
#   tests/support/garage.sh status DIR  exit 0 when it is running
#   tests/support/garage.sh fresh DIR   stop it, empty DIR/meta and DIR/data, start again: an
#                                       empty Garage with the same key, bucket name and env
#
# DIR/env holds S3ENDPOINTURL, S3REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# BOSUN_TEST_BUCKET, as KEY=VALUE lines (source it, or point BOSUN_GARAGE_ENV at it).
# Ports (127.0.0.1 only): GARAGE_S3_PORT (43900), GARAGE_RPC_PORT (43901),
# GARAGE_ADMIN_PORT (43903). The binary: $GARAGE_BIN, else `garage` on PATH, else
# ~/.cargo/bin/garage (cargo install --locked garage@2.5.0).
set -euo pipefail

usage() { echo "usage: $0 start|stop|status|fresh DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)

S3_PORT=${GARAGE_S3_PORT:-43900}
RPC_PORT=${GARAGE_RPC_PORT:-43901}
ADMIN_PORT=${GARAGE_ADMIN_PORT:-43903}
BUCKET=${BOSUN_TEST_BUCKET:-bosun-test}
REGION=garage
KEY_NAME=bosun-test

garage_bin() {
    if [[ -n ${GARAGE_BIN:-} ]]; then echo "$GARAGE_BIN"; return; fi
    if command -v garage >/dev/null 2>&1; then command -v garage; return; fi
    if [[ -x $HOME/.cargo/bin/garage ]]; then echo "$HOME/.cargo/bin/garage"; return; fi
    echo "garage.sh: no garage binary: cargo install --locked garage@2.5.0 (or set GARAGE_BIN)" >&2
    exit 1
}

conf=$dir/garage.toml
pidfile=$dir/garage.pid
log=$dir/garage.log

g() { "$GARAGE" -c "$conf" "$@"; }

running() {
    [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

write_config() {
    # Secrets are made once per DIR and kept, so that restarts reuse the same cluster.
    [[ -f $dir/rpc_secret ]] || { hex 32 >"$dir/rpc_secret"; chmod 600 "$dir/rpc_secret"; }
    [[ -f $dir/admin_token ]] || { hex 32 >"$dir/admin_token"; chmod 600 "$dir/admin_token"; }
    mkdir -p "$dir/meta" "$dir/data"
    umask 077
    cat >"$conf" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
metadata_fsync = false
data_fsync = false

rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(cat "$dir/rpc_secret")"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
admin_token = "$(cat "$dir/admin_token")"
TOML
}

wait_for() { # seconds, description, command...
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "garage.sh: timed out after ${secs}s waiting for $what; log: $log" >&2
            tail -n 20 "$log" >&2 || true
            exit 1
        fi
        if ! running; then
            echo "garage.sh: garage exited while waiting for $what; log: $log" >&2
            tail -n 20 "$log" >&2 || true
            exit 1
        fi
        sleep 0.3
    done
}

s3_answers() {
    # Any HTTP answer (403 for an anonymous request) means the S3 API is serving.
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" || true)
    [[ $code =~ ^[1-5][0-9][0-9]$ ]]
}

setup_cluster() {
    local node_id version
    node_id=$(g node id -q 2>/dev/null | head -n1 | cut -d@ -f1)
    [[ -n $node_id ]] || { echo "garage.sh: cannot read the node id" >&2; exit 1; }
    if g status 2>/dev/null | grep -q "NO ROLE ASSIGNED"; then
        g layout assign -z dc1 -c 1G "$node_id" >/dev/null
        version=$(g layout show 2>/dev/null | sed -n 's/.*[Cc]urrent cluster layout version: *\([0-9]*\).*/\1/p' | head -n1)
        g layout apply --version $((${version:-0} + 1)) >/dev/null
    fi
    wait_for 30 "the bucket API" g bucket list
    if ! g bucket info "$BUCKET" >/dev/null 2>&1; then
        g bucket create "$BUCKET" >/dev/null
    fi
    if [[ ! -f $dir/credentials ]]; then
        echo "GK$(hex 12) $(hex 32)" >"$dir/credentials"
        chmod 600 "$dir/credentials"
    fi
    read -r key_id secret <"$dir/credentials"
    if ! g key info "$key_id" >/dev/null 2>&1; then
        g key import --yes -n "$KEY_NAME" "$key_id" "$secret" >/dev/null
    fi
    g bucket allow --read --write --owner "$BUCKET" --key "$key_id" >/dev/null
    wait_for 30 "the S3 API on 127.0.0.1:$S3_PORT" s3_answers
    umask 077
    cat >"$dir/env" <<ENV
S3ENDPOINTURL=http://127.0.0.1:$S3_PORT
S3REGION=$REGION
AWS_ACCESS_KEY_ID=$key_id
AWS_SECRET_ACCESS_KEY=$secret
BOSUN_TEST_BUCKET=$BUCKET
ENV
}

start_server() {
    GARAGE=$(garage_bin)
    write_config
    if ! running; then
        for port in "$S3_PORT" "$RPC_PORT" "$ADMIN_PORT"; do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                echo "garage.sh: 127.0.0.1:$port is already in use (another garage.sh start DIR?):" \
                    "stop it, or set GARAGE_S3_PORT/GARAGE_RPC_PORT/GARAGE_ADMIN_PORT" >&2
                exit 1
            fi
        done
        # setsid: the server outlives this script and ignores the caller's signals.
        setsid "$GARAGE" -c "$conf" server >>"$log" 2>&1 </dev/null &
        echo $! >"$pidfile"
    fi
    wait_for 60 "the garage RPC" g status
    setup_cluster
    echo "garage running (pid $(cat "$pidfile")), S3 at http://127.0.0.1:$S3_PORT; env in $dir/env"
}

stop_server() {
    if running; then
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid"
            for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
        echo "garage stopped"
    else
        echo "garage not running"
    fi
    rm -f "$pidfile"
}

case $cmd in
start)
    start_server
    ;;
stop)
    stop_server
    ;;
status)
    running
    ;;
fresh)
    # The secrets and DIR/credentials stay, so the key (and DIR/env) is the same as before;
    # the node id, layout, bucket and objects are new.
    stop_server >/dev/null
    rm -rf "${dir:?}/meta" "${dir:?}/data"
    start_server
    ;;
*)
    usage
    ;;
esac
