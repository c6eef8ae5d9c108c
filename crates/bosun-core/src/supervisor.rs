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
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::hooks::{DataHooks, StopContext};
use crate::output::UnitLog;
use crate::reaper::Reaper;
use crate::signals::{Sig, Signals};
use crate::status::{now_ms, BackupInfo, DaemonStatus, Phase, State, UnitStatus};
use crate::unit::{Runner, RunnerEnv, StopReport, UnitCmd, UnitHandle};

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
    Reload(oneshot::Sender<Result<String, String>>),
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
}

/// A cheap, cloneable handle for the control plane: read status, steer units.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// What a control command may do to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start it (and wait for its dependencies first).
    Start,
    /// Stop it (`stop_signal`, `stop_timeout`, SIGKILL).
    Stop,
    /// Stop then start; with `restart_dependents`, its dependents follow once it is ready.
    Restart,
    /// Send this signal number to its main process.
    Signal(i32),
}

impl Handle {
    fn units(&self) -> Arc<Units> {
        self.shared
            .units
            .read()
            .expect("unit table poisoned")
            .clone()
    }

    /// A snapshot of every unit's status.
    pub fn status(&self) -> DaemonStatus {
        let s = &self.shared;
        let units = self.units();
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id() as i32,
            roles_expr: units.plan.roles_expr.clone(),
            roles: units.plan.roles.clone(),
            phase: *s.phase.borrow(),
            started_at_ms: s.started_at_ms,
            reaped_orphans: s.reaper.orphans_reaped(),
            units: units
                .list
                .iter()
                .map(|u| u.status.borrow().clone())
                .collect(),
            last_snapshot: s.last_snapshot.lock().expect("poisoned").clone(),
        }
    }

    /// Records the outcome of a snapshot (shown by `ctl status` and `/metrics`).
    pub fn set_last_snapshot(&self, info: BackupInfo) {
        *self.shared.last_snapshot.lock().expect("poisoned") = Some(info);
    }

    /// Records the outcome of the last dump of unit `name`'s data.
    pub fn set_unit_backup(&self, name: &str, info: BackupInfo) {
        if let Some(u) = self.unit(name) {
            u.status.send_modify(|s| s.last_backup = Some(info));
        }
    }

    /// Names of units, in config order.
    pub fn unit_names(&self) -> Vec<String> {
        self.units()
            .list
            .iter()
            .map(|u| u.config.name.clone())
            .collect()
    }

    /// The unit called `name`.
    pub fn unit(&self, name: &str) -> Option<UnitHandle> {
        self.units().get(name).cloned()
    }

    /// Asks bosun to stop, as SIGTERM does.
    pub fn shutdown(&self) {
        let _ = self.shared.requests.send(Request::Shutdown);
    }

    /// Re-reads the config file and applies the difference: new units start,
    /// removed ones stop, changed ones restart, the rest is left untouched.
    /// The answer lists what changed; a config error changes nothing.
    pub async fn reload(&self) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .requests
            .send(Request::Reload(tx))
            .map_err(|_| "bosun is stopping".to_string())?;
        rx.await.map_err(|_| "bosun is stopping".to_string())?
    }

    /// Watches bosun's phase.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.shared.phase.subscribe()
    }

    /// Applies `action` to unit `name`; the answer is a short message.
    pub async fn act(&self, name: &str, action: Action) -> Result<String, String> {
        let units = self.units();
        let Some(u) = units.get(name) else {
            return Err(format!("no unit named {name:?}"));
        };
        let Some(cmd) = &u.cmd else {
            return Err(format!(
                "{name} is not active in this container (roles {})",
                units.plan.roles_expr
            ));
        };
        if *self.shared.phase.borrow() == Phase::Stopping {
            return Err("bosun is stopping".into());
        }
        let (tx, rx) = oneshot::channel();
        let msg = match action {
            Action::Start => UnitCmd::Start(Some(tx)),
            Action::Restart => UnitCmd::Restart(Some(tx)),
            Action::Signal(s) => UnitCmd::Signal(s, Some(tx)),
            Action::Stop => {
                let report = stop_unit(cmd, Instant::now() + u.config.stop_timeout)
                    .await
                    .ok_or_else(|| format!("{name} is gone"))?;
                return Ok(if report.was_running {
                    format!(
                        "{name} stopped{}",
                        if report.killed { " (SIGKILL)" } else { "" }
                    )
                } else {
                    format!("{name} was not running")
                });
            }
        };
        cmd.send(msg).map_err(|_| format!("{name} is gone"))?;
        let answer = rx.await.map_err(|_| format!("{name} is gone"))?;
        if action == Action::Restart && u.config.restart_dependents && answer.is_ok() {
            let deps = units
                .plan
                .unit(name)
                .map(|p| p.dependents.clone())
                .unwrap_or_default();
            self.restart_when_ready(u, deps);
        }
        answer
    }

    /// After `unit` is ready again, restart `deps` (and, through their own
    /// `restart_dependents`, so on down).
    fn restart_when_ready(&self, unit: &UnitHandle, deps: Vec<String>) {
        let mut st = unit.status.subscribe();
        let handle = self.clone();
        tokio::spawn(async move {
            // The restart dropped readiness already; wait for it to come back.
            if st.wait_for(|s| s.ready).await.is_err() {
                return;
            }
            for d in deps {
                tracing::info!(unit = %d, "restarting: a dependency restarted (restart_dependents)");
                if let Err(e) = Box::pin(handle.act(&d, Action::Restart)).await {
                    tracing::warn!(unit = %d, "cannot restart: {e}");
                }
            }
        });
    }
}

