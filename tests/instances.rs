//! Instances (`instances = N`), `bosun ctl scale` and rolling restarts: bosun as
//! PID 1 (see `common`), the client as a user would type it.
//!
//! Each instance appends what it does to `events` (`start 2`, `up 2`, `stop
//! 2`), and is ready once its own file `ready-N` exists: orders are asserted
//! from that file, never from timings.

mod common;

use std::time::Duration;

use bosun_core::status::{DaemonStatus, State, UnitStatus};
use common::{eventually, Pid1, Scratch, SIGTERM};

const BOOT: Duration = Duration::from_secs(30);

/// Three workers, each slower than the one before to become ready, and a web
/// that fails at once unless every worker is ready when it starts.
const UNITS: &str = r#"
[service.worker]
instances = 3
run = """
trap 'echo "stop $BOSUN_INSTANCE" >> {dir}/events; rm -f {dir}/ready-$BOSUN_INSTANCE; exit 0' TERM
echo "start $BOSUN_INSTANCE" >> {dir}/events
echo "worker ${BOSUN_INSTANCE} of 3, slot $SLOT"
sleep 0.${BOSUN_INSTANCE}
echo "up $BOSUN_INSTANCE" >> {dir}/events
touch {dir}/ready-${BOSUN_INSTANCE}
while :; do sleep 0.1; done
"""
env = { SLOT = "slot-${BOSUN_INSTANCE}" }
ready = { file = "{dir}/ready-${BOSUN_INSTANCE}", timeout = "20s" }
stop_timeout = "5s"
backoff = { initial = "100ms" }

[service.web]
after = ["worker"]
run = "ls {dir}/ready-1 {dir}/ready-2 {dir}/ready-3 && echo web saw every worker; exec sleep 300"
start_secs = "200ms"
stop_timeout = "2s"
restart = "never"
"#;

struct Box1 {
    s: Scratch,
    pid1: Pid1,
}

impl Box1 {
    fn boot() -> Box1 {
        Box1::boot_with(UNITS)
    }

    fn boot_with(units: &str) -> Box1 {
        let s = Scratch::new();
        let config = s.config("", units);
        let pid1 = Pid1::run(&s, &config, &[]);
        pid1.wait_for_output("boot complete", BOOT);
        Box1 { s, pid1 }
    }

    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let sock = self.s.path("run/ctl.sock");
        let mut all = vec!["ctl", "--socket", sock.to_str().expect("utf8")];
        all.extend_from_slice(args);
        common::bosun(&all, &[])
    }

    fn ctl_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctl(args);
        assert_eq!(code, 0, "ctl {args:?}: {out}{err}\n{}", self.pid1.output());
        out
    }

    fn status(&self) -> DaemonStatus {
        let out = self.ctl_ok(&["status", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON: {e}: {out}"))
    }

    fn workers(&self) -> Vec<UnitStatus> {
        let mut w: Vec<UnitStatus> = self
            .status()
            .units
            .into_iter()
            .filter(|u| u.name.starts_with("worker#"))
            .collect();
        w.sort_by_key(|u| u.instance);
        w
    }

    fn pid(&self, name: &str) -> Option<i32> {
        self.status()
            .units
            .into_iter()
            .find(|u| u.name == name)
            .and_then(|u| u.pid)
    }

    /// The lines of `events` from line `from` on.
    fn events_since(&self, from: usize) -> Vec<String> {
        self.s
            .read("events")
            .lines()
            .skip(from)
            .map(str::to_string)
            .collect()
    }

    fn healthy(&self) -> bool {
        eventually(BOOT, || self.ctl(&["health"]).0 == 0)
    }

    fn stop(mut self) {
        self.pid1.signal(SIGTERM);
        let code = self.pid1.wait(Duration::from_secs(30));
        assert_eq!(code, 0, "{}", self.pid1.output());
    }
}

#[test]
fn instances_run_with_their_own_pids_numbers_logs_and_rows_and_after_waits_for_all() {
    let b = Box1::boot();
    let w = b.workers();
    let names: Vec<&str> = w.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["worker#1", "worker#2", "worker#3"]);
    for (i, u) in w.iter().enumerate() {
        assert_eq!(u.instance, Some(i as u32 + 1), "{u:?}");
        assert_eq!(u.state, State::Ready, "{u:?}");
    }
    let mut pids: Vec<i32> = w.iter().filter_map(|u| u.pid).collect();
    pids.dedup();
    assert_eq!(pids.len(), 3, "distinct pids: {w:?}");
    let st = b.status();
    assert_eq!(st.instances.get("worker"), Some(&3));
    // `${BOSUN_INSTANCE}` in run and env, `$BOSUN_INSTANCE` in the environment,
    // each line under its instance's prefix.
    let out = b.pid1.stdout();
    for i in 1..=3 {
        let line = format!("worker#{i} | worker {i} of 3, slot slot-{i}");
        assert!(out.contains(&line), "no {line:?} in\n{out}");
    }
    // Each instance has its own ring buffer; the service's name asks for one.
    let logs = b.ctl_ok(&["logs", "worker#2"]);
    assert!(logs.contains("worker 2 of 3, slot slot-2"), "{logs}");
    assert!(!logs.contains("worker 1 of 3"), "{logs}");
    let (code, _, err) = b.ctl(&["logs", "worker"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("worker runs as 3 instances: name one (worker#1 … worker#3)"),
        "{err}"
    );
    // web ran `ls` on every ready file: it started only after all three.
    assert!(out.contains("web | web saw every worker"), "{out}");
    // The raw JSON spells the fields so.
    let raw = b.ctl_ok(&["status", "--json"]);
    assert!(raw.contains("\"instance\":2"), "{raw}");
    assert!(raw.contains("\"instances\":{\"worker\":3}"), "{raw}");
    // The table shows one row per instance; a service name picks its instances.
    let table = b.ctl_ok(&["status", "worker"]);
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("worker#")).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(!table.lines().any(|l| l.starts_with("web")), "{table}");
    b.stop();
}

