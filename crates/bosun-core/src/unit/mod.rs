//! One unit's life: wait for dependencies and gates, spawn, probe readiness,
//! supervise (exit, health, commands), restart with backoff or give up, stop.
//!
//! Each active unit is driven by one task running [`Runner::run`]. It owns the
//! unit's process and is the only writer of the unit's [`UnitStatus`]; everyone
//! else (dependents, the orchestrator, the control API) reads that status
//! through a `watch` channel and asks for changes with [`UnitCmd`] messages.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bosun_config::{Unit, UnitKind};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::{sleep, sleep_until, Instant};

use crate::hooks::DataHooks;
use crate::lease::Permit;
use crate::output::UnitLog;
use crate::probe;
use crate::reaper::{Exit, Reaper};
use crate::spawn::SpawnError;
use crate::status::{now_ms, State, UnitStatus};

mod follow;
mod memory;
mod notify;
pub mod policy;
mod start;
mod stop;

/// The longest one attempt at a `wait_for` gate may take.
const GATE_ATTEMPT: Duration = Duration::from_secs(5);

/// A request to a unit's runner.
pub enum UnitCmd {
    /// Start (no-op when already running).
    Start(Reply),
    /// Stop: signal, wait until `deadline` (or until `force` turns true), then SIGKILL.
    /// Boxed: every unit's queue holds room for 32 commands from its start, so the
    /// largest variant sets a per-unit cost (`commands_stay_small`).
    Stop(Box<StopOrder>),
    /// Stop gracefully, then start again at once.
    Restart(Reply),
    /// Send a signal to the unit's main process.
    Signal(i32, Reply),
}

/// What [`UnitCmd::Stop`] carries.
#[derive(Debug)]
pub struct StopOrder {
    /// Latest moment to escalate to SIGKILL.
    pub deadline: Instant,
    /// Turns true on a second SIGTERM: skip the rest of the grace.
    pub force: watch::Receiver<bool>,
    /// Told when the unit is down.
    pub done: oneshot::Sender<StopReport>,
}

/// Why a unit refused a command, or why its run gave up.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// A signal for a unit that has no process.
    #[error("{0} is not running")]
    NotRunning(String),
    /// A signal for a unit still waiting for its dependencies or gates.
    #[error("{0} is not running yet")]
    NotRunningYet(String),
    /// A signal for a unit waiting to be restarted.
    #[error("{0} is in backoff")]
    InBackoff(String),
    /// The kernel refused the signal.
    #[error("cannot send signal {signal} to {unit}: {source}")]
    Signal {
        /// The unit.
        unit: String,
        /// The signal number.
        signal: i32,
        /// What `kill(2)` said.
        source: nix::Error,
    },
    /// Its identity or environment cannot be prepared.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// Its `log` ready probe's regex does not compile.
    #[error("bad log regex: {0}")]
    LogRegex(#[from] regex::Error),
    /// Its `$NOTIFY_SOCKET` cannot be created.
    #[error("cannot create $NOTIFY_SOCKET: {0}")]
    NotifySocket(std::io::Error),
    /// A task ran past its `timeout`.
    #[error("task did not finish within {0:?}")]
    TaskTimeout(Duration),
    /// A service's ready probe did not pass within `ready.timeout`.
    #[error("ready probe {probe} timed out after {limit:?}: {last}")]
    ReadyTimeout {
        /// The probe's kind (`tcp`, `http`, …).
        probe: &'static str,
        /// `ready.timeout`.
        limit: Duration,
        /// The last attempt's failure, redacted.
        last: String,
    },
    /// Its data could not be loaded after its first ready (the data hooks' words).
    #[error("loading its data failed: {0}")]
    Load(String),
}

/// The answer to a control command: a short message, or why it failed.
pub type Reply = Option<oneshot::Sender<Result<String, UnitError>>>;

fn answer(reply: Reply, r: Result<String, UnitError>) {
    if let Some(tx) = reply {
        let _ = tx.send(r);
    }
}

/// How a stop went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopReport {
    /// A process was running and had to be stopped.
    pub was_running: bool,
    /// It did not exit in its grace time and was SIGKILLed.
    pub killed: bool,
    /// The grace was cut short by the stop budget (or a forced stop).
    pub cut_by_budget: bool,
}

