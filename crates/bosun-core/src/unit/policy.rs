//! The restart policy, as pure functions of what happened: whether an exit is
//! followed by a restart, how long to wait (exponential backoff with jitter), and
//! when a crash loop gives up (`start_limit`). No clock, no randomness, no I/O:
//! the caller passes `now` and the jitter, so every rule is unit- and
//! property-tested below.

use std::collections::VecDeque;
use std::time::Duration;

use bosun_config::{Backoff, Restart, StartLimit, UnitKind};
use tokio::time::Instant;

/// How far the jitter may move a delay: ±20 %.
pub const JITTER: f64 = 0.2;

/// Whether a unit that exited is started again, by `restart` and its kind alone
/// (`start_limit` is asked separately). `health_failed`: a failing health check
/// killed it, which counts as a failure.
pub fn wants_restart(restart: Restart, kind: UnitKind, success: bool, health_failed: bool) -> bool {
    let failed = !success || health_failed;
    match restart {
        Restart::Never => false,
        Restart::OnFailure => failed,
        // A task that is done stays done, even with `always`.
        Restart::Always => kind != UnitKind::Task || failed,
    }
}

/// The delay before restart number `step` (0 for the first after a good run):
/// `initial · 2^step`, capped at `max`, scaled by `1 + JITTER · (2·jitter − 1)`
/// for `jitter` in [0, 1], and never above `max`.
pub fn backoff_delay(b: &Backoff, step: u32, jitter: f64) -> Duration {
    let base = b.initial.saturating_mul(1u32 << step.min(20)).min(b.max);
    let factor = 1.0 + JITTER * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
    base.mul_f64(factor).min(b.max)
}

/// What comes after an exit that wants a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Start again after this delay.
    Restart(Duration),
    /// `start_limit` reached: this many starts within `interval`; the unit is fatal.
    GiveUp {
        /// Starts counted in the window.
        starts: u32,
        /// The window (`start_limit.interval`).
        interval: Duration,
    },
}

/// A unit's restart memory: the backoff step and the start times inside the
/// `start_limit` window.
#[derive(Debug, Default)]
pub struct RestartState {
    step: u32,
    starts: VecDeque<Instant>,
}

impl RestartState {
    /// Forgets everything: a start asked for by a person begins a fresh count.
    pub fn reset(&mut self) {
        self.step = 0;
        self.starts.clear();
    }

    /// Records a start (a spawn) at `at`.
    pub fn started(&mut self, at: Instant) {
        self.starts.push_back(at);
    }

    /// Starts recorded within `interval` before `now`.
    fn in_window(&mut self, limit: &StartLimit, now: Instant) -> u32 {
        while self
            .starts
            .front()
            .is_some_and(|t| now.duration_since(*t) > limit.interval)
        {
            self.starts.pop_front();
        }
        self.starts.len() as u32
    }

