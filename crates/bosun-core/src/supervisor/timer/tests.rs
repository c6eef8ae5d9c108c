//! The timer's decisions on a paused tokio clock, with a wall clock the test
//! moves (a pause, a clock set back) and a fake unit whose runs take a set time.

use std::sync::{Arc, Mutex};

use super::*;

/// 2026-12-01T00:00:00Z, in seconds.
const DAY: u64 = 1_796_083_200;

/// The fake unit and its wall clock: `base` + tokio's elapsed time + `jump`.
struct State {
    t0: tokio::time::Instant,
    base: SystemTime,
    /// Seconds added to the wall clock (negative: set back).
    jump: Mutex<i64>,
    run_len: Duration,
    /// Wall time of each start.
    starts: Mutex<Vec<SystemTime>>,
    /// A manual run (`ctl run`) is going.
    busy: Mutex<bool>,
    permit: Mutex<Option<Permit>>,
    status: Mutex<ScheduleStatus>,
}

#[derive(Clone)]
struct Fake(Arc<State>);

impl Target for Fake {
    fn now(&self) -> SystemTime {
        let wall = self.0.base + self.0.t0.elapsed();
        let jump = *self.0.jump.lock().expect("lock");
        if jump >= 0 {
            wall + Duration::from_secs(jump as u64)
        } else {
            wall - Duration::from_secs(jump.unsigned_abs())
        }
    }

    async fn start(&self) -> Result<Running, ActError> {
        if *self.0.busy.lock().expect("lock") {
            return Err(ActError::AlreadyRunning("job".into()));
        }
        self.0.starts.lock().expect("lock").push(self.now());
        let len = self.0.run_len;
        Ok(Box::pin(async move {
            tokio::time::sleep(len).await;
            Ok(RunOutcome {
                exit_code: 3,
                detail: "task failed (exit 3)".into(),
            })
        }))
    }

    fn permit(&self) -> Option<Permit> {
        self.0.permit.lock().expect("lock").clone()
    }

    fn update(&self, f: &mut dyn FnMut(&mut ScheduleStatus)) {
        f(&mut self.0.status.lock().expect("lock"));
    }
}

impl Fake {
    /// A timer for `expr` (UTC) started on 2026-12-01 at `hms` (`12:00:30`), its
    /// runs lasting `run_len`.
    fn start(expr: &str, hms: &str, run_len: Duration) -> Fake {
        let secs: Vec<u64> = hms
            .split(':')
            .map(|x| x.parse().expect("HH:MM:SS"))
            .collect();
        let base = UNIX_EPOCH + Duration::from_secs(DAY + secs[0] * 3600 + secs[1] * 60 + secs[2]);
        let fake = Fake(Arc::new(State {
            t0: tokio::time::Instant::now(),
            base,
            jump: Mutex::new(0),
            run_len,
            starts: Mutex::new(Vec::new()),
            busy: Mutex::new(false),
            permit: Mutex::new(None),
            status: Mutex::new(ScheduleStatus::default()),
        }));
        let timer = Timer {
            target: fake.clone(),
            name: "job".into(),
            schedule: Schedule::new(expr, None).expect("a valid schedule"),
        };
        tokio::spawn(timer.run());
        fake
    }

    /// The starts so far, as `HH:MM:SS` wall times (UTC).
    fn starts(&self) -> Vec<String> {
        let starts = self.0.starts.lock().expect("lock");
        starts
            .iter()
            .map(|t| {
                let s = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() % 86_400;
                format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
            })
            .collect()
    }

    fn status(&self) -> ScheduleStatus {
        self.0.status.lock().expect("lock").clone()
    }

    fn jump(&self, secs: i64) {
        *self.0.jump.lock().expect("lock") += secs;
    }
}

