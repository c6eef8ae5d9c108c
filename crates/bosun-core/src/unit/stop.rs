//! Stopping a unit's process: `stop_signal` to its process group, the grace,
//! SIGKILL, and stragglers left in the group.

use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant};

use super::{Proc, Runner, StopReport};
use crate::status::State;

impl Runner {
    /// Stops the running process: `stop_signal` to its group, grace until the
    /// earlier of `stop_timeout` and `deadline`, then SIGKILL to the group.
    /// Stragglers left in the group after the leader exits get the rest of
    /// the grace, then SIGKILL too.
    pub(super) async fn stop_process(
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
