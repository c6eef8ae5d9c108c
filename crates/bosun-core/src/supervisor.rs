//! The orchestration of one container's life: start every active unit (each
//! waits for its own dependencies, so independent branches start in parallel),
//! watch for a failed boot or an essential unit's exit, and run the stop:
//! reverse dependency order, parallel where independent, one budget.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bosun_config::{Config, Plan, UnitKind};
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
}

struct Shared {
    units: Vec<UnitHandle>,
    by_name: HashMap<String, usize>,
    roles_expr: String,
    roles: Vec<String>,
    phase: watch::Sender<Phase>,
    started_at_ms: u64,
    reaper: Reaper,
    requests: mpsc::UnboundedSender<Request>,
    dependents: HashMap<String, Vec<String>>,
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
    /// A snapshot of every unit's status.
    pub fn status(&self) -> DaemonStatus {
        let s = &self.shared;
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id() as i32,
            roles_expr: s.roles_expr.clone(),
            roles: s.roles.clone(),
            phase: *s.phase.borrow(),
            started_at_ms: s.started_at_ms,
            reaped_orphans: s.reaper.orphans_reaped(),
            units: s.units.iter().map(|u| u.status.borrow().clone()).collect(),
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
        self.shared
            .units
            .iter()
            .map(|u| u.config.name.clone())
            .collect()
    }

    /// The unit called `name`.
    pub fn unit(&self, name: &str) -> Option<&UnitHandle> {
        self.shared
            .by_name
            .get(name)
            .map(|&i| &self.shared.units[i])
    }

    /// Asks bosun to stop, as SIGTERM does.
    pub fn shutdown(&self) {
        let _ = self.shared.requests.send(Request::Shutdown);
    }

