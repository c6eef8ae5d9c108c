//! The validated configuration: what `bosun.toml` means once parsed, interpolated
//! and checked. Every other crate reads these types, never the raw TOML.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;

/// A whole, validated `bosun.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration was read from (used in messages); the first
    /// one when there are several.
    pub source: PathBuf,
    /// The files named on the command line (`-c base.toml -c site.toml`, or
    /// `$BOSUN_CONFIG`), in order: what a reload reads again (their `include`s
    /// anew).
    pub files: Vec<PathBuf>,
    /// Every file read, in the order they were merged (the `include`d ones too).
    pub sources: Vec<PathBuf>,
    /// The `[bosun]` table.
    pub bosun: Settings,
    /// The `[roles]` table: alias name → the roles (or aliases) it stands for.
    pub roles: IndexMap<String, Vec<String>>,
    /// Every `[service.*]` and `[task.*]`, in file order, keyed by unit name.
    pub units: IndexMap<String, Unit>,
    /// The `[snapshot]` table, when the image keeps data.
    pub snapshot: Option<SnapshotConfig>,
    /// The `[fleet]` table, when written (its `database` may still be empty: no fleet).
    pub fleet: Option<FleetConfig>,
    /// The `[hooks]` table, when written.
    pub hooks: Option<HooksConfig>,
    /// Non-fatal findings (an unset `${VAR}` without a default, …), for `bosun check`.
    pub warnings: Vec<String>,
    /// The secrets of the environment the config was read with (and of its
    /// secret-named `env` entries), to mask in whatever shows the config.
    pub secrets: crate::redact::Redactor,
}

/// The `[bosun]` table: daemon-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Env var holding the role expression (`all`, `web:celery`). Default `CONTAINERROLE`.
    pub roles_env: String,
    /// Role expression used when that variable is unset or empty. Default `all`.
    pub roles_default: String,
    /// Time allowed for the whole stop, backups included. Default 570 s.
    pub stop_budget: Duration,
    /// Path of the control socket. Default `/run/bosun/ctl.sock`.
    pub control_socket: PathBuf,
    /// Group allowed to use the control socket (mode 0660 instead of 0600).
    pub control_group: Option<String>,
    /// Directory for bosun's small persistent state. Default `/var/lib/bosun`.
    pub state_dir: PathBuf,
    /// Optional TCP address for the HTTP API (`0.0.0.0:9001`).
    pub http_listen: Option<String>,
    /// File holding the bearer token for the TCP API.
    pub http_token_file: Option<PathBuf>,
    /// Size of each unit's in-memory log ring buffer, in bytes. Default 1 MiB.
    pub log_buffer: u64,
    /// Optional file for bosun's own log (in addition to stderr).
    pub log_file: Option<PathBuf>,
    /// Grace given to leftover processes between the final TERM and KILL sweep. Default 5 s.
    pub sweep_timeout: Duration,
}

/// Whether a unit runs until stopped or runs once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// Long-running, restarted per its policy (`[service.NAME]`).
    Service,
    /// One-shot, must exit 0 (`[task.NAME]`).
    Task,
}

impl Unit {
    /// Runs only when asked (`on_demand`) or when its `schedule` is due, never at
    /// boot: it neither holds up the boot nor can be `after`.
    pub fn on_request(&self) -> bool {
        self.on_demand || self.schedule.is_some()
    }
}

impl UnitKind {
    /// `"service"` or `"task"`, as in the config table name and in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Service => "service",
            UnitKind::Task => "task",
        }
    }
}

/// A command line: an argv list, or a string run with `/bin/sh -c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `run = ["prog", "arg"]`: executed directly.
    Argv(Vec<String>),
    /// `run = "prog arg | other"`: run with `/bin/sh -c`.
    Shell(String),
}

impl Command {
    /// The argv to execute (`/bin/sh -c STRING` for a shell command).
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Argv(v) => v.clone(),
            Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        }
    }

    /// A one-line rendering for logs and `bosun check`.
    pub fn display(&self) -> String {
        match self {
            Command::Argv(v) => v.join(" "),
            Command::Shell(s) => format!("sh -c {s:?}"),
        }
    }
}

