//! The control plane's handle on the orchestrator: read status, steer units,
//! ask for a reload or the stop.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{ReloadError, Request, ScaleError, Shared, StatusExtra, Units};
use crate::status::{BackupInfo, DaemonStatus, Phase, State, UnitStatus};
use crate::unit::{StopOrder, StopReport, UnitCmd, UnitError, UnitHandle};

/// A cheap, cloneable handle for the control plane: read status, steer units.
#[derive(Clone)]
pub struct Handle {
    pub(super) shared: Arc<Shared>,
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

/// Why a control command on a unit (or a unit target) was not carried out. The
/// control API picks its HTTP status from the variant.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// No unit of that name in the config.
    #[error("no unit named {0:?}")]
    NoSuchUnit(String),
    /// `role:NAME` names no active unit.
    #[error("no active unit has role {0:?}")]
    NoUnitWithRole(String),
    /// `all`, and no unit is active in this container.
    #[error("no unit is active in this container")]
    NoActiveUnit,
    /// The unit exists but is not active for this container's roles.
    #[error("{unit} is not active in this container (roles {roles})")]
    NotActive {
        /// The unit.
        unit: String,
        /// The container's role expression.
        roles: String,
    },
    /// bosun is stopping: no unit is started, stopped or signalled on request any more.
    #[error("bosun is stopping")]
    Stopping,
    /// bosun is booting (restoring): no unit runs yet.
    #[error(
        "bosun is booting ({step}): no unit runs yet; {unit} starts once the restore is done \
         (watch `bosun ctl status`, then try again)"
    )]
    Booting {
        /// The unit.
        unit: String,
        /// What the boot is doing.
        step: String,
    },
    /// The unit's runner went away (a reload replaced it, or bosun is exiting).
    #[error("{0} is gone")]
    Gone(String),
    /// The unit's own answer.
    #[error(transparent)]
    Unit(#[from] UnitError),
    /// `ctl run` of a unit that is not an on-demand task.
    #[error("{0} is not an on-demand task (it runs at boot); use `bosun ctl restart {0}`")]
    NotOnDemand(String),
    /// `ctl run` of a task whose previous run has not ended.
    #[error("{0} is already running: wait for it to end (`bosun ctl logs -f {0}`) or stop it (`bosun ctl stop {0}`)")]
    AlreadyRunning(String),
    /// A command for one unit (`logs`) given a service with `instances`.
    #[error("{group} runs as {count} instances: name one ({first} … {last}), e.g. {first}")]
    OneInstance {
        /// The service.
        group: String,
        /// How many instances it runs.
        count: usize,
        /// Its first instance.
        first: String,
        /// Its last instance.
        last: String,
    },
    /// In a rolling restart: the instance did not become ready again.
    #[error("{unit} did not become ready again ({why}); the rolling restart stops here")]
    NotReady {
        /// The instance.
        unit: String,
        /// Its state and detail, or the time waited.
        why: String,
    },
    /// In a rolling restart: not restarted, since an instance before it failed.
    #[error("{unit} not restarted: the rolling restart stopped at {at}")]
    RollingStopped {
        /// The instance left alone.
        unit: String,
        /// The instance the restart stopped at.
        at: String,
    },
}

/// How an on-demand run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The task's exit code (128+n for a signal; 1 when it could not be started).
    pub exit_code: i32,
    /// Its status detail (`done`, `task failed (exit 3)`, why it could not start).
    pub detail: String,
}

impl Handle {
    pub(super) fn units(&self) -> Arc<Units> {
        self.shared
            .units
            .read()
            .expect("unit table poisoned")
            .clone()
    }

    /// A snapshot of every unit's status.
    pub fn status(&self) -> DaemonStatus {
        self.status_where(|_| true)
    }

    /// [`Handle::status`] with only the units `keep` picks (the others are not
    /// even copied: a status of 1 unit of 1000 costs what one of 1 does).
    pub fn status_where(&self, keep: impl Fn(&UnitStatus) -> bool) -> DaemonStatus {
        let s = &self.shared;
        let units = self.units();
        let mut st = DaemonStatus {
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
                .filter_map(|u| {
                    let st = u.status.borrow();
                    keep(&st).then(|| st.clone())
                })
                .collect(),
            last_snapshot: s.last_snapshot.lock().expect("poisoned").clone(),
            boot_step: self.boot_step(),
            instances: super::rolling::counts(&units),
            transfers: Vec::new(),
            next_daily_at_ms: None,
        };
        if let Some(extra) = s.status_extra.get() {
            let last_backup = |name: &str| {
                let u = units.list.iter().find(|u| u.config.name == name)?;
                let st = u.status.borrow();
                st.last_backup.clone()
            };
            extra(&mut st, &last_backup);
        }
        st
    }

    /// Calls `f` with each unit's status where it is kept (no copy), in the
    /// order of [`Handle::status`].
    pub fn each_unit_status(&self, f: &mut dyn FnMut(&UnitStatus)) {
        for u in &self.units().list {
            f(&u.status.borrow());
        }
    }

