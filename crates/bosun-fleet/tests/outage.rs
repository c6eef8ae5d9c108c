//! The database goes away (frozen with SIGSTOP, killed, or not there at boot): the
//! holder says StopNow early enough for its unit to be dead before the lease expires on
//! the database clock, and everyone recovers when the database is back.

mod common;

use std::time::{Duration, Instant, SystemTime};

use bosun_fleet::Decision;
use common::{until, wait_decision, wait_up, Pg, TestPeer, PASSWORD};

const UP: Duration = Duration::from_secs(15);
const STOP: Duration = Duration::from_millis(300);

/// Every write to the lease table, with the database's own clock.
const HISTORY: &str = "
CREATE TABLE bosun.lease_history (at timestamptz NOT NULL DEFAULT clock_timestamp(), name text, holder text, term bigint, expires_at timestamptz);
CREATE FUNCTION bosun.log_lease() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO bosun.lease_history (name, holder, term, expires_at) VALUES (NEW.name, NEW.holder, NEW.term, NEW.expires_at); RETURN NEW; END $$;
CREATE TRIGGER log_lease AFTER INSERT OR UPDATE ON bosun.lease FOR EACH ROW EXECUTE FUNCTION bosun.log_lease();";

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn stop_now_at(p: &TestPeer, after: Instant) -> Option<SystemTime> {
    let j = p.journal.lock().expect("journal");
    j.decisions
        .iter()
        .find(|(at, _, _, d)| *at >= after && *d == Decision::StopNow)
        .map(|(_, wall, _, _)| *wall)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_makes_the_holder_stop_before_its_lease_can_expire() {
    let pg = Pg::start();
    // A larger ttl than the other tests: its margin (400 ms) is what the assertion on
    // the database clock leaves to the scheduler of a loaded test machine.
    let settings = |name: &str| {
        let mut s = pg.settings(name, "bosun");
        s.lease_ttl = Duration::from_secs(6);
        s.renew_every = Duration::from_secs(1);
        s.statement_timeout = Duration::from_secs(1);
        s
    };
    let a = TestPeer::start(&settings("a"), &[("cron", STOP)]);
    let held = wait_decision(&a, "cron", UP, |d| d.may_run()).await;
    pg.sql(HISTORY);
    let b = TestPeer::start(&settings("b"), &[("cron", STOP)]);
    wait_decision(&b, "cron", UP, |d| {
        matches!(d, Decision::Standby { holder: Some(_) })
    })
    .await;
    // Several renewals go into the history.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let paused_wall = SystemTime::now();
    let paused = Instant::now();
    pg.pause();
    // The renewals time out; before the trust window ends a says StopNow, then Standby.
    let stopped = wait_decision(&a, "cron", Duration::from_secs(20), |d| !d.may_run()).await;
    let said_stop = paused.elapsed();
    assert!(
        matches!(
            stopped,
            Decision::StopNow | Decision::Standby { holder: None }
        ),
        "{stopped:?}"
    );
    wait_decision(&a, "cron", Duration::from_secs(10), |d| {
        *d == Decision::Standby { holder: None }
    })
    .await;
    assert!(!*a.handle().database_up().borrow());
    assert!(
        !b.decision("cron").may_run(),
        "b cannot acquire from a frozen database"
    );
    let stop_wall = stop_now_at(&a, paused).expect("a said StopNow");
    pg.resume();

    // The lease's expiry as the last renewal before the freeze wrote it, on the
    // database clock (the same host's clock as ours).
    let expiry: f64 = pg
        .sql(&format!(
            "SELECT extract(epoch FROM expires_at) FROM bosun.lease_history WHERE name = 'cron' AND holder = 'a' AND at < to_timestamp({}) ORDER BY at DESC LIMIT 1",
            epoch(paused_wall)
        ))
        .parse()
        .expect("expiry");
    let dead_by = epoch(stop_wall) + STOP.as_secs_f64();
    assert!(
        dead_by < expiry,
        "StopNow at {:.3} + stop_timeout {STOP:?} = {dead_by:.3} is not before the lease's expiry {expiry:.3}",
        epoch(stop_wall)
    );
    println!(
        "frozen database: StopNow {said_stop:?} after the freeze, the unit dead {:.0} ms before the lease could expire",
        (expiry - dead_by) * 1000.0
    );

    // Back: both reconnect; exactly one holds, on a newer term.
    wait_up(a.handle(), UP).await;
    wait_up(b.handle(), UP).await;
    let one_holds = || async {
        let (da, db) = (a.decision("cron"), b.decision("cron"));
        da.may_run() != db.may_run()
    };
    assert!(
        until(UP, one_holds).await,
        "a {:?}, b {:?}",
        a.decision("cron"),
        b.decision("cron")
    );
    let term = match (a.decision("cron"), b.decision("cron")) {
        (Decision::Hold { term }, _) | (_, Decision::Hold { term }) => term,
        other => panic!("{other:?}"),
    };
    let Decision::Hold { term: old } = held else {
        unreachable!()
    };
    assert!(term > old, "term {term} after {old}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_database_is_recovered_from() {
    let mut pg = Pg::start();
    let a = TestPeer::start(&pg.settings("a", "bosun"), &[("cron", STOP)]);
    let held = wait_decision(&a, "cron", UP, |d| d.may_run()).await;
    let down = Instant::now();
    pg.stop();
    wait_decision(&a, "cron", Duration::from_secs(10), |d| !d.may_run()).await;
    println!(
        "killed database: StopNow {:?} after the kill",
        down.elapsed()
    );
    let error = a.handle().last_error().expect("an error while down");
    assert!(!error.contains(PASSWORD), "{error}");
    assert!(a.handle().peers().await.is_err());
    pg.restart();
    let back = Instant::now();
    let again = wait_decision(&a, "cron", UP, |d| d.may_run()).await;
    println!(
        "restarted database: holding again {:?} after it was back",
        back.elapsed()
    );
    // The term survived the crash (the table is LOGGED): the same one if the row had
    // not expired yet when a renewed it, the next one if a had to acquire anew.
    let (Decision::Hold { term: t1 }, Decision::Hold { term: t2 }) = (held, again) else {
        unreachable!()
    };
    assert!(t2 == t1 || t2 == t1 + 1, "term {t2} after {t1}");
    assert_eq!(pg.sql("SELECT term FROM bosun.lease"), t2.to_string());
    assert!(a.handle().peers().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_database_at_boot_means_standby_until_it_comes() {
    let mut pg = Pg::start();
    pg.stop();
    let a = TestPeer::start(&pg.settings("a", "bosun"), &[("cron", STOP)]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a.decision("cron"), Decision::Standby { holder: None });
    assert!(!*a.handle().database_up().borrow());
    let error = a.handle().last_error().expect("the connect error");
    assert!(error.contains("connect"), "{error}");
    assert!(!error.contains(PASSWORD), "{error}");
    let e = a.handle().peers().await.expect_err("down");
    assert!(
        e.to_string().contains("unreachable") && !e.to_string().contains(PASSWORD),
        "{e}"
    );
    assert!(e.to_string().contains("postgres:***@127.0.0.1"), "{e}");
    pg.restart();
    wait_up(a.handle(), UP).await;
    wait_decision(&a, "cron", UP, |d| d.may_run()).await;
}