/// Sends a stop with no force and waits for it; `None` when the runner is gone.
async fn stop_unit(cmd: &mpsc::UnboundedSender<UnitCmd>, deadline: Instant) -> Option<StopReport> {
    let (done, rx) = oneshot::channel();
    let (_force_tx, force) = watch::channel(false);
    cmd.send(UnitCmd::Stop {
        deadline,
        force,
        done,
    })
    .ok()?;
    rx.await.ok()
}

/// The orchestrator.
pub struct Supervisor {
    config: Config,
    handle: Handle,
    runners: Vec<Runner>,
    changed: Arc<Notify>,
    requests: mpsc::UnboundedReceiver<Request>,
    hooks: Option<Arc<dyn DataHooks>>,
    notify_dir: PathBuf,
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
        last_exit: None,
        detail: if active {
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
    }
}

impl Supervisor {
    /// Builds every unit (active or not) from `config` and `plan`; `hooks`
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
        };
        let handle = Handle {
            shared: Arc::new(shared),
        };
        let mut sup = Supervisor {
            config: config.clone(),
            handle: handle.clone(),
            runners: Vec::new(),
            changed: Arc::new(Notify::new()),
            requests: req_rx,
            hooks,
            notify_dir,
        };
        let (units, runners) = sup.build_units(&config, plan, None, &Default::default());
        *handle.shared.units.write().expect("unit table poisoned") = Arc::new(units);
        sup.runners = runners;
        (sup, handle)
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
            let fresh = initial_status(unit, &plan);
            let status = match previous {
                Some(prev) => {
                    prev.status.send_modify(|s| {
                        let (restarts, last_exit, last_backup) =
                            (s.restarts, s.last_exit, s.last_backup.clone());
                        *s = fresh;
                        s.restarts = restarts;
                        s.last_exit = last_exit;
                        s.last_backup = last_backup;
                    });
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
            list.push(UnitHandle {
                config: Arc::new(unit.clone()),
                status,
                log,
                cmd: None,
            });
        }
        let mut runners = Vec::new();
        for i in 0..list.len() {
            let name = list[i].config.name.clone();
            let Some(planned) = plan.unit(&name) else {
                continue;
            };
            if keep.contains(&name) && list[i].cmd.is_some() {
                continue;
            }
            let deps = planned
                .deps
                .iter()
                .filter_map(|d| by_name.get(d).map(|&j| list[j].status.subscribe()))
                .collect();
            let env = RunnerEnv {
                reaper: self.handle.shared.reaper.clone(),
                deps,
                changed: self.changed.clone(),
                notify_dir: self.notify_dir.clone(),
                hooks: self.hooks.clone(),
            };
            let u = &mut list[i];
            let (runner, tx) = Runner::new(u.config.clone(), u.log.clone(), u.status.clone(), env);
            u.cmd = Some(tx);
            runners.push(runner);
        }
        (
            Units {
                list,
                by_name,
                plan,
            },
            runners,
        )
    }

    /// Applies a changed config file (SIGHUP, `ctl reload`).
    async fn reload(&mut self) -> Result<String, String> {
        // Not `std::env::vars`: it panics on a variable that is not UTF-8.
        let env = bosun_config::Env::current();
        let config = bosun_config::load(&self.config.source, &env).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            format!(
                "the new config has errors; nothing changed:\n{}",
                lines.join("\n")
            )
        })?;
        let old = self.handle.units();
        let plan = Plan::new(&config, &old.plan.roles_expr)
            .map_err(|e| format!("{}: {e}; nothing changed", config.source.display()))?;
        let mut added = Vec::new();
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        let mut keep = std::collections::HashSet::new();
        for p in &plan.units {
            let new_unit = &config.units[&p.name];
            match old.get(&p.name) {
                Some(u) if u.cmd.is_some() && *u.config == *new_unit => {
                    keep.insert(p.name.clone());
                }
                Some(u) if u.cmd.is_some() => changed.push(p.name.clone()),
                _ => added.push(p.name.clone()),
            }
        }
        for u in &old.list {
            if u.cmd.is_some() && plan.unit(&u.config.name).is_none() {
                removed.push(u.config.name.clone());
            }
        }
        // Stop what goes away or changes, all at once; each within its stop_timeout.
        let mut stops = JoinSet::new();
        for name in removed.iter().chain(&changed) {
            if let Some(cmd) = old.get(name).and_then(|u| u.cmd.clone()) {
                let deadline = Instant::now()
                    + old
                        .get(name)
                        .map_or(Duration::from_secs(10), |u| u.config.stop_timeout);
                stops.spawn(async move { stop_unit(&cmd, deadline).await });
            }
        }
        while stops.join_next().await.is_some() {}
        let (units, runners) = self.build_units(&config, plan, Some(&old), &keep);
        let starts: Vec<_> = added
            .iter()
            .chain(&changed)
            .filter_map(|n| units.get(n).and_then(|u| u.cmd.clone()))
            .collect();
        *self
            .handle
            .shared
            .units
            .write()
            .expect("unit table poisoned") = Arc::new(units);
        drop(old); // the replaced runners see their queue close and end
        for runner in runners {
            tokio::spawn(runner.run());
        }
        for cmd in starts {
            let _ = cmd.send(UnitCmd::Start(None));
        }
        if config.bosun.control_socket != self.config.bosun.control_socket
            || config.bosun.http_listen != self.config.bosun.http_listen
        {
            tracing::warn!(
                "reload: control_socket and http_listen changes apply at the next start"
            );
        }
        self.config = config;
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        let report = format!(
            "reloaded {}: started {}; stopped {}; restarted {}; unchanged {}",
            self.config.source.display(),
            list(&added),
            list(&removed),
            list(&changed),
            keep.len()
        );
        tracing::info!("{report}");
        Ok(report)
    }

    /// Runs the container's life to its end; returns bosun's exit code.
    pub async fn run(mut self, signals: &mut Signals) -> i32 {
        let boot_started = Instant::now();
        if let Some(hooks) = self.hooks.clone() {
            // Files and directories come back before any unit can touch them.
            let restore = hooks.before_boot();
            tokio::pin!(restore);
            let outcome = loop {
                tokio::select! {
                    r = &mut restore => break r.map_err(|e| (1, format!("boot failed: restore: {e}"))),
                    sig = signals.recv() => match sig {
                        Sig::Term | Sig::Int => break Err((0, format!("SIG{}", format!("{sig:?}").to_uppercase()) + " during restore: stopping before any unit started; nothing was backed up")),
                        _ => {}
                    },
                }
            };
            if let Err((code, msg)) = outcome {
                if code == 0 {
                    tracing::warn!("{msg}")
                } else {
                    tracing::error!("{msg}")
                }
                crate::sweep::sweep(self.config.bosun.sweep_timeout).await;
                return code;
            }
        }
        for runner in std::mem::take(&mut self.runners) {
            tokio::spawn(runner.run());
        }
        let units = self.handle.units();
        for u in &units.list {
            if let Some(cmd) = &u.cmd {
                let _ = cmd.send(UnitCmd::Start(None));
            }
        }
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
        for u in units.list.iter().filter(|u| u.cmd.is_some()) {
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
            all_ready &= s.ready;
        }
        if booting && all_ready {
            shared.phase.send_replace(Phase::Running);
            tracing::info!(
                "boot complete in {:.0?}: {} units ready",
                boot_started.elapsed(),
                units.plan.units.len()
            );
        }
        None
    }

    fn log_states(&self) {
        for s in self.handle.status().units {
            tracing::info!(unit = %s.name, "{} pid={:?} restarts={} {}", s.state, s.pid, s.restarts, s.detail);
        }
    }

    /// The stop: every unit after the units that depend on it, in parallel where
    /// independent, all within `stop_budget`. A second SIGTERM/SIGINT skips the
    /// remaining grace periods.
    async fn stop(&mut self, cause: StopCause, signals: &mut Signals) -> i32 {
        let shared = self.handle.shared.clone();
        let units = self.handle.units();
        let plan = &units.plan;
        let booted = *shared.phase.borrow() == Phase::Running;
        shared.phase.send_replace(Phase::Stopping);
        let budget = self.config.bosun.stop_budget;
        let began = Instant::now();
        let deadline = began + budget;
        match &cause {
            StopCause::Requested(why) => tracing::info!(
                "{why}: stopping {} units in {} waves, budget {:?} (worst case {:?})",
                plan.units.len(),
                plan.stop_waves.len(),
                budget,
                plan.worst_case_stop
            ),
            StopCause::BootFailed(why) => tracing::error!("boot failed: {why}; stopping"),
            StopCause::Essential { unit, code } => {
                tracing::info!("essential unit {unit} ended with code {code}; stopping")
            }
        }
        for (i, wave) in plan.stop_waves.iter().enumerate() {
            tracing::debug!("stop wave {}: {}", i + 1, wave.join(", "));
        }
        let (force_tx, force_rx) = watch::channel(false);
        let mut done: HashMap<String, watch::Sender<bool>> = HashMap::new();
        for p in &plan.units {
            done.insert(p.name.clone(), watch::channel(false).0);
        }
        let mut tasks = JoinSet::new();
        for p in &plan.units {
            let Some(u) = units.get(&p.name) else {
                continue;
            };
            let Some(cmd) = u.cmd.clone() else { continue };
            let waits: Vec<watch::Receiver<bool>> = p
                .dependents
                .iter()
                .filter_map(|d| done.get(d).map(|tx| tx.subscribe()))
                .collect();
            let me = done.get(&p.name).cloned();
            let name = p.name.clone();
            let force = force_rx.clone();
            // Dump while the unit is still up and nothing depends on it any more.
            let dump = self
                .hooks
                .clone()
                .filter(|_| u.config.backup.is_some())
                .map(|h| (h, u.config.clone(), u.status.subscribe()));
            tasks.spawn(async move {
                for mut w in waits {
                    let _ = w.wait_for(|d| *d).await;
                }
                let mut data_error = None;
                if let Some((hooks, unit, status)) = dump {
                    let ready = status.borrow().ready && status.borrow().state == State::Ready;
                    if ready {
                        let ctx = StopContext { booted, deadline };
                        let r = match tokio::time::timeout_at(deadline, hooks.before_stop(&unit, ctx)).await {
                            Ok(r) => r,
                            Err(_) => Err("the stop budget ran out during the dump".to_string()),
                        };
                        if let Err(e) = r {
                            tracing::error!(unit = %name, "backup failed: {e}");
                            data_error = Some(format!("{name}: {e}"));
                        }
                    } else {
                        tracing::warn!(unit = %name, "not ready at stop: its data is not dumped, and the snapshot will not be committed");
                        data_error = Some(format!("{name} was not ready, its data was not dumped"));
                    }
                }
                let t0 = Instant::now();
                let (tx, rx) = oneshot::channel();
                let report = if cmd.send(UnitCmd::Stop { deadline, force, done: tx }).is_ok() {
                    rx.await.unwrap_or_default()
                } else {
                    StopReport::default()
                };
                if report.was_running {
                    tracing::info!(unit = %name, "stopped in {:.0?}{}", t0.elapsed(), if report.killed { " (SIGKILL)" } else { "" });
                }
                if let Some(me) = me {
                    me.send_replace(true);
                }
                (report, data_error)
            });
        }
        let mut over_budget = false;
        let mut forced = false;
        let mut data_errors = Vec::new();
        loop {
            tokio::select! {
                r = tasks.join_next() => match r {
                    None => break,
                    Some(Ok((report, data_error))) => {
                        over_budget |= report.cut_by_budget && !forced;
                        data_errors.extend(data_error);
                    }
                    Some(Err(e)) => tracing::error!("stop task failed: {e}"),
                },
                sig = signals.recv() => match sig {
                    Sig::Term | Sig::Int if !forced => {
                        forced = true;
                        tracing::warn!("second {sig:?}: forcing the stop (SIGKILL now)");
                        force_tx.send_replace(true);
                    }
                    Sig::Quit => self.log_states(),
                    _ => {}
                },
                _ = self.requests.recv() => {}
            }
        }
        if let Some(hooks) = self.hooks.clone() {
            let ctx = StopContext { booted, deadline };
            let r = match tokio::time::timeout_at(deadline, hooks.after_stop(ctx)).await {
                Ok(r) => r,
                Err(_) => Err("the stop budget ran out before the snapshot was committed; the previous snapshot stays the latest".to_string()),
            };
            if let Err(e) = r {
                tracing::error!("snapshot: {e}");
                data_errors.push(e);
            }
        }
        let took = began.elapsed();
        let mut code = cause.exit_code();
        if !data_errors.is_empty() && code == 0 {
            code = 1;
        }
        if over_budget || took > budget + Duration::from_millis(500) {
            tracing::error!(
                "stop ran out of its budget of {budget:?} (took {took:.1?}): units were SIGKILLed"
            );
            if code == 0 {
                code = 1;
            }
        } else {
            tracing::info!("all units stopped in {took:.0?}");
        }
        code
    }
}