    /// Adds what core does not know to every status (the transfers under way,
    /// the next daily snapshot): the binary, which keeps the data, sets it once.
    pub fn set_status_extra(&self, f: StatusExtra) {
        let _ = self.shared.status_extra.set(f);
    }

    /// Reports `event` to the hook runner, if one is set ([`Supervisor::set_events`]).
    ///
    /// [`Supervisor::set_events`]: super::Supervisor::set_events
    pub fn emit(&self, event: crate::events::Event) {
        if let Some(sink) = self.shared.events.get() {
            sink.emit(event);
        }
    }

    /// What the boot is doing before the units start (`None` once they have).
    pub fn boot_step(&self) -> Option<String> {
        self.shared.boot_step.lock().expect("poisoned").clone()
    }

    /// Says what the boot is doing, for `ctl status`, `/health` and the answers to
    /// unit commands sent before the units run (the data hooks call this while they
    /// restore).
    pub fn set_boot_step(&self, step: impl Into<String>) {
        let mut cur = self.shared.boot_step.lock().expect("poisoned");
        // Only while the boot step is open: a late report must not reopen it.
        if cur.is_some() {
            *cur = Some(step.into());
        }
    }

    pub(super) fn open_boot_step(&self, step: &str) {
        *self.shared.boot_step.lock().expect("poisoned") = Some(step.to_string());
    }

    pub(super) fn close_boot_step(&self) {
        *self.shared.boot_step.lock().expect("poisoned") = None;
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
    pub async fn reload(&self) -> Result<String, ReloadError> {
        // Checked here: once the stop has begun, no one reads the request queue.
        if *self.shared.phase.borrow() == Phase::Stopping {
            return Err(ReloadError::Stopping);
        }
        let (tx, rx) = oneshot::channel();
        self.shared
            .requests
            .send(Request::Reload(tx))
            .map_err(|_| ReloadError::Stopping)?;
        rx.await.map_err(|_| ReloadError::Stopping)?
    }

    /// Runs `count` instances of the service `group` (`ctl scale`): new ones
    /// start, the highest numbers stop, the others are left alone. Lasts until
    /// bosun restarts (a reload keeps it unless the file changes the count).
    pub async fn scale(&self, group: &str, count: u32) -> Result<String, ScaleError> {
        if *self.shared.phase.borrow() == Phase::Stopping {
            return Err(ScaleError::Stopping);
        }
        let (reply, rx) = oneshot::channel();
        let req = Request::Scale {
            group: group.to_string(),
            count,
            reply,
        };
        self.shared
            .requests
            .send(req)
            .map_err(|_| ScaleError::Stopping)?;
        rx.await.map_err(|_| ScaleError::Stopping)?
    }

    /// Watches bosun's phase.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.shared.phase.subscribe()
    }

    /// The units a control target names, from one consistent unit table:
    ///
    /// - a unit name: that unit (even when it is not active: [`Handle::act`] says so);
    /// - a service with `instances`: each of its instances, in order;
    /// - `all`: every unit active in this container;
    /// - `role:NAME`: every active unit whose `roles` lists NAME.
    ///
    /// `all` and `role:` name services only, except for [`Action::Stop`], which
    /// also stops a task that is running: `restart all` must not run
    /// `initialize` again. A task is started again only when named.
    pub fn expand(&self, target: &str, action: Action) -> Result<Vec<String>, ActError> {
        let units = self.units();
        if units.get(target).is_some() {
            return Ok(vec![target.to_string()]);
        }
        if let Some(names) = super::rolling::instances_of(&units, target) {
            return Ok(names);
        }
        let role = target.strip_prefix("role:");
        if target != "all" && role.is_none() {
            return Err(ActError::NoSuchUnit(target.to_string()));
        }
        let names: Vec<String> = units
            .list
            .iter()
            .filter(|u| {
                u.is_active()
                    && (action == Action::Stop || u.config.kind == bosun_config::UnitKind::Service)
                    && match role {
                        Some(r) => u.config.roles.iter().any(|x| x == r),
                        None => true,
                    }
            })
            .map(|u| u.config.name.clone())
            .collect();
        if names.is_empty() {
            return Err(match role {
                Some(r) => ActError::NoUnitWithRole(r.to_string()),
                None => ActError::NoActiveUnit,
            });
        }
        Ok(names)
    }

