//! One unit's life: wait for dependencies and gates, spawn, probe readiness,
//! supervise (exit, health, commands), restart with backoff or give up, stop.
//!
//! Each active unit is driven by one task running [`Runner::run`]. It owns the
//! unit's process and is the only writer of the unit's [`UnitStatus`]; everyone
//! else (dependents, the orchestrator, the control API) reads that status
//! through a `watch` channel and asks for changes with [`UnitCmd`] messages.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bosun_config::{Output, Probe, Restart, Unit, UnitKind};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::{sleep, sleep_until, Instant};

use crate::hooks::DataHooks;
use crate::output::{Stream, UnitLog};
use crate::probe::{self, ProbeCtx};
use crate::reaper::{Exit, Reaper};
use crate::spawn::{self, Identity, Spec, Stdout};
use crate::status::{now_ms, ExitInfo, State, UnitStatus};

/// A request to a unit's runner.
pub enum UnitCmd {
    /// Start (no-op when already running).
    Start(Reply),
    /// Stop: signal, wait until `deadline` (or until `force` turns true), then SIGKILL.
    Stop {
        /// Latest moment to escalate to SIGKILL.
        deadline: Instant,
        /// Turns true on a second SIGTERM: skip the rest of the grace.
        force: watch::Receiver<bool>,
        /// Told when the unit is down.
        done: oneshot::Sender<StopReport>,
    },
    /// Stop gracefully, then start again at once.
    Restart(Reply),
    /// Send a signal to the unit's main process.
    Signal(i32, Reply),
}

/// The answer to a control command: a short message, or why it failed.
pub type Reply = Option<oneshot::Sender<Result<String, String>>>;

fn answer(reply: Reply, r: Result<String, String>) {
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
}

