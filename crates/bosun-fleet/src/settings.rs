//! `[fleet]` settings as the runtime needs them, their defaults, and the one pure check
//! (`bosun check` calls [`validate`]) that names the keys it refuses.
//!
//! The timing rules come from Patroni's `loop_wait + 2×retry_timeout ≤ ttl` and from
//! what a singleton's holder must be able to do before its lease can expire on the
//! database clock: see [`validate`].

use std::time::Duration;

use crate::conninfo;

/// `lease_ttl` when not set: River's and Kubernetes' 15 s.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);
/// `renew_every` when not set.
pub const DEFAULT_RENEW_EVERY: Duration = Duration::from_secs(5);
/// `schema` when not set.
pub const DEFAULT_SCHEMA: &str = "bosun";
/// How long one statement (a round, a pull, an ack) may take before the connection is
/// given up and made anew. Not a config key.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a peer looks for commands when no NOTIFY woke it. Not a config key.
pub const DEFAULT_COMMAND_POLL: Duration = Duration::from_secs(30);
/// How long a command stays runnable for a peer that was away when it was given
/// (it runs it once when it comes back within this window). Not a config key.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(600);
/// `renew_every` below this is refused: it would only load the database.
pub const MIN_RENEW_EVERY: Duration = Duration::from_millis(100);

/// The `[fleet]` table, interpolated, with durations parsed. Field names are the
/// config keys (contract v2); the last three are not config keys and keep their
/// defaults unless a caller (a test) sets them.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// `database`: `postgres://user:pw@host:5432/db[?sslmode=…&sslrootcert=…]`, or
    /// libpq's `key=value` form. Holds a password: never print it, use
    /// [`Settings::database_redacted`].
    pub database: String,
    /// `name`: this peer's name, unique in the fleet.
    pub name: String,
    /// `url`: how an admin reaches this peer's API (shown, not used).
    pub url: String,
    /// `lease_ttl`: peer liveness and singleton leases.
    pub lease_ttl: Duration,
    /// `renew_every`: heartbeat and lease renewal period.
    pub renew_every: Duration,
    /// `schema`: the PostgreSQL schema that holds bosun's tables.
    pub schema: String,
    /// Bound on each database round trip ([`DEFAULT_STATEMENT_TIMEOUT`]).
    pub statement_timeout: Duration,
    /// Fallback poll for commands ([`DEFAULT_COMMAND_POLL`]).
    pub command_poll: Duration,
    /// Catch-up window of a command ([`DEFAULT_CATCH_UP`]).
    pub catch_up: Duration,
}

impl Settings {
    /// Settings with every default but the two keys that have none.
    pub fn new(database: impl Into<String>, name: impl Into<String>) -> Settings {
        Settings {
            database: database.into(),
            name: name.into(),
            url: String::new(),
            lease_ttl: DEFAULT_LEASE_TTL,
            renew_every: DEFAULT_RENEW_EVERY,
            schema: DEFAULT_SCHEMA.to_owned(),
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            command_poll: DEFAULT_COMMAND_POLL,
            catch_up: DEFAULT_CATCH_UP,
        }
    }

