//! How far a singleton's holder may trust its lease, by its own monotonic clock, and the
//! decision it publishes for the unit. Pure: no I/O, time is passed in.
//!
//! The lease expires on the database clock at `exec + ttl`, where `exec` is when the
//! database ran the acquire or renew statement. The holder cannot see `exec`, only when
//! it sent the statement (`attempt`), which is earlier: so it trusts the lease until
//! `attempt + ttl − margin` ([`TrustWindow::dead_by`]) and never longer, however late
//! the answer came (River's rule). The unit must be dead by then: "stop it now" is due
//! `stop_timeout` earlier ([`TrustWindow::stop_at`]), and a grant that lands after that
//! is not acted on. Only a successful renew moves the anchor forward.

use std::time::{Duration, Instant};

/// What a peer may do with one singleton unit right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// This peer holds the lease: run the unit, with `$BOSUN_LEASE_TERM` = `term`. A new
    /// term means a new lease: restart the unit with it.
    Hold {
        /// The fencing term; it only grows across the fleet.
        term: i64,
    },
    /// Another peer holds it (`holder`), or nobody is known to (`None`: not yet
    /// acquired, or the database is unreachable): the unit must not run here.
    Standby {
        /// The peer that holds the lease, when known.
        holder: Option<String>,
    },
    /// This peer held the lease and can no longer trust it: stop the unit now (its
    /// stop_timeout still fits before the lease can expire); it becomes `Standby` once
    /// the trust window has ended. Like `Standby`, the unit must not run.
    StopNow,
}

impl Decision {
    /// True only for [`Decision::Hold`].
    pub fn may_run(&self) -> bool {
        matches!(self, Decision::Hold { .. })
    }
}

/// The trust window of one singleton: `lease_ttl`, the margin
/// ([`crate::Settings::margin`]) and the unit's `stop_timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustWindow {
    ttl: Duration,
    margin: Duration,
    stop_timeout: Duration,
}

impl TrustWindow {
    /// The window for a unit with `stop_timeout` under `ttl` and `margin`.
    pub fn new(ttl: Duration, margin: Duration, stop_timeout: Duration) -> TrustWindow {
        TrustWindow {
            ttl,
            margin,
            stop_timeout,
        }
    }

    /// The unit must be dead by then: `attempt + ttl − margin`, where `attempt` is when
    /// the last successful acquire or renew was sent.
    pub fn dead_by(&self, attempt: Instant) -> Instant {
        attempt + self.ttl.saturating_sub(self.margin)
    }

    /// "Stop it now" is due by then: `dead_by − stop_timeout`.
    pub fn stop_at(&self, attempt: Instant) -> Instant {
        attempt
            + self
                .ttl
                .saturating_sub(self.margin)
                .saturating_sub(self.stop_timeout)
    }

    /// May a grant sent at `attempt` and answered at `now` start or keep the unit?
    /// Only while "stop it now" is not yet due.
    pub fn may_hold(&self, attempt: Instant, now: Instant) -> bool {
        now < self.stop_at(attempt)
    }
}

/// A lease this peer believes it holds on the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grant {
    term: i64,
    /// When the last successful acquire or renew of this term was sent.
    anchor: Instant,
}

/// One singleton's state on this peer: what it holds, and what it has told the unit.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    window: TrustWindow,
    /// Whether this peer contends for the lease (false after a release).
    pub wanted: bool,
    grant: Option<Grant>,
    /// While `StopNow`: when it turns into `Standby` (the old trust window's end).
    stopping_until: Option<Instant>,
    decision: Decision,
}

impl Slot {
    pub fn new(window: TrustWindow) -> Slot {
        Slot {
            window,
            wanted: true,
            grant: None,
            stopping_until: None,
            decision: Decision::Standby { holder: None },
        }
    }

    /// What the unit is told now.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The term to renew, when the peer believes it holds the lease.
    pub fn held_term(&self) -> Option<i64> {
        self.grant.map(|g| g.term)
    }

    /// Whether the next round should try to acquire the lease.
    pub fn wants_acquire(&self) -> bool {
        self.wanted && self.grant.is_none()
    }

    /// The database granted (acquired or renewed) `term` to the statement sent at
    /// `attempt`; its answer arrived at `now`.
    pub fn granted(&mut self, term: i64, attempt: Instant, now: Instant) {
        let anchor = match self.grant {
            Some(g) if g.term == term => g.anchor.max(attempt),
            _ => attempt,
        };
        self.grant = Some(Grant { term, anchor });
        if self.window.may_hold(anchor, now) {
            self.stopping_until = None;
            self.decision = Decision::Hold { term };
        } else {
            // Answered too late to act on: keep the row (the next renew may land in
            // time) but do not run on it.
            self.lose_trust(Some(Grant { term, anchor }), None, now);
        }
    }

    /// The database says this peer does not hold the lease; `holder` holds it, if
    /// anyone does.
    pub fn refused(&mut self, holder: Option<String>, now: Instant) {
        let old = self.grant.take();
        self.lose_trust(old, holder, now);
    }

