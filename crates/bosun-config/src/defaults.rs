//! The defaults of the model, in one place. They match the doc comments in
//! `model.rs`; the schema walk starts from these values and overrides what the
//! file says. Other crates can use them to build configs in tests.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;

use crate::model::*;

/// The control socket when `control_socket` is not set; `bosun ctl` looks there
/// by default too.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/bosun/ctl.sock";

impl Default for Settings {
    /// `CONTAINERROLE`, `all`, 570 s, `/run/bosun/ctl.sock`, `/var/lib/bosun`,
    /// 1 MiB ring buffers, 5 s sweep.
    fn default() -> Self {
        Settings {
            roles_env: "CONTAINERROLE".into(),
            roles_default: "all".into(),
            stop_budget: Duration::from_secs(570),
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            control_group: None,
            state_dir: PathBuf::from("/var/lib/bosun"),
            http_listen: None,
            http_token_file: None,
            log_buffer: 1 << 20,
            log_file: None,
            sweep_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for Config {
    /// An empty config (no units) with default settings.
    fn default() -> Self {
        Config {
            source: PathBuf::new(),
            files: Vec::new(),
            sources: Vec::new(),
            bosun: Settings::default(),
            roles: IndexMap::new(),
            units: IndexMap::new(),
            snapshot: None,
            fleet: None,
            hooks: None,
            warnings: Vec::new(),
            secrets: Default::default(),
        }
    }
}

impl Default for Ready {
    /// No probe (alive for `start_secs`), 60 s timeout, 100 ms interval.
    fn default() -> Self {
        Ready {
            probe: None,
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(100),
        }
    }
}

impl Default for Backoff {
    /// 100 ms initial, 30 s max, reset after 60 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

impl Default for StartLimit {
    /// 5 starts within 60 s.
    fn default() -> Self {
        StartLimit {
            burst: 5,
            interval: Duration::from_secs(60),
        }
    }
}

impl Default for Output {
    /// [`Output::Prefix`].
    fn default() -> Self {
        Output::Prefix
    }
}

impl Restart {
    /// The default policy of a kind: `always` for services, `never` for tasks.
    pub fn default_for(kind: UnitKind) -> Restart {
        match kind {
            UnitKind::Service => Restart::Always,
            UnitKind::Task => Restart::Never,
        }
    }

    /// `"always"`, `"on-failure"` or `"never"`, as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Always => "always",
            Restart::OnFailure => "on-failure",
            Restart::Never => "never",
        }
    }
}

impl Output {
    /// `"prefix"`, `"inherit"` or `"null"`, as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Prefix => "prefix",
            Output::Inherit => "inherit",
            Output::Null => "null",
        }
    }
}

impl Unit {
    /// A unit with every default filled in (what `[service.NAME]` with only `run`
    /// means): no roles, no deps, no probe, restart per kind, SIGTERM, 10 s stop.
    pub fn new(name: impl Into<String>, kind: UnitKind, run: Command) -> Unit {
        Unit {
            name: name.into(),
            kind,
            run,
            roles: Vec::new(),
            after: Vec::new(),
            wait_for: Vec::new(),
            wait_for_timeout: Duration::from_secs(120),
            ready: Ready::default(),
            start_secs: Duration::from_secs(1),
            timeout: Duration::from_secs(3600),
            restart: Restart::default_for(kind),
            backoff: Backoff::default(),
            start_limit: StartLimit::default(),
            essential: false,
            on_demand: false,
            schedule: None,
            singleton: false,
            instances: None,
            stop_signal: Signal::TERM,
            stop_timeout: Duration::from_secs(10),
            user: None,
            group: None,
            cwd: None,
            umask: None,
            env: IndexMap::new(),
            env_file: None,
            env_files: IndexMap::new(),
            output: Output::Prefix,
            log_file: None,
            health: None,
            backup: None,
            restart_dependents: false,
            max_memory: None,
        }
    }

    /// What stopping this unit can cost at most: `stop_timeout`, plus its backup's
    /// `timeout` when it has a backup (the dump runs before the stop).
    pub fn stop_cost(&self) -> Duration {
        self.stop_timeout + self.backup.as_ref().map(|b| b.timeout).unwrap_or_default()
    }
}

impl LogFile {
    /// A log file at `path` with the default rotation: 50 MB, 5 rotated copies.
    pub(crate) fn at(path: PathBuf) -> LogFile {
        LogFile {
            path,
            max_bytes: 50_000_000,
            backups: 5,
        }
    }
}

impl Health {
    /// `probe` every 10 s, 5 s each, restart after 3 failures in a row.
    pub(crate) fn of(probe: Probe) -> Health {
        Health {
            probe,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            failures: 3,
        }
    }
}

impl UnitBackup {
    /// The time a dump (or load) may take unless the config says: 300 s.
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
}

impl SnapshotConfig {
    /// `[snapshot]` before its keys are read: no store yet, `us-east-1`, 7 regular
    /// and 14 daily snapshots kept, no daily time, no paths, no encryption, writer
    /// markers stale after 30 min.
    pub(crate) fn unread() -> SnapshotConfig {
        SnapshotConfig {
            store: String::new(),
            create_store: false,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            keep_last: 7,
            keep_daily: 14,
            keep_weekly: 0,
            keep_monthly: 0,
            encrypt_to: Vec::new(),
            identity_file: None,
            verify_after_commit: false,
            writer_stale_after: Duration::from_secs(60),
            daily_at: None,
            paths: IndexMap::new(),
        }
    }
}

impl Default for FleetConfig {
    /// No database (no fleet), the hostname as name, 15 s leases renewed every 5 s,
    /// schema `bosun`.
    fn default() -> Self {
        FleetConfig {
            database: String::new(),
            name: String::new(),
            url: String::new(),
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            schema: "bosun".into(),
        }
    }
}