/// What the orchestrator and the control API hold of a unit. Cheap to clone.
#[derive(Clone)]
pub struct UnitHandle {
    /// The unit's config.
    pub config: Arc<Unit>,
    /// Its status (read with `borrow()`, wait with `subscribe()`). Kept across
    /// reloads, so dependents keep watching the same channel.
    pub status: Arc<watch::Sender<UnitStatus>>,
    /// Its output hub.
    pub log: Arc<UnitLog>,
    /// Its command queue (absent for inactive units).
    pub cmd: Option<mpsc::UnboundedSender<UnitCmd>>,
}

impl UnitHandle {
    /// Active for this container's roles: it has a runner that takes commands.
    pub fn is_active(&self) -> bool {
        self.cmd.is_some()
    }
}

/// What a runner needs besides its unit.
pub struct RunnerEnv {
    /// The reaper.
    pub reaper: Reaper,
    /// Statuses of the active units this one waits for.
    pub deps: Vec<watch::Receiver<UnitStatus>>,
    /// Pinged on every status change, for the orchestrator.
    pub changed: Arc<Notify>,
    /// Directory for `$NOTIFY_SOCKET` sockets.
    pub notify_dir: PathBuf,
    /// Data hooks (load after the first ready).
    pub hooks: Option<Arc<dyn DataHooks>>,
    /// A singleton's permit from the fleet: it runs only while this says `Run`.
    pub permit: Option<watch::Receiver<Permit>>,
    /// Statuses of the dependencies with `restart_dependents`: when one restarts on
    /// its own (a crash, a failed health check), this unit stops, waits for it to
    /// be ready again, and starts.
    pub follow: Vec<watch::Receiver<UnitStatus>>,
    /// Where a `fatal` event goes (`[hooks]`).
    pub events: Option<Arc<dyn crate::events::EventSink>>,
}

/// Drives one unit.
pub struct Runner {
    unit: Arc<Unit>,
    status: Arc<watch::Sender<UnitStatus>>,
    log: Arc<UnitLog>,
    cmds: mpsc::UnboundedReceiver<UnitCmd>,
    env: RunnerEnv,
    restarts: policy::RestartState,
    /// The `after_ready` hook ran (once per bosun life: a restarted unit keeps its data).
    loaded: bool,
    /// The lease term the current run holds (singletons under a fleet).
    term: Option<i64>,
    /// `own_restarts` of each of `env.follow` when this unit last saw them all
    /// settled: a larger count means the dependency restarted since.
    seen: Vec<u64>,
}

/// How one spawned process ended.
enum Outcome {
    /// Stopped on request; the unit is down.
    Stopped,
    /// Exited on its own after running `ran` (or a health check killed it).
    Exited {
        exit: Exit,
        ran: Duration,
        why: Option<String>,
    },
    /// Could not be started, or never became ready; give up.
    Fatal(UnitError),
    /// A control restart: start again at once.
    Restart,
    /// A singleton whose permit was withdrawn (or whose term changed): stopped;
    /// wait for the permit again.
    Revoked,
    /// Stopped because this dependency (with `restart_dependents`) restarted on
    /// its own: wait for it to be ready again, then start.
    DepRestarted(String),
}

impl Runner {
    /// A runner for `unit`; returns it with the handle the others use.
    pub fn new(
        unit: Arc<Unit>,
        log: Arc<UnitLog>,
        status: Arc<watch::Sender<UnitStatus>>,
        env: RunnerEnv,
    ) -> (Runner, mpsc::UnboundedSender<UnitCmd>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let runner = Runner {
            unit,
            status,
            log,
            cmds: rx,
            env,
            restarts: policy::RestartState::default(),
            loaded: false,
            term: None,
            seen: Vec::new(),
        };
        (runner, tx)
    }

    /// The unit's name.
    pub fn name(&self) -> &str {
        &self.unit.name
    }

    /// Gates a singleton on `permit` (ignored for a unit that is not one).
    pub fn set_permit(&mut self, permit: Option<watch::Receiver<Permit>>) {
        if self.unit.singleton {
            self.env.permit = permit;
        }
    }

    /// Sends this unit's events to `sink`.
    pub fn set_events(&mut self, sink: Arc<dyn crate::events::EventSink>) {
        self.env.events = Some(sink);
    }

