//! bosun as PID 1: roles, start order, probes, failures, restarts, essential
//! units, the stop, reaping and tini mode. Every test runs the real binary as
//! PID 1 of a fresh pid namespace (`unshare --pid --fork --mount-proc`).

mod common;

use std::fs;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);

/// Time stamps in nanoseconds written by units: `NAME EVENT NANOS` lines.
fn events(s: &Scratch) -> Vec<(String, String, u128)> {
    s.read("events")
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next()?.parse().ok()?,
            ))
        })
        .collect()
}

fn at(ev: &[(String, String, u128)], unit: &str, what: &str) -> u128 {
    ev.iter()
        .find(|(u, w, _)| u == unit && w == what)
        .map(|e| e.2)
        .unwrap_or_else(|| panic!("no event {unit} {what} in {ev:?}"))
}

/// A shell snippet that appends `NAME EVENT NANOS` to the events file.
fn mark(name: &str, event: &str) -> String {
    format!("echo {name} {event} $(date +%s%N) >> {{dir}}/events")
}

#[test]
fn roles_select_units_with_aliases_and_unknown_roles_fail() {
    let s = Scratch::new();
    let body = format!(
        r#"
[roles]
backend = ["sql", "redis"]

[service.db]
roles = ["sql"]
run = "{a}; exec sleep 1000"

[service.cache]
roles = ["redis"]
run = "{b}; exec sleep 1000"

[service.web]
roles = ["web"]
run = "{c}; exec sleep 1000"

[service.always]
run = "{d}; exec sleep 1000"
"#,
        a = mark("db", "start"),
        b = mark("cache", "start"),
        c = mark("web", "start"),
        d = mark("always", "start")
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[("CONTAINERROLE", "backend")]);
    b.wait_for_output("boot complete", T);
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    let mut started: Vec<String> = events(&s).into_iter().map(|e| e.0).collect();
    started.sort();
    assert_eq!(started, ["always", "cache", "db"], "{}", b.output());

    // `check` shows the same selection, and an unknown role names the known ones.
    let (code, out, _) = bosun(
        &["check", "-c", cfg.to_str().unwrap(), "--roles", "web"],
        &[],
    );
    assert_eq!(code, 0);
    assert!(out.contains("web") && out.contains("always"), "{out}");
    let (code, _, err) = bosun(
        &["check", "-c", cfg.to_str().unwrap(), "--roles", "wbe"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("wbe") && err.contains("web") && err.contains("sql"),
        "{err}"
    );

    // bosun run with an unknown role refuses to start anything.
    let s2 = Scratch::new();
    let cfg2 = s2.config("", &body);
    let mut b2 = Pid1::run(&s2, &cfg2, &[("CONTAINERROLE", "nosuch")]);
    assert_eq!(b2.wait(T), 2, "{}", b2.output());
    assert!(s2.read("events").is_empty());
}

#[test]
fn units_start_after_dependencies_are_ready_and_independent_ones_overlap() {
    let s = Scratch::new();
    // a is ready only once its file exists (written 300 ms after start);
    // b and c both wait for a and must overlap; d waits for b and c.
    let body = format!(
        r#"
[service.a]
run = "{a}; sleep 0.3; touch {{dir}}/a.ready; {ar}; exec sleep 1000"
ready = {{ file = "{{dir}}/a.ready", timeout = "10s", interval = "20ms" }}

[service.b]
after = ["a"]
run = "{b}; sleep 0.3; {be}; exec sleep 1000"
start_secs = "400ms"

[service.c]
after = ["a"]
run = "{c}; sleep 0.3; {ce}; exec sleep 1000"
start_secs = "400ms"

[task.d]
after = ["b", "c"]
run = "{d}"
"#,
        a = mark("a", "start"),
        ar = mark("a", "ready"),
        b = mark("b", "start"),
        be = mark("b", "end"),
        c = mark("c", "start"),
        ce = mark("c", "end"),
        d = mark("d", "start"),
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", T);
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    let ev = events(&s);
    assert!(
        at(&ev, "b", "start") >= at(&ev, "a", "ready"),
        "b before a ready: {ev:?}"
    );
    assert!(
        at(&ev, "c", "start") >= at(&ev, "a", "ready"),
        "c before a ready: {ev:?}"
    );
    // Parallel: each of b and c started before the other finished its 300 ms.
    assert!(
        at(&ev, "b", "start") < at(&ev, "c", "end"),
        "b and c did not overlap: {ev:?}"
    );
    assert!(
        at(&ev, "c", "start") < at(&ev, "b", "end"),
        "b and c did not overlap: {ev:?}"
    );
    // b and c are ready 400 ms after bosun spawned them; their "start" marks are
    // written a few ms later by the shell (a `date` under load), so allow 100 ms.
    assert!(
        at(&ev, "d", "start") >= at(&ev, "b", "start") + 300_000_000,
        "{ev:?}"
    );
    assert!(
        at(&ev, "d", "start") >= at(&ev, "c", "start") + 300_000_000,
        "{ev:?}"
    );
}

/// Boots one service with `ready` and returns (exit code after SIGTERM or on its own, output).
fn boot_with_probe(s: &Scratch, run: &str, ready: &str, extra: &str) -> (i32, String) {
    let body = format!(
        "[service.probed]\nrun = {run:?}\nready = {ready}\n{extra}\n\n[task.after_probed]\nafter = [\"probed\"]\nrun = \"{}\"\n",
        mark("after_probed", "start")
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(s, &cfg, &[]);
    let booted = eventually(T, || {
        b.stderr().contains("boot complete") || b.stderr().contains("boot failed")
    });
    assert!(booted, "{}", b.output());
    if b.stderr().contains("boot complete") {
        b.signal(SIGTERM);
    }
    let code = b.wait(T);
    (code, b.output())
}

#[test]
fn tcp_probe_passes_and_times_out() {
    let s = Scratch::new();
    let (code, out) = boot_with_probe(
        &s,
        "exec python3 -c 'import socket,time; time.sleep(0.3); s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", 18931)); s.listen(); time.sleep(1000)'",
        "{ tcp = \"127.0.0.1:18931\", timeout = \"10s\" }",
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(s.read("events").contains("after_probed"), "{out}");

    let s = Scratch::new();
    let (code, out) = boot_with_probe(
        &s,
        "exec sleep 1000",
        "{ tcp = \"127.0.0.1:18932\", timeout = \"500ms\" }",
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("probed") && out.contains("ready probe tcp timed out"),
        "{out}"
    );
    assert!(
        !s.read("events").contains("after_probed"),
        "dependent started after a failed probe"
    );
}

#[test]
fn a_wait_for_timeout_names_the_gates_last_error_not_a_zero_wait() {
    // The gate's server answers 503, each after 50 ms: every attempt fails, and the one
    // after the last 500 ms pause starts with no time left. That one used to be the
    // reason given: "no answer within 0ns".
    let s = Scratch::new();
    let server = "import http.server, time\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        time.sleep(0.05)\n        self.send_response(503)\n        self.end_headers()\nhttp.server.HTTPServer((\"127.0.0.1\", 18945), H).serve_forever()\n";
    let body = format!(
        "[service.busy]\nrun = [\"python3\", \"-c\", {server:?}]\n\n[service.gated]\nrun = \"{}; exec sleep 1000\"\nwait_for = [\"http://127.0.0.1:18945/\"]\nwait_for_timeout = \"3s\"\n",
        mark("gated", "start")
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    assert_eq!(b.wait(T), 1, "{}", b.output());
    let out = b.output();
    let line = out
        .lines()
        .find(|l| l.contains("wait_for http://127.0.0.1:18945/ timed out after 3s"))
        .unwrap_or_else(|| panic!("no wait_for timeout line in {out}"));
    assert!(
        line.contains("HTTP 503") && !line.contains("no answer within"),
        "{line}"
    );
    assert!(s.read("events").is_empty(), "gated started: {out}");
}

#[test]
fn http_probe_needs_a_2xx() {
    let s = Scratch::new();
    let run = format!("cd {} && mkdir -p www && echo ok > www/health && exec python3 -m http.server --bind 127.0.0.1 --directory www 18941", s.dir.path().display());
    let (code, out) = boot_with_probe(
        &s,
        &run,
        "{ http = \"http://127.0.0.1:18941/health\", timeout = \"10s\" }",
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(s.read("events").contains("after_probed"));

    let s = Scratch::new();
    let run = format!("cd {} && mkdir -p www && exec python3 -m http.server --bind 127.0.0.1 --directory www 18942", s.dir.path().display());
    let (code, out) = boot_with_probe(
        &s,
        &run,
        "{ http = \"http://127.0.0.1:18942/missing\", timeout = \"1s\" }",
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("HTTP 404"), "{out}");
}

#[test]
fn exec_probe_runs_as_a_command_and_times_out() {
    let s = Scratch::new();
    let flag = s.path("flag");
    let run = format!("sleep 0.2; touch {}; exec sleep 1000", flag.display());
    let ready = format!(
        "{{ exec = [\"test\", \"-e\", \"{}\"], timeout = \"10s\" }}",
        flag.display()
    );
    let (code, out) = boot_with_probe(&s, &run, &ready, "");
    assert_eq!(code, 0, "{out}");
    assert!(s.read("events").contains("after_probed"));

    let s = Scratch::new();
    let (code, out) = boot_with_probe(
        &s,
        "exec sleep 1000",
        "{ exec = \"exit 3\", timeout = \"600ms\" }",
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ready probe exec timed out") && out.contains("exit 3"),
        "{out}"
    );
}

#[test]
fn file_log_and_notify_probes() {
    let s = Scratch::new();
    let (code, out) = boot_with_probe(
        &s,
        "echo starting; sleep 0.2; echo 'database system is ready to accept connections'; exec sleep 1000",
        "{ log = \"ready to accept\", timeout = \"10s\" }",
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("probed | database system is ready"),
        "prefixed output missing: {out}"
    );
    assert!(s.read("events").contains("after_probed"));

    let s = Scratch::new();
    let (code, out) = boot_with_probe(
        &s,
        "echo nope; exec sleep 1000",
        "{ log = \"never printed\", timeout = \"500ms\" }",
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ready probe log timed out"), "{out}");

    let s = Scratch::new();
    let notify = "sleep 0.2; python3 -c 'import socket,os; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b\"STATUS=warming up\\nREADY=1\", os.environ[\"NOTIFY_SOCKET\"])'; exec sleep 1000";
    let (code, out) = boot_with_probe(&s, notify, "{ notify = true, timeout = \"10s\" }", "");
    assert_eq!(code, 0, "{out}");
    assert!(s.read("events").contains("after_probed"));
    assert!(out.contains("warming up"), "STATUS= not logged: {out}");

    let s = Scratch::new();
    let (code, out) = boot_with_probe(
        &s,
        "exec sleep 1000",
        "{ file = \"/nonexistent/bosun-flag\", timeout = \"300ms\" }",
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ready probe file timed out"), "{out}");
}

#[test]
fn postgres_probe_against_a_real_postgresql() {
    let s = Scratch::new();
    let pg = Pg::new(&s, 55432);
    let body = format!(
        r#"{units}
[task.query]
after = ["postgres"]
run = "{mark}"
"#,
        units = pg.units(),
        mark = mark("query", "start"),
    );
    let cfg = s.config("stop_budget = \"60s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", Duration::from_secs(90));
    assert!(s.read("events").contains("query"), "{}", b.output());
    b.signal(SIGTERM);
    assert_eq!(b.wait(Duration::from_secs(60)), 0, "{}", b.output());
    // SIGINT = fast shutdown: PostgreSQL logs a clean shutdown.
    assert!(
        b.output().contains("database system is shut down"),
        "{}",
        b.output()
    );
}

#[test]
fn failed_task_stops_the_boot_with_exit_1_and_nothing_after_it_starts() {
    let s = Scratch::new();
    let body = format!(
        r#"
[task.migrate]
run = "echo migrating; exit 3"

[service.web]
after = ["migrate"]
run = "{w}; exec sleep 1000"

[service.independent]
run = "exec sleep 1000"
"#,
        w = mark("web", "start")
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    assert_eq!(b.wait(T), 1, "{}", b.output());
    let out = b.output();
    assert!(
        out.contains("boot failed") && out.contains("migrate") && out.contains("exit 3"),
        "{out}"
    );
    assert!(
        s.read("events").is_empty(),
        "web started after a failed task: {out}"
    );
}

#[test]
fn crash_loop_backs_off_exponentially_then_goes_fatal() {
    let s = Scratch::new();
    let body = format!(
        r#"
[service.crashy]
run = "{m}; exit 1"
backoff = {{ initial = "100ms", max = "2s", reset_after = "60s" }}
start_limit = {{ burst = 5, interval = "60s" }}

[service.steady]
run = "exec sleep 1000"
"#,
        m = mark("crashy", "start")
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    // During boot a unit going fatal fails the boot.
    assert_eq!(b.wait(T), 1, "{}", b.output());
    let out = b.output();
    assert!(out.contains("giving up (start_limit)"), "{out}");
    let starts: Vec<u128> = events(&s).iter().map(|e| e.2).collect();
    assert_eq!(starts.len(), 5, "burst = 5 starts: {starts:?}\n{out}");
    let gaps: Vec<f64> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e6)
        .collect();
    // 100, 200, 400, 800 ms ±20 % jitter (plus spawn time).
    for (i, g) in gaps.iter().enumerate() {
        let base = 100.0 * f64::from(1u32 << i);
        assert!(
            *g >= base * 0.8 - 5.0 && *g <= base * 1.2 + 150.0,
            "gap {i} = {g:.0} ms, want ~{base} ms: {gaps:?}"
        );
    }
}

#[test]
fn a_service_restarts_after_boot_and_shows_fatal_after_its_start_limit() {
    let s = Scratch::new();
    // Ready at first, then crashes (on its 2nd+ start it dies at once).
    let body = format!(
        r#"
[service.flaky]
run = "{m}; if [ -e {{dir}}/ran ]; then exit 7; fi; touch {{dir}}/ran; sleep 1.5; exit 7"
start_secs = "200ms"
backoff = {{ initial = "50ms", max = "1s" }}
start_limit = {{ burst = 3, interval = "60s" }}

[service.steady]
run = "exec sleep 1000"
start_secs = "100ms"
"#,
        m = mark("flaky", "start")
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", T);
    b.wait_for_output("giving up (start_limit)", T);
    // Not essential: bosun keeps running with the unit fatal.
    std::thread::sleep(Duration::from_millis(300));
    assert!(b.code.is_none());
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    assert_eq!(events(&s).len(), 3, "{}", b.output());
}

#[test]
fn essential_unit_exit_code_becomes_bosuns() {
    for (run, want) in [
        ("sleep 0.3; exit 42", 42),
        ("sleep 0.3; kill -USR1 $$$$", 128 + 10),
    ] {
        let s = Scratch::new();
        let body = format!(
            r#"
[service.main]
essential = true
restart = "never"
run = "{run}"
start_secs = "100ms"

[service.helper]
run = "trap '{m}; exit 0' TERM; while :; do sleep 0.05; done"
"#,
            m = mark("helper", "stopped")
        );
        let cfg = s.config("stop_budget = \"10s\"", &body);
        let mut b = Pid1::run(&s, &cfg, &[]);
        assert_eq!(b.wait(T), want, "{}", b.output());
        assert!(
            s.read("events").contains("helper stopped"),
            "the rest was not stopped in order: {}",
            b.output()
        );
    }
}

#[test]
fn stop_runs_in_reverse_order_kills_process_groups_and_escalates_to_sigkill() {
    let s = Scratch::new();
    let body = format!(
        r#"
[service.db]
run = "trap '{dbs}; exit 0' TERM; {dbu}; while :; do sleep 0.05; done"
start_secs = "100ms"

[service.app]
after = ["db"]
# Forks grandchildren in its process group; each must get the signal.
run = "for i in 1 2 3; do (trap '{gcs}; exit 0' TERM; while :; do sleep 0.05; done) & done; trap '{apps}; exit 0' TERM; while :; do sleep 0.05; done"
start_secs = "100ms"

[service.stubborn]
after = ["db"]
run = "trap '' TERM; {stu}; while :; do sleep 0.05; done"
start_secs = "100ms"
stop_timeout = "500ms"
"#,
        dbs = mark("db", "stopped"),
        dbu = mark("db", "up"),
        gcs = mark("grandchild", "stopped"),
        apps = mark("app", "stopped"),
        stu = mark("stubborn", "up"),
    );
    let cfg = s.config("stop_budget = \"20s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", T);
    let t0 = std::time::Instant::now();
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    let ev = events(&s);
    let grandchildren = ev.iter().filter(|e| e.0 == "grandchild").count();
    assert_eq!(grandchildren, 3, "every grandchild got the signal: {ev:?}");
    assert!(
        at(&ev, "db", "stopped") > at(&ev, "app", "stopped"),
        "db stopped before its dependent: {ev:?}"
    );
    let out = b.output();
    assert!(
        out.contains("SIGKILL"),
        "stubborn unit was not SIGKILLed: {out}"
    );
    // db waits for stubborn's 500 ms grace, not more.
    assert!(t0.elapsed() < Duration::from_secs(10), "{out}");
}

#[test]
fn sigterm_during_boot_stops_cleanly() {
    let s = Scratch::new();
    let body = format!(
        r#"
[service.slow]
run = "trap '{m}; exit 0' TERM; echo up; while :; do sleep 0.05; done"
ready = {{ file = "/nonexistent/never", timeout = "60s" }}

[service.waiting]
after = ["slow"]
run = "{w}; exec sleep 1000"
"#,
        m = mark("slow", "stopped"),
        w = mark("waiting", "start")
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("slow | up", T);
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    let log = s.read("events");
    assert!(log.contains("slow stopped"), "{}", b.output());
    assert!(!log.contains("waiting start"), "{}", b.output());
}

#[test]
fn second_sigterm_forces_the_stop() {
    let s = Scratch::new();
    let body = "[service.slowstop]\nrun = \"trap 'sleep 30; exit 0' TERM; while :; do sleep 0.05; done\"\nstart_secs = \"100ms\"\nstop_timeout = \"60s\"\n";
    let cfg = s.config("stop_budget = \"120s\"", body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", T);
    b.signal(SIGTERM);
    b.wait_for_output("stopping 1 units", T);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = std::time::Instant::now();
    b.signal(SIGTERM);
    let code = b.wait(T);
    assert!(t0.elapsed() < Duration::from_secs(10), "{}", b.output());
    assert!(b.output().contains("forcing the stop"), "{}", b.output());
    assert_eq!(code, 0, "{}", b.output());
}

#[test]
fn stop_over_budget_exits_1() {
    let s = Scratch::new();
    let body = "[service.slowstop]\nrun = \"trap '' TERM; while :; do sleep 0.05; done\"\nstart_secs = \"100ms\"\nstop_timeout = \"60s\"\n";
    let cfg = s.config("stop_budget = \"1s\"", body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", T);
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 1, "{}", b.output());
    assert!(
        b.output().contains("ran out of its budget"),
        "{}",
        b.output()
    );
}

#[test]
fn leftover_daemons_are_swept_with_term_before_exit() {
    let s = Scratch::new();
    // The unit double-forks a daemon into its own session (out of the unit's
    // process group), then exits: only the final sweep can find it.
    let body = format!(
        r#"
[task.spawn_daemon]
run = "setsid sh -c 'trap \"{m}; exit 0\" TERM; while :; do sleep 0.05; done' > /dev/null 2>&1 < /dev/null & exit 0"

[service.main]
after = ["spawn_daemon"]
run = "exec sleep 1000"
start_secs = "100ms"
"#,
        m = mark("daemon", "swept")
    );
    let cfg = s.config("stop_budget = \"10s\"\nsweep_timeout = \"3s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", T);
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    assert!(s.read("events").contains("daemon swept"), "{}", b.output());
    assert!(b.output().contains("leftover processes"), "{}", b.output());
}

/// Zombie processes that are descendants of host pid `root`.
fn zombies_under(root: i32) -> usize {
    let mut parent = std::collections::HashMap::new();
    let mut zombie = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| stat[i + 2..].to_string()) else {
            continue;
        };
        let f: Vec<&str> = rest.split(' ').collect();
        parent.insert(pid, f[1].parse::<i32>().unwrap_or(0));
        if f[0] == "Z" {
            zombie.push(pid);
        }
    }
    zombie
        .into_iter()
        .filter(|z| {
            let mut p = *z;
            for _ in 0..64 {
                match parent.get(&p) {
                    Some(&pp) if pp == root => return true,
                    Some(&pp) if pp > 1 => p = pp,
                    _ => return false,
                }
            }
            false
        })
        .count()
}

#[test]
fn a_thousand_double_forked_orphans_leave_no_zombies() {
    let s = Scratch::new();
    let body = format!(
        r#"
[task.orphans]
run = "i=0; while [ $i -lt 1000 ]; do (true &) ; i=$((i+1)); done; {m}"

[service.main]
after = ["orphans"]
run = "exec sleep 1000"
start_secs = "100ms"
"#,
        m = mark("orphans", "done")
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", Duration::from_secs(60));
    let root = b.host_pid();
    assert!(
        eventually(Duration::from_secs(5), || zombies_under(root) == 0),
        "zombies left: {}",
        zombies_under(root)
    );
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
}

#[test]
fn tini_mode_forwards_signals_and_returns_the_exit_code() {
    let s = Scratch::new();
    let mut b = Pid1::start(&s, &["--", "sh", "-c", "exit 5"], &[]);
    assert_eq!(b.wait(T), 5, "{}", b.output());

    let s = Scratch::new();
    let script = format!("trap 'echo got USR1 >> {0}/sig' USR1; trap 'echo got TERM >> {0}/sig; exit 7' TERM; echo up > {0}/up; while :; do sleep 0.05; done", s.dir.path().display());
    let mut b = Pid1::start(&s, &["--", "sh", "-c", &script], &[]);
    assert!(eventually(T, || s.path("up").exists()), "{}", b.output());
    b.signal(SIGUSR1);
    assert!(
        eventually(T, || s.read("sig").contains("got USR1")),
        "{}",
        b.output()
    );
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 7, "{}", b.output());
    assert!(s.read("sig").contains("got TERM"));

    // Killed by a signal: 128+n.
    let s = Scratch::new();
    let mut b = Pid1::start(&s, &["--", "sh", "-c", "kill -KILL $$"], &[]);
    assert_eq!(b.wait(T), 128 + 9, "{}", b.output());

    // Orphans are reaped in tini mode too.
    let s = Scratch::new();
    let script = format!(
        "i=0; while [ $i -lt 200 ]; do (true &); i=$((i+1)); done; touch {}/done; sleep 1",
        s.dir.path().display()
    );
    let mut b = Pid1::start(&s, &["--", "sh", "-c", &script], &[]);
    assert!(eventually(T, || s.path("done").exists()));
    let root = b.host_pid();
    assert!(eventually(Duration::from_secs(3), || zombies_under(root) == 0));
    assert_eq!(b.wait(T), 0);
}

#[test]
fn broken_configs_fail_check_with_code_2_and_a_located_message() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/configs/broken");
    let mut n = 0;
    for e in fs::read_dir(dir).expect("tests/configs/broken").flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{} has no '# expect:' line", path.display()));
        let (code, out, err) = bosun(&["check", "-c", path.to_str().unwrap()], &[]);
        assert_eq!(code, 2, "{}: want exit 2\n{out}{err}", path.display());
        assert!(
            err.contains(expect),
            "{}: want {expect:?} in:\n{err}",
            path.display()
        );
        assert!(
            !err.contains("panicked"),
            "{}: panic\n{err}",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 30, "only {n} broken configs");
}

#[test]
fn prefixed_output_keeps_lines_whole_and_streams_apart() {
    let s = Scratch::new();
    let body = r#"
[service.chatty1]
run = "i=0; while [ $i -lt 300 ]; do printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%s\n' $i; i=$((i+1)); done; echo to-stderr >&2; exec sleep 1000"
start_secs = "300ms"

[service.chatty2]
run = "i=0; while [ $i -lt 300 ]; do printf 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb%s\n' $i; i=$((i+1)); done; printf 'no newline at end'; exec sleep 1000"
start_secs = "300ms"
"#;
    let cfg = s.config("stop_budget = \"10s\"", body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", T);
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0);
    let out = b.stdout();
    let a = out
        .lines()
        .filter(|l| l.starts_with("chatty1 | aaaa"))
        .count();
    let c = out
        .lines()
        .filter(|l| l.starts_with("chatty2 | bbbb"))
        .count();
    assert_eq!((a, c), (300, 300), "{out}");
    for l in out.lines() {
        assert!(
            l.starts_with("chatty1 | ") || l.starts_with("chatty2 | "),
            "torn line {l:?}"
        );
    }
    assert!(out.contains("chatty2 | no newline at end"));
    assert!(
        b.stderr().contains("chatty1 | to-stderr"),
        "stderr stream not kept"
    );
}

/// `n` services that mark their start in `{dir}/events`, then sleep.
fn many_sleepers(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "\n[service.u{i}]\nrun = \"{}; exec sleep 1000\"\n",
                mark("u", "start")
            )
        })
        .collect()
}

#[test]
fn more_units_than_the_fd_limit_allows_fail_the_boot_before_any_starts() {
    // Hard limit 256: 64 for API connections, 64 for bosun, 2 per unit: 64 fit.
    let s = Scratch::new();
    let cfg = s.config("", &many_sleepers(200));
    let cfg = cfg.to_str().expect("utf8 path");
    let mut b = Pid1::start_in(
        &s,
        &["prlimit", "--nofile=256:256"],
        &["run", "-c", cfg],
        &[],
    );
    assert_eq!(b.wait(T), 2, "{}", b.output());
    let out = b.output();
    assert!(
        out.contains("200 units need about 528 open files")
            && out.contains("open-files limit is 256 (hard limit 256")
            && out.contains("fits 64 units")
            && out.contains("--ulimit nofile="),
        "{out}"
    );
    assert!(s.read("events").is_empty(), "units started: {out}");

    // At the limit's size, every unit starts.
    let s = Scratch::new();
    let cfg = s.config("", &many_sleepers(64));
    let cfg = cfg.to_str().expect("utf8 path");
    let mut b = Pid1::start_in(
        &s,
        &["prlimit", "--nofile=256:256"],
        &["run", "-c", cfg],
        &[],
    );
    let all = eventually(T, || s.read("events").lines().count() >= 64);
    b.signal(libc::SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    assert!(all, "not all 64 started: {}", b.output());
}

/// `VmRSS` and `RssAnon` of `pid` in KiB.
fn rss_kib(pid: i32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

#[test]
fn a_hundred_units_keep_bosuns_own_memory_small() {
    // The ceiling is generous (a debug build measured 21 MiB RSS, 3.7 MiB of it
    // anonymous, with 100 units): it catches a per-unit cost gone wrong (a buffer
    // per unit that is megabytes, a leak per status query), not a few pages.
    let s = Scratch::new();
    let cfg = s.config("", &many_sleepers(100));
    let mut b = Pid1::run(&s, &cfg, &[]);
    assert!(
        eventually(T, || s.read("events").lines().count() >= 100),
        "not all 100 started: {}",
        b.output()
    );
    let sock = s.path("run/ctl.sock");
    let sock = sock.to_str().expect("utf8 path");
    for _ in 0..20 {
        let (code, out, err) = bosun(&["ctl", "--socket", sock, "status"], &[]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (rss, anon) = rss_kib(b.host_pid());
    b.signal(libc::SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    assert!(
        anon > 0 && anon <= 16 * 1024,
        "anonymous RSS {anon} KiB > 16 MiB"
    );
    assert!(rss <= 64 * 1024, "RSS {rss} KiB > 64 MiB (debug build)");
}