    /// Starts on-demand (or scheduled) task `name` once; [`Run::wait`] waits for it to end. Two
    /// runs of one task never overlap: the second is refused. Every refusal
    /// (not on demand, already running, booting, stopping) comes from here,
    /// before anything runs. The output reaches whoever follows the unit's log
    /// (subscribe before calling this to see all of it).
    pub async fn start_run(&self, name: &str) -> Result<Run, ActError> {
        let units = self.units();
        let u = units
            .get(name)
            .ok_or_else(|| ActError::NoSuchUnit(name.to_string()))?;
        if !u.config.on_request() {
            return Err(ActError::NotOnDemand(name.to_string()));
        }
        let slot = RunSlot::take(&self.shared, name)?;
        let status = u.status.subscribe();
        let (before, busy) = {
            let s = status.borrow();
            (s.runs, s.pid.is_some() || s.state == State::Starting)
        };
        if busy {
            return Err(ActError::AlreadyRunning(name.to_string()));
        }
        self.act(name, Action::Start).await?;
        Ok(Run {
            _slot: slot,
            status,
            before,
        })
    }

    /// Applies `action` to unit `name`; the answer is a short message.
    pub async fn act(&self, name: &str, action: Action) -> Result<String, ActError> {
        self.act_with(name, action, true).await
    }

    /// [`Handle::act`]; `dependents`: a restart also restarts the unit's
    /// dependents under `restart_dependents` (a rolling restart does that once,
    /// after its last instance).
    pub(super) async fn act_with(
        &self,
        name: &str,
        action: Action,
        dependents: bool,
    ) -> Result<String, ActError> {
        let units = self.units();
        let Some(u) = units.get(name) else {
            return Err(ActError::NoSuchUnit(name.to_string()));
        };
        let Some(cmd) = &u.cmd else {
            return Err(ActError::NotActive {
                unit: name.to_string(),
                roles: units.plan.roles_expr.clone(),
            });
        };
        if *self.shared.phase.borrow() == Phase::Stopping {
            return Err(ActError::Stopping);
        }
        if let Some(step) = self.boot_step() {
            return Err(ActError::Booting {
                unit: name.to_string(),
                step,
            });
        }
        let gone = || ActError::Gone(name.to_string());
        let (tx, rx) = oneshot::channel();
        let msg = match action {
            Action::Start => UnitCmd::Start(Some(tx)),
            Action::Restart => UnitCmd::Restart(Some(tx)),
            Action::Signal(s) => UnitCmd::Signal(s, Some(tx)),
            Action::Stop => {
                let report = stop_unit(cmd, Instant::now() + u.config.stop_timeout)
                    .await
                    .ok_or_else(gone)?;
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
        cmd.send(msg).map_err(|_| gone())?;
        let answer = rx.await.map_err(|_| gone())?;
        if action == Action::Restart && dependents && u.config.restart_dependents && answer.is_ok()
        {
            let deps = units
                .plan
                .unit(name)
                .map(|p| p.dependents.clone())
                .unwrap_or_default();
            self.restart_when_ready(u, deps);
        }
        Ok(answer?)
    }

    /// After `unit` is ready again, restart `deps` (and, through their own
    /// `restart_dependents`, so on down).
    pub(super) fn restart_when_ready(&self, unit: &UnitHandle, deps: Vec<String>) {
        let mut st = unit.status.subscribe();
        let handle = self.clone();
        self.shared.spawn_background(async move {
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
pub(super) async fn stop_unit(
    cmd: &mpsc::UnboundedSender<UnitCmd>,
    deadline: Instant,
) -> Option<StopReport> {
    let (done, rx) = oneshot::channel();
    let (_force_tx, force) = watch::channel(false);
    cmd.send(UnitCmd::Stop(Box::new(StopOrder {
        deadline,
        force,
        done,
    })))
    .ok()?;
    rx.await.ok()
}

/// An on-demand run in progress.
pub struct Run {
    _slot: RunSlot,
    status: watch::Receiver<crate::status::UnitStatus>,
    before: u64,
}

impl Run {
    /// Waits for the run to end; its exit code and detail.
    pub async fn wait(mut self) -> Result<RunOutcome, ActError> {
        let before = self.before;
        let name = self.status.borrow().name.clone();
        let ended = self
            .status
            .wait_for(|s| s.runs > before && s.pid.is_none() && s.state.is_down())
            .await
            .map_err(|_| ActError::Gone(name))?;
        let exit_code = match (ended.state, ended.last_exit) {
            (State::Exited | State::Fatal, Some(e)) if e.code != 0 => e.code,
            (State::Exited, _) => 0,
            _ => 1,
        };
        Ok(RunOutcome {
            exit_code,
            detail: ended.detail.clone(),
        })
    }
}

/// The right to run one on-demand task: held for the length of the run.
struct RunSlot {
    shared: Arc<Shared>,
    name: String,
}

impl RunSlot {
    fn take(shared: &Arc<Shared>, name: &str) -> Result<RunSlot, ActError> {
        let mut running = shared.running.lock().expect("poisoned");
        if !running.insert(name.to_string()) {
            return Err(ActError::AlreadyRunning(name.to_string()));
        }
        Ok(RunSlot {
            shared: shared.clone(),
            name: name.to_string(),
        })
    }
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        let mut running = self.shared.running.lock().expect("poisoned");
        running.remove(&self.name);
    }
}
