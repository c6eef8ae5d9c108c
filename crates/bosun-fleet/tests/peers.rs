//! Peers register and heartbeat; liveness is the database clock's `expires_at`.

mod common;

use std::time::{Duration, Instant};

use bosun_fleet::{Peer, PeerState};
use common::{eventually, until, wait_up, Pg, TestPeer};

const UP: Duration = Duration::from_secs(15);

async fn peers(p: &TestPeer) -> Vec<Peer> {
    p.handle().peers().await.expect("peers")
}

fn state_of(peers: &[Peer], name: &str) -> Option<PeerState> {
    peers.iter().find(|p| p.name == name).map(|p| p.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_register_and_one_that_stops_heartbeating_is_dead_after_the_ttl() {
    let pg = Pg::start();
    let mut a = TestPeer::start(&pg.settings("a", "bosun"), &[]);
    let mut settings_b = pg.settings("b", "bosun");
    settings_b.url = "http://b.internal:9001".into();
    let b = TestPeer::start(&settings_b, &[]);
    let mut c = TestPeer::start(&pg.settings("c", "bosun"), &[]);
    for p in [&a, &b, &c] {
        wait_up(p.handle(), UP).await;
    }
    let all_live = || async {
        let all = peers(&b).await;
        all.len() == 3 && all.iter().all(|p| p.state == PeerState::Live)
    };
    assert!(until(UP, all_live).await);
    let all = peers(&b).await;
    let pb = all.iter().find(|p| p.name == "b").expect("b");
    assert_eq!(pb.url, "http://b.internal:9001");
    assert_eq!(pb.roles, vec!["web".to_string(), "cron".to_string()]);
    assert_eq!(pb.version, "test");
    assert_eq!(pb.boot_id, b.handle().boot_id());
    assert!(pb.seen_ago < Duration::from_secs(2), "{pb:?}");

    // c is killed: its row stays until the ttl (2 s) passes on the database clock.
    let killed = Instant::now();
    c.crash();
    assert_eq!(state_of(&peers(&a).await, "c"), Some(PeerState::Live));
    let c_dead = || async { state_of(&peers(&a).await, "c") == Some(PeerState::Dead) };
    assert!(until(Duration::from_secs(10), c_dead).await);
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "dead too early: {took:?}"
    );
    let now = peers(&a).await;
    assert_eq!(state_of(&now, "a"), Some(PeerState::Live));
    assert_eq!(state_of(&now, "b"), Some(PeerState::Live));
    let pc = now
        .iter()
        .find(|p| p.name == "c")
        .expect("c is still listed");
    assert!(pc.seen_ago >= Duration::from_millis(1500), "{pc:?}");

    // a leaves cleanly: left at once, not dead; c (killed) is still dead.
    a.shutdown().await;
    let now = peers(&b).await;
    assert_eq!(state_of(&now, "a"), Some(PeerState::Left), "{now:?}");
    assert_eq!(state_of(&now, "c"), Some(PeerState::Dead), "{now:?}");

    // a comes back under its name: live; killed this time, it is dead, not left.
    let mut a = TestPeer::start(&pg.settings("a", "bosun"), &[]);
    wait_up(a.handle(), UP).await;
    let a_live = || async { state_of(&peers(&b).await, "a") == Some(PeerState::Live) };
    assert!(until(UP, a_live).await);
    a.crash();
    let a_dead = || async { state_of(&peers(&b).await, "a") == Some(PeerState::Dead) };
    assert!(
        until(Duration::from_secs(10), a_dead).await,
        "{:?}",
        peers(&b).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_in_use_by_a_live_peer_waits_for_it_to_expire() {
    let pg = Pg::start();
    let mut first = TestPeer::start(&pg.settings("same", "bosun"), &[]);
    wait_up(first.handle(), UP).await;
    assert!(eventually(UP, || pg.sql("SELECT count(*) FROM bosun.peer") == "1").await);
    let second = TestPeer::start(&pg.settings("same", "bosun"), &[]);
    wait_up(second.handle(), UP).await;
    // Several rounds later the row is still the first one's.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let boot = pg.sql("SELECT boot_id FROM bosun.peer WHERE name = 'same'");
    assert_eq!(boot, first.handle().boot_id());
    let why = second.handle().last_error().unwrap_or_default();
    assert!(why.contains("in use by another live peer"), "{why}");
    // The first dies; once its heartbeat expires the second takes the name.
    first.crash();
    let second_boot = second.handle().boot_id().to_owned();
    assert!(
        eventually(Duration::from_secs(10), || pg
            .sql("SELECT boot_id FROM bosun.peer WHERE name = 'same'")
            == second_boot)
        .await
    );
    assert_eq!(
        pg.sql("SELECT expires_at > now() FROM bosun.peer WHERE name = 'same'"),
        "t"
    );
}
