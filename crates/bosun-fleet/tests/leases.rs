//! Singleton leases: at most one holder at any instant, a term that only grows, and a
//! takeover after the holder dies (at the expiry) or leaves (at once).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bosun_fleet::Decision;
use common::{wait_decision, wait_up, Pg, TestPeer};
use tokio::sync::watch;

const UP: Duration = Duration::from_secs(15);
const STOP: Duration = Duration::from_millis(300);

fn term_of(d: &Decision) -> i64 {
    match d {
        Decision::Hold { term } => *term,
        other => panic!("not holding: {other:?}"),
    }
}

/// The decision channels the sampler reads, by peer name.
type Watched = Arc<Mutex<Vec<(String, watch::Receiver<Decision>)>>>;

/// Samples every peer's decision every 2 ms and records any instant at which two of
/// them say Hold.
struct Sampler {
    receivers: Watched,
    violations: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start() -> Sampler {
        let receivers: Watched = Arc::default();
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, v) = (receivers.clone(), violations.clone());
        let task = tokio::spawn(async move {
            loop {
                {
                    let rs = r.lock().expect("receivers");
                    let holding: Vec<String> = rs
                        .iter()
                        .filter(|(_, rx)| rx.borrow().may_run())
                        .map(|(n, rx)| format!("{n}: {:?}", *rx.borrow()))
                        .collect();
                    if holding.len() > 1 {
                        v.lock().expect("violations").push(holding.join(", "));
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Sampler {
            receivers,
            violations,
            task,
        }
    }

    fn watch(&self, p: &TestPeer) {
        let rx = p.handle().decision("cron").expect("cron");
        let mut rs = self.receivers.lock().expect("receivers");
        rs.retain(|(n, _)| n != p.handle().name());
        rs.push((p.handle().name().to_owned(), rx));
    }

    fn forget(&self, name: &str) {
        self.receivers
            .lock()
            .expect("receivers")
            .retain(|(n, _)| n != name);
    }
}

/// Which of `peers` holds, once exactly one does.
async fn holder(peers: &[TestPeer], timeout: Duration) -> (usize, i64) {
    let deadline = Instant::now() + timeout;
    loop {
        let holding: Vec<(usize, i64)> = peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.decision("cron") {
                Decision::Hold { term } => Some((i, term)),
                _ => None,
            })
            .collect();
        if let [one] = holding[..] {
            return one;
        }
        assert!(holding.len() < 2, "two holders: {holding:?}");
        assert!(Instant::now() < deadline, "no holder after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_contenders_never_both_hold_over_many_handovers() {
    let pg = Pg::start();
    let names = ["a", "b"];
    let start = |name: &str| TestPeer::start(&pg.settings(name, "bosun"), &[("cron", STOP)]);
    let sampler = Sampler::start();
    let mut peers: Vec<TestPeer> = names.iter().map(|n| start(n)).collect();
    for p in &peers {
        wait_up(p.handle(), UP).await;
        sampler.watch(p);
    }
    let mut last_term = 0;
    let (mut releases, mut crashes) = (0, 0);
    for round in 0..24 {
        let (i, term) = holder(&peers, UP).await;
        // Nothing happens between rounds: the holder is still on the term it got.
        assert!(
            round == 0 || term == last_term,
            "round {round}: term {term} after {last_term}"
        );
        let other = 1 - i;
        if round % 4 == 3 {
            // SIGKILL-like: no release; the other takes over once the lease expires
            // (or the replacement, same name, new boot, wins the race).
            let killed = Instant::now();
            sampler.forget(names[i]);
            peers[i].crash();
            peers[i] = start(names[i]);
            sampler.watch(&peers[i]);
            let (_, next) = holder(&peers, UP).await;
            assert_eq!(next, term + 1, "round {round}");
            last_term = next;
            // The lease was renewed at most renew_every + statement timeout before the
            // kill, so nobody can hold it sooner than ttl minus that after.
            assert!(
                killed.elapsed() >= Duration::from_millis(900),
                "taken over too soon: {:?}",
                killed.elapsed()
            );
            crashes += 1;
        } else {
            // A clean release (the unit is stopped first): the other holds at once.
            peers[i].handle().set_wanted("cron", false);
            let next = wait_decision(&peers[other], "cron", UP, |d| d.may_run()).await;
            assert_eq!(term_of(&next), term + 1, "round {round}");
            last_term = term_of(&next);
            peers[i].handle().set_wanted("cron", true);
            releases += 1;
        }
    }
    sampler.task.abort();
    let violations = sampler.violations.lock().expect("violations").clone();
    assert!(violations.is_empty(), "two holders at once: {violations:?}");
    assert_eq!((releases, crashes), (18, 6));
    assert_eq!(
        pg.sql("SELECT term FROM bosun.lease WHERE name = 'cron'"),
        last_term.to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_is_replaced_after_the_expiry_with_the_next_term() {
    let pg = Pg::start();
    let mut a = TestPeer::start(&pg.settings("a", "bosun"), &[("cron", STOP)]);
    let a_holds = wait_decision(&a, "cron", UP, |d| d.may_run()).await;
    let b = TestPeer::start(&pg.settings("b", "bosun"), &[("cron", STOP)]);
    wait_up(b.handle(), UP).await;
    let standby = wait_decision(&b, "cron", UP, |d| {
        matches!(d, Decision::Standby { holder: Some(_) })
    })
    .await;
    assert_eq!(
        standby,
        Decision::Standby {
            holder: Some("a".into())
        }
    );
    let killed = Instant::now();
    a.crash();
    let b_holds = wait_decision(&b, "cron", UP, |d| d.may_run()).await;
    let failover = killed.elapsed();
    assert_eq!(term_of(&b_holds), term_of(&a_holds) + 1);
    assert!(failover >= Duration::from_millis(900), "{failover:?}");
    println!("failover after a killed holder: {failover:?} (ttl 2 s, renew 500 ms)");
    let leases = b.handle().leases().await.expect("leases");
    assert_eq!(leases.len(), 1);
    assert_eq!(
        (leases[0].holder.as_str(), leases[0].term, leases[0].held),
        ("b", term_of(&b_holds), true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_hands_the_lease_over_at_once() {
    let pg = Pg::start();
    let mut a = TestPeer::start(&pg.settings("a", "bosun"), &[("cron", STOP)]);
    let a_holds = wait_decision(&a, "cron", UP, |d| d.may_run()).await;
    let mut settings = pg.settings("b", "bosun");
    // A long round period: only the release's NOTIFY can make b take over quickly.
    settings.lease_ttl = Duration::from_secs(30);
    settings.renew_every = Duration::from_secs(10);
    let b = TestPeer::start(&settings, &[("cron", STOP)]);
    wait_decision(&b, "cron", UP, |d| {
        matches!(d, Decision::Standby { holder: Some(_) })
    })
    .await;
    // Let b's first round pass: its next one is 10 s away.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = Instant::now();
    a.shutdown().await;
    let b_holds = wait_decision(&b, "cron", Duration::from_secs(5), |d| d.may_run()).await;
    println!("handover after a clean stop: {:?}", left.elapsed());
    assert_eq!(term_of(&b_holds), term_of(&a_holds) + 1);
}
