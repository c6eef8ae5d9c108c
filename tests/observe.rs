//! Watching units: the logs of several units at once (`ctl logs web worker`,
//! `role:`, `all`, `--since`, `--json`, `--timestamps`, `-f`, `/v1/logs`), what
//! each unit's process tree uses (`ctl status --json`, `/metrics`, `ctl top`),
//! the `max_memory` guard, and an idle bosun that burns no CPU for any of it.
//! Against a real bosun running as PID 1 (see `common`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bosun_core::status::{DaemonStatus, UnitStatus};
use common::{bosun_bin, eventually, Pid1, Scratch};

const BOOT: Duration = Duration::from_secs(30);

/// A bosun under test and its socket.
struct Daemon {
    pid1: Pid1,
    _scratch: Scratch,
    socket: PathBuf,
}

impl Daemon {
    fn start(units: &str) -> Daemon {
        let scratch = Scratch::new();
        let config = scratch.config("", units);
        let pid1 = Pid1::run(&scratch, &config, &[]);
        let socket = scratch.path("run/ctl.sock");
        let d = Daemon {
            pid1,
            _scratch: scratch,
            socket,
        };
        let up = eventually(BOOT, || d.ctl(&["health"]).0 == 0);
        assert!(up, "bosun never became healthy\n{}", d.pid1.output());
        d
    }

    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let sock = self.socket.to_str().expect("utf8 path");
        let mut all = vec!["ctl", "--socket", sock];
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

    fn unit(&self, name: &str) -> UnitStatus {
        self.status()
            .units
            .into_iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("no unit {name}"))
    }

    /// One GET on the socket: (status, body, de-chunked).
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("chunked") {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        (code, body)
    }

    /// bosun's own CPU ticks (utime + stime), seen from the host.
    fn ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid1.host_pid()))
            .expect("bosun's /proc stat");
        let f: Vec<&str> = stat[stat.rfind(')').expect("comm") + 1..]
            .split_whitespace()
            .collect();
        f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `ping` and `pong` take turns through files in the scratch dir (each line is
/// written only after the other unit's previous one), so their arrival order
/// is known: p1 q1 p2 q2 p3 q3.
const PING_PONG: &str = r#"
[service.ping]
roles = ["front"]
run = "for i in 1 2 3; do [ $i = 1 ] || until [ -e {dir}/q$((i-1)) ]; do sleep 0.1; done; sleep 0.2; echo p$i; touch {dir}/p$i; done; exec sleep 1000"

[service.pong]
roles = ["back"]
run = "for i in 1 2 3; do until [ -e {dir}/p$i ]; do sleep 0.1; done; sleep 0.2; echo q$i >&2; touch {dir}/q$i; done; exec sleep 1000"

[service.worker]
instances = 2
run = "echo hello from $BOSUN_INSTANCE; exec sleep 1000"

[service.ticker]
roles = ["front"]
run = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done"
"#;

#[test]
fn logs_of_several_units_interleave_in_arrival_order_under_their_names() {
    let d = Daemon::start(PING_PONG);
    let done = eventually(BOOT, || d.ctl_ok(&["logs", "pong"]).contains("q3"));
    assert!(done, "pong never wrote q3\n{}", d.pid1.output());

    // Two units: interleaved as bosun read them, each line under its name.
    let out = d.ctl_ok(&["logs", "ping", "pong"]);
    assert_eq!(
        out,
        "ping | p1\npong | q1\nping | p2\npong | q2\nping | p3\npong | q3\n"
    );
    // -n counts lines of all of them together.
    assert_eq!(
        d.ctl_ok(&["logs", "-n", "2", "ping", "pong"]),
        "ping | p3\npong | q3\n"
    );
    // One unit named as it is: its lines as they always were.
    assert_eq!(d.ctl_ok(&["logs", "ping"]), "p1\np2\np3\n");

    // role:NAME, a service with instances, all.
    let front = d.ctl_ok(&["logs", "role:front"]);
    assert!(
        front.contains("ping | p1\n") && front.contains("ticker | tick 1\n"),
        "{front}"
    );
    assert!(!front.contains("pong |"), "{front}");
    let workers = d.ctl_ok(&["logs", "worker"]);
    assert!(workers.contains("worker#1 | hello from 1\n"), "{workers}");
    assert!(workers.contains("worker#2 | hello from 2\n"), "{workers}");
    let all = d.ctl_ok(&["logs", "all"]);
    for l in [
        "ping | p1",
        "pong | q3",
        "worker#2 | hello from 2",
        "ticker | tick 1",
    ] {
        assert!(all.contains(l), "no {l:?} in\n{all}");
    }
    let (code, _, err) = d.ctl(&["logs", "ping", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no unit named \"nope\""), "{err}");

    // --timestamps: the time first, then the name; stderr marked.
    let stamped = d.ctl_ok(&["logs", "--timestamps", "ping", "pong"]);
    let first: Vec<&str> = stamped.lines().take(2).collect();
    assert!(first[0].ends_with("Z ping | p1"), "{stamped}");
    assert!(first[1].ends_with("Z pong | [stderr] q1"), "{stamped}");
    assert!(
        first[0].starts_with("20") && first[0].as_bytes()[10] == b'T',
        "{stamped}"
    );

    // --json: one record per line, with its unit and an increasing sequence.
    let json = d.ctl_ok(&["logs", "--json", "ping", "pong"]);
    let recs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let units: Vec<&str> = recs.iter().map(|r| r["unit"].as_str().unwrap()).collect();
    assert_eq!(units, ["ping", "pong", "ping", "pong", "ping", "pong"]);
    assert_eq!(recs[1]["stream"], "stderr");
    assert_eq!(recs[1]["text"], "q1");
    let seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(recs.iter().all(|r| r["at_ms"].as_u64().unwrap() > 0));

    // --since: ping and pong went quiet; the ticker did not.
    std::thread::sleep(Duration::from_secs(3));
    let recent = d.ctl_ok(&["logs", "--since", "1s", "ping", "pong", "ticker"]);
    assert!(recent.contains("ticker | tick"), "{recent}");
    assert!(
        !recent.contains("ping |") && !recent.contains("pong |"),
        "{recent}"
    );
    let (code, _, err) = d.ctl(&["logs", "--since", "a while", "ping"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--since \"a while\": expected a duration"),
        "{err}"
    );

    // The same through the API.
    let (code, body) = d.get("/v1/logs?units=ping,pong&n=2");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"unit\":\"ping\"") && body.contains("\"text\":\"q3\""),
        "{body}"
    );
    assert_eq!(body.lines().count(), 2, "{body}");
    let (code, body) = d.get("/v1/units/role:back/logs");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.lines().count(), 3, "{body}");
    let (code, body) = d.get("/v1/logs");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.get("/v1/logs?units=ping&since=soon");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.get("/v1/logs?units=ping,nope");
    assert_eq!(code, 404, "{body}");
}