    /// Watches bosun's phase.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.shared.phase.subscribe()
    }

    /// Applies `action` to unit `name`; the answer is a short message.
    pub async fn act(&self, name: &str, action: Action) -> Result<String, String> {
        let Some(u) = self.unit(name) else {
            return Err(format!("no unit named {name:?}"));
        };
        let Some(cmd) = &u.cmd else {
            return Err(format!(
                "{name} is not active in this container (roles {})",
                self.shared.roles_expr
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
                let (done_tx, done_rx) = oneshot::channel();
                let (_force_tx, force) = watch::channel(false);
                let deadline = Instant::now() + u.config.stop_timeout;
                cmd.send(UnitCmd::Stop {
                    deadline,
                    force,
                    done: done_tx,
                })
                .map_err(|_| format!("{name} is gone"))?;
                let report = done_rx.await.map_err(|_| format!("{name} is gone"))?;
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
            self.restart_dependents_when_ready(name);
        }
        answer
    }

    /// After `name` is ready again, restart its active dependents (and so on down).
    fn restart_dependents_when_ready(&self, name: &str) {
        let deps = self
            .shared
            .dependents
            .get(name)
            .cloned()
            .unwrap_or_default();
        let Some(u) = self.unit(name) else { return };
        let mut st = u.status.subscribe();
        let handle = self.clone();
        tokio::spawn(async move {
            // The restart first drops readiness, then brings it back.
            let _ = st.wait_for(|s| !s.ready).await;
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

/// The orchestrator.
pub struct Supervisor {
    config: Config,
    plan: Plan,
    handle: Handle,
    runners: Vec<Runner>,
    changed: Arc<Notify>,
    requests: mpsc::UnboundedReceiver<Request>,
    hooks: Option<Arc<dyn DataHooks>>,
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
        let changed = Arc::new(Notify::new());
        let (req_tx, req_rx) = mpsc::unbounded_channel();
        let notify_dir = config
            .bosun
            .control_socket
            .parent()
            .map(|p| p.join("notify"))
            .unwrap_or_else(|| PathBuf::from("/run/bosun/notify"));
        let mut units = Vec::new();
        let mut by_name = HashMap::new();
        let mut watchers: HashMap<String, watch::Receiver<UnitStatus>> = HashMap::new();
        let mut pending = Vec::new();
        for (i, unit) in config.units.values().enumerate() {
            let planned = plan.unit(&unit.name);
            let status = UnitStatus {
                name: unit.name.clone(),
                kind: unit.kind.as_str().to_string(),
                roles: unit.roles.clone(),
                active: planned.is_some(),
                state: State::Inactive,
                ready: false,
                pid: None,
                started_at_ms: None,
                restarts: 0,
                last_exit: None,
                detail: match planned {
                    Some(_) => String::new(),
                    None => plan
                        .inactive
                        .iter()
                        .find(|(n, _)| n == &unit.name)
                        .map(|(_, why)| why.clone())
                        .unwrap_or_default(),
                },
                essential: unit.essential,
                last_backup: None,
            };
            let (tx, rx) = watch::channel(status);
            watchers.insert(unit.name.clone(), rx);
            let log = Arc::new(UnitLog::new(
                &unit.name,
                unit.output,
                config.bosun.log_buffer,
                unit.log_file.as_ref(),
            ));
            by_name.insert(unit.name.clone(), i);
            units.push(UnitHandle {
                config: Arc::new(unit.clone()),
                status: tx,
                log,
                cmd: None,
            });
            if planned.is_some() {
                pending.push(i);
            }
        }
        let mut runners = Vec::new();
        for i in pending {
            let u = &mut units[i];
            let deps = plan
                .unit(&u.config.name)
                .map(|p| {
                    p.deps
                        .iter()
                        .filter_map(|d| watchers.get(d).cloned())
                        .collect()
                })
                .unwrap_or_default();
            let env = RunnerEnv {
                reaper: reaper.clone(),
                deps,
                changed: changed.clone(),
                notify_dir: notify_dir.clone(),
                hooks: hooks.clone(),
            };
            let (runner, tx) = Runner::new(u.config.clone(), u.log.clone(), u.status.clone(), env);
            u.cmd = Some(tx);
            runners.push(runner);
        }
        let dependents = plan
            .units
            .iter()
            .map(|p| (p.name.clone(), p.dependents.clone()))
            .collect();
        let shared = Shared {
            units,
            by_name,
            roles_expr: plan.roles_expr.clone(),
            roles: plan.roles.clone(),
            phase: watch::channel(Phase::Booting).0,
            started_at_ms: now_ms(),
            reaper,
            requests: req_tx,
            dependents,
            last_snapshot: std::sync::Mutex::new(None),
        };
        let handle = Handle {
            shared: Arc::new(shared),
        };
        let sup = Supervisor {
            config,
            plan,
            handle: handle.clone(),
            runners,
            changed,
            requests: req_rx,
            hooks,
        };
        (sup, handle)
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
        let shared = self.handle.shared.clone();
        for u in &shared.units {
            if let Some(cmd) = &u.cmd {
                let _ = cmd.send(UnitCmd::Start(None));
            }
        }
        tracing::info!(
            "booting roles {:?}: {} active units in {} start waves",
            self.plan.roles_expr,
            self.plan.units.len(),
            self.plan.start_waves.len()
        );
        let cause = loop {
            tokio::select! {
                sig = signals.recv() => match sig {
                    Sig::Term | Sig::Int => break StopCause::Requested(format!("SIG{}", format!("{sig:?}").to_uppercase())),
                    Sig::Quit => self.log_states(),
                    Sig::Hup => tracing::warn!("SIGHUP: config reload is not supported yet; restart the container to apply changes"),
                    other => tracing::debug!("ignoring {other:?}"),
                },
                req = self.requests.recv() => match req {
                    Some(Request::Shutdown) | None => break StopCause::Requested("ctl shutdown".into()),
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
        code
    }

    /// After any unit changed: is the boot done, failed, or did an essential unit end?
    fn evaluate(&self, boot_started: Instant) -> Option<StopCause> {
        let shared = &self.handle.shared;
        let booting = *shared.phase.borrow() == Phase::Booting;
        let mut all_ready = true;
        for u in shared.units.iter().filter(|u| u.cmd.is_some()) {
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
                self.plan.units.len()
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
        let booted = *shared.phase.borrow() == Phase::Running;
        shared.phase.send_replace(Phase::Stopping);
        let budget = self.config.bosun.stop_budget;
        let began = Instant::now();
        let deadline = began + budget;
        match &cause {
            StopCause::Requested(why) => tracing::info!(
                "{why}: stopping {} units in {} waves, budget {:?} (worst case {:?})",
                self.plan.units.len(),
                self.plan.stop_waves.len(),
                budget,
                self.plan.worst_case_stop
            ),
            StopCause::BootFailed(why) => tracing::error!("boot failed: {why}; stopping"),
            StopCause::Essential { unit, code } => {
                tracing::info!("essential unit {unit} ended with code {code}; stopping")
            }
        }
        for (i, wave) in self.plan.stop_waves.iter().enumerate() {
            tracing::debug!("stop wave {}: {}", i + 1, wave.join(", "));
        }
        let (force_tx, force_rx) = watch::channel(false);
        let mut done: HashMap<String, watch::Sender<bool>> = HashMap::new();
        for p in &self.plan.units {
            done.insert(p.name.clone(), watch::channel(false).0);
        }
        let mut tasks = JoinSet::new();
        for p in &self.plan.units {
            let Some(u) = shared.by_name.get(&p.name).map(|&i| &shared.units[i]) else {
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
