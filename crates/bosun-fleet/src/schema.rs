//! bosun's tables in the configured schema, created by bosun itself, idempotently.
//!
//! Rules that let an old and a new bosun share one fleet: a migration only adds
//! (`CREATE … IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS` with a default or nullable),
//! never drops or renames; readers ignore columns they do not know and tolerate states
//! and verbs they do not know. A peer that finds a newer `schema_version` than its own
//! runs no DDL and carries on. Migrations run in one transaction under a transaction-
//! scoped advisory lock (safe behind a pooler), so peers that boot together do not race
//! on `CREATE TABLE`. A peer whose database user may not create anything still works
//! once the schema is at its version: the check comes before any DDL.
//!
//! Every table is LOGGED: a lease's term must survive a crash and a failover to a
//! replica (an UNLOGGED table comes back empty, and the term would start again at 1),
//! and a heartbeat every few seconds is a few hundred bytes of WAL.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Error};

/// The schema version this bosun creates and expects.
pub const SCHEMA_VERSION: i32 = 2;

/// Version 1. `{s}` is the quoted schema.
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS {s}.peer (
    name          text PRIMARY KEY,
    boot_id       text NOT NULL,
    roles         text[] NOT NULL DEFAULT '{}',
    url           text NOT NULL DEFAULT '',
    version       text NOT NULL DEFAULT '',
    registered_at timestamptz NOT NULL DEFAULT now(),  -- first heartbeat of this name
    started_at    timestamptz NOT NULL DEFAULT now(),  -- first heartbeat of this boot
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL                 -- live while now() < expires_at
);
CREATE TABLE IF NOT EXISTS {s}.lease (
    name        text PRIMARY KEY,                      -- the singleton unit
    holder      text NOT NULL,                         -- a peer name
    boot_id     text NOT NULL,
    term        bigint NOT NULL,                       -- fencing term: only grows
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL                   -- held while now() < expires_at
);
CREATE TABLE IF NOT EXISTS {s}.command (
    id         bigserial PRIMARY KEY,
    action     text NOT NULL,                          -- restart | start | stop | run
    target     text NOT NULL,                          -- a unit, or role:R
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,                   -- end of the catch-up window
    expected   text[] NOT NULL DEFAULT '{}'            -- peers live when it was given
);
CREATE INDEX IF NOT EXISTS command_created_at ON {s}.command (created_at);
CREATE TABLE IF NOT EXISTS {s}.command_ack (
    command_id  bigint NOT NULL REFERENCES {s}.command (id) ON DELETE CASCADE,
    peer        text NOT NULL,
    boot_id     text NOT NULL,
    state       text NOT NULL,                         -- running | ok | failed | no-such-unit
    exit_code   integer,
    detail      text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (command_id, peer)
);
"#;

/// Version 2: when a peer left cleanly (its stop deregistered it), so that `ctl fleet`
/// tells `left` from `dead`. Null for a peer that never left; a heartbeat after it
/// (the name registered again, even by an older bosun) makes it stale.
const V2: &str = r#"
ALTER TABLE {s}.peer ADD COLUMN IF NOT EXISTS left_at timestamptz;
"#;

/// Each version's DDL, in order. Append only.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2)];

/// What [`ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ensured {
    /// The version in the database before.
    pub found: i32,
    /// Whether this call ran DDL.
    pub migrated: bool,
}

/// Brings `schema` (a validated identifier) to [`SCHEMA_VERSION`], or leaves a newer
/// one alone.
pub(crate) async fn ensure(client: &mut Client, schema: &str) -> Result<Ensured, Error> {
    let found = current(client, schema).await?;
    if found >= SCHEMA_VERSION {
        return Ok(Ensured {
            found,
            migrated: false,
        });
    }
    let q = quote(schema);
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("bosun-fleet {schema}")],
    )
    .await?;
    // Another peer may have migrated while we waited for the lock.
    let found = current_in(&tx, schema).await?;
    if found < SCHEMA_VERSION {
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&schema],
            )
            .await?
            .get(0);
        if !exists {
            tx.batch_execute(&format!("CREATE SCHEMA {q}")).await?;
        }
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {q}.schema_version (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now(),
                 applied_by text NOT NULL DEFAULT '')"
        ))
        .await?;
        for (version, ddl) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
            tx.batch_execute(&ddl.replace("{s}", &q)).await?;
            tx.execute(
                &format!("INSERT INTO {q}.schema_version (version, applied_by) VALUES ($1, $2) ON CONFLICT DO NOTHING"),
                &[version, &format!("bosun {}", env!("CARGO_PKG_VERSION"))],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Ensured {
        found,
        migrated: found < SCHEMA_VERSION,
    })
}

/// The highest version applied, 0 when there is no schema or table yet.
async fn current(client: &Client, schema: &str) -> Result<i32, Error> {
    let q = quote(schema);
    match client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {q}.schema_version"),
            &[],
        )
        .await
    {
        Ok(row) => Ok(row.get(0)),
        Err(e) if matches!(e.code(), Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME) => {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// [`current`] inside a transaction, where an error would abort it: look first.
async fn current_in(tx: &tokio_postgres::Transaction<'_>, schema: &str) -> Result<i32, Error> {
    let q = quote(schema);
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{q}.schema_version")],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    tx.query_one(
        &format!("SELECT coalesce(max(version), 0) FROM {q}.schema_version"),
        &[],
    )
    .await
    .map(|r| r.get(0))
}

/// A validated schema name as a quoted identifier.
pub(crate) fn quote(schema: &str) -> String {
    debug_assert!(crate::settings::is_identifier(schema));
    format!("\"{schema}\"")
}
