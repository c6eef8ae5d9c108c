//! What bosun reports about itself and its units: the one set of types shared by
//! the daemon (which fills them), the control API (which serialises them) and
//! `bosun ctl` (which reads them back).

use serde::{Deserialize, Serialize};

/// A unit's lifecycle state. The names are the ones shown in `ctl status`, in
/// `/health`, in `/metrics` and in log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not started (not active in this container, or not yet asked to start).
    Inactive,
    /// Waiting for its dependencies and gates, or spawned and not ready yet.
    Starting,
    /// Up and ready (a service), or finished with exit 0 (a task).
    Ready,
    /// Its stop signal was sent; waiting for it to exit.
    Stopping,
    /// Stopped on request.
    Stopped,
    /// Exited on its own and will not be restarted.
    Exited,
    /// Exited; will be restarted after a delay.
    Backoff,
    /// Gave up: crash loop, readiness timeout, failed task, failed gate.
    Fatal,
    /// A singleton unit that another container holds (or nobody yet): not running
    /// here, and fine in `/health`.
    Standby,
}

impl State {
    /// The lowercase name used everywhere.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Backoff => "backoff",
            State::Fatal => "fatal",
            State::Standby => "standby",
        }
    }

    /// True when no process of the unit runs and none will without a new start.
    pub fn is_down(self) -> bool {
        matches!(
            self,
            State::Inactive | State::Stopped | State::Exited | State::Fatal
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, or 128+n when killed by signal n (the shell convention).
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// When it ended, Unix time in milliseconds.
    pub at_ms: u64,
}

/// One unit as seen by `ctl status` and the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitStatus {
    /// Unit name.
    pub name: String,
    /// `service` or `task`.
    pub kind: String,
    /// Roles from the config (empty: always active).
    pub roles: Vec<String>,
    /// Active in this container's roles.
    pub active: bool,
    /// Lifecycle state.
    pub state: State,
    /// Ready (service) or done with exit 0 (task).
    pub ready: bool,
    /// Pid of the running process (also its process group id).
    pub pid: Option<i32>,
    /// When the current process started, Unix time in milliseconds.
    pub started_at_ms: Option<u64>,
    /// Restarts since bosun started (not counting the first start).
    pub restarts: u32,
    /// The last exit, if any.
    pub last_exit: Option<ExitInfo>,
    /// Why it is in this state, in words ("waiting for postgres", "ready probe tcp timed out after 60s").
    pub detail: String,
    /// Its final exit stops the container.
    pub essential: bool,
    /// The last dump of this unit's data, for units with a `backup` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupInfo>,
    /// An on-demand task (`on_demand = true`): not run at boot, fine in `/health`
    /// while it has not run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
    /// How many times this unit was started in this bosun's life (`ctl run` waits
    /// for its own run by this count).
    #[serde(default)]
    pub runs: u64,
    /// A singleton unit (`singleton = true`): across the fleet it runs in one
    /// container only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub singleton: bool,
    /// The lease term this container holds the singleton under, while it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_term: Option<i64>,
    /// Its number among the instances of its service (`worker#2`: 2), for a
    /// service with `instances`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// What its process tree uses (`cpu_percent`, `cpu_seconds`, `rss_bytes`,
    /// `processes`: sampled when a status is asked for) and `memory_restarts`.
    #[serde(flatten)]
    pub usage: crate::usage::Usage,
    /// Restarts the unit made on its own (a crash, a failed health check), not on
    /// request: the units `after` it that follow it (`restart_dependents`) stop
    /// when this grows. Internal: not in the API.
    #[serde(skip)]
    pub own_restarts: u64,
    /// When its first run in this bosun's life passed each step: the boot timeline.
    #[serde(default)]
    pub timeline: Timeline,
    /// The times of its last restarts (at most [`RESTARTS_KEPT`]), Unix ms, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_times_ms: Vec<u64>,
    /// A scheduled task's timer (`schedule = "0 6 * * *"`): next and last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleStatus>,
}

/// How many restart times a unit's status keeps.
pub const RESTARTS_KEPT: usize = 20;

/// A unit's first run, step by step (Unix ms): asked to start and waiting for its
/// dependencies and gates, spawned (waiting for its ready probe), ready (or done).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// Asked to start: from here it waits for its dependencies and `wait_for` gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_at_ms: Option<u64>,
    /// Its process was spawned: from here it waits for its ready probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawned_at_ms: Option<u64>,
    /// Ready (a service) or done (a task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at_ms: Option<u64>,
}

/// A restore or backup under way, as `ctl status`, `/health` and the page show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferStatus {
    /// `restoring` or `backing up`.
    pub action: String,
    /// The item: a unit's name or a `[snapshot.paths]` name.
    pub item: String,
    /// The snapshot it belongs to.
    pub snapshot: String,
    /// Bytes done so far (uncompressed).
    pub done_bytes: u64,
    /// The item's size: known for a restore, estimated from the unit's last backup
    /// for a backup, else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// Bytes per second since it began.
    pub rate_bytes_per_sec: u64,
    /// Seconds left at that rate, when the total is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<u64>,
}

impl TransferStatus {
    /// `postgres 1.2 of 3.4 GiB, 85.0 MiB/s, ETA 27s` (`backing up: ` is the caller's).
    pub fn line(&self) -> String {
        let mut s = match self.total_bytes {
            Some(t) => format!("{} {} of {}", self.item, human(self.done_bytes), human(t)),
            None => format!("{} {} so far", self.item, human(self.done_bytes)),
        };
        s.push_str(&format!(", {}/s", human(self.rate_bytes_per_sec)));
        if let Some(eta) = self.eta_secs {
            s.push_str(&format!(", ETA {eta}s"));
        }
        s
    }
}

