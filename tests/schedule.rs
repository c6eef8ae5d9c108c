//! Scheduled tasks (`schedule = "* * * * *"`): bosun as PID 1 (see `common`), its
//! own timer, seen through `ctl status`, `ctl run` and `/metrics` as a user sees
//! them. Real minutes: the test waits for two minute boundaries, once (the
//! arithmetic itself is unit-tested in bosun-config's `schedule`).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bosun_core::status::{DaemonStatus, UnitStatus};
use common::{eventually, Pid1, Scratch, SIGTERM};

const UNITS: &str = r#"
[service.web]
run = "exec sleep 300"
start_secs = "200ms"
stop_timeout = "2s"

[task.tick]
run = "echo tick fired"
schedule = "* * * * *"

[task.long]
run = "echo long start; exec sleep 300"
schedule = "* * * * *"
stop_timeout = "2s"

[task.nightly]
run = "echo nightly"
schedule = "30 2 * * *"
timezone = "Europe/Berlin"
"#;

fn ctl(s: &Scratch, args: &[&str]) -> (i32, String, String) {
    let sock = s.path("run/ctl.sock");
    let mut all = vec!["ctl", "--socket", sock.to_str().expect("utf8")];
    all.extend_from_slice(args);
    common::bosun(&all, &[])
}

fn status(s: &Scratch) -> DaemonStatus {
    let (code, out, err) = ctl(s, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("ctl status --json is a DaemonStatus")
}

fn unit(st: &DaemonStatus, name: &str) -> UnitStatus {
    st.units
        .iter()
        .find(|u| u.name == name)
        .cloned()
        .expect("the unit is in the status")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// `GET path` on the control socket; the raw answer.
fn get(sock: &Path, path: &str) -> String {
    let mut s = UnixStream::connect(sock).expect("connect to the control socket");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: bosun\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn a_scheduled_task_runs_on_time_never_overlaps_and_shows_in_status() {
    let s = Scratch::new();
    let config = s.config("", UNITS);
    let mut bosun = Pid1::run(&s, &config, &[]);
    bosun.wait_for_output("boot complete", Duration::from_secs(20));

    // Not run at boot, not holding up the boot, healthy; the next run is shown.
    let st = status(&s);
    let tick = unit(&st, "tick");
    let sc = tick.schedule.clone().expect("a schedule status");
    assert_eq!(
        (sc.expr.as_str(), sc.timezone.as_str()),
        ("* * * * *", "UTC")
    );
    let next = sc.next_run_ms.expect("a next run");
    assert!(
        next > now_ms() - 1000 && next <= now_ms() + 61_000,
        "{sc:?}"
    );
    assert_eq!(next % 60_000, 0, "on a minute boundary: {sc:?}");
    assert_eq!(
        (sc.last_run_ms, sc.last_exit_code, sc.skipped),
        (None, None, 0)
    );
    let nightly = unit(&st, "nightly").schedule.expect("a schedule status");
    let local = nightly.next_run_local.expect("a local next run");
    assert!(local.contains(" 02:30 +0"), "Berlin time: {local}");
    assert_eq!(
        ctl(&s, &["health"]).0,
        0,
        "a scheduled task is fine in /health"
    );
    let (_, table, _) = ctl(&s, &["status"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("tick"))
        .expect("a row");
    assert!(row.contains("scheduled: * * * * * (UTC); next "), "{table}");

    // `ctl run` runs it now, as an on-demand task.
    let (code, out, err) = ctl(&s, &["run", "tick"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("tick fired"), "{out}");

    // The first minute boundary: both fire, once.
    bosun.wait_for_output("long | long start", Duration::from_secs(75));
    assert!(eventually(Duration::from_secs(10), || {
        unit(&status(&s), "tick")
            .schedule
            .is_some_and(|sc| sc.last_exit_code == Some(0) && sc.last_run_ms.is_some())
    }));
    let long = unit(&status(&s), "long")
        .schedule
        .expect("a schedule status");
    assert!(
        long.last_run_ms.is_some() && long.last_exit_code.is_none(),
        "{long:?}"
    );

    // A manual run while the scheduled one is going is refused, at once.
    let (code, out, err) = ctl(&s, &["run", "long"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("already running"), "{err}");

    // The next boundary: `long` is still running, so that run is skipped and counted.
    assert!(
        eventually(Duration::from_secs(75), || {
            unit(&status(&s), "long")
                .schedule
                .is_some_and(|sc| sc.skipped == 1)
        }),
        "{}",
        bosun.output()
    );
    assert!(bosun
        .stderr()
        .contains("the previous run is still going: skipped"));
    let starts = bosun.stdout().matches("long | long start").count();
    assert_eq!(starts, 1, "never two at once:\n{}", bosun.stdout());

    let metrics = get(&s.path("run/ctl.sock"), "/metrics");
    for want in [
        "bosun_unit_schedule_skipped_total{unit=\"long\"} 1",
        "bosun_unit_schedule_last_exit_code{unit=\"tick\"} 0",
        "bosun_unit_schedule_next_run_timestamp_seconds{unit=\"nightly\"}",
        "bosun_unit_schedule_last_run_timestamp_seconds{unit=\"long\"}",
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
    let (_, table, _) = ctl(&s, &["status"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("long"))
        .expect("a row");
    assert!(row.contains("1 skipped"), "{table}");

    bosun.signal(SIGTERM);
    assert_eq!(bosun.wait(Duration::from_secs(20)), 0, "{}", bosun.output());
}

#[test]
fn a_reload_starts_the_timer_of_a_new_scheduled_task_and_runs_no_task_by_itself() {
    let s = Scratch::new();
    let web =
        "[service.web]\nrun = \"exec sleep 300\"\nstart_secs = \"200ms\"\nstop_timeout = \"2s\"\n";
    let config = s.config("", web);
    let mut bosun = Pid1::run(&s, &config, &[]);
    bosun.wait_for_output("boot complete", Duration::from_secs(20));
    let more = format!(
        "{web}\n[task.later]\nrun = \"echo LATER-RAN\"\nschedule = \"0 3 * * *\"\n\
         [task.asked]\nrun = \"echo ASKED-RAN\"\non_demand = true\n"
    );
    s.config("", &more);
    let (code, out, err) = ctl(&s, &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("started later, asked"), "{out}");
    std::thread::sleep(Duration::from_secs(2));
    let out = bosun.stdout();
    assert!(
        !out.contains("LATER-RAN") && !out.contains("ASKED-RAN"),
        "a reload ran a task:\n{out}"
    );
    let later = unit(&status(&s), "later")
        .schedule
        .expect("a schedule status");
    let next = later.next_run_ms.expect("the timer runs after the reload");
    assert_eq!(next % 86_400_000, 3 * 3_600_000, "03:00 UTC: {later:?}");
    assert_eq!(ctl(&s, &["health"]).0, 0);
    bosun.signal(SIGTERM);
    assert_eq!(bosun.wait(Duration::from_secs(20)), 0, "{}", bosun.output());
}
