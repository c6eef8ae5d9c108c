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
//!   while bosun was not running are not caught up (nothing is remembered). A
//!   clock set back by less than 3 h keeps the due instant (nothing runs twice);
//!   by more, the next run is computed from the new time (cronie's rule).
//! - **Never at boot.** The first due instant is the first one after bosun starts.
//! - **Singletons.** Under a fleet, a scheduled singleton fires only where its
//!   lease is held; elsewhere a due run is left to the holder, and the status
//!   says so between runs ([`follow_lease`]: `elsewhere`).

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
            let target = Live {
                handle: handle.clone(),
                name: name.to_string(),
                permit: permit.clone(),
            };
            let lease = permit.map(|p| {
                let t = Live {
                    permit: None,
                    ..target.clone()
                };
                follow_lease(p, move |e| t.update(&mut |s| s.elsewhere = e.clone()))
            });
            let t = Timer {
                target,
                name: name.to_string(),
                schedule: schedule.clone(),
            };
            let task = tokio::spawn(Box::pin(async move {
                match lease {
                    Some(lease) => {
                        tokio::join!(t.run(), lease);
                    }
                    None => t.run().await,
                }
            }));
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

/// What a timer drives: the wall clock it reads, the runs it starts, the status it
/// writes. [`Live`] in bosun (the supervisor's [`Handle`]); a fake with a paused
/// tokio clock in the tests.
trait Target: Send + Sync + 'static {
    /// The wall clock.
    fn now(&self) -> SystemTime;
    /// Starts a run now; the future resolves with its outcome.
    fn start(&self) -> impl std::future::Future<Output = Result<Running, ActError>> + Send;
    /// The singleton's permit, when the unit is one under a fleet.
    fn permit(&self) -> Option<Permit>;
    /// Changes the unit's schedule status.
    fn update(&self, f: &mut dyn FnMut(&mut ScheduleStatus));
}

type Running =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<RunOutcome, ActError>> + Send>>;

/// A unit of the running supervisor.
#[derive(Clone)]
struct Live {
    handle: Handle,
    name: String,
    /// The fleet's permit for a scheduled singleton.
    permit: Option<watch::Receiver<Permit>>,
}

impl Target for Live {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn start(&self) -> Result<Running, ActError> {
        let run = self.handle.start_run(&self.name).await?;
        Ok(Box::pin(run.wait()))
    }

    fn permit(&self) -> Option<Permit> {
        self.permit.as_ref().map(|p| p.borrow().clone())
    }

    fn update(&self, f: &mut dyn FnMut(&mut ScheduleStatus)) {
        if let Some(u) = self.handle.unit(&self.name) {
            u.status.send_modify(|s| {
                if let Some(sc) = s.schedule.as_mut() {
                    f(sc);
                }
            });
        }
    }
}

/// Keeps a scheduled singleton's `elsewhere` in step with its lease (`update`
/// gets `Some(why)` while another container holds it or nobody does, `None` while
/// this one does), so that `ctl status` in every container says where the next
/// run happens, not only after a due run was left to the holder. Ends when the
/// fleet is gone.
async fn follow_lease(mut permit: watch::Receiver<Permit>, update: impl Fn(Option<String>)) {
    loop {
        let p = permit.borrow_and_update().clone();
        update(p.term().is_none().then(|| p.detail()));
        if permit.changed().await.is_err() {
            return;
        }
    }
}

/// A clock set back by more than this is a reset (cronie's 3 hours): the next
/// run is computed from the new time. Less (an NTP correction) keeps the due
/// instant, so nothing runs twice.
const RESET: Duration = Duration::from_secs(3 * 3600);

/// One scheduled unit's timer.
struct Timer<T> {
    target: T,
    name: String,
    schedule: Schedule,
}

impl<T: Target> Timer<T> {
    async fn run(self) {
        let mut run: Option<Running> = None;
        let mut since = self.target.now();
        let mut due = self.next(since);
        loop {
            let Some(at) = due else {
                tracing::warn!(unit = %self.name, "schedule {:?} never fires again", self.schedule.expr());
                if let Some(r) = run.take() {
                    self.ended(r.await);
                }
                return;
            };
            let now = self.target.now();
            if now + RESET < since {
                tracing::warn!(unit = %self.name, "the clock went back by {:.0?}: the next run is computed anew", since.duration_since(now).unwrap_or_default());
                since = now;
                due = self.next(now);
                continue;
            }
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
            since = now;
            due = self.next(now);
        }
    }

    /// The next due instant after `t`, published in the unit's status.
    fn next(&self, t: SystemTime) -> Option<SystemTime> {
        let next = self.schedule.next_after(t);
        let mut local = next.map(|n| self.schedule.local_time(n));
        self.target.update(&mut |s| {
            s.next_run_ms = next.map(ms);
            s.next_run_local = local.take();
        });
        next
    }

    /// A due run: start it, unless the previous one is still going (skipped) or
    /// another container holds the singleton.
    async fn fire(&self, at: SystemTime, busy: bool) -> Option<Running> {
        if let Some(permit) = self.target.permit() {
            if permit.term().is_none() {
                tracing::info!(unit = %self.name, "due, not run here: {}", permit.detail());
                return None;
            }
        }
        let outcome = if busy {
            Err(ActError::AlreadyRunning(self.name.clone()))
        } else {
            self.target.start().await
        };
        match outcome {
            Ok(run) => {
                tracing::info!(unit = %self.name, "scheduled run ({})", self.schedule.local_time(at));
                let started = ms(self.target.now());
                self.target.update(&mut |s| s.last_run_ms = Some(started));
                Some(run)
            }
            Err(ActError::AlreadyRunning(_)) => {
                let mut n = 0;
                self.target.update(&mut |s| {
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
        match outcome {
            Ok(o) => self
                .target
                .update(&mut |s| s.last_exit_code = Some(o.exit_code)),
            Err(e) => tracing::warn!(unit = %self.name, "scheduled run: {e}"),
        }
    }
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