#[test]
fn logs_follow_several_units_as_new_lines_come() {
    let d = Daemon::start(PING_PONG);
    let sock = d.socket.to_str().expect("utf8").to_string();
    let mut child = Command::new(bosun_bin())
        .args([
            "ctl", "--socket", &sock, "logs", "-f", "-n", "1", "ticker", "worker",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctl logs -f");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The backlog's one line, then ticks that come after it.
    let mut ticks = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    while ticks.len() < 4 && Instant::now() < until {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            let n: u64 = l
                .strip_prefix("ticker | tick ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l:?}"));
            ticks.push(n);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ticks.len(), 4, "followed {ticks:?}\n{}", d.pid1.output());
    assert!(ticks.windows(2).all(|w| w[0] + 1 == w[1]), "{ticks:?}");
}

#[test]
fn status_metrics_and_top_show_each_unit_trees_cpu_and_memory() {
    let d = Daemon::start(
        r#"
[service.burn]
run = "while :; do :; done"

[service.idle]
run = "exec sleep 1000"

[service.mem]
# The memory is in a child of the shell: the tree counts, not the main pid.
run = "python3 -c 'import time\nx = bytearray(50 * 1000 * 1000)\nfor i in range(0, len(x), 4096): x[i] = 1\nprint(\"allocated\", flush=True)\ntime.sleep(1000)'; exit 0"
"#,
    );
    assert!(
        eventually(BOOT, || d.ctl_ok(&["logs", "mem"]).contains("allocated")),
        "mem never allocated\n{}",
        d.pid1.output()
    );
    // A rate needs two samples: the first request may have none.
    let _ = d.status();
    std::thread::sleep(Duration::from_secs(1));
    let (burn, idle, mem) = (d.unit("burn"), d.unit("idle"), d.unit("mem"));
    let burn_cpu = burn.usage.cpu_percent.expect("burn's CPU rate");
    let idle_cpu = idle.usage.cpu_percent.expect("idle's CPU rate");
    assert!(burn_cpu > idle_cpu && burn_cpu > 1.0, "{burn:?} {idle:?}");
    assert!(burn.usage.cpu_seconds.unwrap_or(0.0) > 0.0, "{burn:?}");
    let mem_rss = mem.usage.rss_bytes.expect("mem's rss");
    assert!(mem_rss >= 45_000_000, "{mem:?}");
    assert!(
        idle.usage.rss_bytes.expect("idle's rss") < 20_000_000,
        "{idle:?}"
    );
    assert_eq!(mem.usage.processes, Some(2), "{mem:?}");
    // The raw JSON spells the fields so.
    let raw = d.ctl_ok(&["status", "--json"]);
    for f in [
        "\"cpu_percent\":",
        "\"cpu_seconds\":",
        "\"rss_bytes\":",
        "\"processes\":",
    ] {
        assert!(raw.contains(f), "no {f} in {raw}");
    }

    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert!(value("bosun_unit_memory_rss_bytes{unit=\"mem\"}") >= 45e6);
    assert!(value("bosun_unit_cpu_seconds_total{unit=\"burn\"}") > 0.0);
    assert_eq!(value("bosun_unit_processes{unit=\"mem\"}"), 2.0);
    assert_eq!(value("bosun_unit_memory_restarts_total{unit=\"mem\"}"), 0.0);

    // `ctl top -n 1`: one table, busiest first.
    let top = d.ctl_ok(&["top", "-n", "1"]);
    let lines: Vec<&str> = top.lines().collect();
    assert!(
        lines[0].starts_with("bosun ") && lines[0].contains("3 units"),
        "{top}"
    );
    let head: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        head,
        ["UNIT", "STATE", "PID", "CPU%", "RSS", "PROCS", "RESTARTS", "UPTIME"],
        "{top}"
    );
    assert_eq!(lines.len(), 5, "{top}");
    assert!(lines[2].starts_with("burn "), "{top}");
    let mem_row = lines
        .iter()
        .find(|l| l.starts_with("mem "))
        .expect("mem row");
    assert!(mem_row.contains('M'), "{top}");
}