/// Drives one unit.
pub struct Runner {
    unit: Arc<Unit>,
    status: Arc<watch::Sender<UnitStatus>>,
    log: Arc<UnitLog>,
    cmds: mpsc::UnboundedReceiver<UnitCmd>,
    env: RunnerEnv,
    starts: VecDeque<Instant>,
    backoff_step: u32,
    /// The `after_ready` hook ran (once per bosun life: a restarted unit keeps its data).
    loaded: bool,
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
    Fatal(String),
    /// A control restart: start again at once.
    Restart,
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
            starts: VecDeque::new(),
            backoff_step: 0,
            loaded: false,
        };
        (runner, tx)
    }

    fn set(&self, f: impl FnOnce(&mut UnitStatus)) {
        self.status.send_modify(f);
        self.env.changed.notify_one();
    }

    fn set_state(&self, state: State, detail: impl Into<String>) {
        let detail = detail.into();
        self.set(|s| {
            s.state = state;
            s.detail = detail;
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
                    self.starts.clear();
                    self.backoff_step = 0;
                    self.lifecycle().await;
                }
                UnitCmd::Stop { done, .. } => {
                    let _ = done.send(StopReport::default());
                }
                UnitCmd::Signal(_, reply) => {
                    answer(reply, Err(format!("{} is not running", self.unit.name)));
                }
            }
        }
    }

    /// From "asked to start" to "down" (stopped, exited or fatal).
    async fn lifecycle(&mut self) {
        self.set(|s| s.ready = false);
        if !self.wait_deps().await || !self.wait_gates().await {
            return;
        }
        loop {
            let outcome = self.run_once().await;
            let (exit, ran, why) = match outcome {
                Outcome::Stopped => return,
                Outcome::Fatal(msg) => {
                    tracing::error!(unit = %self.unit.name, "{msg}");
                    self.set_state(State::Fatal, msg);
                    return;
                }
                Outcome::Restart => {
                    self.set(|s| s.restarts += 1);
                    continue;
                }
                Outcome::Exited { exit, ran, why } => (exit, ran, why),
            };
            if ran >= self.unit.backoff.reset_after {
                self.backoff_step = 0;
            }
            let is_task = self.unit.kind == UnitKind::Task;
            let wants_restart = match self.unit.restart {
                Restart::Never => false,
                Restart::OnFailure => !exit.success() || why.is_some(),
                Restart::Always => !(is_task && exit.success()),
            };
            if !wants_restart {
                if is_task && exit.success() {
                    tracing::info!(unit = %self.unit.name, "task done in {:.1?}", ran);
                    self.set(|s| {
                        s.state = State::Exited;
                        s.ready = true;
                        s.detail = "done".into();
                    });
                } else if is_task {
                    let msg = format!("task failed ({exit})");
                    tracing::error!(unit = %self.unit.name, "{msg}");
                    self.set_state(State::Fatal, msg);
                } else {
                    let msg = format!("{exit}; restart = {:?}", self.unit.restart).to_lowercase();
                    tracing::warn!(unit = %self.unit.name, "exited: {msg}");
                    self.set_state(State::Exited, msg);
                }
                return;
            }
            // Crash-loop guard: a rolling window of start times.
            let now = Instant::now();
            let window = self.unit.start_limit.interval;
            while self
                .starts
                .front()
                .is_some_and(|t| now.duration_since(*t) > window)
            {
                self.starts.pop_front();
            }
            if self.starts.len() as u32 >= self.unit.start_limit.burst {
                let msg = format!(
                    "{} starts within {:?}, last {}; giving up (start_limit)",
                    self.starts.len(),
                    window,
                    why.clone().unwrap_or_else(|| exit.to_string())
                );
                tracing::error!(unit = %self.unit.name, "fatal: {msg}");
                self.set_state(State::Fatal, msg);
                return;
            }
            let delay = backoff_delay(&self.unit, self.backoff_step);
            self.backoff_step = self.backoff_step.saturating_add(1);
            let reason = why.unwrap_or_else(|| exit.to_string());
            tracing::warn!(unit = %self.unit.name, "{reason}; restarting in {:.1?}", delay);
            self.set_state(
                State::Backoff,
                format!("{reason}; restarting in {delay:.1?}"),
            );
            let wake = Instant::now() + delay;
            // A zero delay must not go through the timer: it fires on the next
            // millisecond tick at the earliest.
            while !delay.is_zero() {
                tokio::select! {
                    _ = sleep_until(wake) => break,
                    cmd = self.cmds.recv() => match cmd {
                        None => return,
                        Some(UnitCmd::Stop { done, .. }) => {
                            self.set_state(State::Stopped, "stopped during backoff");
                            let _ = done.send(StopReport::default());
                            return;
                        }
                        Some(UnitCmd::Start(r)) | Some(UnitCmd::Restart(r)) => {
                            answer(r, Ok(format!("{} restarting now", self.unit.name)));
                            break;
                        }
                        Some(UnitCmd::Signal(_, r)) => answer(r, Err(format!("{} is in backoff", self.unit.name))),
                    }
                }
            }
            self.set(|s| s.restarts += 1);
        }
    }

    /// Waits until every dependency is ready (service) or done (task).
    /// False when a stop came first.
    async fn wait_deps(&mut self) -> bool {
        loop {
            let pending: Vec<String> = self
                .env
                .deps
                .iter()
                .filter(|d| !d.borrow().ready)
                .map(|d| d.borrow().name.clone())
                .collect();
            if pending.is_empty() {
                return true;
            }
            self.set_state(
                State::Starting,
                format!("waiting for {}", pending.join(", ")),
            );
            let deps = &mut self.env.deps;
            let any_change = async {
                let futs = deps.iter_mut().map(|d| Box::pin(d.changed()));
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

    /// Waits for every `wait_for` gate, within `wait_for_timeout`.
    async fn wait_gates(&mut self) -> bool {
        if self.unit.wait_for.is_empty() {
            return true;
        }
        let deadline = Instant::now() + self.unit.wait_for_timeout;
        for gate in self.unit.wait_for.clone() {
            let shown = bosun_config::redact::redact_url(&gate_url(&gate));
            self.set_state(State::Starting, format!("waiting for {shown}"));
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let err = match Box::pin(probe::check_gate(&gate, left.min(Duration::from_secs(5))))
                    .await
                {
                    Ok(()) => break,
                    Err(e) => e,
                };
                if Instant::now() >= deadline {
                    let msg = format!(
                        "wait_for {shown} timed out after {:?}: {err}",
                        self.unit.wait_for_timeout
                    );
                    tracing::error!(unit = %self.unit.name, "{msg}");
                    self.set_state(State::Fatal, msg);
                    return false;
                }
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

    /// Handles a command while no process runs. False when the unit must stop.
    fn idle_command(&mut self, cmd: Option<UnitCmd>, doing: &str) -> bool {
        match cmd {
            None => false,
            Some(UnitCmd::Stop { done, .. }) => {
                self.set_state(State::Stopped, format!("stopped while {doing}"));
                let _ = done.send(StopReport::default());
                false
            }
            Some(UnitCmd::Start(r)) | Some(UnitCmd::Restart(r)) => {
                answer(r, Ok(format!("{} is already starting", self.unit.name)));
                true
            }
            Some(UnitCmd::Signal(_, r)) => {
                answer(r, Err(format!("{} is not running yet", self.unit.name)));
                true
            }
        }
    }

    /// Spawns the process once and follows it until it is down.
    async fn run_once(&mut self) -> Outcome {
        let unit = self.unit.clone();
        let identity = match Identity::resolve(unit.user.as_deref(), unit.group.as_deref()) {
            Ok(i) => i,
            Err(e) => return Outcome::Fatal(e),
        };
        let mut env = match spawn::unit_env(&unit) {
            Ok(e) => e,
            Err(e) => return Outcome::Fatal(e),
        };
        let probe = unit.ready.probe.clone();
        let log_matched = match &probe {
            Some(Probe::Log(re)) => match regex::Regex::new(re) {
                Ok(re) => Some(self.log.arm_matcher(re)),
                Err(e) => return Outcome::Fatal(format!("bad log regex: {e}")),
            },
            _ => None,
        };
        let notify = if matches!(probe, Some(Probe::Notify)) {
            match NotifySocket::bind(&self.env.notify_dir, &unit.name, identity.as_ref()) {
                Ok(n) => {
                    env.push(("NOTIFY_SOCKET".into(), n.path.display().to_string()));
                    Some(n)
                }
                Err(e) => return Outcome::Fatal(format!("cannot create $NOTIFY_SOCKET: {e}")),
            }
        } else {
            None
        };
        let spec = Spec {
            argv: unit.run.argv(),
            env: env.clone(),
            cwd: unit.cwd.as_deref(),
            identity: identity.as_ref(),
            umask: unit.umask,
            stdout: if unit.output == Output::Inherit {
                Stdout::Inherit
            } else {
                Stdout::Piped
            },
            stdin_piped: false,
            own_process_group: true,
        };
        self.starts.push_back(Instant::now());
        let mut cmd = spec.command();
        let spawned = if spec.needs_fork() {
            self.env.reaper.spawn(&mut cmd)
        } else {
            // Off the runtime thread, two at a time: vfork blocks the caller
            // until the child has exec'd, and 100 units should not exec in a row.
            let reaper = self.env.reaper.clone();
            let _permit = SPAWN_SLOTS.acquire().await;
            tokio::task::spawn_blocking(move || reaper.spawn_concurrent(&mut cmd))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        };
        let (mut child, exit_rx) = match spawned {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("cannot start {}: {e}", spec.argv[0]);
                self.log.line(Stream::Stderr, &format!("bosun: {msg}"));
                return Outcome::Exited {
                    exit: Exit::Code(127),
                    ran: Duration::ZERO,
                    why: Some(msg),
                };
            }
        };
        let pid = child.id() as i32;
        for (pipe, stream) in [
            (
                child.stdout.take().map(std::os::fd::OwnedFd::from),
                Stream::Stdout,
            ),
            (
                child.stderr.take().map(std::os::fd::OwnedFd::from),
                Stream::Stderr,
            ),
        ] {
            if let Some(fd) = pipe {
                match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                    Ok(rx) => {
                        tokio::spawn(self.log.clone().pump(rx, stream));
                    }
                    Err(e) => tracing::warn!(unit = %unit.name, "cannot read output: {e}"),
                }
            }
        }
        let started = Instant::now();
        tracing::info!(unit = %unit.name, pid, "started");
        self.set(|s| {
            s.state = State::Starting;
            s.pid = Some(pid);
            s.started_at_ms = Some(now_ms());
            s.detail = match &probe {
                Some(p) => format!("waiting for ready probe {}", p.kind()),
                None if unit.kind == UnitKind::Task => "running".into(),
                None => format!("ready after {:?} alive", unit.start_secs),
            };
        });
        let mut proc = Proc { pid, exit: exit_rx };
        let outcome = self
            .follow(
                &mut proc,
                started,
                env,
                identity,
                log_matched,
                notify.as_ref().map(|n| n.ready.clone()),
            )
            .await;
        drop(notify);
        self.set(|s| {
            s.pid = None;
            if let Outcome::Exited { exit, .. } = &outcome {
                s.last_exit = Some(ExitInfo {
                    code: exit.code(),
                    signal: exit.signal(),
                    at_ms: now_ms(),
                });
            }
        });
        outcome
    }

    /// Readiness, then supervision, of one running process.
    async fn follow(
        &mut self,
        proc: &mut Proc,
        started: Instant,
        env: Vec<(String, String)>,
        identity: Option<Identity>,
        log_matched: Option<watch::Receiver<bool>>,
        notified: Option<watch::Receiver<bool>>,
    ) -> Outcome {
        let unit = self.unit.clone();
        let reaper = self.env.reaper.clone();
        let ctx = ProbeCtx {
            reaper: &reaper,
            identity: identity.as_ref(),
            env: &env,
            log_matched: log_matched.as_ref(),
            notified: notified.as_ref(),
        };
        let is_task = unit.kind == UnitKind::Task;
        // Phase 1: until ready (services) or until the end (tasks).
        let ready_deadline = started
            + if is_task {
                unit.timeout
            } else {
                unit.ready.timeout
            };
        let wait_ready = async {
            if is_task {
                sleep_until(ready_deadline).await;
                return Err(format!("task did not finish within {:?}", unit.timeout));
            }
            let Some(p) = &unit.ready.probe else {
                sleep(unit.start_secs).await;
                return Ok(());
            };
            let mut last = String::new();
            loop {
                let left = ready_deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!(
                        "ready probe {} timed out after {:?}: {last}",
                        p.kind(),
                        unit.ready.timeout
                    ));
                }
                match Box::pin(probe::check(p, &ctx, left.min(Duration::from_secs(10)))).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last = bosun_config::redact::redact_url(&e),
                }
                let left = ready_deadline.saturating_duration_since(Instant::now());
                sleep(unit.ready.interval.min(left)).await;
            }
        };
        tokio::pin!(wait_ready);
        loop {
            tokio::select! {
                r = &mut wait_ready => match r {
                    Ok(()) => break,
                    Err(msg) => {
                        self.stop_process(proc, Instant::now() + unit.stop_timeout, None).await;
                        return Outcome::Fatal(msg);
                    }
                },
                exit = &mut proc.exit => return self.exited(exit, started, None),
                cmd = self.cmds.recv() => {
                    if let Some(o) = self.running_command(cmd, proc).await {
                        return o;
                    }
                }
            }
        }
        tracing::info!(unit = %unit.name, "ready in {:.1?}", started.elapsed());
        if let Some(hooks) = self
            .env
            .hooks
            .clone()
            .filter(|_| !self.loaded && unit.backup.is_some())
        {
            // Its data goes in before anything that depends on it can start.
            self.set_state(State::Starting, "loading its data from the snapshot");
            let load = hooks.after_ready(&unit);
            tokio::pin!(load);
            loop {
                tokio::select! {
                    r = &mut load => match r {
                        Ok(()) => break,
                        Err(e) => {
                            self.stop_process(proc, Instant::now() + unit.stop_timeout, None).await;
                            return Outcome::Fatal(format!("loading its data failed: {e}"));
                        }
                    },
                    exit = &mut proc.exit => return self.exited(exit, started, Some("exited while its data was loading".into())),
                    cmd = self.cmds.recv() => {
                        if let Some(o) = self.running_command(cmd, proc).await {
                            return o;
                        }
                    }
                }
            }
            self.loaded = true;
        }
        self.set(|s| {
            s.state = State::Ready;
            s.ready = true;
            s.detail = String::new();
        });
        // Phase 2: supervise until it exits or is stopped.
        let mut failures = 0u32;
        let mut next_check = unit.health.as_ref().map(|h| Instant::now() + h.interval);
        loop {
            let check_at = next_check;
            tokio::select! {
                exit = &mut proc.exit => return self.exited(exit, started, None),
                cmd = self.cmds.recv() => {
                    if let Some(o) = self.running_command(cmd, proc).await {
                        return o;
                    }
                }
                _ = async { sleep_until(check_at.unwrap_or_else(Instant::now)).await }, if check_at.is_some() => {
                    let Some(h) = &unit.health else { continue };
                    match Box::pin(probe::check(&h.probe, &ctx, h.timeout)).await {
                        Ok(()) => {
                            if failures > 0 {
                                tracing::info!(unit = %unit.name, "health check passes again");
                            }
                            failures = 0;
                        }
                        Err(e) => {
                            failures += 1;
                            tracing::warn!(unit = %unit.name, "health check failed ({failures}/{}): {}", h.failures, bosun_config::redact::redact_url(&e));
                            if failures >= h.failures {
                                self.set(|s| s.ready = false);
                                self.stop_process(proc, Instant::now() + unit.stop_timeout, None).await;
                                return Outcome::Exited {
                                    exit: Exit::Signal(libc::SIGKILL),
                                    ran: started.elapsed(),
                                    why: Some(format!("health check failed {failures} times")),
                                };
                            }
                        }
                    }
                    next_check = Some(Instant::now() + h.interval);
                }
            }
        }
    }

    fn exited(
        &self,
        exit: Result<Exit, oneshot::error::RecvError>,
        started: Instant,
        why: Option<String>,
    ) -> Outcome {
        // The reaper only drops a sender if bosun is exiting.
        let exit = exit.unwrap_or(Exit::Signal(libc::SIGKILL));
        self.set(|s| s.ready = false);
        tracing::info!(unit = %self.unit.name, "exited ({exit}) after {:.1?}", started.elapsed());
        Outcome::Exited {
            exit,
            ran: started.elapsed(),
            why,
        }
    }

    /// Handles a command while a process runs. `Some` ends this process's run.
    async fn running_command(&mut self, cmd: Option<UnitCmd>, proc: &mut Proc) -> Option<Outcome> {
        match cmd {
            None => None,
            Some(UnitCmd::Start(r)) => {
                answer(r, Ok(format!("{} is already running", self.unit.name)));
                None
            }
            Some(UnitCmd::Signal(sig, r)) => {
                let res = Signal::try_from(sig)
                    .map_err(|e| e.to_string())
                    .and_then(|s| kill(Pid::from_raw(proc.pid), s).map_err(|e| e.to_string()));
                answer(
                    r,
                    res.map(|_| {
                        format!("sent signal {sig} to {} (pid {})", self.unit.name, proc.pid)
                    }),
                );
                None
            }
            Some(UnitCmd::Restart(r)) => {
                self.stop_process(proc, Instant::now() + self.unit.stop_timeout, None)
                    .await;
                answer(r, Ok(format!("{} restarted", self.unit.name)));
                Some(Outcome::Restart)
            }
            Some(UnitCmd::Stop {
                deadline,
                force,
                done,
            }) => {
                let report = self.stop_process(proc, deadline, Some(force)).await;
                self.set(|s| {
                    s.state = State::Stopped;
                    s.ready = false;
                    s.detail = String::new();
                });
                let _ = done.send(report);
                Some(Outcome::Stopped)
            }
        }
    }

    /// Stops the running process: `stop_signal` to its group, grace until the
    /// earlier of `stop_timeout` and `deadline`, then SIGKILL to the group.
    /// Stragglers left in the group after the leader exits get the rest of
    /// the grace, then SIGKILL too.
    async fn stop_process(
        &self,
        proc: &mut Proc,
        deadline: Instant,
        force: Option<watch::Receiver<bool>>,
    ) -> StopReport {
        let unit = &self.unit;
        let own = Instant::now() + unit.stop_timeout;
        let until = own.min(deadline);
        let mut report = StopReport {
            was_running: true,
            ..StopReport::default()
        };
        self.set(|s| {
            s.state = State::Stopping;
            s.ready = false;
            s.detail = format!("sent {}", unit.stop_signal.name);
        });
        let pgid = Pid::from_raw(proc.pid);
        let sig = Signal::try_from(unit.stop_signal.number).unwrap_or(Signal::SIGTERM);
        let _ = killpg(pgid, sig);
        let mut force = force;
        let forced = async {
            match force.as_mut() {
                Some(f) => {
                    while !*f.borrow() {
                        if f.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        let exited = tokio::select! {
            e = &mut proc.exit => Some(e),
            _ = sleep_until(until) => None,
            _ = forced => None,
        };
        if exited.is_none() {
            report.killed = true;
            report.cut_by_budget = until < own || Instant::now() < until;
            tracing::warn!(unit = %unit.name, "did not stop within its grace; sending SIGKILL");
            let _ = killpg(pgid, Signal::SIGKILL);
            if tokio::time::timeout(Duration::from_secs(10), &mut proc.exit)
                .await
                .is_err()
            {
                tracing::error!(unit = %unit.name, pid = proc.pid, "still not gone 10s after SIGKILL (uninterruptible sleep?)");
            }
        }
        // The leader is gone; its group may not be.
        while killpg(pgid, None).is_ok() {
            if Instant::now() >= until {
                let _ = killpg(pgid, Signal::SIGKILL);
                report.killed = true;
                break;
            }
            sleep(Duration::from_millis(10)).await;
        }
        report
    }
}

/// Concurrent spawns (the machine's cores are what execs use).
static SPAWN_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The running process of a unit.
struct Proc {
    pid: i32,
    exit: oneshot::Receiver<Exit>,
}

/// Exponential backoff from `initial`, doubling per consecutive quick failure,
/// capped at `max`, with ±20 % jitter so a fleet of crashing units does not
/// restart in lockstep.
pub fn backoff_delay(unit: &Unit, step: u32) -> Duration {
    let b = unit.backoff;
    let base = b.initial.saturating_mul(1u32 << step.min(20)).min(b.max);
    let jitter = 0.8 + 0.4 * jitter_unit();
    base.mul_f64(jitter).min(b.max)
}

/// A number in [0, 1) that is different on every call (xorshift over the clock).
fn jitter_unit() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = now_ms() ^ (std::process::id() as u64) << 32 | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn gate_url(g: &bosun_config::WaitFor) -> String {
    match g {
        bosun_config::WaitFor::Tcp(a) => format!("tcp://{a}"),
        bosun_config::WaitFor::Http(u) | bosun_config::WaitFor::Postgres(u) => u.clone(),
        bosun_config::WaitFor::File(p) => format!("file://{}", p.display()),
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

/// A per-unit `$NOTIFY_SOCKET` (sd_notify): `READY=1` sets the flag,
/// `STATUS=` is logged. Removed when dropped.
struct NotifySocket {
    path: PathBuf,
    ready: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl NotifySocket {
    fn bind(
        dir: &std::path::Path,
        unit: &str,
        identity: Option<&Identity>,
    ) -> std::io::Result<NotifySocket> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{unit}.sock"));
        let _ = std::fs::remove_file(&path);
        let sock = tokio::net::UnixDatagram::bind(&path)?;
        if let Some(id) = identity {
            let _ = nix::unistd::chown(&path, Some(id.uid()), Some(id.gid()));
        }
        let (tx, rx) = watch::channel(false);
        let name = unit.to_string();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf).await {
                let msg = String::from_utf8_lossy(&buf[..n]);
                for line in msg.lines() {
                    if line == "READY=1" {
                        let _ = tx.send(true);
                    } else if let Some(s) = line.strip_prefix("STATUS=") {
                        tracing::info!(unit = %name, "status: {s}");
                    }
                }
            }
        });
        Ok(NotifySocket {
            path,
            ready: rx,
            task,
        })
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_runner_future_stays_small() {
        // Every active unit keeps one of these alive for bosun's whole life.
        let size = std::mem::size_of::<super::Runner>();
        assert!(size < 1024, "Runner is {size} bytes");
    }
}
