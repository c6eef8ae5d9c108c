//! The orchestration of one container's life: start every active unit (each
//! waits for its own dependencies, so independent branches start in parallel),
//! watch for a failed boot or an essential unit's exit, and run the stop:
//! reverse dependency order, parallel where independent, one budget.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bosun_config::{Config, Plan, Unit, UnitKind};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

use crate::events::{Event, EventKind, EventSink};
use crate::hooks::DataHooks;
use crate::lease::Permits;
use crate::output::UnitLog;
use crate::reaper::Reaper;
use crate::signals::{Sig, Signals};
use crate::status::{now_ms, BackupInfo, Phase, ScheduleStatus, State, UnitStatus};
use crate::unit::{Runner, RunnerEnv, UnitCmd, UnitHandle};

mod handle;
mod reload;
mod rolling;
mod scale;
mod stop;
mod timer;

pub use handle::{ActError, Action, Handle, Run, RunOutcome};
pub use reload::ReloadError;
pub use scale::ScaleError;

/// Why the container is stopping, and the exit code that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCause {
    /// SIGTERM/SIGINT or `ctl shutdown`: exit 0 if the stop fits the budget.
    Requested(String),
    /// A boot step failed: exit 1.
    BootFailed(String),
    /// An essential unit's final exit: exit with its code.
    Essential { unit: String, code: i32 },
}

impl StopCause {
    fn exit_code(&self) -> i32 {
        match self {
            StopCause::Requested(_) => 0,
            StopCause::BootFailed(_) => 1,
            StopCause::Essential { code, .. } => *code,
        }
    }
}

/// Requests from the control plane to the orchestrator.
enum Request {
    Shutdown,
    Reload(oneshot::Sender<Result<String, ReloadError>>),
    /// `ctl scale GROUP N`.
    Scale {
        group: String,
        count: u32,
        reply: oneshot::Sender<Result<String, ScaleError>>,
    },
}

/// The unit table and the plan it was built from; replaced whole by a reload.
struct Units {
    list: Vec<UnitHandle>,
    by_name: HashMap<String, usize>,
    plan: Plan,
}

impl Units {
    fn get(&self, name: &str) -> Option<&UnitHandle> {
        self.by_name.get(name).map(|&i| &self.list[i])
    }
}

struct Shared {
    units: RwLock<Arc<Units>>,
    phase: watch::Sender<Phase>,
    started_at_ms: u64,
    reaper: Reaper,
    requests: mpsc::UnboundedSender<Request>,
    last_snapshot: std::sync::Mutex<Option<BackupInfo>>,
    /// What the boot is doing before any unit runs (the restore); `None` after.
    boot_step: std::sync::Mutex<Option<String>>,
    /// Tasks the control plane started that outlive their request (dependents
    /// restarting once a unit is ready again); aborted when the stop begins.
    background: std::sync::Mutex<tokio::task::JoinSet<()>>,
    /// On-demand tasks with a `ctl run` in progress.
    running: std::sync::Mutex<std::collections::HashSet<String>>,
    /// What the binary adds to every status (transfers, the next daily snapshot).
    status_extra: std::sync::OnceLock<StatusExtra>,
    /// Where events go (`[hooks]`), once the binary set a sink.
    events: std::sync::OnceLock<Arc<dyn EventSink>>,
}

