//! bosun creates its schema itself, idempotently, and shares it with older and newer
//! bosuns.

mod common;

use std::time::Duration;

use common::{wait_up, Pg, TestPeer, PASSWORD};

const UP: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_once_then_reused_and_concurrent_starts_do_not_race() {
    let pg = Pg::start();
    // Four peers boot at once on an empty database: one migrates, the others wait on
    // the advisory lock and find it done.
    let peers: Vec<TestPeer> = (0..4)
        .map(|i| TestPeer::start(&pg.settings(&format!("p{i}"), "fleet_a"), &[]))
        .collect();
    for p in &peers {
        wait_up(p.handle(), UP).await;
    }
    assert_eq!(
        pg.sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM fleet_a.schema_version"
        ),
        "1,2"
    );
    let tables = "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'fleet_a'";
    assert_eq!(
        pg.sql(tables),
        "command,command_ack,lease,peer,schema_version"
    );
    drop(peers);
    // A second start finds the schema at its version and runs no DDL: the version row
    // is the first one, still.
    let applied = pg.sql("SELECT applied_at FROM fleet_a.schema_version");
    let p = TestPeer::start(&pg.settings("p9", "fleet_a"), &[]);
    wait_up(p.handle(), UP).await;
    assert_eq!(
        pg.sql("SELECT applied_at FROM fleet_a.schema_version"),
        applied
    );
    // Another schema in the same database is another fleet.
    let q = TestPeer::start(&pg.settings("p9", "fleet_b"), &[]);
    wait_up(q.handle(), UP).await;
    assert_eq!(pg.sql("SELECT count(*) FROM fleet_b.schema_version"), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_schema_is_brought_to_version_2_with_its_peers_kept() {
    let pg = Pg::start();
    let p = TestPeer::start(&pg.settings("v1-peer", "bosun"), &[]);
    wait_up(p.handle(), UP).await;
    drop(p);
    // What an older bosun left: version 1, no left_at column, a peer row.
    pg.sql("ALTER TABLE bosun.peer DROP COLUMN left_at; DELETE FROM bosun.schema_version WHERE version = 2");
    let p = TestPeer::start(&pg.settings("v2-peer", "bosun"), &[]);
    wait_up(p.handle(), UP).await;
    assert_eq!(pg.sql("SELECT max(version) FROM bosun.schema_version"), "2");
    assert_eq!(
        pg.sql("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'bosun' AND table_name = 'peer' AND column_name = 'left_at'"),
        "1"
    );
    let peers = p.handle().peers().await.expect("peers");
    assert!(peers.iter().any(|x| x.name == "v1-peer"), "{peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_bosun_works_on_a_newer_schema() {
    let pg = Pg::start();
    let p = TestPeer::start(
        &pg.settings("old-1", "bosun"),
        &[("cron", Duration::from_millis(300))],
    );
    wait_up(p.handle(), UP).await;
    drop(p);
    // What a newer bosun may do: add a column with a default, bump the version, write
    // a state this one does not know.
    pg.sql("ALTER TABLE bosun.peer ADD COLUMN IF NOT EXISTS zone text NOT NULL DEFAULT 'eu'");
    pg.sql("INSERT INTO bosun.schema_version (version, applied_by) VALUES (99, 'bosun 9.9')");
    let id = pg.sql(
        "INSERT INTO bosun.command (action, target, expires_at, expected) VALUES ('restart', 'web', now() + interval '1 hour', '{new-1}') RETURNING id",
    );
    pg.sql(&format!("INSERT INTO bosun.command_ack (command_id, peer, boot_id, state, finished_at) VALUES ({id}, 'new-1', 'x', 'skipped-by-policy', now())"));
    let p = TestPeer::start(
        &pg.settings("old-2", "bosun"),
        &[("cron", Duration::from_millis(300))],
    );
    wait_up(p.handle(), UP).await;
    common::wait_decision(&p, "cron", UP, |d| d.may_run()).await;
    let peers = p.handle().peers().await.expect("peers");
    assert!(
        peers
            .iter()
            .any(|x| x.name == "old-2" && x.state == bosun_fleet::PeerState::Live),
        "{peers:?}"
    );
    let report = p
        .handle()
        .report(id.parse().unwrap())
        .await
        .expect("report");
    let new = report.rows.iter().find(|r| r.peer == "new-1").expect("row");
    assert_eq!(
        new.state,
        bosun_fleet::RowState::Failed,
        "an unknown state reads as failed: {report:?}"
    );
    assert_eq!(
        pg.sql("SELECT max(version) FROM bosun.schema_version"),
        "99"
    );
    assert_eq!(
        pg.sql("SELECT zone FROM bosun.peer WHERE name = 'old-2'"),
        "eu"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_create_rights_works_once_the_schema_exists() {
    let pg = Pg::start();
    pg.sql(&format!("CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'"));
    pg.sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    let mut settings = pg.settings("app-1", "bosun");
    settings.database = settings.database.replace("postgres:fleet", "app:fleet");
    // Nothing there yet, and no right to create it: the error says so.
    let p = TestPeer::start(&settings, &[]);
    let said = common::eventually(UP, || {
        p.handle()
            .last_error()
            .is_some_and(|e| e.contains("permission denied"))
    })
    .await;
    assert!(said, "{:?}", p.handle().last_error());
    assert!(!p
        .handle()
        .last_error()
        .unwrap_or_default()
        .contains(PASSWORD));
    drop(p);
    // An admin (here: a first peer with rights) creates it and grants the DML.
    let admin = TestPeer::start(&pg.settings("admin", "bosun"), &[]);
    wait_up(admin.handle(), UP).await;
    pg.sql("GRANT USAGE ON SCHEMA bosun TO app; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bosun TO app; GRANT USAGE ON ALL SEQUENCES IN SCHEMA bosun TO app");
    let p = TestPeer::start(&settings, &[]);
    wait_up(p.handle(), UP).await;
    assert!(
        common::eventually(UP, || pg
            .sql("SELECT count(*) FROM bosun.peer WHERE name = 'app-1'")
            == "1")
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_statements_fail_is_not_up_and_backs_off() {
    let pg = Pg::start_with(&["log_connections=on"], |_| {});
    let admin = TestPeer::start(&pg.settings("admin", "bosun"), &[]);
    wait_up(admin.handle(), UP).await;
    // May read the schema version (so the connect succeeds) but not write a heartbeat.
    pg.sql(&format!("CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'"));
    pg.sql("GRANT USAGE ON SCHEMA bosun TO app; GRANT SELECT ON ALL TABLES IN SCHEMA bosun TO app");
    let mut settings = pg.settings("app-1", "bosun");
    settings.database = settings.database.replace("postgres:fleet", "app:fleet");
    let p = TestPeer::start(&settings, &[("cron", Duration::from_millis(300))]);
    let window = Duration::from_secs(4);
    tokio::time::sleep(window).await;
    assert!(!*p.handle().database_up().borrow());
    let error = p.handle().last_error().unwrap_or_default();
    assert!(
        error.contains("heartbeat") && error.contains("permission denied"),
        "{error}"
    );
    assert_eq!(
        p.decision("cron"),
        bosun_fleet::Decision::Standby { holder: None }
    );
    // Reconnects back off to renew_every (500 ms): about 8 in 4 s, not one per 100 ms.
    let connects = pg.log().matches("connection authorized: user=app").count();
    assert!(
        (2..=16).contains(&connects),
        "{connects} connections in {window:?}"
    );
}
