//! The timers of scheduled tasks (`schedule = "0 6 * * *"`): one task per active
//! scheduled unit that sleeps until the next due instant and then starts a run
//! through the same door as `ctl run` ([`Handle::start_run`]), so a scheduled run
//! and a manual one never overlap.
//!
//! - **No polling.** The timer sleeps until the instant [`Schedule::next_after`]
//!   gives, in chunks of at most [`CHUNK`], comparing the wall clock after each:
//!   tokio's clock is monotonic, so a clock set forward or backward (NTP, a
//!   suspended machine, a SIGSTOPped container) is noticed within a minute.
//! - **Overlap.** A run still going when the next is due: that one is skipped,
//!   counted (`skipped`) and logged.
//! - **Missed runs are not replayed.** After a pause (or a clock jump forward),
//!   a due instant in the past fires once, at once, however many were missed:
//!   at most one catch-up; the next is then computed from the present. Runs due
//!   while bosun was not running are not caught up (nothing is remembered).
//! - **Never at boot.** The first due instant is the first one after bosun starts.
//! - **Singletons.** Under a fleet, a scheduled singleton fires only where its
//!   lease is held; elsewhere a due run is left to the holder.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bosun_config::Schedule;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ActError, Handle, RunOutcome};
use crate::lease::{Permit, Permits};
use crate::status::ScheduleStatus;

/// The longest one sleep lasts before the wall clock is looked at again.
const CHUNK: Duration = Duration::from_secs(60);

/// The running timers, by unit name.
#[derive(Default)]
pub(super) struct Timers {
    running: HashMap<String, (Schedule, JoinHandle<()>)>,
}

impl Timers {
    /// Makes the timers match the unit table: a timer for every active
    /// scheduled unit (a new one where the schedule changed), none for the rest.
    pub(super) fn sync(&mut self, handle: &Handle, permits: &Permits) {
        let units = handle.units();
        let wanted: HashMap<&str, &Schedule> = units
            .list
            .iter()
            .filter(|u| u.is_active())
            .filter_map(|u| {
                u.config
                    .schedule
                    .as_ref()
                    .map(|s| (u.config.name.as_str(), s))
            })
            .collect();
        self.running.retain(|name, (schedule, task)| {
            let keep = wanted.get(name.as_str()) == Some(&&*schedule);
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, schedule) in wanted {
            if self.running.contains_key(name) {
                continue;
            }
            let singleton = units.get(name).is_some_and(|u| u.config.singleton);
            let permit = permits.get(name).filter(|_| singleton).cloned();
            let t = Timer {
                handle: handle.clone(),
                name: name.to_string(),
                schedule: schedule.clone(),
                permit,
            };
            let task = tokio::spawn(Box::pin(t.run()));
            self.running
                .insert(name.to_string(), (schedule.clone(), task));
        }
    }

    /// Ends every timer (the stop has begun: nothing new may start).
    pub(super) fn abort_all(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }
}

/// After a reload: a unit whose schedule is the same keeps its last run, exit
/// code and skipped count.
pub(super) fn keep_history(new: &mut Option<ScheduleStatus>, old: Option<ScheduleStatus>) {
    if let (Some(n), Some(o)) = (new.as_mut(), old) {
        if n.expr == o.expr && n.timezone == o.timezone {
            n.last_run_ms = o.last_run_ms;
            n.last_exit_code = o.last_exit_code;
            n.skipped = o.skipped;
        }
    }
}

/// One scheduled unit's timer.
struct Timer {
    handle: Handle,
    name: String,
    schedule: Schedule,
    /// The fleet's permit for a scheduled singleton.
    permit: Option<watch::Receiver<Permit>>,
}

type Running =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<RunOutcome, ActError>> + Send>>;

impl Timer {
    async fn run(self) {
        let mut run: Option<Running> = None;
        let mut due = self.next(SystemTime::now());
        loop {
            let Some(at) = due else {
                tracing::warn!(unit = %self.name, "schedule {:?} never fires again", self.schedule.expr());
                if let Some(r) = run.take() {
                    self.ended(r.await);
                }
                return;
            };
            let now = SystemTime::now();
            if let Ok(left) = at.duration_since(now) {
                if !left.is_zero() {
                    let nap = tokio::time::sleep(left.min(CHUNK));
                    match run.as_mut() {
                        Some(r) => tokio::select! {
                            _ = nap => {}
                            outcome = r => {
                                run = None;
                                self.ended(outcome);
                            }
                        },
                        None => nap.await,
                    }
                    continue;
                }
            }
            if let Some(r) = run.as_mut() {
                // A run that ended just now is not "still going".
                tokio::select! {
                    biased;
                    outcome = r => {
                        run = None;
                        self.ended(outcome);
                    }
                    _ = std::future::ready(()) => {}
                }
            }
            let late = now.duration_since(at).unwrap_or_default();
            if late > CHUNK {
                // A pause or a clock jump: one catch-up now, no burst of the missed ones.
                tracing::warn!(unit = %self.name, "was due {:.0?} ago (bosun was paused or the clock jumped); running it once now, missed runs are not replayed", late);
            }
            if let Some(r) = self.fire(at, run.is_some()).await {
                run = Some(r);
            }
            due = self.next(now);
        }
    }

    /// The next due instant after `t`, published in the unit's status.
    fn next(&self, t: SystemTime) -> Option<SystemTime> {
        let next = self.schedule.next_after(t);
        let local = next.map(|n| self.schedule.local_time(n));
        self.update(|s| {
            s.next_run_ms = next.map(ms);
            s.next_run_local = local;
        });
        next
    }

    /// A due run: start it, unless the previous one is still going (skipped) or
    /// another container holds the singleton.
    async fn fire(&self, at: SystemTime, busy: bool) -> Option<Running> {
        if let Some(p) = &self.permit {
            let permit = p.borrow().clone();
            if permit.term().is_none() {
                tracing::info!(unit = %self.name, "due, not run here: {}", permit.detail());
                return None;
            }
        }
        let outcome = if busy {
            Err(ActError::AlreadyRunning(self.name.clone()))
        } else {
            self.handle.start_run(&self.name).await
        };
        match outcome {
            Ok(run) => {
                tracing::info!(unit = %self.name, "scheduled run ({})", self.schedule.local_time(at));
                self.update(|s| s.last_run_ms = Some(ms(SystemTime::now())));
                Some(Box::pin(run.wait()))
            }
            Err(ActError::AlreadyRunning(_)) => {
                let mut n = 0;
                self.update(|s| {
                    s.skipped += 1;
                    n = s.skipped;
                });
                tracing::warn!(unit = %self.name, "due ({}) but the previous run is still going: skipped ({n} so far)", self.schedule.local_time(at));
                None
            }
            Err(e) => {
                tracing::warn!(unit = %self.name, "due, not started: {e}");
                None
            }
        }
    }

    /// A scheduled run ended: its exit code into the status.
    fn ended(&self, outcome: Result<RunOutcome, ActError>) {
        let code = match outcome {
            Ok(o) => o.exit_code,
            Err(e) => {
                tracing::warn!(unit = %self.name, "scheduled run: {e}");
                return;
            }
        };
        self.update(|s| s.last_exit_code = Some(code));
    }

    fn update(&self, f: impl FnOnce(&mut ScheduleStatus)) {
        if let Some(u) = self.handle.unit(&self.name) {
            u.status.send_modify(|s| {
                if let Some(sc) = s.schedule.as_mut() {
                    f(sc);
                }
            });
        }
    }
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
