//! The password of `[fleet] database` never reaches a log line, an error or a status
//! field, whatever goes wrong.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, wait_decision, wait_up, Pg, TestPeer, PASSWORD};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_error_or_status_holds_the_password() {
    let logs = Buf::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let mut pg = Pg::start();
    let wrong = "wrong-pw-Zq81x";
    let mut bad = pg.settings("bad", "bosun");
    bad.database = bad.database.replace(PASSWORD, wrong);
    let b = TestPeer::start(&bad, &[]);
    assert!(
        eventually(Duration::from_secs(10), || b
            .handle()
            .last_error()
            .is_some_and(|e| e.contains("password authentication failed")))
        .await
    );
    let e = b.handle().peers().await.expect_err("not connected");

    let a = TestPeer::start(
        &pg.settings("a", "bosun"),
        &[("cron", Duration::from_millis(300))],
    );
    wait_decision(&a, "cron", Duration::from_secs(15), |d| d.may_run()).await;
    pg.stop();
    wait_decision(&a, "cron", Duration::from_secs(10), |d| !d.may_run()).await;
    let down = a
        .handle()
        .submit(
            bosun_fleet::Action::Restart,
            &bosun_fleet::Target::Unit("web".into()),
        )
        .await
        .expect_err("down");
    pg.restart();
    wait_up(a.handle(), Duration::from_secs(15)).await;

    let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    let seen = [
        text.clone(),
        e.to_string(),
        down.to_string(),
        format!("{bad:?}"),
        b.handle().last_error().unwrap_or_default(),
    ];
    for s in &seen {
        assert!(
            !s.contains(PASSWORD) && !s.contains(wrong),
            "a password leaked: {s}"
        );
    }
    // The logs did say what happened, with the URL redacted.
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(text.contains("postgres:***@127.0.0.1"), "{text}");
    assert!(text.contains("reachable again"), "{text}");
    assert!(
        down.to_string().contains("postgres:***@127.0.0.1"),
        "{down}"
    );
}
