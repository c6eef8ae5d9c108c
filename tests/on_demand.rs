//! On-demand tasks (`on_demand = true`) and `bosun ctl run`: bosun as PID 1 (see
//! `common`), the client as a user would type it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bosun_bin, eventually, Pid1, Scratch, SIGTERM};

const UNITS: &str = r#"
[service.web]
run = "echo web up; exec sleep 300"
start_secs = "200ms"
stop_timeout = "2s"

[task.update]
run = "echo updating from $PWD; echo warning >&2; exit $UPDATE_EXIT"
on_demand = true
cwd = "/tmp"
env = { UPDATE_EXIT = "3" }

[task.slow]
run = "echo slow start; sleep 2; echo slow end"
on_demand = true
"#;

fn ctl(s: &Scratch, args: &[&str]) -> (i32, String, String) {
    let sock = s.path("run/ctl.sock");
    let mut all = vec!["ctl", "--socket", sock.to_str().expect("utf8")];
    all.extend_from_slice(args);
    common::bosun(&all, &[])
}

fn booted(s: &Scratch) -> Pid1 {
    let config = s.config("", UNITS);
    let bosun = Pid1::run(s, &config, &[]);
    bosun.wait_for_output("boot complete", Duration::from_secs(20));
    bosun
}

#[test]
fn an_on_demand_task_does_not_run_at_boot_and_the_container_is_healthy() {
    let s = Scratch::new();
    let mut bosun = booted(&s);
    let (code, out, _) = ctl(&s, &["health"]);
    assert_eq!(code, 0, "{out}");
    let (_, table, _) = ctl(&s, &["status"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("update"))
        .expect("a row");
    assert!(
        row.contains("inactive") && row.contains("on demand"),
        "{table}"
    );
    assert!(!bosun.stdout().contains("updating"), "it ran at boot");
    bosun.signal(SIGTERM);
    assert_eq!(bosun.wait(Duration::from_secs(20)), 0, "{}", bosun.output());
}

#[test]
fn ctl_run_streams_the_output_and_exits_with_the_tasks_code() {
    let s = Scratch::new();
    let mut bosun = booted(&s);
    let (code, out, err) = ctl(&s, &["run", "update"]);
    assert_eq!(code, 3, "{out}{err}");
    // As one of the unit's processes: its cwd and env.
    assert!(out.contains("updating from /tmp"), "{out}");
    assert!(err.contains("warning"), "stderr to stderr: {err}");
    assert!(err.contains("task failed"), "{err}");
    // Again: a task runs as often as asked, and the container stays healthy.
    let (code, _, _) = ctl(&s, &["run", "update"]);
    assert_eq!(code, 3);
    assert_eq!(ctl(&s, &["health"]).0, 0);
    let (code, out, err) = ctl(&s, &["run", "slow"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("slow start") && out.contains("slow end"),
        "{out}"
    );
    bosun.signal(SIGTERM);
    assert_eq!(bosun.wait(Duration::from_secs(20)), 0, "{}", bosun.output());
}

#[test]
fn two_runs_of_one_task_never_overlap_and_services_are_refused() {
    let s = Scratch::new();
    let mut bosun = booted(&s);
    let sock = s.path("run/ctl.sock");
    let first = Command::new(bosun_bin())
        .args([
            "ctl",
            "--socket",
            sock.to_str().expect("utf8"),
            "run",
            "slow",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctl");
    // Once the first run is under way, a second one is refused at once.
    assert!(eventually(Duration::from_secs(10), || bosun
        .stdout()
        .contains("slow | slow start")));
    let t0 = Instant::now();
    let (code, out, err) = ctl(&s, &["run", "slow"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("already running"), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "it waited for the first run"
    );
    let first = first.wait_with_output().expect("first ctl");
    assert_eq!(first.status.code(), Some(0), "{first:?}");

    let (code, _, err) = ctl(&s, &["run", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("not an on-demand task"), "{err}");
    let (code, _, err) = ctl(&s, &["run", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no unit named"), "{err}");
    bosun.signal(SIGTERM);
    assert_eq!(bosun.wait(Duration::from_secs(20)), 0, "{}", bosun.output());
}
