#!/bin/sh
# task.dbsetup (user postgres, role sql, after postgres is ready and a restore, if any,
# is loaded): the app's role and database, created when missing. Idempotent; the password
# follows $DBPASSWORD on every boot.
set -eu
psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -U postgres -d postgres \
     -v user="${DBUSER:-notes}" -v db="${DBNAME:-notes}" -v pw="${DBPASSWORD:-notes}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
echo "dbsetup: role and database '${DBNAME:-notes}' ready"
