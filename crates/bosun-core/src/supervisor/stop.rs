//! The stop: reverse dependency order, parallel where independent, one budget;
//! each unit's dump while it is still up, then the snapshot commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_config::Unit;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{StopCause, Supervisor};
use crate::events::{Event, EventKind};
use crate::hooks::{DataHooks, StopContext};
use crate::signals::{Sig, Signals};
use crate::status::{Phase, State, UnitStatus};
use crate::unit::{StopOrder, StopReport, UnitCmd};

/// What a unit's dump needs: the hooks, the unit, and its status (dumped only if ready).
type Dump = (Arc<dyn DataHooks>, Arc<Unit>, watch::Receiver<UnitStatus>);

/// One unit's part of the stop, as its own task.
struct UnitStop {
    name: String,
    cmd: tokio::sync::mpsc::UnboundedSender<UnitCmd>,
    /// Turn true when each active dependent is down.
    dependents_down: Vec<watch::Receiver<bool>>,
    /// Turned true when this unit is down.
    down: Option<watch::Sender<bool>>,
    /// The data hooks, the unit and its status, when it has a backup to dump.
    dump: Option<Dump>,
    ctx: StopContext,
    force: watch::Receiver<bool>,
}

impl UnitStop {
    /// Waits for the dependents, dumps (the unit still up), stops the unit.
    /// Returns how the stop went and, when the data could not be kept, why.
    async fn run(self) -> (StopReport, Option<String>) {
        for mut w in self.dependents_down {
            let _ = w.wait_for(|d| *d).await;
        }
        let name = self.name;
        let mut data_error = None;
        if let Some((hooks, unit, status)) = self.dump {
            let ready = status.borrow().ready && status.borrow().state == State::Ready;
            if ready {
                let deadline = self.ctx.deadline;
                let r = match tokio::time::timeout_at(deadline, hooks.before_stop(&unit, self.ctx))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err("the stop budget ran out during the dump".into()),
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
        let stop = UnitCmd::Stop(Box::new(StopOrder {
            deadline: self.ctx.deadline,
            force: self.force,
            done: tx,
        }));
        let report = if self.cmd.send(stop).is_ok() {
            rx.await.unwrap_or_default()
        } else {
            StopReport::default()
        };
        if report.was_running {
            let how = if report.killed { " (SIGKILL)" } else { "" };
            tracing::info!(unit = %name, "stopped in {:.0?}{how}", t0.elapsed());
        }
        if let Some(down) = self.down {
            down.send_replace(true);
        }
        (report, data_error)
    }
}

/// What the stop's unit tasks add up to.
#[derive(Default)]
struct Tally {
    over_budget: bool,
    forced: bool,
    data_errors: Vec<String>,
}

impl Supervisor {
    /// The stop: every unit after the units that depend on it, in parallel where
    /// independent, all within `stop_budget`. A second SIGTERM/SIGINT skips the
    /// remaining grace periods.
    pub(super) async fn stop(&mut self, cause: StopCause, signals: &mut Signals) -> i32 {
        let shared = self.handle.shared.clone();
        let booted = *shared.phase.borrow() == Phase::Running;
        shared.phase.send_replace(Phase::Stopping);
        shared.abort_background();
        self.timers.abort_all();
        let budget = self.config.bosun.stop_budget;
        let began = Instant::now();
        let ctx = StopContext {
            booted,
            deadline: began + budget,
        };
        self.announce(&cause);
        let (force_tx, force_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for unit_stop in self.unit_stops(ctx, force_rx) {
            tasks.spawn(unit_stop.run());
        }
        let mut tally = self.collect(tasks, force_tx, signals, ctx).await;
        if let Some(hooks) = self.hooks.clone() {
            let r = match tokio::time::timeout_at(ctx.deadline, hooks.after_stop(ctx)).await {
                Ok(r) => r,
                Err(_) => Err("the stop budget ran out before the snapshot was committed; the previous snapshot stays the latest".into()),
            };
            if let Err(e) = r {
                tracing::error!("snapshot: {e}");
                tally.data_errors.push(e.to_string());
            }
        }
        // Hooks get what is left of the budget, never more.
        self.flush_events(ctx.deadline).await;
        stop_exit_code(&cause, &tally, began.elapsed(), budget)
    }

    fn announce(&self, cause: &StopCause) {
        let units = self.handle.units();
        let plan = &units.plan;
        match cause {
            StopCause::Requested(why) => tracing::info!(
                "{why}: stopping {} units in {} waves, budget {:?} (worst case {:?})",
                plan.units.len(),
                plan.stop_waves.len(),
                self.config.bosun.stop_budget,
                plan.worst_case_stop
            ),
            StopCause::BootFailed(why) => {
                tracing::error!("boot failed: {why}; stopping");
                let msg = format!("boot failed: {why}");
                self.handle
                    .emit(Event::new(EventKind::BootFailed, None, msg));
            }
            StopCause::Essential { unit, code } => {
                tracing::info!("essential unit {unit} ended with code {code}; stopping")
            }
        }
        for (i, wave) in plan.stop_waves.iter().enumerate() {
            tracing::debug!("stop wave {}: {}", i + 1, wave.join(", "));
        }
    }

    /// One task per active unit, each waiting for its active dependents.
    fn unit_stops(&self, ctx: StopContext, force: watch::Receiver<bool>) -> Vec<UnitStop> {
        let units = self.handle.units();
        let plan = &units.plan;
        let down: HashMap<String, watch::Sender<bool>> = plan
            .units
            .iter()
            .map(|p| (p.name.clone(), watch::channel(false).0))
            .collect();
        let mut out = Vec::new();
        for p in &plan.units {
            let Some(u) = units.get(&p.name) else {
                continue;
            };
            let Some(cmd) = u.cmd.clone() else { continue };
            out.push(UnitStop {
                name: p.name.clone(),
                cmd,
                dependents_down: p
                    .dependents
                    .iter()
                    .filter_map(|d| down.get(d).map(|tx| tx.subscribe()))
                    .collect(),
                down: down.get(&p.name).cloned(),
                // Dump while the unit is still up and nothing depends on it any more.
                dump: self
                    .hooks
                    .clone()
                    .filter(|_| u.config.backup.is_some())
                    .map(|h| (h, u.config.clone(), u.status.subscribe())),
                ctx,
                force: force.clone(),
            });
        }
        out
    }

    /// Waits for every unit task; a second SIGTERM/SIGINT forces the rest.
    async fn collect(
        &mut self,
        mut tasks: JoinSet<(StopReport, Option<String>)>,
        force: watch::Sender<bool>,
        signals: &mut Signals,
        ctx: StopContext,
    ) -> Tally {
        let mut tally = Tally::default();
        let warn_at = self.over_budget_warning(ctx);
        let mut warned = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(warn_at), if !warned => {
                    warned = true;
                    self.emit_over_budget(ctx);
                },
                r = tasks.join_next() => match r {
                    None => return tally,
                    Some(Ok((report, data_error))) => {
                        tally.over_budget |= report.cut_by_budget && !tally.forced;
                        tally.data_errors.extend(data_error);
                    }
                    Some(Err(e)) => tracing::error!("stop task failed: {e}"),
                },
                sig = signals.recv() => match sig {
                    Sig::Term | Sig::Int if !tally.forced => {
                        tally.forced = true;
                        tracing::warn!("second {sig:?}: forcing the stop (SIGKILL now)");
                        force.send_replace(true);
                    }
                    Sig::Quit => self.log_states(),
                    _ => {}
                },
                _ = self.requests.recv() => {}
            }
        }
    }
}

impl Supervisor {
    /// When `stop_over_budget` fires if units are still stopping: the hook
    /// runner's warning time (at most a quarter of the budget) before the end.
    fn over_budget_warning(&self, ctx: StopContext) -> Instant {
        let budget = self.config.bosun.stop_budget;
        let lead = self
            .handle
            .shared
            .events
            .get()
            .map_or(Duration::ZERO, |s| s.stop_warning())
            .min(budget / 4);
        ctx.deadline - lead
    }

    fn emit_over_budget(&self, ctx: StopContext) {
        let left = ctx.deadline.saturating_duration_since(Instant::now());
        let busy: Vec<String> = self
            .handle
            .status()
            .units
            .into_iter()
            .filter(|u| u.active && !u.state.is_down())
            .map(|u| u.name)
            .collect();
        let msg = format!(
            "the stop is running over its budget of {:?} ({:.0?} left): still stopping {}",
            self.config.bosun.stop_budget,
            left,
            busy.join(", ")
        );
        tracing::warn!("{msg}");
        self.handle
            .emit(Event::new(EventKind::StopOverBudget, None, msg));
    }
}

/// 0 after a clean stop that kept the data in budget; 1 when data was not kept or
/// the budget ran out; otherwise the cause's own code.
fn stop_exit_code(cause: &StopCause, tally: &Tally, took: Duration, budget: Duration) -> i32 {
    let mut code = cause.exit_code();
    if !tally.data_errors.is_empty() && code == 0 {
        code = 1;
    }
    if tally.over_budget || took > budget + Duration::from_millis(500) {
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
