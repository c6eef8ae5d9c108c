#!/bin/sh
# task.initdb (user postgres, role sql): make a cluster when $PGDATA is empty.
# A fresh cluster is what a restore loads into: bosun starts postgres, waits until it is
# ready, then feeds the snapshot's pg_dumpall output to psql before anything else uses it.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
if [ -s "$PGDATA/PG_VERSION" ]; then
    echo "initdb: cluster exists in $PGDATA"
    exit 0
fi
/usr/lib/postgresql/15/bin/initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
# Local socket: peer auth. bosun runs the backup dump/load as the unit's user (postgres);
# root is mapped too, so that `podman exec CONTAINER psql -U postgres` works for admins.
cat >"$PGDATA/pg_ident.conf" <<IDENT
bosun root     postgres
bosun postgres postgres
IDENT
# TCP: passwords (scram); the app tier may live in another container (split roles).
cat >"$PGDATA/pg_hba.conf" <<HBA
local all all                  peer map=bosun
host  all all 127.0.0.1/32     scram-sha-256
host  all all ::1/128          scram-sha-256
host  all all 0.0.0.0/0        scram-sha-256
host  all all ::/0             scram-sha-256
HBA
echo "initdb: new cluster in $PGDATA"
