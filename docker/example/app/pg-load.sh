#!/bin/bash
# [service.postgres.backup] load (user postgres): feed a `pg_dumpall --clean --if-exists`
# stream (stdin, from the snapshot) to psql, stopping at the first error, so that a
# restore that did not fully work fails the boot instead of starting on half the data.
#
# pg_dumpall always drops and creates the role it ran as (postgres); in the running
# cluster that role is the session's own, so those two statements are errors. They are
# the only ones dropped, and only from the roles header (before the first \connect);
# the snapshot itself keeps pg_dumpall's output untouched.
set -euo pipefail
awk 'c || !/^(DROP ROLE IF EXISTS|CREATE ROLE) postgres;$/ { print } /^\\connect / { c = 1 }' |
    psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -U postgres -d postgres
