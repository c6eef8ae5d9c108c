//! Following a running process: its ready probe, the first-time data load,
//! health checks, and control commands while it runs.

use std::time::Duration;

use bosun_config::{Unit, UnitKind};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::{oneshot, watch};
use tokio::time::{sleep, sleep_until, Instant};

use super::{answer, Outcome, Proc, Runner, StopOrder, UnitCmd, UnitError};
use crate::probe::{self, ProbeCtx};
use crate::reaper::Exit;
use crate::spawn::Identity;
use crate::status::State;

/// What the probes of one run need: the unit's identity and environment, and the
/// flags the output pump (`log`) and the notify socket (`notify`) raise.
pub(super) struct Probing {
    pub(super) identity: Option<Identity>,
    pub(super) env: Vec<(String, std::ffi::OsString)>,
    pub(super) log_matched: Option<watch::Receiver<bool>>,
    pub(super) notified: Option<watch::Receiver<bool>>,
}

/// Resolves when the unit is ready by its probe (or `start_secs` alive); `Err`
/// when its time is up. A task is "ready" only by exiting, so this just times it.
async fn wait_ready(unit: &Unit, started: Instant, ctx: &ProbeCtx<'_>) -> Result<(), UnitError> {
    if unit.kind == UnitKind::Task {
        sleep_until(started + unit.timeout).await;
        return Err(UnitError::TaskTimeout(unit.timeout));
    }
    let deadline = started + unit.ready.timeout;
    let Some(p) = &unit.ready.probe else {
        sleep(unit.start_secs).await;
        return Ok(());
    };
    let mut last = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(UnitError::ReadyTimeout {
                probe: p.kind(),
                limit: unit.ready.timeout,
                last,
            });
        }
        match Box::pin(probe::check(p, ctx, left.min(Duration::from_secs(10)))).await {
            Ok(()) => return Ok(()),
            Err(e) => last = bosun_config::redact::redact_url(&e.to_string()),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        sleep(unit.ready.interval.min(left)).await;
    }
}

impl Runner {
    /// Readiness, then the first-time data load, then supervision, of one
    /// running process.
    pub(super) async fn follow(
        &mut self,
        proc: &mut Proc,
        started: Instant,
        probing: Probing,
    ) -> Outcome {
        let reaper = self.env.reaper.clone();
        let unit = self.unit.clone();
        let ctx = ProbeCtx {
            unit: &unit,
            reaper: &reaper,
            identity: probing.identity.as_ref(),
            env: &probing.env,
            log_matched: probing.log_matched.as_ref(),
            notified: probing.notified.as_ref(),
        };
        if let Some(o) = self.until_ready(proc, started, &ctx).await {
            return o;
        }
        tracing::info!(unit = %self.unit.name, "ready in {:.1?}", started.elapsed());
        if let Some(o) = self.load_data(proc, started).await {
            return o;
        }
        self.set(|s| {
            s.state = State::Ready;
            s.ready = true;
            s.detail = String::new();
            s.timeline
                .ready_at_ms
                .get_or_insert_with(crate::status::now_ms);
        });
        self.supervise(proc, started, &ctx).await
    }

    /// Phase 1: until the ready probe passes (services) or the process ends
    /// (tasks). `Some` when the run ended first.
    async fn until_ready(
        &mut self,
        proc: &mut Proc,
        started: Instant,
        ctx: &ProbeCtx<'_>,
    ) -> Option<Outcome> {
        let unit = self.unit.clone();
        let wait_ready = wait_ready(&unit, started, ctx);
        tokio::pin!(wait_ready);
        loop {
            tokio::select! {
                r = &mut wait_ready => match r {
                    Ok(()) => return None,
                    Err(why) => {
                        self.stop_process(proc, Instant::now() + unit.stop_timeout, None).await;
                        return Some(Outcome::Fatal(why));
                    }
                },
                exit = &mut proc.exit => return Some(self.exited(exit, started, None)),
                _ = super::revoked(self.env.permit.as_mut(), self.term) => return Some(self.revoke(proc).await),
                dep = super::dep_restarted(&mut self.env.follow, &self.seen) => return Some(self.follow_dep(proc, dep).await),
                cmd = self.cmds.recv() => {
                    if let Some(o) = self.running_command(cmd, proc).await {
                        return Some(o);
                    }
                }
            }
        }
    }