    /// The caller stopped the unit and gives the lease up (the runner releases the row).
    pub fn release(&mut self) {
        self.wanted = false;
        self.grant = None;
        self.stopping_until = None;
        self.decision = Decision::Standby { holder: None };
    }

    /// The database link is gone: forget who else holds it (the own lease is judged by
    /// [`Slot::tick`]).
    pub fn disconnected(&mut self) {
        if let Decision::Standby { holder } = &mut self.decision {
            *holder = None;
        }
    }

    /// Applies the passage of time up to `now`.
    pub fn tick(&mut self, now: Instant) {
        if let Some(g) = self.grant {
            if self.decision.may_run() && now >= self.window.stop_at(g.anchor) {
                self.lose_trust(Some(g), None, now);
            }
            if now >= self.window.dead_by(g.anchor) {
                // The row may have expired by now: acquire anew (which takes over the
                // own row, with a new term, if it is still there).
                self.grant = None;
            }
        }
        if let Some(until) = self.stopping_until {
            if now >= until {
                self.stopping_until = None;
                self.decision = Decision::Standby { holder: None };
            }
        }
    }

    /// When [`Slot::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let grant = self.grant.map(|g| {
            if self.decision.may_run() {
                self.window.stop_at(g.anchor)
            } else {
                self.window.dead_by(g.anchor)
            }
        });
        [grant, self.stopping_until].into_iter().flatten().min()
    }

    /// From Hold: StopNow until the old window ends. Otherwise Standby (or stay StopNow).
    fn lose_trust(&mut self, grant: Option<Grant>, holder: Option<String>, now: Instant) {
        match self.decision {
            Decision::Hold { .. } => {
                // StopNow until the window of the lease the unit ran on ends.
                let until = grant.map(|g| self.window.dead_by(g.anchor));
                self.stopping_until = Some(until.unwrap_or(now).max(now));
                self.decision = Decision::StopNow;
            }
            Decision::StopNow => {}
            Decision::Standby { .. } => self.decision = Decision::Standby { holder },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn window() -> TrustWindow {
        // ttl 2 s, margin 100 ms, stop 500 ms: stop_at = anchor + 1.4 s.
        TrustWindow::new(ms(2000), ms(100), ms(500))
    }

    #[test]
    fn window_arithmetic() {
        let t = Instant::now();
        let w = window();
        assert_eq!(w.dead_by(t), t + ms(1900));
        assert_eq!(w.stop_at(t), t + ms(1400));
        assert!(w.may_hold(t, t + ms(1399)));
        assert!(!w.may_hold(t, t + ms(1400)));
        // A stop_timeout longer than the window: stop at once (validation refuses it).
        assert_eq!(TrustWindow::new(ms(2000), ms(100), ms(5000)).stop_at(t), t);
    }

    #[test]
    fn hold_then_stop_now_then_standby() {
        let t = Instant::now();
        let mut s = Slot::new(window());
        assert_eq!(s.decision(), &Decision::Standby { holder: None });
        assert!(s.wants_acquire());
        s.granted(7, t, t + ms(10));
        assert_eq!(s.decision(), &Decision::Hold { term: 7 });
        assert_eq!(s.next_deadline(), Some(t + ms(1400)));
        s.tick(t + ms(1399));
        assert!(s.decision().may_run());
        s.tick(t + ms(1400));
        assert_eq!(s.decision(), &Decision::StopNow);
        assert_eq!(s.next_deadline(), Some(t + ms(1900)));
        s.tick(t + ms(1900));
        assert_eq!(s.decision(), &Decision::Standby { holder: None });
        assert!(s.wants_acquire());
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn a_late_answer_never_stretches_the_window() {
        let t = Instant::now();
        let mut s = Slot::new(window());
        s.granted(1, t, t + ms(10));
        // The renew sent at 500 ms is answered at 1.45 s: anchored at 500 ms.
        s.granted(1, t + ms(500), t + ms(1450));
        assert_eq!(s.next_deadline(), Some(t + ms(1900)));
        // An answer that lands after stop_at of its own attempt is not acted on.
        let mut s = Slot::new(window());
        s.granted(1, t, t + ms(1500));
        assert_eq!(s.decision(), &Decision::Standby { holder: None });
        assert_eq!(s.held_term(), Some(1));
    }

    #[test]
    fn refused_while_holding_is_stop_now() {
        let t = Instant::now();
        let mut s = Slot::new(window());
        s.granted(3, t, t);
        s.refused(Some("b".into()), t);
        assert_eq!(s.decision(), &Decision::StopNow);
        assert!(s.wants_acquire());
        s.tick(t + ms(1900));
        assert_eq!(s.decision(), &Decision::Standby { holder: None });
        s.refused(Some("b".into()), t + ms(1900));
        assert_eq!(
            s.decision(),
            &Decision::Standby {
                holder: Some("b".into())
            }
        );
        s.disconnected();
        assert_eq!(s.decision(), &Decision::Standby { holder: None });
    }

    #[test]
    fn a_new_term_is_a_new_anchor() {
        let t = Instant::now();
        let mut s = Slot::new(window());
        s.granted(1, t + ms(1000), t + ms(1000));
        s.granted(2, t + ms(900), t + ms(1000));
        assert_eq!(s.decision(), &Decision::Hold { term: 2 });
        assert_eq!(s.next_deadline(), Some(t + ms(2300)));
    }

    /// One round of the simulation: when it is sent relative to the previous answer,
    /// how long the database takes to run it and to answer, and what gets lost.
    #[derive(Debug, Clone)]
    struct Round {
        gap_ms: u64,
        exec_ms: u64,
        answer_ms: u64,
        request_lost: bool,
        answer_lost: bool,
    }

    fn round() -> impl Strategy<Value = Round> {
        (
            0u64..800,
            0u64..400,
            0u64..400,
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.15),
        )
            .prop_map(
                |(gap_ms, exec_ms, answer_ms, request_lost, answer_lost)| Round {
                    gap_ms,
                    exec_ms,
                    answer_ms,
                    request_lost,
                    answer_lost,
                },
            )
    }

    proptest! {
        /// Whatever the latencies and losses, the unit (running from Hold until StopNow
        /// + stop_timeout) is dead before the lease expires on the database clock,
        /// with the clocks' rates equal: the renew/acquire loop of the runner against a
        /// model database of one lease row.
        #[test]
        fn the_unit_is_dead_before_the_lease_expires(rounds in prop::collection::vec(round(), 1..60)) {
            let w = window();
            let stop = ms(500);
            let timeout = ms(800);
            let t0 = Instant::now();
            let mut s = Slot::new(w);
            // The model database: the row's term and expiry (this peer is the only one).
            let mut db_term = 0i64;
            let mut db_expiry: Option<Instant> = None;
            let mut now = t0;
            let check = |s: &Slot, at: Instant, db_expiry: Option<Instant>| {
                if s.decision().may_run() {
                    // Running now, and it may run until stop_at + stop_timeout.
                    let latest_dead = s.next_deadline().unwrap() + stop;
                    let expiry = db_expiry.expect("holding without a row");
                    assert!(latest_dead + w.margin <= expiry, "at {:?}: dead by {:?} > expiry {:?}", at - t0, latest_dead - t0, expiry - t0);
                }
            };
            for r in rounds {
                let attempt = now + ms(r.gap_ms);
                // Ticks due before the attempt.
                while let Some(d) = s.next_deadline().filter(|d| *d <= attempt) {
                    s.tick(d);
                    check(&s, d, db_expiry);
                }
                let exec = attempt + ms(r.exec_ms);
                let mut answer = None;
                if !r.request_lost {
                    // The database runs it: renew if our term is live, else acquire.
                    let live = db_expiry.is_some_and(|e| exec < e);
                    let ok = match s.held_term() {
                        Some(term) => live && term == db_term,
                        None => true, // self-takeover or free
                    };
                    if ok {
                        if s.held_term().is_none() { db_term += 1; }
                        db_expiry = Some(exec + w.ttl);
                        answer = Some(Some(db_term));
                    } else {
                        answer = Some(None);
                    }
                }
                let landed = exec + ms(r.answer_ms);
                let lost = r.request_lost || r.answer_lost || landed - attempt > timeout;
                let end = if lost { attempt + timeout } else { landed };
                while let Some(d) = s.next_deadline().filter(|d| *d <= end) {
                    s.tick(d);
                    check(&s, d, db_expiry);
                }
                now = end;
                if !lost {
                    match answer.flatten() {
                        Some(term) => s.granted(term, attempt, now),
                        None => s.refused(None, now),
                    }
                }
                check(&s, now, db_expiry);
            }
        }

        /// A healthy database (every answer within the statement timeout, a round every
        /// renew_every) never makes a holder stop, when validate() accepts the timing.
        #[test]
        fn a_healthy_holder_never_stops(latencies in prop::collection::vec(0u64..300, 1..100)) {
            let settings = {
                let mut s = crate::Settings::new("postgres://h/db", "a");
                s.lease_ttl = ms(2000);
                s.renew_every = ms(500);
                s.statement_timeout = ms(300);
                s
            };
            let stop = ms(1000);
            prop_assert!(crate::validate(&settings, &[("cron", stop)]).is_ok());
            let w = TrustWindow::new(settings.lease_ttl, settings.margin(), stop);
            let t0 = Instant::now();
            let mut s = Slot::new(w);
            let mut term_seen = None;
            for (i, l) in latencies.iter().enumerate() {
                let attempt = t0 + settings.renew_every * i as u32;
                while let Some(d) = s.next_deadline().filter(|d| *d <= attempt + ms(*l)) {
                    s.tick(d);
                }
                s.granted(1, attempt, attempt + ms(*l));
                prop_assert_eq!(s.decision(), &Decision::Hold { term: 1 });
                term_seen = Some(1);
            }
            prop_assert_eq!(term_seen, Some(1));
        }
    }
}