    /// What a lease holder subtracts from its trust window for clock-rate drift, the
    /// scheduler and the reaping of a killed process group: `lease_ttl / 15`, between
    /// 100 ms and 1 s (1 s at the default 15 s, as River does).
    pub fn margin(&self) -> Duration {
        (self.lease_ttl / 15).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// `database` with any password replaced by `***`: for logs, status and errors.
    pub fn database_redacted(&self) -> String {
        conninfo::redact(&self.database)
    }

    /// The shortest `lease_ttl` that lets a singleton with `stop_timeout` be stopped
    /// before its lease can expire: `renew_every + statement timeout + stop_timeout +
    /// margin`. (The renewal due `renew_every` after the last good one lands within the
    /// statement timeout, and must land before the holder has to say "stop now".)
    pub fn ttl_needed_for(&self, stop_timeout: Duration) -> Duration {
        self.renew_every + self.statement_timeout + stop_timeout + self.margin()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database", &self.database_redacted())
            .field("name", &self.name)
            .field("url", &self.url)
            .field("lease_ttl", &self.lease_ttl)
            .field("renew_every", &self.renew_every)
            .field("schema", &self.schema)
            .field("statement_timeout", &self.statement_timeout)
            .field("command_poll", &self.command_poll)
            .field("catch_up", &self.catch_up)
            .finish()
    }
}

/// One thing wrong with `[fleet]`, naming the key and what to do. URLs in it are
/// redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `database` is empty (the caller treats an empty value as "no fleet" before it
    /// builds [`Settings`]; here it is a mistake).
    #[error(
        "[fleet] database is empty: set it to a postgres:// URL, or leave it empty for no fleet"
    )]
    DatabaseEmpty,
    /// `database` does not parse, or has an option bosun refuses.
    #[error("[fleet] database {url}: {reason}")]
    Database {
        /// The URL, password redacted.
        url: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// `sslrootcert` cannot be read or holds no certificate (found when the fleet
    /// starts, not by [`validate`], which does no I/O).
    #[error("[fleet] database sslrootcert {path}: {reason}")]
    RootCert {
        /// The file named by `sslrootcert`.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// `name` is empty.
    #[error("[fleet] name is empty: set it (default ${{SERVERHOSTNAME:-${{HOSTNAME}}}}); each peer needs a name unique in the fleet")]
    NameEmpty,
    /// `name` has characters bosun does not allow.
    #[error("[fleet] name {name:?}: {reason}")]
    Name {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// `schema` is not a plain identifier.
    #[error("[fleet] schema {schema:?}: use a plain PostgreSQL identifier (a lowercase letter or `_`, then lowercase letters, digits or `_`, at most 63 bytes)")]
    Schema {
        /// The schema given.
        schema: String,
    },
    /// `renew_every` is too small.
    #[error("[fleet] renew_every = {renew_every:?} is below the minimum {MIN_RENEW_EVERY:?}")]
    RenewEvery {
        /// The value given.
        renew_every: Duration,
    },
    /// A statement timeout of zero.
    #[error("[fleet] the statement timeout must be above zero")]
    StatementTimeout,
    /// `lease_ttl` too short for peer liveness.
    #[error("[fleet] lease_ttl = {lease_ttl:?} must be at least renew_every ({renew_every:?}) + 2 × the statement timeout ({statement_timeout:?}) = {needed:?}, so that a healthy peer can miss a round without being taken for dead: raise lease_ttl or lower renew_every")]
    LeaseTtl {
        /// The value given.
        lease_ttl: Duration,
        /// `renew_every`.
        renew_every: Duration,
        /// The statement timeout.
        statement_timeout: Duration,
        /// The smallest `lease_ttl` accepted.
        needed: Duration,
    },
    /// `lease_ttl` too short for one singleton's `stop_timeout`.
    #[error("[fleet] lease_ttl = {lease_ttl:?} is too short for singleton `{unit}` (stop_timeout = {stop_timeout:?}): its holder must be able to stop it before the lease can expire, which needs lease_ttl ≥ renew_every + statement timeout + stop_timeout + margin = {needed:?}; raise lease_ttl or lower the unit's stop_timeout")]
    SingletonStop {
        /// The singleton unit.
        unit: String,
        /// Its `stop_timeout`.
        stop_timeout: Duration,
        /// The value given.
        lease_ttl: Duration,
        /// The smallest `lease_ttl` accepted for this unit.
        needed: Duration,
    },
}

/// Checks `settings` against the timing rules and the shape of each key, with the
/// `(unit, stop_timeout)` of every singleton unit that may run under these settings.
/// Pure: no network, no files. Returns every problem found, not just the first.
///
/// The rules:
/// - `lease_ttl ≥ renew_every + 2 × statement timeout` (a peer that misses one round
///   stays live);
/// - for each singleton, `lease_ttl ≥ renew_every + statement timeout + stop_timeout +
///   margin` ([`Settings::ttl_needed_for`]), so its holder says "stop it now" early
///   enough for the process group to be dead before the lease can expire;
/// - `renew_every ≥ 100 ms`, a name of letters, digits, `_ . -`, a plain schema
///   identifier, and a `database` that parses with a known `sslmode`.
pub fn validate(
    settings: &Settings,
    singletons: &[(&str, Duration)],
) -> Result<(), Vec<SettingsError>> {
    let mut errors = Vec::new();
    if settings.database.trim().is_empty() {
        errors.push(SettingsError::DatabaseEmpty);
    } else if let Err(reason) = conninfo::parse(&settings.database) {
        errors.push(SettingsError::Database {
            url: settings.database_redacted(),
            reason,
        });
    }
    if settings.name.is_empty() {
        errors.push(SettingsError::NameEmpty);
    } else if let Err(reason) = check_name(&settings.name) {
        errors.push(SettingsError::Name {
            name: settings.name.clone(),
            reason,
        });
    }
    if !is_identifier(&settings.schema) {
        errors.push(SettingsError::Schema {
            schema: settings.schema.clone(),
        });
    }
    errors.extend(check_timing(settings, singletons));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_timing(s: &Settings, singletons: &[(&str, Duration)]) -> Vec<SettingsError> {
    let mut errors = Vec::new();
    if s.renew_every < MIN_RENEW_EVERY {
        errors.push(SettingsError::RenewEvery {
            renew_every: s.renew_every,
        });
    }
    if s.statement_timeout.is_zero() {
        errors.push(SettingsError::StatementTimeout);
    }
    let needed = s.renew_every + 2 * s.statement_timeout;
    if s.lease_ttl < needed {
        errors.push(SettingsError::LeaseTtl {
            lease_ttl: s.lease_ttl,
            renew_every: s.renew_every,
            statement_timeout: s.statement_timeout,
            needed,
        });
    }
    for (unit, stop_timeout) in singletons {
        let needed = s.ttl_needed_for(*stop_timeout);
        if s.lease_ttl < needed {
            errors.push(SettingsError::SingletonStop {
                unit: (*unit).to_owned(),
                stop_timeout: *stop_timeout,
                lease_ttl: s.lease_ttl,
                needed,
            });
        }
    }
    errors
}

/// Longest peer, unit or role name accepted.
pub const MAX_NAME: usize = 128;

/// A peer, unit or role name: letters, digits, `_`, `.` and `-` (what bosun-config
/// accepts for unit names, and what hostnames are made of), 1 to [`MAX_NAME`] bytes.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("is longer than {MAX_NAME} bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err("may only hold letters, digits, `_`, `.` and `-`".into());
    }
    Ok(())
}

/// A schema name that needs no quoting rules beyond double quotes: lowercase ASCII.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && s.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Settings {
        Settings::new("postgres://bosun:secret@db:5432/fleet", "web-1")
    }

    #[test]
    fn defaults_pass_without_singletons() {
        assert_eq!(validate(&ok(), &[]), Ok(()));
        assert_eq!(ok().margin(), Duration::from_secs(1));
    }

    #[test]
    fn default_unit_stop_timeout_is_too_long_for_default_ttl() {
        // 5 s renew + 2 s statement + 10 s stop + 1 s margin = 18 s > 15 s.
        let errs = validate(&ok(), &[("cron", Duration::from_secs(10))]).unwrap_err();
        assert_eq!(
            errs,
            vec![SettingsError::SingletonStop {
                unit: "cron".into(),
                stop_timeout: Duration::from_secs(10),
                lease_ttl: Duration::from_secs(15),
                needed: Duration::from_secs(18),
            }]
        );
        let text = errs[0].to_string();
        assert!(
            text.contains("lease_ttl") && text.contains("cron") && text.contains("stop_timeout"),
            "{text}"
        );
        assert_eq!(validate(&ok(), &[("cron", Duration::from_secs(7))]), Ok(()));
    }

    #[test]
    fn ttl_must_cover_renew_and_two_statements() {
        let mut s = ok();
        s.lease_ttl = Duration::from_secs(8);
        let errs = validate(&s, &[]).unwrap_err();
        assert!(
            matches!(errs[..], [SettingsError::LeaseTtl { .. }]),
            "{errs:?}"
        );
        assert!(errs[0].to_string().contains("renew_every"));
        s.lease_ttl = Duration::from_secs(9);
        assert_eq!(validate(&s, &[]), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_and_the_password_never_is() {
        let mut s = Settings::new("postgres://u:hunter2@db/x?sslmode=bogus", "bad name");
        s.schema = "Bosun".into();
        s.renew_every = Duration::from_millis(10);
        let errs = validate(&s, &[]).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        let all: String = errs.iter().map(|e| e.to_string() + "\n").collect();
        assert!(!all.contains("hunter2"), "{all}");
        for key in ["database", "name", "schema", "renew_every"] {
            assert!(all.contains(&format!("[fleet] {key}")), "{key}: {all}");
        }
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn empty_database_and_name() {
        let errs = validate(&Settings::new("", ""), &[]).unwrap_err();
        assert_eq!(
            errs,
            vec![SettingsError::DatabaseEmpty, SettingsError::NameEmpty]
        );
    }

    #[test]
    fn names_and_identifiers() {
        assert!(check_name("web-1.example_com").is_ok());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(129)).is_err());
        assert!(is_identifier("bosun_2"));
        assert!(!is_identifier("2bosun"));
        assert!(!is_identifier("bo\"sun"));
        assert!(!is_identifier(""));
    }
}
