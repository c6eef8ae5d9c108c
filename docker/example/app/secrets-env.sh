#!/bin/sh
# For orchestrators that hand secrets over as files (Kubernetes Secrets, podman and docker
# secrets), the docker-library `_FILE` convention: DBPASSWORD_FILE=/run/secrets/... sets
# DBPASSWORD to that file's content (final newline dropped). Then exec the rest, so that
# bosun replaces this shell and is PID 1:
#   command: ["/app/secrets-env.sh", "bosun", "run"]
set -eu
if [ -n "${DBPASSWORD_FILE:-}" ]; then
    DBPASSWORD=$(cat "$DBPASSWORD_FILE") || { echo "secrets-env: cannot read DBPASSWORD_FILE=$DBPASSWORD_FILE" >&2; exit 2; }
    export DBPASSWORD
    unset DBPASSWORD_FILE
fi
exec "$@"
