#!/bin/sh
# task.initialize (root, every role): the few things only root can do, all idempotent,
# so that every service after it runs as its own user. This replaces the root half of
# docassemble's initialize.sh; the rest is in bosun.toml (order, readiness, stop, backup).
set -eu

# PostgreSQL: socket directory and data directory parent, owned by postgres.
install -d -o postgres -g postgres -m 2775 /run/postgresql
install -d -o postgres -g postgres -m 0755 /var/lib/postgresql
# Redis: its RDB lives here (written on shutdown, read on start).
install -d -o redis -g redis -m 0750 /var/lib/redis
# bosun's own state and the default (volume) backup store.
install -d -m 0755 /var/lib/bosun
echo "initialize: roles '${CONTAINERROLE:-all}', directories ready"