    /// The unit's data goes in (once per bosun life) before anything that depends
    /// on it can start. `Some` when the run ended first.
    async fn load_data(&mut self, proc: &mut Proc, started: Instant) -> Option<Outcome> {
        let unit = self.unit.clone();
        let hooks = self
            .env
            .hooks
            .clone()
            .filter(|_| !self.loaded && unit.backup.is_some())?;
        self.set_state(State::Starting, "loading its data from the snapshot");
        let load = hooks.after_ready(&unit);
        tokio::pin!(load);
        loop {
            tokio::select! {
                r = &mut load => match r {
                    Ok(()) => break,
                    Err(e) => {
                        self.stop_process(proc, Instant::now() + unit.stop_timeout, None).await;
                        return Some(Outcome::Fatal(UnitError::Load(e.to_string())));
                    }
                },
                exit = &mut proc.exit => return Some(self.exited(exit, started, Some("exited while its data was loading".into()))),
                _ = super::revoked(self.env.permit.as_mut(), self.term) => return Some(self.revoke(proc).await),
                dep = super::dep_restarted(&mut self.env.follow, &self.seen) => return Some(self.follow_dep(proc, dep).await),
                cmd = self.cmds.recv() => {
                    if let Some(o) = self.running_command(cmd, proc).await {
                        return Some(o);
                    }
                }
            }
        }
        self.loaded = true;
        None
    }

    /// Phase 2: supervise until it exits, is stopped, or fails its health check
    /// `failures` times in a row.
    async fn supervise(
        &mut self,
        proc: &mut Proc,
        started: Instant,
        ctx: &ProbeCtx<'_>,
    ) -> Outcome {
        let unit = self.unit.clone();
        let mut failures = 0u32;
        let mut next_check = unit.health.as_ref().map(|h| Instant::now() + h.interval);
        // Only a unit with `max_memory` gets this timer.
        let mut next_mem = unit
            .max_memory
            .map(|_| Instant::now() + super::memory::CHECK_EVERY);
        loop {
            let check_at = next_check;
            let mem_at = next_mem;
            tokio::select! {
                exit = &mut proc.exit => return self.exited(exit, started, None),
                _ = super::revoked(self.env.permit.as_mut(), self.term) => return self.revoke(proc).await,
                dep = super::dep_restarted(&mut self.env.follow, &self.seen) => return self.follow_dep(proc, dep).await,
                cmd = self.cmds.recv() => {
                    if let Some(o) = self.running_command(cmd, proc).await {
                        return o;
                    }
                }
                _ = async { sleep_until(check_at.unwrap_or_else(Instant::now)).await }, if check_at.is_some() => {
                    let Some(h) = &unit.health else { continue };
                    match Box::pin(probe::check(&h.probe, ctx, h.timeout)).await {
                        Ok(()) => {
                            if failures > 0 {
                                tracing::info!(unit = %unit.name, "health check passes again");
                            }
                            failures = 0;
                        }
                        Err(e) => {
                            failures += 1;
                            tracing::warn!(unit = %unit.name, "health check failed ({failures}/{}): {}", h.failures, bosun_config::redact::redact_url(&e.to_string()));
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
                _ = async { sleep_until(mem_at.unwrap_or_else(Instant::now)).await }, if mem_at.is_some() => {
                    if let Some(o) = self.memory_check(proc, started).await {
                        return o;
                    }
                    next_mem = Some(Instant::now() + super::memory::CHECK_EVERY);
                }
            }
        }
    }

    /// The `max_memory` guard's look at the tree: `Some` when it was over the
    /// limit and is stopped (the restart policy decides what comes next, as for
    /// a failed health check).
    async fn memory_check(&mut self, proc: &mut Proc, started: Instant) -> Option<Outcome> {
        let why = super::memory::over(proc.pid, self.unit.max_memory?).await?;
        tracing::warn!(unit = %self.unit.name, "restarting {}: {why}", self.unit.name);
        self.set(|s| {
            s.ready = false;
            s.usage.memory_restarts += 1;
        });
        self.stop_process(proc, Instant::now() + self.unit.stop_timeout, None)
            .await;
        Some(Outcome::Exited {
            exit: Exit::Signal(libc::SIGKILL),
            ran: started.elapsed(),
            why: Some(why),
        })
    }

    /// A dependency with `restart_dependents` restarted on its own: stop, and
    /// start again once it is ready (`lifecycle`).
    async fn follow_dep(&mut self, proc: &mut Proc, dep: String) -> Outcome {
        tracing::info!(unit = %self.unit.name, "{dep} restarted on its own (restart_dependents): stopping");
        self.set(|s| s.ready = false);
        self.stop_process(proc, Instant::now() + self.unit.stop_timeout, None)
            .await;
        Outcome::DepRestarted(dep)
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
                    .and_then(|s| kill(Pid::from_raw(proc.pid), s))
                    .map_err(|source| UnitError::Signal {
                        unit: self.unit.name.clone(),
                        signal: sig,
                        source,
                    });
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
            Some(UnitCmd::Stop(order)) => {
                let StopOrder {
                    deadline,
                    force,
                    done,
                } = *order;
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
}