/// One `[service.NAME]` or `[task.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The table name; unique across services and tasks.
    pub name: String,
    /// Service or task.
    pub kind: UnitKind,
    /// What to execute.
    pub run: Command,
    /// Roles that activate this unit; empty = always active.
    pub roles: Vec<String>,
    /// Units that must be ready (service) or done (task) first, when active here.
    pub after: Vec<String>,
    /// External gates that must open before the unit starts.
    pub wait_for: Vec<WaitFor>,
    /// How long all `wait_for` gates together may take. Default 120 s.
    pub wait_for_timeout: Duration,
    /// How to know the unit is up.
    pub ready: Ready,
    /// With no probe: ready once alive this long. Default 1 s.
    pub start_secs: Duration,
    /// A task's run time limit. Default 1 h. (Services: unused.)
    pub timeout: Duration,
    /// Restart policy. Default `always` for services, `never` for tasks.
    pub restart: Restart,
    /// Delay between restarts.
    pub backoff: Backoff,
    /// Crash-loop guard: more starts than `burst` within `interval` → `fatal`.
    pub start_limit: StartLimit,
    /// Its final exit stops the container with its exit code.
    pub essential: bool,
    /// A task run only on request (`bosun ctl run`, `ctl fleet run`), never at boot.
    pub on_demand: bool,
    /// Across the fleet, runs in exactly one container among those where it is active.
    pub singleton: bool,
    /// `instances = N` (services only): run N copies, the units `NAME#1` … `NAME#N`
    /// ([`crate::instance`]); `None`: one process named `NAME`.
    pub instances: Option<u32>,
    /// A task run by bosun's timer (`schedule`, `timezone`), never at boot.
    pub schedule: Option<crate::Schedule>,
    /// Signal sent to the unit's process group to stop it. Default SIGTERM.
    pub stop_signal: Signal,
    /// Grace after `stop_signal` before SIGKILL. Default 10 s.
    pub stop_timeout: Duration,
    /// User to run as (name or numeric id).
    pub user: Option<String>,
    /// Group to run as (name or numeric id); default: the user's primary group.
    pub group: Option<String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// File mode creation mask (octal in the config, e.g. `"022"`).
    pub umask: Option<u32>,
    /// Extra environment, applied over bosun's own environment and `env_file`.
    pub env: IndexMap<String, String>,
    /// A `KEY=VALUE` file read at each start.
    pub env_file: Option<PathBuf>,
    /// `env_files = { NAME = "/run/secrets/x" }`: variables whose value is the
    /// whole content of a file (one trailing newline cut), read at each start and
    /// never shown. Distinct from `env_file` (one dotenv file of many variables).
    pub env_files: IndexMap<String, PathBuf>,
    /// Where stdout/stderr go.
    pub output: Output,
    /// Optional per-unit log file with size rotation.
    pub log_file: Option<LogFile>,
    /// Liveness probe, run after the unit is ready.
    pub health: Option<Health>,
    /// What of this unit's data a snapshot holds.
    pub backup: Option<UnitBackup>,
    /// On restart of this unit, restart the active units that depend on it, after it is ready again.
    pub restart_dependents: bool,
    /// `max_memory`: restart the unit when its process tree's resident memory grows
    /// past this many bytes (checked every few seconds while it runs, only for units
    /// that set it). `None`: no limit.
    pub max_memory: Option<u64>,
}

/// The `ready` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    /// The probe; `None` = alive for `start_secs`.
    pub probe: Option<Probe>,
    /// Time allowed from spawn to ready. Default 60 s.
    pub timeout: Duration,
    /// Delay between probe attempts. Default 100 ms.
    pub interval: Duration,
}

/// A readiness or health probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Connect to `host:port`.
    Tcp(String),
    /// GET an `http://` URL; any 2xx passes.
    Http(String),
    /// Run a command; exit 0 passes.
    Exec(Command),
    /// tokio-postgres connection string; connect and `SELECT 1`.
    Postgres(String),
    /// The file exists.
    File(PathBuf),
    /// A line of the unit's output matches this regex.
    Log(String),
    /// The unit sends `READY=1` on `$NOTIFY_SOCKET`.
    Notify,
}

impl Probe {
    /// The probe's kind as written in the config (`tcp`, `http`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Tcp(_) => "tcp",
            Probe::Http(_) => "http",
            Probe::Exec(_) => "exec",
            Probe::Postgres(_) => "postgres",
            Probe::File(_) => "file",
            Probe::Log(_) => "log",
            Probe::Notify => "notify",
        }
    }
}

/// The `health` table: a liveness probe after ready.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The probe (`log` and `notify` are not allowed here).
    pub probe: Probe,
    /// Time between checks. Default 10 s.
    pub interval: Duration,
    /// Time one check may take. Default 5 s.
    pub timeout: Duration,
    /// Consecutive failures that restart the unit. Default 3.
    pub failures: u32,
}

/// A `wait_for` gate on something outside this container.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    /// `tcp://host:port`
    Tcp(String),
    /// `http://…`: any 2xx.
    Http(String),
    /// `postgres://…` or `postgresql://…`: connect and `SELECT 1`.
    Postgres(String),
    /// `file:///path`: the file exists.
    File(PathBuf),
}

/// `restart = …`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Restart after any exit.
    Always,
    /// Restart after a non-zero exit or a signal.
    OnFailure,
    /// Never restart.
    Never,
}

/// `backoff = { initial, max, reset_after }`: exponential, jittered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay. Default 100 ms.
    pub initial: Duration,
    /// Cap. Default 30 s.
    pub max: Duration,
    /// A run at least this long resets the delay. Default 60 s.
    pub reset_after: Duration,
}

/// `start_limit = { burst, interval }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimit {
    /// Starts allowed within `interval`. Default 5.
    pub burst: u32,
    /// The rolling window. Default 60 s.
    pub interval: Duration,
}

/// A signal by number and canonical name (`SIGTERM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// Linux signal number.
    pub number: i32,
    /// Canonical name with the `SIG` prefix.
    pub name: &'static str,
}