    /// After an exit that wants a restart, at `now`, of a run that lasted `ran`:
    /// restart after a delay, or give up. `burst` starts within `interval` are
    /// allowed; the one after them is refused.
    pub fn after_exit(
        &mut self,
        backoff: &Backoff,
        limit: &StartLimit,
        ran: Duration,
        now: Instant,
        jitter: f64,
    ) -> Next {
        if ran >= backoff.reset_after {
            self.step = 0;
        }
        let starts = self.in_window(limit, now);
        if starts >= limit.burst {
            return Next::GiveUp {
                starts,
                interval: limit.interval,
            };
        }
        let delay = backoff_delay(backoff, self.step, jitter);
        self.step = self.step.saturating_add(1);
        Next::Restart(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn backoff(initial_ms: u64, max_ms: u64, reset_ms: u64) -> Backoff {
        Backoff {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            reset_after: Duration::from_millis(reset_ms),
        }
    }

    #[test]
    fn restart_table() {
        use Restart::*;
        use UnitKind::*;
        // (restart, kind, exited 0, health failed) → restart?
        let table = [
            (Never, Service, false, false, false),
            (Never, Service, true, true, false),
            (OnFailure, Service, true, false, false),
            (OnFailure, Service, false, false, true),
            (OnFailure, Service, true, true, true),
            (Always, Service, true, false, true),
            (Always, Service, false, false, true),
            (Always, Task, true, false, false),
            (Always, Task, false, false, true),
            (OnFailure, Task, true, false, false),
            (OnFailure, Task, false, false, true),
            (Never, Task, false, false, false),
        ];
        for (restart, kind, ok, health, want) in table {
            assert_eq!(
                wants_restart(restart, kind, ok, health),
                want,
                "{restart:?} {kind:?} success={ok} health_failed={health}"
            );
        }
    }

    #[test]
    fn delays_double_up_to_max() {
        let b = backoff(100, 1000, 60_000);
        let mid = |step| backoff_delay(&b, step, 0.5);
        assert_eq!(mid(0), Duration::from_millis(100));
        assert_eq!(mid(1), Duration::from_millis(200));
        assert_eq!(mid(3), Duration::from_millis(800));
        assert_eq!(mid(4), Duration::from_millis(1000));
        assert_eq!(mid(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn a_crash_loop_gives_up_after_burst_starts() {
        let b = backoff(0, 0, 60_000);
        let limit = StartLimit {
            burst: 3,
            interval: Duration::from_secs(60),
        };
        let mut st = RestartState::default();
        let t0 = Instant::now();
        let mut spawned = 1;
        st.started(t0);
        while let Next::Restart(_) = st.after_exit(&b, &limit, Duration::ZERO, t0, 0.5) {
            st.started(t0);
            spawned += 1;
        }
        assert_eq!(spawned, 3);
        // A minute later the window is empty again.
        let later = t0 + Duration::from_secs(61);
        assert!(matches!(
            st.after_exit(&b, &limit, Duration::ZERO, later, 0.5),
            Next::Restart(_)
        ));
    }

    proptest! {
        #[test]
        fn the_delay_never_exceeds_max(initial in 0u64..100_000, extra in 0u64..100_000, step in any::<u32>(), jitter in 0.0f64..=1.0) {
            let b = backoff(initial, initial + extra, 60_000);
            prop_assert!(backoff_delay(&b, step, jitter) <= b.max);
        }

        #[test]
        fn jitter_stays_within_twenty_percent(initial in 1u64..100_000, extra in 0u64..1_000_000, step in 0u32..40, jitter in 0.0f64..=1.0) {
            let b = backoff(initial, initial + extra, 60_000);
            let base = b.initial.saturating_mul(1u32 << step.min(20)).min(b.max).as_secs_f64();
            let d = backoff_delay(&b, step, jitter).as_secs_f64();
            prop_assert!(d >= base * 0.8 - 1e-9, "{d} < 0.8 × {base}");
            prop_assert!(d <= base * 1.2 + 1e-9, "{d} > 1.2 × {base}");
        }

        #[test]
        fn a_run_longer_than_reset_after_resets_the_delay(quick in 0usize..30, reset_ms in 1u64..10_000, over in 0u64..10_000, jitter in 0.0f64..=1.0) {
            let b = backoff(100, 3_600_000, reset_ms);
            let limit = StartLimit { burst: u32::MAX, interval: Duration::from_secs(1) };
            let mut st = RestartState::default();
            let now = Instant::now();
            for _ in 0..quick {
                st.after_exit(&b, &limit, Duration::ZERO, now, jitter);
            }
            let long = Duration::from_millis(reset_ms + over);
            let next = st.after_exit(&b, &limit, long, now, jitter);
            prop_assert_eq!(next, Next::Restart(backoff_delay(&b, 0, jitter)));
        }

        /// `burst` starts inside `interval` are all allowed; the start after them never is.
        #[test]
        fn burst_starts_pass_and_one_more_is_fatal(burst in 1u32..20, interval_ms in 1u64..100_000, offsets in proptest::collection::vec(0u64..100_000, 0..40)) {
            let b = backoff(0, 0, u64::MAX / 4);
            let limit = StartLimit { burst, interval: Duration::from_millis(interval_ms) };
            let t0 = Instant::now();
            // Start times spread inside one window, decided at its end.
            let mut times: Vec<Instant> = offsets.iter().map(|o| t0 + Duration::from_millis(o % interval_ms)).collect();
            times.sort();
            let now = t0 + Duration::from_millis(interval_ms);
            let mut st = RestartState::default();
            let mut allowed = 0u32;
            for t in &times {
                st.started(*t);
                match st.after_exit(&b, &limit, Duration::ZERO, now, 0.5) {
                    Next::Restart(_) => allowed += 1,
                    Next::GiveUp { starts, .. } => {
                        prop_assert_eq!(starts, burst);
                        break;
                    }
                }
            }
            // Counting the first start, the unit ran min(n, burst) times and only
            // n > burst starts end in giving up.
            let n = times.len() as u32;
            if n >= burst {
                prop_assert_eq!(allowed, burst - 1);
            } else {
                prop_assert_eq!(allowed, n);
            }
        }
    }
}