async fn wait(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn runs_on_each_due_minute_and_records_the_outcome() {
    let f = Fake::start("* * * * *", "12:00:30", Duration::from_secs(10));
    wait(1).await;
    // Not at start: the first run is the first due time after it.
    assert!(f.starts().is_empty());
    assert_eq!(f.status().next_run_ms, Some(ms(f.0.base) + 30_000));
    wait(310).await;
    assert_eq!(
        f.starts(),
        ["12:01:00", "12:02:00", "12:03:00", "12:04:00", "12:05:00"]
    );
    let st = f.status();
    assert_eq!((st.last_exit_code, st.skipped), (Some(3), 0));
    assert_eq!(st.last_run_ms, Some(ms(f.0.base) + 270_000));
}

#[tokio::test(start_paused = true)]
async fn a_run_still_going_makes_the_due_ones_skipped_and_counted() {
    let f = Fake::start("* * * * *", "12:00:30", Duration::from_secs(150));
    wait(600).await;
    assert_eq!(f.starts(), ["12:01:00", "12:04:00", "12:07:00", "12:10:00"]);
    assert_eq!(f.status().skipped, 6);
}

#[tokio::test(start_paused = true)]
async fn a_manual_run_in_progress_skips_the_due_one() {
    let f = Fake::start("* * * * *", "12:00:30", Duration::from_secs(1));
    *f.0.busy.lock().expect("lock") = true;
    wait(60).await;
    assert!(f.starts().is_empty());
    assert_eq!(f.status().skipped, 1);
    *f.0.busy.lock().expect("lock") = false;
    wait(60).await;
    assert_eq!(f.starts(), ["12:02:00"]);
}

#[tokio::test(start_paused = true)]
async fn after_a_pause_it_runs_once_not_a_burst() {
    // Hourly; after 10 s the wall clock is 3 h further (SIGSTOP, suspend): the three
    // missed runs become one, at once, then the schedule goes on.
    let f = Fake::start("0 * * * *", "12:30:00", Duration::from_secs(1));
    wait(10).await;
    f.jump(3 * 3600);
    wait(60).await;
    assert_eq!(f.starts(), ["15:31:00"], "one catch-up within a minute");
    wait(30 * 60).await;
    assert_eq!(f.starts(), ["15:31:00", "16:00:00"]);
}

#[tokio::test(start_paused = true)]
async fn a_clock_set_back_a_little_runs_nothing_twice() {
    let f = Fake::start("0 * * * *", "12:59:30", Duration::from_secs(1));
    wait(40).await;
    assert_eq!(f.starts(), ["13:00:00"]);
    f.jump(-30 * 60); // back to 12:30
    wait(45 * 60).await; // the wall clock passes 13:00 again
    assert_eq!(f.starts(), ["13:00:00"]);
    wait(50 * 60).await;
    assert_eq!(f.starts(), ["13:00:00", "14:00:00"]);
}

#[tokio::test(start_paused = true)]
async fn a_clock_set_back_by_hours_starts_over_from_the_new_time() {
    let f = Fake::start("0 * * * *", "12:00:30", Duration::from_secs(1));
    wait(10).await;
    f.jump(-5 * 3600); // 07:00:40: the next is 08:00, not 13:00
    wait(61 * 60).await;
    assert_eq!(f.starts(), ["08:00:00"]);
}

#[tokio::test(start_paused = true)]
async fn a_singleton_held_elsewhere_is_not_run_here() {
    let f = Fake::start("* * * * *", "12:00:30", Duration::from_secs(1));
    *f.0.permit.lock().expect("lock") = Some(Permit::Standby {
        holder: Some("peer-b".into()),
    });
    wait(140).await;
    assert!(f.starts().is_empty());
    assert_eq!(f.status().skipped, 0, "not an overlap");
    *f.0.permit.lock().expect("lock") = Some(Permit::Run { term: 7 });
    wait(60).await;
    assert_eq!(f.starts(), ["12:03:00"]);
}

#[tokio::test]
async fn a_scheduled_singleton_says_where_it_runs_as_its_lease_moves() {
    let (tx, rx) = watch::channel(Permit::Standby { holder: None });
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = seen.clone();
    let follow = tokio::spawn(follow_lease(rx, move |e| log.lock().expect("lock").push(e)));
    let last = || async {
        // The follower runs on this runtime: let it see the change.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        seen.lock().expect("lock").last().cloned().flatten()
    };
    assert_eq!(
        last().await.as_deref(),
        Some("singleton: waiting for the lease")
    );
    tx.send(Permit::Standby {
        holder: Some("app1".into()),
    })
    .expect("send");
    assert_eq!(last().await.as_deref(), Some("singleton held by app1"));
    // Taken over here: its runs are this container's, nothing to say.
    tx.send(Permit::Run { term: 2 }).expect("send");
    assert_eq!(last().await, None);
    tx.send(Permit::Standby {
        holder: Some("app2".into()),
    })
    .expect("send");
    assert_eq!(last().await.as_deref(), Some("singleton held by app2"));
    // The fleet gone: the follower ends.
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), follow)
        .await
        .expect("ends")
        .expect("no panic");
}
