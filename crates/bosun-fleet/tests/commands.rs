//! Fleet commands: fan-out with one acknowledgement per peer, catch-up of a peer that
//! was away (once), and rows bosun refuses to run.

mod common;

use std::time::Duration;

use bosun_fleet::{Action, CommandReport, PeerState, RowState, Target};
use common::{until, wait_up, Pg, TestPeer};

const UP: Duration = Duration::from_secs(15);

fn web() -> Target {
    Target::Unit("web".into())
}

fn row<'a>(r: &'a CommandReport, peer: &str) -> &'a bosun_fleet::ReportRow {
    r.rows
        .iter()
        .find(|x| x.peer == peer)
        .unwrap_or_else(|| panic!("no row for {peer}: {r:?}"))
}

/// Waits until `names` are all live in the registry.
async fn all_live(p: &TestPeer, names: &[&str]) {
    let ok = until(UP, || async {
        let peers = p.handle().peers().await.unwrap_or_default();
        names.iter().all(|n| {
            peers
                .iter()
                .any(|x| x.name == *n && x.state == PeerState::Live)
        })
    })
    .await;
    assert!(ok, "not all live: {names:?}");
}

fn ran(p: &TestPeer, id: i64) -> usize {
    p.commands().iter().filter(|(i, _, _)| *i == id).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_fans_out_to_every_peer_and_each_acknowledges() {
    let pg = Pg::start();
    let peers: Vec<TestPeer> = ["a", "b", "c"]
        .iter()
        .map(|n| TestPeer::start(&pg.settings(n, "bosun"), &[]))
        .collect();
    for p in &peers {
        wait_up(p.handle(), UP).await;
    }
    all_live(&peers[0], &["a", "b", "c"]).await;
    let a = &peers[0];

    let r = a
        .handle()
        .send(Action::Restart, &web(), Duration::from_secs(10))
        .await
        .expect("send");
    assert!(r.complete() && r.succeeded(), "{r:?}");
    assert_eq!(
        r.rows.iter().map(|x| x.peer.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    for x in &r.rows {
        assert_eq!(
            (x.state, x.expected, x.live),
            (RowState::Ok, true, true),
            "{x:?}"
        );
        assert!(x.finished_at.is_some());
    }
    assert_eq!((r.action, r.created_by.as_str()), (Action::Restart, "a"));
    for p in &peers {
        assert_eq!(
            p.commands(),
            vec![(r.id, Action::Restart, web())],
            "{}",
            p.handle().name()
        );
    }

    // A failing task: its exit code, and the run is not a success.
    let r = peers[1]
        .handle()
        .send(
            Action::Run,
            &Target::Unit("fail".into()),
            Duration::from_secs(10),
        )
        .await
        .expect("send");
    assert!(r.complete() && !r.succeeded(), "{r:?}");
    assert_eq!(
        (row(&r, "c").state, row(&r, "c").exit_code),
        (RowState::Failed, Some(3))
    );
    // Not active anywhere: "no such unit here" is not a failure.
    let r = a
        .handle()
        .send(
            Action::Start,
            &Target::Unit("missing".into()),
            Duration::from_secs(10),
        )
        .await
        .expect("send");
    assert!(r.succeeded(), "{r:?}");
    assert!(r.rows.iter().all(|x| x.state == RowState::NoSuchUnit));
    // A role target reaches the peers as such.
    let r = a
        .handle()
        .send(
            Action::Stop,
            &Target::Role("web".into()),
            Duration::from_secs(10),
        )
        .await
        .expect("send");
    assert!(r.succeeded(), "{r:?}");
    assert!(peers[2]
        .commands()
        .contains(&(r.id, Action::Stop, Target::Role("web".into()))));
    // The report can be read again later, by any peer.
    assert_eq!(peers[2].handle().report(r.id).await.expect("report"), r);
    assert!(matches!(
        a.handle().report(999_999).await,
        Err(bosun_fleet::FleetError::NoSuchCommand(999_999))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_was_away_runs_the_command_when_it_comes_back_once() {
    let pg = Pg::start();
    let start = |n: &str| TestPeer::start(&pg.settings(n, "bosun"), &[]);
    let a = start("a");
    let mut c = start("c");
    let mut d = start("d");
    for p in [&a, &c, &d] {
        wait_up(p.handle(), UP).await;
    }
    all_live(&a, &["a", "c", "d"]).await;

    // c is killed: still live on the database clock, so it is expected, and pending.
    c.crash();
    // d left cleanly: not expected.
    d.shutdown().await;
    let r = a
        .handle()
        .send(
            Action::Run,
            &Target::Unit("update".into()),
            Duration::from_secs(1),
        )
        .await
        .expect("send");
    assert!(!r.complete() && !r.succeeded(), "{r:?}");
    assert_eq!(
        (row(&r, "a").state, row(&r, "c").state),
        (RowState::Ok, RowState::Pending)
    );
    assert!(row(&r, "c").expected);
    assert!(
        r.rows.iter().all(|x| x.peer != "d"),
        "d was not live: {r:?}"
    );

    // Both come back (c once its old heartbeat has expired): each runs it, once.
    let c = start("c");
    let d = start("d");
    let done = until(UP, || async {
        let r = a.handle().report(r.id).await.expect("report");
        r.rows
            .iter()
            .any(|x| x.peer == "c" && x.state == RowState::Ok)
            && r.rows
                .iter()
                .any(|x| x.peer == "d" && x.state == RowState::Ok)
    })
    .await;
    assert!(done, "{:?}", a.handle().report(r.id).await);
    let now = a.handle().report(r.id).await.expect("report");
    assert!(now.complete() && now.succeeded(), "{now:?}");
    assert!(!row(&now, "d").expected);
    assert_eq!((ran(&c, r.id), ran(&d, r.id)), (1, 1));

    // Restarted again, they do not run it a second time.
    drop((c, d));
    let c = start("c");
    let d = start("d");
    all_live(&a, &["a", "c", "d"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((ran(&c, r.id), ran(&d, r.id)), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_interrupted_by_a_crash_is_marked_failed_not_run_again() {
    let pg = Pg::start();
    let a = TestPeer::start(&pg.settings("a", "bosun"), &[]);
    let mut b = TestPeer::start(&pg.settings("b", "bosun"), &[]);
    wait_up(a.handle(), UP).await;
    wait_up(b.handle(), UP).await;
    all_live(&a, &["a", "b"]).await;
    // `slow` takes a second: b is killed while it runs.
    let id = a
        .handle()
        .submit(Action::Run, &Target::Unit("slow".into()))
        .await
        .expect("submit");
    assert!(common::eventually(UP, || ran(&b, id) == 1).await);
    b.crash();
    let b = TestPeer::start(&pg.settings("b", "bosun"), &[]);
    let marked = until(UP, || async {
        let r = a.handle().report(id).await.expect("report");
        row(&r, "b").state == RowState::Failed
    })
    .await;
    assert!(marked);
    let r = a.handle().report(id).await.expect("report");
    assert!(row(&r, "b").detail.contains("interrupted"), "{r:?}");
    assert_eq!(ran(&b, id), 0);
    assert_eq!(row(&r, "a").state, RowState::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_are_not_a_verb_on_a_name_are_refused_and_never_handed_over() {
    let pg = Pg::start();
    let a = TestPeer::start(&pg.settings("a", "bosun"), &[]);
    wait_up(a.handle(), UP).await;
    all_live(&a, &["a"]).await;
    let insert = |action: &str, target: &str| {
        pg.sql(&format!(
            "INSERT INTO bosun.command (action, target, expires_at, expected) VALUES ('{action}', '{target}', now() + interval '10 minutes', '{{a}}') RETURNING id"
        ))
        .parse::<i64>()
        .expect("id")
    };
    let bad_verb = insert("exec", "web");
    let bad_name = insert("restart", "web; rm -rf /");
    let bad_role = insert("stop", "role:$(reboot)");
    // An old command (the catch-up window is over) is not run either.
    let old = pg
        .sql("INSERT INTO bosun.command (action, target, created_at, expires_at, expected) VALUES ('restart', 'web', now() - interval '20 minutes', now() - interval '10 minutes', '{a}') RETURNING id")
        .parse::<i64>()
        .expect("id");
    pg.sql(&format!(
        "SELECT pg_notify('bosun.fleet', 'command {bad_role}')"
    ));
    for id in [bad_verb, bad_name, bad_role] {
        let refused = until(UP, || async {
            let r = a.handle().report(id).await;
            // A verb this bosun does not know has no report here: read the row.
            let state = pg.sql(&format!(
                "SELECT coalesce(max(state), '') FROM bosun.command_ack WHERE command_id = {id}"
            ));
            state == "failed" || r.is_ok_and(|r| row(&r, "a").state == RowState::Failed)
        })
        .await;
        assert!(refused, "{id}");
    }
    let detail = pg.sql(&format!(
        "SELECT detail FROM bosun.command_ack WHERE command_id = {bad_verb}"
    ));
    assert!(
        detail.contains("does not know the action \"exec\""),
        "{detail}"
    );
    assert!(a.commands().is_empty(), "{:?}", a.commands());
    assert_eq!(
        pg.sql(&format!(
            "SELECT count(*) FROM bosun.command_ack WHERE command_id = {old}"
        )),
        "0"
    );
    // Nor can the API give one.
    assert!(Target::parse("web; rm -rf /").is_err());
    let forged = Target::Unit("a b".into());
    assert!(matches!(
        a.handle().submit(Action::Run, &forged).await,
        Err(bosun_fleet::FleetError::InvalidTarget(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_notify_the_poll_finds_the_command() {
    let pg = Pg::start();
    let mut settings = pg.settings("a", "bosun");
    settings.command_poll = Duration::from_secs(1);
    let a = TestPeer::start(&settings, &[]);
    wait_up(a.handle(), UP).await;
    all_live(&a, &["a"]).await;
    // Written behind bosun's back: no NOTIFY.
    let id: i64 = pg
        .sql("INSERT INTO bosun.command (action, target, expires_at, expected) VALUES ('restart', 'web', now() + interval '10 minutes', '{a}') RETURNING id")
        .parse()
        .expect("id");
    assert!(common::eventually(UP, || ran(&a, id) == 1).await);
    let r = a
        .handle()
        .wait(id, Duration::from_secs(10))
        .await
        .expect("wait");
    assert!(r.complete() && r.succeeded(), "{r:?}");
}
