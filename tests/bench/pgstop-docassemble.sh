#!/bin/bash
# The docassemble-style side of tests/bench/pgstop.sh (run that, not this): the
# container's PID 1 in place of bosun, doing what docassemble's run-postgresql.sh does
# on `docker stop` (docs: /work/shared/research/docassemble.md §3.1): PostgreSQL runs
# under a shell with `trap stopfunc TERM`; the trap dumps to a file, uploads the file,
# then stops the server, and only then does the container exit.
#
# Env: PGSTOP_DEST (s3://bucket/prefix), S3ENDPOINTURL, AWS_* (credentials), S3REGION;
# PGSTOP_DUMP=dumpall (default; issue 12's `pg_dumpall > file; aws s3 cp file s3://…`)
# or custom (docassemble's own: `pg_dump -F c` of each database into a temp dir, then a
# sync of the dir; docassemble uses s4cmd dsync, here `aws s3 sync`). awscli comes from
# a read-only mount on PYTHONPATH (the example image has none).
# Every phase prints `pgstop: PHASE SECONDS` (and the dump's bytes) to the log.
set -u
PGBIN=/usr/lib/postgresql/15/bin
PGDATA=/var/lib/postgresql/data
AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
aws() { python3 -m awscli "$@" --endpoint-url "$S3ENDPOINTURL" --region "${S3REGION:-garage}" --only-show-errors; }

install -d -o postgres -g postgres -m 2775 /run/postgresql
"${AS_PG[@]}" "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' \
    -c unix_socket_directories=/run/postgresql &
PG=$!

stopfunc() {
    local t0 t dir rc=0 bytes
    t0=$(now)
    echo "pgstop: shutdown started (dump: ${PGSTOP_DUMP:-dumpall})"
    dir=$(mktemp -d)
    t=$(now)
    if [[ ${PGSTOP_DUMP:-dumpall} == custom ]]; then
        # run-postgresql.sh: every database but the templates and postgres, one file each.
        for db in $(psql -X -Atc "SELECT datname FROM pg_database" -h /run/postgresql -U postgres); do
            [[ $db == *template* || $db == *postgres* ]] && continue
            pg_dump -F c -h /run/postgresql -U postgres -f "$dir/$db" "$db" || rc=1
        done
    else
        pg_dumpall -h /run/postgresql -U postgres --clean --if-exists >"$dir/pg_dumpall.sql" || rc=1
    fi
    bytes=$(find "$dir" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }')
    echo "pgstop: dump $(secs "$t") bytes $bytes rc $rc"
    t=$(now)
    if [[ ${PGSTOP_DUMP:-dumpall} == custom ]]; then
        aws s3 sync "$dir" "$PGSTOP_DEST/postgres" || rc=1
    else
        aws s3 cp "$dir/pg_dumpall.sql" "$PGSTOP_DEST/pg_dumpall.sql" || rc=1
    fi
    echo "pgstop: upload $(secs "$t") rc $rc"
    t=$(now)
    # pg_ctlcluster --force stop: fast shutdown (then immediate, were it to hang).
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" stop -m fast -w -t 300 >/dev/null || rc=1
    wait "$PG" 2>/dev/null
    echo "pgstop: pg-stop $(secs "$t")"
    echo "pgstop: total $(secs "$t0") rc $rc"
    exit "$rc"
}
trap stopfunc TERM INT
# `wait` returns when the trap fires; the trap exits. A postgres that dies on its own
# ends the container with its code (supervisord would restart it once; not needed here).
wait "$PG"
echo "pgstop: postgres exited on its own ($?)"
exit 1