/// `output = …`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `name | line` on bosun's stdout/stderr (default).
    Prefix,
    /// The unit writes straight to bosun's stdout/stderr.
    Inherit,
    /// Discarded (still kept in the ring buffer and log file).
    Null,
}

/// `log_file = { path, max_bytes, backups }`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    /// The live file; rotated copies are `path.1` … `path.N`.
    pub path: PathBuf,
    /// Rotate when the file would grow past this. Default 50 MB.
    pub max_bytes: u64,
    /// Rotated files kept. Default 5.
    pub backups: u32,
}

/// `[service.NAME.backup]`: data owned by a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitBackup {
    /// Writes the data to stdout while the unit is up.
    pub dump: Command,
    /// Reads the data from stdin after the unit is ready.
    pub load: Option<Command>,
    /// Time the dump (or load) may take. Default 300 s.
    pub timeout: Duration,
}

/// The `[snapshot]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotConfig {
    /// `file:///dir` or `s3://bucket/prefix`.
    pub store: String,
    /// Create a missing `file://` store directory (mode 0700) instead of refusing to
    /// boot. Off by default: in production the directory is a mounted volume, and a
    /// missing one means the volume is not mounted. For demos and development.
    pub create_store: bool,
    /// Custom S3 endpoint (path-style); `None` = AWS.
    pub s3_endpoint: Option<String>,
    /// S3 region. Default `us-east-1`.
    pub s3_region: String,
    /// Regular snapshots kept (the newest N complete ones; `LATEST` always). Default 7.
    pub keep_last: u32,
    /// Daily series: the newest snapshot of each of the N newest days. Default 14.
    /// `keep_daily`, `keep_weekly` and `keep_monthly` all 0 disable daily snapshots.
    pub keep_daily: u32,
    /// Daily series: the newest snapshot of each of the N newest ISO weeks. Default 0.
    pub keep_weekly: u32,
    /// Daily series: the newest snapshot of each of the N newest months. Default 0.
    pub keep_monthly: u32,
    /// age recipients new snapshots are encrypted to: `age1…` public keys, or absolute
    /// paths of recipients files (one `age1…` a line, `#` comments). Empty: no encryption.
    pub encrypt_to: Vec<String>,
    /// The age identity file (one or more `AGE-SECRET-KEY-1…` lines) restores and
    /// verification decrypt with. Holds secrets: never shown.
    pub identity_file: Option<PathBuf>,
    /// Read every object of a snapshot back (sizes, checksums) right after its commit.
    pub verify_after_commit: bool,
    /// A writer marker on the store prefix older than this is stale (its container was
    /// killed) and taken over. Default 30 min; the marker is refreshed every third of it.
    pub writer_stale_after: Duration,
    /// Time of day (UTC, hour and minute) of the daily snapshot.
    pub daily_at: Option<(u8, u8)>,
    /// `[snapshot.paths]`: item name → file or directory.
    pub paths: IndexMap<String, PathBuf>,
}

/// The `[fleet]` table (contract v2), interpolated and with durations parsed. The
/// binary turns it into `bosun_fleet::Settings`.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// `postgres://user:pw@host:5432/db`; empty: no fleet. Holds a password.
    pub database: String,
    /// This peer's name, unique in the fleet; empty: the hostname.
    pub name: String,
    /// How an admin reaches this peer's API (shown, not used).
    pub url: String,
    /// Peer liveness and singleton leases. Default 15 s.
    pub lease_ttl: Duration,
    /// Heartbeat and lease renewal period. Default 5 s.
    pub renew_every: Duration,
    /// The PostgreSQL schema for bosun's tables. Default `bosun`.
    pub schema: String,
}

impl FleetConfig {
    /// Whether a fleet is configured (a non-empty `database`).
    pub fn enabled(&self) -> bool {
        !self.database.trim().is_empty()
    }
}

/// The events `[hooks]` can run on, by name (`on_fatal` runs on `fatal`).
pub const HOOK_EVENTS: [&str; 4] = ["fatal", "backup_failed", "boot_failed", "stop_over_budget"];

/// The `[hooks]` table: what bosun runs or calls when something went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct HooksConfig {
    /// `on_EVENT = COMMAND`, by event name ([`HOOK_EVENTS`]), in file order.
    pub commands: IndexMap<String, Command>,
    /// The webhook, if any.
    pub webhook: Option<Webhook>,
    /// Longest a hook command may run (then its process group is killed). Default 10 s.
    pub timeout: Duration,
}

/// `[hooks.webhook]`: the event's JSON `POST`ed to an `http://` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Where to `POST` (plain http; redirects are not followed).
    pub url: String,
    /// The event names it is called on. Default: every event.
    pub events: Vec<String>,
    /// A file holding a bearer token, read at each call (never logged).
    pub token_file: Option<PathBuf>,
    /// Further attempts after a failed one (1 s, 2 s, 4 s … apart). Default 3.
    pub retries: u32,
    /// Longest one attempt may take. Default 5 s.
    pub timeout: Duration,
}