#[test]
fn max_memory_restarts_a_unit_whose_tree_grows_past_it() {
    let d = Daemon::start(
        r#"
[service.hog]
max_memory = "40MB"
backoff = { initial = "100ms", max = "1s" }
start_limit = { burst = 100, interval = "10s" }
run = "python3 -c 'import time\nx = bytearray(80 * 1000 * 1000)\nfor i in range(0, len(x), 4096): x[i] = 1\nprint(\"allocated\", flush=True)\ntime.sleep(1000)'; exit 0"

[service.small]
max_memory = "500MB"
run = "exec sleep 1000"
"#,
    );
    // Counted when the guard stops it; a restart once it is down.
    let restarted = eventually(Duration::from_secs(60), || {
        let hog = d.unit("hog");
        hog.usage.memory_restarts >= 1 && hog.restarts >= 1
    });
    assert!(restarted, "{:?}\n{}", d.unit("hog"), d.pid1.output());
    assert_eq!(d.unit("small").usage.memory_restarts, 0);
    let logged = eventually(BOOT, || {
        d.pid1.output().contains("restarting hog: memory ")
            && d.pid1.output().contains(" over max_memory 40 MB")
    });
    assert!(logged, "{}", d.pid1.output());
    let (_, metrics) = d.get("/metrics");
    let n: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bosun_unit_memory_restarts_total{unit=\"hog\"}"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hog memory restarts in\n{metrics}"));
    assert!(n >= 1.0, "{metrics}");
}

#[test]
fn idle_bosun_burns_no_cpu_ticks_and_max_memory_costs_little() {
    // Without max_memory nothing in bosun wakes up while the units idle.
    let plain = Daemon::start(
        "[service.a]\nrun = \"exec sleep 1000\"\n\n[service.b]\nrun = \"exec sleep 1000\"\n",
    );
    std::thread::sleep(Duration::from_secs(1));
    let before = plain.ticks();
    std::thread::sleep(Duration::from_secs(10));
    let idle = plain.ticks() - before;
    drop(plain);
    // With it, one /proc scan every 5 s for the unit that sets it.
    let guarded = Daemon::start(
        "[service.a]\nrun = \"exec sleep 1000\"\nmax_memory = \"500MB\"\n\n[service.b]\nrun = \"exec sleep 1000\"\n",
    );
    std::thread::sleep(Duration::from_secs(1));
    let before = guarded.ticks();
    std::thread::sleep(Duration::from_secs(10));
    let with_guard = guarded.ticks() - before;
    eprintln!("bosun CPU ticks in 10 s idle: {idle} without max_memory, {with_guard} with it");
    assert_eq!(idle, 0, "an idle bosun used {idle} ticks in 10 s");
    assert!(
        with_guard <= 10,
        "the max_memory guard used {with_guard} ticks in 10 s"
    );
}

#[test]
fn a_follower_of_several_units_that_stops_reading_does_not_hold_bosun_up() {
    let d = Daemon::start(
        r#"
[service.spew1]
run = "until [ -e {dir}/go ]; do sleep 0.1; done; seq 1 200000 | sed 's/^/one /'; echo spew1 done; exec sleep 1000"

[service.spew2]
run = "until [ -e {dir}/go ]; do sleep 0.1; done; seq 1 200000 | sed 's/^/two /'; echo spew2 done; exec sleep 1000"
"#,
    );
    // A follower that sends its request and then reads nothing.
    let mut stalled = UnixStream::connect(&d.socket).expect("connect");
    let req = "GET /v1/logs?units=spew1,spew2&follow=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    stalled.write_all(req.as_bytes()).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(d._scratch.path("go"), "").expect("go");
    // bosun keeps reading the units and answering while the follower sleeps.
    let done = eventually(Duration::from_secs(120), || {
        assert_eq!(d.ctl(&["health"]).0, 0, "bosun stopped answering");
        d.ctl_ok(&["logs", "-n", "1", "spew1"]) == "spew1 done\n"
            && d.ctl_ok(&["logs", "-n", "1", "spew2"]) == "spew2 done\n"
    });
    assert!(done, "{}", d.pid1.output());
    // When it reads again, it is told what it missed.
    stalled
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        if String::from_utf8_lossy(&got).contains("lines skipped here") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("\"unit\":\"bosun\""),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.contains("lines skipped here: this reader was too slow"));
}
