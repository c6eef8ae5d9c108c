//! Measurements, not assertions: failover and handover time, fan-out latency, and the
//! statements a peer sends at idle. Run with
//! `cargo test -p bosun-fleet --test bench -- --ignored --nocapture --test-threads=1`.

mod common;

use std::time::{Duration, Instant};

use bosun_fleet::{Action, Decision, Target};
use common::{until, wait_decision, wait_up, Pg, TestPeer};

const UP: Duration = Duration::from_secs(30);
const STOP: Duration = Duration::from_millis(300);

fn summary(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} min {:.1} ms, median {:.1} ms, max {:.1} ms",
        xs.len(),
        ms(xs[0]),
        ms(xs[xs.len() / 2]),
        ms(xs[xs.len() - 1])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_failover_and_handover() {
    let pg = Pg::start();
    let start = |n: &str| TestPeer::start(&pg.settings(n, "bosun"), &[("cron", STOP)]);
    let (mut kills, mut releases) = (Vec::new(), Vec::new());
    for round in 0..5 {
        let mut a = start(&format!("a{round}"));
        wait_decision(&a, "cron", UP, |d| d.may_run()).await;
        let b = start(&format!("b{round}"));
        wait_decision(&b, "cron", UP, |d| {
            matches!(d, Decision::Standby { holder: Some(_) })
        })
        .await;
        // A random phase against a's renewals.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..500))).await;
        let t = Instant::now();
        a.crash();
        wait_decision(&b, "cron", UP, |d| d.may_run()).await;
        kills.push(t.elapsed());
        let c = start(&format!("c{round}"));
        wait_decision(&c, "cron", UP, |d| {
            matches!(d, Decision::Standby { holder: Some(_) })
        })
        .await;
        let t = Instant::now();
        b.handle().set_wanted("cron", false);
        wait_decision(&c, "cron", UP, |d| d.may_run()).await;
        releases.push(t.elapsed());
    }
    summary(
        "failover after the holder is killed (ttl 2 s, renew 500 ms)",
        kills,
    );
    summary("handover after a release (NOTIFY)", releases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_failover_default_timings() {
    let pg = Pg::start();
    let start = |n: &str| {
        let mut s = pg.settings(n, "bosun");
        s.lease_ttl = bosun_fleet::DEFAULT_LEASE_TTL;
        s.renew_every = bosun_fleet::DEFAULT_RENEW_EVERY;
        s.statement_timeout = bosun_fleet::DEFAULT_STATEMENT_TIMEOUT;
        TestPeer::start(&s, &[("cron", Duration::from_secs(5))])
    };
    let mut kills = Vec::new();
    for round in 0..3 {
        let mut a = start(&format!("a{round}"));
        wait_decision(&a, "cron", UP, |d| d.may_run()).await;
        let b = start(&format!("b{round}"));
        wait_decision(&b, "cron", UP, |d| {
            matches!(d, Decision::Standby { holder: Some(_) })
        })
        .await;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..5000))).await;
        let t = Instant::now();
        a.crash();
        wait_decision(&b, "cron", Duration::from_secs(40), |d| d.may_run()).await;
        kills.push(t.elapsed());
    }
    summary(
        "failover after the holder is killed (defaults: ttl 15 s, renew 5 s)",
        kills,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_fan_out_latency() {
    let pg = Pg::start();
    let peers: Vec<TestPeer> = ["a", "b", "c"]
        .iter()
        .map(|n| TestPeer::start(&pg.settings(n, "bosun"), &[]))
        .collect();
    for p in &peers {
        wait_up(p.handle(), UP).await;
    }
    let live = || async {
        peers[0]
            .handle()
            .peers()
            .await
            .map(|v| v.len() == 3)
            .unwrap_or(false)
    };
    assert!(until(UP, live).await);
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let r = peers[0]
            .handle()
            .send(
                Action::Restart,
                &Target::Unit("web".into()),
                Duration::from_secs(10),
            )
            .await
            .expect("send");
        assert!(r.succeeded());
        times.push(t.elapsed());
    }
    summary("fan-out to 3 peers, submit to all 3 acks", times);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_idle_statements_per_peer_per_minute() {
    let pg = Pg::start_with(
        &[
            "shared_preload_libraries=pg_stat_statements",
            "pg_stat_statements.track=all",
        ],
        |_| {},
    );
    pg.sql("CREATE EXTENSION pg_stat_statements");
    // The defaults: ttl 15 s, renew 5 s, command poll 30 s. One singleton: one holder,
    // two standbys.
    let start = |n: &str| {
        let mut s = pg.settings(n, "bosun");
        s.lease_ttl = bosun_fleet::DEFAULT_LEASE_TTL;
        s.renew_every = bosun_fleet::DEFAULT_RENEW_EVERY;
        s.statement_timeout = bosun_fleet::DEFAULT_STATEMENT_TIMEOUT;
        TestPeer::start(&s, &[("cron", Duration::from_secs(5))])
    };
    let peers: Vec<TestPeer> = ["a", "b", "c"].iter().map(|n| start(n)).collect();
    for p in &peers {
        wait_up(p.handle(), UP).await;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    pg.sql("SELECT pg_stat_statements_reset()");
    let window = Duration::from_secs(60);
    tokio::time::sleep(window).await;
    let rows = pg.sql(
        "SELECT calls || ' ' || regexp_replace(left(query, 60), '\\s+', ' ', 'g') FROM pg_stat_statements
         WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC",
    );
    let total: u64 = rows
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    let per_min = total as f64 / peers.len() as f64 * 60.0 / window.as_secs_f64();
    println!("idle, 3 peers, 1 singleton, default timings: {total} statements in {window:?} = {per_min:.1} per peer per minute");
    for l in rows.lines() {
        println!("  {l}");
    }
    let commits: u64 = pg
        .sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")
        .parse()
        .unwrap_or(0);
    println!("  (xact_commit since start: {commits})");
}