/// `1.2 GiB`, `512 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl UnitStatus {
    /// True when `name` picks this unit in `ctl status NAME`: its own name, or its
    /// service's for an instance (`worker` picks `worker#1`, `worker#2`).
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name
            || (self.instance.is_some() && bosun_config::instance::group_of(&self.name) == name)
    }

    /// Whether units `after` this one may start: it is ready, or it is a singleton in
    /// `standby`. A standby singleton runs in another container (or will run here
    /// once the lease says so); waiting for it would hold its dependents for as long
    /// as another container keeps the lease, which may be forever.
    pub fn settled(&self) -> bool {
        self.ready || self.state == State::Standby
    }
}

/// A scheduled task's timer, as `ctl status`, `/v1/status` and `/metrics` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    /// The cron expression as written (`0 6 * * *`, `@daily`).
    pub expr: String,
    /// The time zone it is read in (`UTC` unless `timezone` says otherwise).
    pub timezone: String,
    /// When it is due next, Unix time in milliseconds (`None`: the timer is not
    /// running: the unit is not active here, or bosun is stopping).
    pub next_run_ms: Option<u64>,
    /// `next_run_ms` as a local time in `timezone` (`2026-12-02 06:00 +01:00`).
    pub next_run_local: Option<String>,
    /// When the schedule last started it, Unix time in milliseconds.
    pub last_run_ms: Option<u64>,
    /// The exit code of the last scheduled run that ended (128+n for a signal,
    /// 1 when it could not start).
    pub last_exit_code: Option<i32>,
    /// Runs that were due while the previous run (scheduled or `ctl run`) was
    /// still going, and were skipped.
    pub skipped: u64,
    /// A singleton under a fleet whose lease this container does not hold: why its
    /// due runs are not run here (`singleton held by app1`). `None` where they run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elsewhere: Option<String>,
}

/// The outcome of the last backup of a unit's data (or of a whole snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// When it finished, Unix time in milliseconds.
    pub at_ms: u64,
    /// Bytes produced (before compression).
    pub bytes: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// It succeeded.
    pub ok: bool,
    /// The snapshot it went into, or why it failed.
    pub detail: String,
}

impl UnitStatus {
    /// Seconds since the current process started, at `now_ms`.
    pub fn uptime_secs(&self, now_ms: u64) -> Option<u64> {
        self.started_at_ms
            .filter(|_| self.pid.is_some())
            .map(|t| now_ms.saturating_sub(t) / 1000)
    }
}

/// bosun's own phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Starting units.
    Booting,
    /// Every active unit was ready at least once; supervising.
    Running,
    /// Stopping units (SIGTERM, `ctl shutdown`, essential exit, failed boot).
    Stopping,
}

/// The whole daemon, as `GET /v1/status` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// bosun's version.
    pub version: String,
    /// bosun's pid (1 in a container).
    pub pid: i32,
    /// The role expression in use.
    pub roles_expr: String,
    /// The concrete active roles.
    pub roles: Vec<String>,
    /// Booting, running or stopping.
    pub phase: Phase,
    /// When bosun started, Unix time in milliseconds.
    pub started_at_ms: u64,
    /// Orphans reaped (processes bosun did not start itself).
    pub reaped_orphans: u64,
    /// Every unit in the config, active or not, in config order.
    pub units: Vec<UnitStatus>,
    /// The last snapshot this bosun took or tried to take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot: Option<BackupInfo>,
    /// While booting, before any unit runs: what bosun is doing ("restoring snapshot
    /// X: item data (1 of 2), 40 % of 1.2 GiB"). `None` once the units start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_step: Option<String>,
    /// How many instances each service with `instances` runs now (after `ctl
    /// scale`), by service name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub instances: std::collections::BTreeMap<String, u32>,
    /// Restores and backups under way now (filled by the binary, which keeps the data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfers: Vec<TransferStatus>,
    /// When the next daily snapshot is due, Unix ms (with `keep_daily`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_daily_at_ms: Option<u64>,
}

/// The answer of `/health` and `ctl health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// True when every active unit is ready (services) or done (tasks).
    pub healthy: bool,
    /// One line per active unit that is not: `"web: backoff (exit 1)"`.
    pub reasons: Vec<String>,
    /// Restores and backups under way (`backing up: postgres 1.2 of 3.4 GiB, …`);
    /// they do not make bosun unhealthy by themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<String>,
}

impl DaemonStatus {
    /// Health: every active unit ready (service) or done (task).
    pub fn health(&self) -> HealthReport {
        let mut reasons = Vec::new();
        if self.phase == Phase::Stopping {
            reasons.push("bosun is stopping".to_string());
        }
        if let Some(step) = &self.boot_step {
            reasons.push(format!("bosun is booting: {step}"));
        }
        // An on-demand task is fine whatever its last run did: `ctl run` reports that;
        // so is a scheduled one (its last exit code is in its schedule status).
        // A singleton in standby is fine: another container runs it.
        for u in self.units.iter().filter(|u| {
            u.active
                && !u.ready
                && !u.on_demand
                && u.schedule.is_none()
                && u.state != State::Standby
        }) {
            let mut r = format!("{}: {}", u.name, u.state);
            if !u.detail.is_empty() {
                r.push_str(&format!(" ({})", u.detail));
            }
            reasons.push(r);
        }
        HealthReport {
            healthy: reasons.is_empty(),
            reasons,
            progress: self
                .transfers
                .iter()
                .map(|t| format!("{}: {}", t.action, t.line()))
                .collect(),
        }
    }
}

/// Milliseconds since the Unix epoch, for status time stamps.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