#[test]
fn a_killed_instance_restarts_alone() {
    let b = Box1::boot();
    let before = b.workers();
    b.ctl_ok(&["signal", "KILL", "worker#2"]);
    assert!(
        eventually(BOOT, || {
            let w = b.workers();
            w[1].restarts == 1 && w[1].ready
        }),
        "worker#2 did not come back: {:?}\n{}",
        b.workers(),
        b.pid1.output()
    );
    let after = b.workers();
    assert_ne!(after[1].pid, before[1].pid);
    for i in [0, 2] {
        assert_eq!(after[i].pid, before[i].pid, "{}", after[i].name);
        assert_eq!(after[i].restarts, 0, "{}", after[i].name);
    }
    assert!(b.healthy());
    b.stop();
}

#[test]
fn scale_up_and_down_leaves_the_other_instances_alone() {
    let b = Box1::boot();
    let web = b.pid("web");
    let before: Vec<Option<i32>> = b.workers().iter().map(|u| u.pid).collect();
    let out = b.ctl_ok(&["scale", "worker", "5"]);
    assert!(out.contains("started worker#4, worker#5"), "{out}");
    assert!(b.healthy(), "{}", b.pid1.output());
    let w = b.workers();
    assert_eq!(w.len(), 5);
    let kept: Vec<Option<i32>> = w[..3].iter().map(|u| u.pid).collect();
    assert_eq!(kept, before, "a scale-up touched a running instance");
    assert_eq!(b.pid("web"), web, "a scale-up touched a dependent");
    assert!(
        b.pid1
            .stdout()
            .contains("worker#5 | worker 5 of 3, slot slot-5"),
        "{}",
        b.pid1.stdout()
    );
    assert_eq!(b.status().instances.get("worker"), Some(&5));

    let before: Vec<Option<i32>> = w[..2].iter().map(|u| u.pid).collect();
    let from = b.s.read("events").lines().count();
    let out = b.ctl_ok(&["scale", "worker", "2"]);
    assert!(
        out.contains("stopped worker#3, worker#4, worker#5"),
        "{out}"
    );
    let w = b.workers();
    let names: Vec<&str> = w.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["worker#1", "worker#2"], "scaled-away rows are gone");
    let kept: Vec<Option<i32>> = w.iter().map(|u| u.pid).collect();
    assert_eq!(kept, before, "a scale-down touched a remaining instance");
    assert_eq!(b.pid("web"), web);
    // The highest numbers went, each by its own stop (its TERM trap ran).
    let mut stops = b.events_since(from);
    stops.sort();
    assert_eq!(stops, ["stop 3", "stop 4", "stop 5"]);
    assert!(b.healthy());

    // What cannot be scaled says why, and changes nothing.
    for (args, why) in [
        (vec!["scale", "web", "2"], "web has no instances"),
        (vec!["scale", "worker#1", "2"], "has no instances"),
        (vec!["scale", "worker", "0"], "expected 1 to 1000"),
        (vec!["scale", "nope", "2"], "no service named \"nope\""),
    ] {
        let (code, out, err) = b.ctl(&args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(b.workers().len(), 2);
    b.stop();
}

#[test]
fn restart_of_the_service_rolls_one_instance_at_a_time_and_of_one_instance_restarts_it() {
    let b = Box1::boot_with(&UNITS.replace(
        "backoff = { initial = \"100ms\" }",
        "backoff = { initial = \"100ms\" }\nrestart_dependents = true",
    ));
    let web = || {
        b.status()
            .units
            .into_iter()
            .find(|u| u.name == "web")
            .expect("web")
    };
    let from = b.s.read("events").lines().count();
    let out = b.ctl_ok(&["restart", "worker"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.starts_with(&format!("worker#{} restarted", i + 1)),
            "{out}"
        );
    }
    // Each instance went down, came back and was ready before the next one
    // was touched: exactly this order.
    let want: Vec<String> = (1..=3)
        .flat_map(|i| [format!("stop {i}"), format!("start {i}"), format!("up {i}")])
        .collect();
    assert_eq!(b.events_since(from), want);
    // restart_dependents: web restarts once, after the last instance, not per instance.
    assert!(eventually(BOOT, || {
        let w = web();
        w.restarts >= 1 && w.ready
    }));
    assert!(b.healthy());
    assert_eq!(web().restarts, 1, "{}", b.pid1.output());

    // One instance: only it (the `#` goes percent-encoded on the wire).
    let before = b.workers();
    b.ctl_ok(&["restart", "worker#2"]);
    assert!(eventually(BOOT, || b.workers()[1].ready && web().restarts == 2));
    let after = b.workers();
    assert_ne!(after[1].pid, before[1].pid);
    assert_eq!(after[0].pid, before[0].pid);
    assert_eq!(after[2].pid, before[2].pid);
    b.stop();
}

#[test]
fn a_reload_keeps_a_scale_until_the_file_changes_the_count() {
    let b = Box1::boot();
    b.ctl_ok(&["scale", "worker", "4"]);
    assert!(b.healthy(), "{}", b.pid1.output());
    let before: Vec<Option<i32>> = b.workers().iter().map(|u| u.pid).collect();
    // An unrelated change: the scale and every instance stay.
    b.s.config("", &UNITS.replace("exec sleep 300", "exec sleep 301"));
    let out = b.ctl_ok(&["reload"]);
    assert!(out.contains("restarted web"), "{out}");
    let now: Vec<Option<i32>> = b.workers().iter().map(|u| u.pid).collect();
    assert_eq!(now, before, "{out}");
    // The file's count changed: the file wins.
    b.s.config("", &UNITS.replace("instances = 3", "instances = 2"));
    let out = b.ctl_ok(&["reload"]);
    assert!(out.contains("stopped worker#3, worker#4"), "{out}");
    assert_eq!(b.workers().len(), 2);
    assert_eq!(b.status().instances.get("worker"), Some(&2));
    b.stop();
}

/// One raw HTTP/1.1 request on the socket; (status, body). The answers here are
/// whole bodies (no chunking).
fn http(b: &Box1, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(b.s.path("run/ctl.sock")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, rest.to_string())
}

#[test]
fn the_api_scales_by_path_and_takes_an_instance_percent_encoded() {
    let b = Box1::boot();
    let (code, body) = http(&b, "POST", "/v1/units/worker/scale", r#"{"instances": 4}"#);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("scaled worker from 3 to 4 instances"),
        "{body}"
    );
    let (code, body) = http(&b, "POST", "/v1/units/worker/scale", "");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("instances"), "{body}");
    let (code, _) = http(&b, "GET", "/v1/units/worker/scale", "");
    assert_eq!(code, 405);
    let (code, body) = http(&b, "POST", "/v1/units/web/scale", r#"{"instances": 2}"#);
    assert_eq!(code, 400, "{body}");
    let (code, _) = http(&b, "POST", "/v1/units/nope/scale", r#"{"instances": 2}"#);
    assert_eq!(code, 404);
    assert!(b.healthy());
    let before = b.workers();
    let (code, body) = http(&b, "POST", "/v1/units/worker%232/restart", "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"unit\":\"worker#2\""), "{body}");
    assert!(eventually(BOOT, || b.workers()[1].ready));
    let after = b.workers();
    assert_ne!(after[1].pid, before[1].pid);
    assert_eq!(after[0].pid, before[0].pid);
    assert_eq!(after[3].pid, before[3].pid);
    let (code, body) = http(&b, "GET", "/v1/units/worker/logs", "");
    assert_eq!(code, 400, "{body}");
    b.stop();
}
