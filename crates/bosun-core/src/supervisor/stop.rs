//! The stop: reverse dependency order, parallel where independent, one budget;
//! each unit's dump while it is still up, then the snapshot commit.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{StopCause, Supervisor};
use crate::hooks::StopContext;
use crate::signals::{Sig, Signals};
use crate::status::{Phase, State};
use crate::unit::{StopReport, UnitCmd};

impl Supervisor {
    /// The stop: every unit after the units that depend on it, in parallel where
    /// independent, all within `stop_budget`. A second SIGTERM/SIGINT skips the
    /// remaining grace periods.
    pub(super) async fn stop(&mut self, cause: StopCause, signals: &mut Signals) -> i32 {
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