/// Fills in the parts of a status that the binary knows (see [`Handle::set_status_extra`]).
pub type StatusExtra =
    Box<dyn Fn(&mut crate::status::DaemonStatus, &LastBackups<'_>) + Send + Sync>;

/// A unit's last backup by its name, whichever units a status holds
/// (`Handle::status_where` may leave the one a transfer is about out).
pub type LastBackups<'a> = dyn Fn(&str) -> Option<crate::status::BackupInfo> + 'a;

impl Shared {
    /// Runs `task` in the background until it ends or the stop begins.
    fn spawn_background(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut set = self.background.lock().expect("poisoned");
        // Reap what has finished, so the set does not grow with every restart.
        while set.try_join_next().is_some() {}
        set.spawn(task);
    }

    /// Ends every background task: nothing may restart a unit during the stop.
    fn abort_background(&self) {
        self.background.lock().expect("poisoned").abort_all();
    }
}

/// The orchestrator.
pub struct Supervisor {
    /// The config file as read: a service with `instances` is one template unit
    /// here; the unit table runs `config.instantiated(&scale)`.
    config: Config,
    /// Instance counts set by `ctl scale`, over the file's `instances`.
    scale: bosun_config::instance::Scale,
    handle: Handle,
    runners: Vec<Runner>,
    changed: Arc<Notify>,
    requests: mpsc::UnboundedReceiver<Request>,
    hooks: Option<Arc<dyn DataHooks>>,
    notify_dir: PathBuf,
    /// The singletons' permits (from the fleet), by unit name.
    permits: Permits,
    /// The scheduled tasks' timers.
    timers: timer::Timers,
}

/// The handle of `unit` for a new runner: a fresh status and log, or, when the
/// unit had a handle before (`previous`), its status channel and log carried on.
fn new_handle(
    config: &Config,
    unit: &Unit,
    plan: &Plan,
    previous: Option<&UnitHandle>,
) -> UnitHandle {
    let fresh = initial_status(unit, plan);
    let status = match previous {
        Some(prev) => {
            renew_status(&prev.status, fresh);
            prev.status.clone()
        }
        None => Arc::new(watch::channel(fresh).0),
    };
    let log = match previous {
        Some(prev) => prev.log.clone(),
        None => Arc::new(UnitLog::new(
            &unit.name,
            unit.output,
            config.bosun.log_buffer,
            unit.log_file.as_ref(),
        )),
    };
    UnitHandle {
        config: Arc::new(unit.clone()),
        status,
        log,
        cmd: None,
    }
}

/// Replaces the status in `status` with `fresh`, keeping what outlives a runner:
/// the restart count and times, the last exit and backup, the timeline, and the
/// schedule's history.
fn renew_status(status: &watch::Sender<UnitStatus>, fresh: UnitStatus) {
    status.send_modify(|s| {
        let (restarts, last_exit, last_backup) = (s.restarts, s.last_exit, s.last_backup.clone());
        let times = std::mem::take(&mut s.restart_times_ms);
        let timeline = std::mem::take(&mut s.timeline);
        let old_schedule = s.schedule.take();
        *s = fresh;
        s.restarts = restarts;
        s.last_exit = last_exit;
        s.last_backup = last_backup;
        s.restart_times_ms = times;
        s.timeline = timeline;
        timer::keep_history(&mut s.schedule, old_schedule);
    });
}

/// The status of a unit that has no process yet.
fn initial_status(unit: &Unit, plan: &Plan) -> UnitStatus {
    let active = plan.unit(&unit.name).is_some();
    UnitStatus {
        name: unit.name.clone(),
        kind: unit.kind.as_str().to_string(),
        roles: unit.roles.clone(),
        active,
        state: State::Inactive,
        ready: false,
        pid: None,
        started_at_ms: None,
        restarts: 0,
        own_restarts: 0,
        last_exit: None,
        detail: if active && unit.on_demand {
            format!("on demand: bosun ctl run {}", unit.name)
        } else if let (true, Some(s)) = (active, &unit.schedule) {
            format!("scheduled: {} ({})", s.expr(), s.timezone())
        } else if active {
            String::new()
        } else {
            plan.inactive
                .iter()
                .find(|(n, _)| n == &unit.name)
                .map(|(_, why)| why.clone())
                .unwrap_or_default()
        },
        essential: unit.essential,
        last_backup: None,
        on_demand: unit.on_demand,
        runs: 0,
        singleton: unit.singleton,
        lease_term: None,
        instance: bosun_config::instance::split(&unit.name).map(|(_, i)| i),
        usage: Default::default(),
        timeline: Default::default(),
        restart_times_ms: Vec::new(),
        schedule: unit.schedule.as_ref().map(|s| ScheduleStatus {
            expr: s.expr().to_string(),
            timezone: s.timezone().to_string(),
            ..ScheduleStatus::default()
        }),
    }
}

impl Supervisor {
    /// Builds every unit (active or not) from `config` (the file's) and `plan`
    /// (made for `config.instantiated`, with one unit per instance); `hooks`
    /// keep the data (restore on boot, backup on stop) when snapshots are configured.
    pub fn new(
        config: Config,
        plan: Plan,
        reaper: Reaper,
        hooks: Option<Arc<dyn DataHooks>>,
    ) -> (Supervisor, Handle) {
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let notify_dir = config
            .bosun
            .control_socket
            .parent()
            .map(|p| p.join("notify"))
            .unwrap_or_else(|| PathBuf::from("/run/bosun/notify"));
        let empty = Units {
            list: Vec::new(),
            by_name: HashMap::new(),
            plan: plan.clone(),
        };
        let shared = Shared {
            units: RwLock::new(Arc::new(empty)),
            phase: watch::channel(Phase::Booting).0,
            started_at_ms: now_ms(),
            reaper,
            requests: req_tx,
            last_snapshot: std::sync::Mutex::new(None),
            boot_step: std::sync::Mutex::new(None),
            background: std::sync::Mutex::new(tokio::task::JoinSet::new()),
            running: std::sync::Mutex::new(std::collections::HashSet::new()),
            status_extra: std::sync::OnceLock::new(),
            events: std::sync::OnceLock::new(),
        };
        let handle = Handle {
            shared: Arc::new(shared),
        };
        let mut sup = Supervisor {
            config: config.clone(),
            scale: Default::default(),
            handle: handle.clone(),
            runners: Vec::new(),
            changed: Arc::new(Notify::new()),
            requests: req_rx,
            hooks,
            notify_dir,
            permits: Permits::new(),
            timers: timer::Timers::default(),
        };
        let runtime = config.instantiated(&sup.scale);
        let (units, runners) = sup.build_units(&runtime, plan, None, &Default::default());
        *handle.shared.units.write().expect("unit table poisoned") = Arc::new(units);
        sup.runners = runners;
        (sup, handle)
    }

    /// Sends the events (`fatal`, `boot_failed`, `stop_over_budget`, and the
    /// `backup_failed` the binary reports through [`Handle::emit`]) to `sink`.
    /// Call before [`run`].
    ///
    /// [`run`]: Supervisor::run
    pub fn set_events(&mut self, sink: Arc<dyn EventSink>) {
        for r in &mut self.runners {
            r.set_events(sink.clone());
        }
        let _ = self.handle.shared.events.set(sink);
    }

    /// Gates the singleton units on `permits` (one per unit name, fed by the
    /// fleet): each runs only while its permit says `Run`. Call before [`run`].
    /// A singleton without a permit runs like any unit.
    ///
    /// [`run`]: Supervisor::run
    pub fn set_permits(&mut self, permits: Permits) {
        for r in &mut self.runners {
            r.set_permit(permits.get(r.name()).cloned());
        }
        self.permits = permits;
    }

    /// Builds the unit table for `config`/`plan`. Units named in `keep` are
    /// taken over from `old` as they are (process, runner and all); every other
    /// active unit gets a new runner, reusing the old status channel and log
    /// of its name so that watchers and `ctl logs -f` carry on.
    fn build_units(
        &self,
        config: &Config,
        plan: Plan,
        old: Option<&Units>,
        keep: &std::collections::HashSet<String>,
    ) -> (Units, Vec<Runner>) {
        let mut list = Vec::new();
        let mut by_name = HashMap::new();
        for (i, unit) in config.units.values().enumerate() {
            by_name.insert(unit.name.clone(), i);
            let previous = old.and_then(|o| o.get(&unit.name));
            if let (Some(prev), true) = (previous, keep.contains(&unit.name)) {
                list.push(prev.clone());
                continue;
            }
            list.push(new_handle(config, unit, &plan, previous));
        }
        let runners = self.new_runners(&mut list, &by_name, &plan, keep);
        (
            Units {
                list,
                by_name,
                plan,
            },
            runners,
        )
    }

    /// A runner for every active unit of `list` that has none yet (the kept
    /// ones still have theirs); each handle gets its runner's command queue.
    fn new_runners(
        &self,
        list: &mut [UnitHandle],
        by_name: &HashMap<String, usize>,
        plan: &Plan,
        keep: &std::collections::HashSet<String>,
    ) -> Vec<Runner> {
        let mut runners = Vec::new();
        for i in 0..list.len() {
            let name = list[i].config.name.clone();
            let Some(planned) = plan.unit(&name) else {
                continue;
            };
            if keep.contains(&name) && list[i].cmd.is_some() {
                continue;
            }
            let env = self.runner_env(list, by_name, planned, &list[i].config);
            let u = &mut list[i];
            let (runner, tx) = Runner::new(u.config.clone(), u.log.clone(), u.status.clone(), env);
            u.cmd = Some(tx);
            runners.push(runner);
        }
        runners
    }

    /// What the runner of `unit` shares with the supervisor: the status of its
    /// dependencies (all of them, and those it follows with `restart_dependents`),
    /// the reaper, the hooks, and its fleet permit when it is a singleton.
    fn runner_env(
        &self,
        list: &[UnitHandle],
        by_name: &HashMap<String, usize>,
        planned: &bosun_config::PlannedUnit,
        unit: &Unit,
    ) -> RunnerEnv {
        let deps = planned
            .deps
            .iter()
            .filter_map(|d| by_name.get(d).map(|&j| list[j].status.subscribe()))
            .collect();
        let follow = planned
            .deps
            .iter()
            .filter_map(|d| by_name.get(d).map(|&j| &list[j]))
            .filter(|dep| dep.config.restart_dependents)
            .map(|dep| dep.status.subscribe())
            .collect();
        RunnerEnv {
            reaper: self.handle.shared.reaper.clone(),
            deps,
            follow,
            changed: self.changed.clone(),
            notify_dir: self.notify_dir.clone(),
            hooks: self.hooks.clone(),
            permit: unit
                .singleton
                .then(|| self.permits.get(&unit.name).cloned())
                .flatten(),
            events: self.handle.shared.events.get().cloned(),
        }
    }

    /// The boot's restore (`DataHooks::before_boot`), with SIGTERM and `ctl shutdown`
    /// still honoured and `ctl reload` answered truthfully. `Err((exit code, why))`.
    async fn restore(
        &mut self,
        hooks: Arc<dyn DataHooks>,
        signals: &mut Signals,
    ) -> Result<(), (i32, String)> {
        const STOPPED: &str =
            "during restore: stopping before any unit started; nothing was backed up";
        let restore = hooks.before_boot();
        tokio::pin!(restore);
        loop {
            tokio::select! {
                r = &mut restore => return r.map_err(|e| (1, format!("boot failed: restore: {e}"))),
                sig = signals.recv() => match sig {
                    Sig::Term | Sig::Int => return Err((0, format!("SIG{} {STOPPED}", format!("{sig:?}").to_uppercase()))),
                    _ => {}
                },
                Some(req) = self.requests.recv() => match req {
                    Request::Shutdown => return Err((0, format!("ctl shutdown {STOPPED}"))),
                    Request::Reload(reply) => {
                        let step = self.handle.boot_step().unwrap_or_default();
                        let _ = reply.send(Err(ReloadError::Booting { step }));
                    }
                    Request::Scale { reply, .. } => {
                        let step = self.handle.boot_step().unwrap_or_default();
                        let _ = reply.send(Err(ScaleError::Booting { step }));
                    }
                },
            }
        }
    }

    /// Runs the container's life to its end; returns bosun's exit code.
    pub async fn run(mut self, signals: &mut Signals) -> i32 {
        let boot_started = Instant::now();
        if let Some(hooks) = self.hooks.clone() {
            // Files and directories come back before any unit can touch them.
            self.handle.open_boot_step("restoring the last snapshot");
            let outcome = self.restore(hooks, signals).await;
            self.handle.close_boot_step();
            if let Err((code, msg)) = outcome {
                if code == 0 {
                    tracing::warn!("{msg}")
                } else {
                    tracing::error!("{msg}");
                    self.handle
                        .emit(Event::new(EventKind::BootFailed, None, msg.as_str()));
                }
                // No unit ran: the hooks may have the stop budget.
                self.flush_events(Instant::now() + self.config.bosun.stop_budget)
                    .await;
                crate::sweep::sweep(self.config.bosun.sweep_timeout).await;
                return code;
            }
        }
        for runner in std::mem::take(&mut self.runners) {
            tokio::spawn(runner.run());
        }
        let units = self.handle.units();
        // On-demand tasks wait for `ctl run`, scheduled ones for their timer.
        for u in units.list.iter().filter(|u| !u.config.on_request()) {
            if let Some(cmd) = &u.cmd {
                let _ = cmd.send(UnitCmd::Start(None));
            }
        }
        self.timers.sync(&self.handle, &self.permits);
        tracing::info!(
            "booting roles {:?}: {} active units in {} start waves",
            units.plan.roles_expr,
            units.plan.units.len(),
            units.plan.start_waves.len()
        );
        let cause = loop {
            tokio::select! {
                sig = signals.recv() => match sig {
                    Sig::Term | Sig::Int => break StopCause::Requested(format!("SIG{}", format!("{sig:?}").to_uppercase())),
                    Sig::Quit => self.log_states(),
                    Sig::Hup => {
                        tracing::info!("SIGHUP: reloading the config");
                        if let Err(e) = self.reload().await {
                            tracing::error!("reload: {e}");
                        }
                    }
                    other => tracing::debug!("ignoring {other:?}"),
                },
                req = self.requests.recv() => match req {
                    Some(Request::Shutdown) | None => break StopCause::Requested("ctl shutdown".into()),
                    Some(Request::Reload(reply)) => {
                        let _ = reply.send(self.reload().await);
                    }
                    Some(Request::Scale { group, count, reply }) => {
                        let _ = reply.send(self.scale(&group, count).await);
                    }
                },
                _ = self.changed.notified() => {
                    if let Some(cause) = self.evaluate(boot_started) {
                        break cause;
                    }
                }
            }
        };
        let code = self.stop(cause, signals).await;
        let left = crate::sweep::sweep(self.config.bosun.sweep_timeout).await;
        if left > 0 {
            tracing::info!("swept {left} leftover processes");
        }
        crate::output::drain(Duration::from_secs(2)).await;
        code
    }

    /// After any unit changed: is the boot done, failed, or did an essential unit end?
    fn evaluate(&self, boot_started: Instant) -> Option<StopCause> {
        let shared = &self.handle.shared;
        let units = self.handle.units();
        let booting = *shared.phase.borrow() == Phase::Booting;
        let mut all_ready = true;
        // On-demand and scheduled tasks neither hold up the boot nor fail it.
        for u in units
            .list
            .iter()
            .filter(|u| u.is_active() && !u.config.on_request())
        {
            let s = u.status.borrow();
            if u.config.essential && matches!(s.state, State::Exited | State::Fatal) {
                let code = s.last_exit.map(|e| e.code).unwrap_or(1);
                let code = if s.state == State::Fatal && code == 0 {
                    1
                } else {
                    code
                };
                tracing::warn!(unit = %s.name, "essential unit ended ({}): stopping the container with exit code {code}", s.state);
                return Some(StopCause::Essential {
                    unit: s.name.clone(),
                    code,
                });
            }
            if booting && s.state == State::Fatal {
                return Some(StopCause::BootFailed(format!(
                    "{} {}: {}",
                    u.config.kind.as_str(),
                    s.name,
                    s.detail
                )));
            }
            if booting && u.config.kind == UnitKind::Service && s.state == State::Exited {
                return Some(StopCause::BootFailed(format!(
                    "service {} exited during boot: {}",
                    s.name, s.detail
                )));
            }
            // A singleton held elsewhere neither holds up the boot nor fails it.
            all_ready &= s.settled();
        }
        if booting && all_ready {
            shared.phase.send_replace(Phase::Running);
            tracing::info!(
                "boot complete in {:.0?}: {} units ready",
                boot_started.elapsed(),
                units.plan.units.len()
            );
            crate::pid1::release_boot_pages();
        }
        None
    }

    /// Lets the hooks still running finish, until `until` at the latest.
    async fn flush_events(&self, until: Instant) {
        if let Some(sink) = self.handle.shared.events.get() {
            sink.flush(until).await;
        }
    }

    fn log_states(&self) {
        for s in self.handle.status().units {
            tracing::info!(unit = %s.name, "{} pid={:?} restarts={} {}", s.state, s.pid, s.restarts, s.detail);
        }
    }
}