    fn set(&self, f: impl FnOnce(&mut UnitStatus)) {
        self.status.send_modify(f);
        self.env.changed.notify_one();
    }

    fn set_state(&self, state: State, detail: impl Into<String>) {
        let detail = detail.into();
        if let (State::Fatal, Some(sink)) = (state, &self.env.events) {
            let kind = crate::events::EventKind::Fatal;
            sink.emit(crate::events::Event::new(
                kind,
                Some(&self.unit.name),
                &detail,
            ));
        }
        self.set(|s| {
            s.state = state;
            s.detail = detail;
        });
    }

    /// One more restart, now.
    fn count_restart(&self) {
        self.set(|s| {
            s.restarts += 1;
            if s.restart_times_ms.len() >= crate::status::RESTARTS_KEPT {
                s.restart_times_ms.remove(0);
            }
            s.restart_times_ms.push(now_ms());
        });
    }

    /// The runner's loop: idle until started, run, back to idle once down.
    pub async fn run(self) {
        // Boxed once, so the task's own allocation stays small while idle.
        Box::pin(self.run_inner()).await
    }

    async fn run_inner(mut self) {
        while let Some(cmd) = self.cmds.recv().await {
            match cmd {
                UnitCmd::Start(reply) | UnitCmd::Restart(reply) => {
                    answer(reply, Ok(format!("{} starting", self.unit.name)));
                    self.restarts.reset();
                    self.lifecycle().await;
                }
                UnitCmd::Stop(order) => {
                    let _ = order.done.send(StopReport::default());
                }
                UnitCmd::Signal(_, reply) => {
                    answer(reply, Err(UnitError::NotRunning(self.unit.name.clone())));
                }
            }
        }
    }

    /// From "asked to start" to "down" (stopped, exited or fatal).
    async fn lifecycle(&mut self) {
        self.mark_starting();
        if !self.wait_deps().await || !self.wait_gates().await {
            return;
        }
        loop {
            // After its own backoff: a followed dependency that restarted meanwhile
            // must be ready again first.
            if self.followed_restart().is_some() && !self.wait_deps().await {
                return;
            }
            if !self.wait_permit().await {
                return;
            }
            let outcome = self.run_once().await;
            if self.after_run(outcome).await.is_break() {
                return;
            }
        }
    }

    /// Starting from here on: whoever waits for this run's end (`ctl run`) must
    /// not take the state before it for the end.
    fn mark_starting(&self) {
        self.set(|s| {
            s.ready = false;
            s.runs += 1;
            s.state = State::Starting;
            s.detail = "starting".into();
            if s.timeline.waiting_at_ms.is_none() {
                s.timeline.waiting_at_ms = Some(now_ms());
            }
        });
    }

    /// What follows one run: start again (`Continue`) or be down (`Break`).
    async fn after_run(&mut self, outcome: Outcome) -> ControlFlow<()> {
        match outcome {
            Outcome::Stopped => ControlFlow::Break(()),
            Outcome::DepRestarted(dep) => {
                tracing::info!(unit = %self.unit.name, "stopped: {dep} restarted (restart_dependents); starting again once it is ready");
                self.set(|s| s.restarts += 1);
                // Not its own failure: its start_limit and backoff start afresh.
                self.restarts.reset();
                if self.wait_deps().await {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            }
            Outcome::Revoked if self.unit.schedule.is_some() => {
                // This run is over; the next is the schedule's, where the lease is.
                self.set_state(
                    State::Stopped,
                    "singleton: lease lost during the run; stopped",
                );
                ControlFlow::Break(())
            }
            Outcome::Revoked => {
                tracing::info!(unit = %self.unit.name, "singleton stopped: its lease is no longer held here");
                ControlFlow::Continue(())
            }
            Outcome::Fatal(why) => {
                tracing::error!(unit = %self.unit.name, "{why}");
                self.set_state(State::Fatal, why.to_string());
                ControlFlow::Break(())
            }
            Outcome::Restart => {
                self.count_restart();
                ControlFlow::Continue(())
            }
            Outcome::Exited { exit, ran, why } => match self.restart_delay(exit, ran, why) {
                Some((delay, reason)) => self.back_off(delay, &reason).await,
                None => ControlFlow::Break(()),
            },
        }
    }

    /// After an exit of its own (`why` is set when a health check killed it): the
    /// delay before the next start and the reason to show, or `None` once the unit
    /// has settled (no restart wanted) or gone fatal (`start_limit`).
    fn restart_delay(
        &mut self,
        exit: Exit,
        ran: Duration,
        why: Option<String>,
    ) -> Option<(Duration, String)> {
        let restart = policy::wants_restart(
            self.unit.restart,
            self.unit.kind,
            exit.success(),
            why.is_some(),
        );
        if !restart {
            self.settle(exit, ran);
            return None;
        }
        let next = self.restarts.after_exit(
            &self.unit.backoff,
            &self.unit.start_limit,
            ran,
            Instant::now(),
            fastrand::f64(),
        );
        let reason = why.unwrap_or_else(|| exit.to_string());
        match next {
            policy::Next::Restart(delay) => Some((delay, reason)),
            policy::Next::GiveUp { starts, interval } => {
                let msg = format!(
                    "{starts} starts within {interval:?}, last {reason}; giving up (start_limit)"
                );
                tracing::error!(unit = %self.unit.name, "fatal: {msg}");
                self.set_state(State::Fatal, msg);
                None
            }
        }
    }

    /// In backoff for `delay`, answering commands meanwhile (a stop ends it, a
    /// start or restart cuts it short); then one more restart is counted.
    async fn back_off(&mut self, delay: Duration, reason: &str) -> ControlFlow<()> {
        tracing::warn!(unit = %self.unit.name, "{reason}; restarting in {:.1?}", delay);
        self.set(|s| {
            s.state = State::Backoff;
            s.detail = format!("{reason}; restarting in {delay:.1?}");
            // Its followers (`restart_dependents`) stop on this.
            s.own_restarts += 1;
        });
        let wake = Instant::now() + delay;
        // A zero delay must not go through the timer: it fires on the next
        // millisecond tick at the earliest.
        while !delay.is_zero() {
            tokio::select! {
                _ = sleep_until(wake) => break,
                cmd = self.cmds.recv() => match cmd {
                    None => return ControlFlow::Break(()),
                    Some(UnitCmd::Stop(order)) => {
                        self.set_state(State::Stopped, "stopped during backoff");
                        let _ = order.done.send(StopReport::default());
                        return ControlFlow::Break(());
                    }
                    Some(UnitCmd::Start(r)) | Some(UnitCmd::Restart(r)) => {
                        answer(r, Ok(format!("{} restarting now", self.unit.name)));
                        break;
                    }
                    Some(UnitCmd::Signal(_, r)) => answer(r, Err(UnitError::InBackoff(self.unit.name.clone()))),
                }
            }
        }
        self.count_restart();
        ControlFlow::Continue(())
    }

    /// The final state of a unit that is not restarted after `exit`.
    fn settle(&self, exit: Exit, ran: Duration) {
        let is_task = self.unit.kind == UnitKind::Task;
        if is_task && exit.success() {
            tracing::info!(unit = %self.unit.name, "task done in {:.1?}", ran);
            self.set(|s| {
                s.state = State::Exited;
                s.ready = true;
                s.detail = "done".into();
                s.timeline.ready_at_ms.get_or_insert_with(now_ms);
            });
        } else if is_task {
            let msg = format!("task failed ({exit})");
            tracing::error!(unit = %self.unit.name, "{msg}");
            self.set_state(State::Fatal, msg);
        } else {
            let msg = format!("{exit}; restart = {}", self.unit.restart.as_str());
            tracing::warn!(unit = %self.unit.name, "exited: {msg}");
            self.set_state(State::Exited, msg);
        }
    }

    /// Waits until every dependency is ready (service) or done (task), or is a
    /// singleton in standby ([`UnitStatus::settled`]). False when a stop came first.
    async fn wait_deps(&mut self) -> bool {
        loop {
            let pending: Vec<String> = self
                .env
                .deps
                .iter()
                // A dependency whose unit is gone (an instance scaled away) holds nothing up.
                .filter(|d| !d.borrow().settled() && d.has_changed().is_ok())
                .map(|d| d.borrow().name.clone())
                .collect();
            if pending.is_empty() {
                self.seen = self
                    .env
                    .follow
                    .iter_mut()
                    .map(|d| d.borrow_and_update().own_restarts)
                    .collect();
                return true;
            }
            self.set_state(
                State::Starting,
                format!("waiting for {}", pending.join(", ")),
            );
            let deps = &mut self.env.deps;
            let any_change = async {
                let futs = deps
                    .iter_mut()
                    .filter(|d| d.has_changed().is_ok())
                    .map(|d| Box::pin(d.changed()));
                let _ = futures_select_all(futs).await;
            };
            tokio::select! {
                _ = any_change => {}
                cmd = self.cmds.recv() => {
                    if !self.idle_command(cmd, "waiting for its dependencies") {
                        return false;
                    }
                }
            }
        }
    }

    /// Waits for every `wait_for` gate, within `wait_for_timeout`, one attempt at a
    /// time (each bounded by [`GATE_ATTEMPT`]), 500 ms apart.
    async fn wait_gates(&mut self) -> bool {
        if self.unit.wait_for.is_empty() {
            return true;
        }
        let deadline = Instant::now() + self.unit.wait_for_timeout;
        for gate in self.unit.wait_for.clone() {
            let shown = bosun_config::redact::redact_url(&gate_url(&gate));
            self.set_state(State::Starting, format!("waiting for {shown}"));
            // Why the gate is still closed. No attempt is made with no time left, and
            // one that the deadline cut short and that ran out of its time keeps the
            // reason of an earlier attempt: alone it would only say "no answer within
            // 0ns" (or 3ms), which is true of the attempt but says nothing of the gate.
            let mut last: Option<String> = None;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let why = last.unwrap_or_else(|| {
                        "the gates before it used up wait_for_timeout".to_string()
                    });
                    let msg = format!(
                        "wait_for {shown} timed out after {:?}: {why}",
                        self.unit.wait_for_timeout
                    );
                    tracing::error!(unit = %self.unit.name, "{msg}");
                    self.set_state(State::Fatal, msg);
                    return false;
                }
                let limit = left.min(GATE_ATTEMPT);
                let tried = Instant::now();
                match Box::pin(probe::check_gate(&gate, limit)).await {
                    Ok(()) => break,
                    Err(_)
                        if limit < GATE_ATTEMPT && tried.elapsed() >= limit && last.is_some() => {}
                    Err(e) => last = Some(e.to_string()),
                }
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::select! {
                    _ = sleep(Duration::from_millis(500).min(left)) => {}
                    cmd = self.cmds.recv() => {
                        if !self.idle_command(cmd, "waiting for its wait_for gates") {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// A singleton under a fleet: waits (as `standby`) until its permit says `Run`,
    /// and keeps the term for the run. True at once for any other unit; false when
    /// a stop came first.
    async fn wait_permit(&mut self) -> bool {
        self.term = None;
        if self.env.permit.is_none() {
            return true;
        }
        let mut shown = None;
        loop {
            let Some(permit) = self
                .env
                .permit
                .as_mut()
                .map(|rx| rx.borrow_and_update().clone())
            else {
                return true;
            };
            if let Some(term) = permit.term() {
                tracing::info!(unit = %self.unit.name, term, "singleton: lease held here");
                self.term = Some(term);
                self.set(|s| s.lease_term = Some(term));
                return true;
            }
            if self.unit.schedule.is_some() {
                // A scheduled run does not wait for the lease: the holder runs it.
                let detail = format!("not run here: {}", permit.detail());
                self.set(|s| {
                    s.state = State::Stopped;
                    s.ready = false;
                    s.lease_term = None;
                    s.detail = detail;
                });
                return false;
            }
            if shown.as_ref() != Some(&permit) {
                let detail = permit.detail();
                self.set(|s| {
                    s.state = State::Standby;
                    s.ready = false;
                    s.lease_term = None;
                    s.detail = detail;
                });
                shown = Some(permit);
            }
            let rx = self.env.permit.as_mut();
            let changed = async {
                // A closed channel (the fleet is gone) keeps the unit stopped.
                let open = match rx {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => false,
                };
                if !open {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = changed => {}
                cmd = self.cmds.recv() => {
                    if !self.idle_command(cmd, "in standby") {
                        return false;
                    }
                }
            }
        }
    }

    /// Stops a running singleton whose permit was withdrawn.
    async fn revoke(&mut self, proc: &mut Proc) -> Outcome {
        tracing::warn!(unit = %self.unit.name, "singleton: lease no longer held here; stopping it");
        self.stop_process(proc, Instant::now() + self.unit.stop_timeout, None)
            .await;
        self.term = None;
        self.set(|s| s.lease_term = None);
        Outcome::Revoked
    }

    /// Handles a command while no process runs. False when the unit must stop.
    fn idle_command(&mut self, cmd: Option<UnitCmd>, doing: &str) -> bool {
        match cmd {
            None => false,
            Some(UnitCmd::Stop(order)) => {
                self.set_state(State::Stopped, format!("stopped while {doing}"));
                let _ = order.done.send(StopReport::default());
                false
            }
            Some(UnitCmd::Start(r)) | Some(UnitCmd::Restart(r)) => {
                answer(r, Ok(format!("{} is already starting", self.unit.name)));
                true
            }
            Some(UnitCmd::Signal(_, r)) => {
                answer(r, Err(UnitError::NotRunningYet(self.unit.name.clone())));
                true
            }
        }
    }
}

impl Runner {
    /// The name of a followed dependency that restarted on its own since this
    /// unit last saw it settled, if any.
    fn followed_restart(&self) -> Option<String> {
        followed_restart(&self.env.follow, &self.seen)
    }
}

fn followed_restart(follow: &[watch::Receiver<UnitStatus>], seen: &[u64]) -> Option<String> {
    follow.iter().enumerate().find_map(|(i, d)| {
        let s = d.borrow();
        (s.own_restarts > seen.get(i).copied().unwrap_or(0)).then(|| s.name.clone())
    })
}

/// Resolves (with its name) when a followed dependency restarts on its own.
async fn dep_restarted(follow: &mut [watch::Receiver<UnitStatus>], seen: &[u64]) -> String {
    loop {
        if let Some(name) = followed_restart(follow, seen) {
            return name;
        }
        let futs = follow
            .iter_mut()
            .filter(|d| d.has_changed().is_ok())
            .map(|d| Box::pin(d.changed()));
        futures_select_all(futs).await;
    }
}

/// Concurrent spawns of units (the machine's cores are what execs use), one per
/// spawner thread.
static SPAWN_SLOTS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(crate::pid1::spawner::SLOTS);

/// The running process of a unit.
pub(crate) struct Proc {
    pid: i32,
    exit: oneshot::Receiver<Exit>,
}

fn gate_url(g: &bosun_config::WaitFor) -> String {
    match g {
        bosun_config::WaitFor::Tcp(a) => format!("tcp://{a}"),
        bosun_config::WaitFor::Http(u) | bosun_config::WaitFor::Postgres(u) => u.clone(),
        bosun_config::WaitFor::File(p) => format!("file://{}", p.display()),
    }
}

/// Resolves when a running singleton's permit (`rx`, for its `term`) is withdrawn
/// or its term changes; never for any other unit.
async fn revoked(rx: Option<&mut watch::Receiver<Permit>>, term: Option<i64>) {
    match (rx, term) {
        (Some(rx), Some(term)) => crate::lease::revoked(rx, term).await,
        _ => std::future::pending().await,
    }
}

/// Resolves when any of the futures does.
async fn futures_select_all<F: std::future::Future + Unpin>(futs: impl Iterator<Item = F>) {
    let mut futs: Vec<F> = futs.collect();
    if futs.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for f in futs.iter_mut() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_runner_future_stays_small() {
        // Every active unit keeps one of these alive for bosun's whole life.
        let size = std::mem::size_of::<super::Runner>();
        assert!(size < 1024, "Runner is {size} bytes");
    }

    #[test]
    fn commands_stay_small() {
        // A unit's command queue allocates room for 32 of them when the unit is
        // made (tokio's first block), whether or not a command ever comes: at 40
        // bytes that was 1.3 KiB per unit, at 24 it is 0.8 KiB.
        let size = std::mem::size_of::<super::UnitCmd>();
        assert!(size <= 24, "UnitCmd is {size} bytes");
    }
}
