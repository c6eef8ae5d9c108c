//! The fleet (`[fleet]`, `singleton = true`, `ctl fleet`), as a user meets it:
//! `bosun check` on fleet configs, and three bosun processes, each PID 1 of its own
//! PID namespace, sharing a real PostgreSQL on loopback.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::fleetdb::{Pg, PG_PASSWORD};
use common::{bosun, bosun_bin, eventually, Pid1, Scratch, SIGKILL, SIGTERM};

/// A fleet config with one singleton whose `stop_timeout` is `stop`.
fn fleet_config(s: &Scratch, lease_ttl: &str, stop: &str) -> String {
    let body = format!(
        r#"
[fleet]
database = "postgres://bosun:Sup3rSecretPw@127.0.0.1:5432/app"
name = "web-1"
lease_ttl = "{lease_ttl}"
renew_every = "1s"

[service.cron]
run = "exec sleep 300"
singleton = true
stop_timeout = "{stop}"
"#
    );
    s.config("", &body).to_str().expect("utf8").to_string()
}

#[test]
fn check_refuses_a_lease_ttl_too_short_for_a_singletons_stop_timeout() {
    let s = Scratch::new();
    let path = fleet_config(&s, "5s", "30s");
    let (code, out, err) = bosun(&["check", "-c", &path], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("lease_ttl"), "{err}");
    assert!(err.contains("stop_timeout"), "{err}");
    assert!(err.contains("`cron`"), "{err}");
    assert!(
        !format!("{out}{err}").contains("Sup3rSecretPw"),
        "{out}{err}"
    );
}

#[test]
fn run_refuses_a_lease_ttl_too_short_with_exit_2() {
    let s = Scratch::new();
    let path = fleet_config(&s, "5s", "30s");
    let mut b = Pid1::run(&s, Path::new(&path), &[]);
    assert_eq!(b.wait(Duration::from_secs(20)), 2, "{}", b.output());
    let out = b.output();
    assert!(
        out.contains("lease_ttl") && out.contains("stop_timeout"),
        "{out}"
    );
    assert!(!out.contains("Sup3rSecretPw"), "{out}");
}

#[test]
fn check_shows_the_fleet_and_the_singleton_without_the_password() {
    let s = Scratch::new();
    let path = fleet_config(&s, "20s", "2s");
    let (code, out, err) = bosun(&["check", "-c", &path], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("fleet: postgres://bosun:"), "{out}");
    assert!(out.contains("singleton"), "{out}");
    assert!(out.contains("[fleet]"), "{out}");
    assert!(
        !format!("{out}{err}").contains("Sup3rSecretPw"),
        "{out}{err}"
    );
}

#[test]
fn check_refuses_a_bad_fleet_database_url_without_printing_its_password() {
    let s = Scratch::new();
    let body = r#"
[fleet]
database = "postgres://bosun:Sup3rSecretPw@127.0.0.1:5432/app?sslmode=bogus"
name = "web-1"
"#;
    let path = s.config("", body);
    let (code, out, err) = bosun(&["check", "-c", path.to_str().expect("utf8")], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("[fleet] database"), "{err}");
    assert!(
        !format!("{out}{err}").contains("Sup3rSecretPw"),
        "{out}{err}"
    );
}

// ---- a real fleet ----------------------------------------------------------

/// One bosun of the fleet.
struct Peer {
    name: String,
    scratch: Scratch,
    bosun: Pid1,
}

impl Peer {
    fn start(name: &str, pg: &Pg, shared: &Path) -> Peer {
        Peer::start_with(name, pg, shared, "")
    }

    /// The peer's config with `extra` (more units) appended.
    fn config(name: &str, pg: &Pg, shared: &Path, lease_ttl: &str, extra: &str) -> String {
        let log = shared.join("cron.log");
        format!(
            r#"
[fleet]
database = "{url}"
name = "{name}"
lease_ttl = "{lease_ttl}"
renew_every = "500ms"

[service.web]
run = "exec sleep 300"
start_secs = "100ms"
stop_timeout = "1s"

[service.cron]
singleton = true
env = {{ PEER = "{name}" }}
run = "echo \"start $PEER $BOSUN_LEASE_TERM $(date +%s.%N)\" >> {log}; trap 'echo \"stop $PEER $(date +%s.%N)\" >> {log}; exit 0' TERM; while :; do sleep 0.05; done"
start_secs = "100ms"
stop_timeout = "1s"

[task.hello]
on_demand = true
run = "echo hello from $PEER"
env = {{ PEER = "{name}" }}
{extra}
"#,
            url = pg.url(),
            log = log.display(),
        )
    }

    /// A peer with more units (`extra`) than the standard web, cron and hello.
    fn start_with(name: &str, pg: &Pg, shared: &Path, extra: &str) -> Peer {
        let scratch = Scratch::new();
        let body = Peer::config(name, pg, shared, "5s", extra);
        let config = scratch.config("", &body);
        let bosun = Pid1::run(&scratch, &config, &[]);
        Peer {
            name: name.to_string(),
            scratch,
            bosun,
        }
    }

    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let sock = self.scratch.path("run/ctl.sock");
        let mut all = vec!["ctl", "--socket", sock.to_str().expect("utf8")];
        all.extend_from_slice(args);
        bosun(&all, &[])
    }
}

/// `start NAME TERM TIME` / `stop NAME TIME` lines of the shared singleton log.
#[derive(Debug)]
enum Line {
    Start { peer: String, term: i64, at: f64 },
    Stop { peer: String, at: f64 },
}

fn lines(log: &Path) -> Vec<Line> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["start", p, t, at] => Some(Line::Start {
                    peer: p.to_string(),
                    term: t.parse().ok()?,
                    at: at.parse().ok()?,
                }),
                ["stop", p, at] => Some(Line::Stop {
                    peer: p.to_string(),
                    at: at.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

fn starts(log: &Path) -> Vec<(String, i64, f64)> {
    lines(log)
        .into_iter()
        .filter_map(|l| match l {
            Line::Start { peer, term, at } => Some((peer, term, at)),
            _ => None,
        })
        .collect()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Each run of the singleton, as (peer, start, end): a start ends at its peer's
/// `stop` line, or at `killed[peer]` when that peer was SIGKILLed.
fn runs(log: &Path, killed: &[(String, f64)]) -> Vec<(String, f64, f64)> {
    let mut open: Vec<(String, f64)> = Vec::new();
    let mut done = Vec::new();
    for l in lines(log) {
        match l {
            Line::Start { peer, at, .. } => open.push((peer, at)),
            Line::Stop { peer, at } => {
                if let Some(i) = open.iter().position(|(p, _)| *p == peer) {
                    let (p, s) = open.remove(i);
                    done.push((p, s, at));
                }
            }
        }
    }
    for (p, s) in open {
        let end = killed
            .iter()
            .find(|(k, _)| *k == p)
            .map(|(_, t)| *t)
            .unwrap_or(f64::INFINITY);
        done.push((p, s, end));
    }
    done.sort_by(|a, b| a.1.total_cmp(&b.1));
    done
}

fn assert_no_overlap(log: &Path, killed: &[(String, f64)]) {
    let r = runs(log, killed);
    for w in r.windows(2) {
        assert!(
            w[1].1 >= w[0].2,
            "two copies of the singleton overlapped: {w:?}\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
    }
}

#[test]
fn a_singleton_runs_once_in_the_fleet_and_moves_when_its_holder_dies() {
    const T: Duration = Duration::from_secs(30);
    let pg = Pg::start();
    let shared = Scratch::new();
    let log = shared.path("cron.log");
    let mut peers: Vec<Peer> = ["peer-a", "peer-b", "peer-c"]
        .iter()
        .map(|n| Peer::start(n, &pg, shared.dir.path()))
        .collect();

    // Every peer boots (standby does not hold the boot up) and is healthy.
    for p in &peers {
        let healthy = eventually(T, || p.ctl(&["health"]).0 == 0);
        assert!(
            healthy,
            "{} never healthy:\n{}\n{:?}",
            p.name,
            p.bosun.output(),
            p.ctl(&["status"])
        );
    }
    // Exactly one runs it; the others show it as standby.
    assert!(
        eventually(T, || starts(&log).len() == 1),
        "no holder:\n{}",
        peers[0].bosun.output()
    );
    std::thread::sleep(Duration::from_secs(2));
    let first = starts(&log);
    assert_eq!(first.len(), 1, "more than one start: {first:?}");
    let (holder, term1, _) = first[0].clone();
    assert!(term1 >= 1, "{first:?}");
    for p in peers.iter().filter(|p| p.name != holder) {
        let standby = eventually(T, || p.ctl(&["status", "cron"]).1.contains("standby"));
        assert!(standby, "{}: {:?}", p.name, p.ctl(&["status", "cron"]));
    }

    // `ctl fleet` on a non-holder lists every peer and the holder.
    let other = peers
        .iter()
        .find(|p| p.name != holder)
        .expect("a second peer");
    let (code, out, err) = other.ctl(&["fleet"]);
    assert_eq!(code, 0, "{out}{err}");
    for p in &peers {
        assert!(out.contains(&p.name), "{} missing:\n{out}", p.name);
    }
    let cron_row = out
        .lines()
        .find(|l| l.starts_with("cron "))
        .unwrap_or_else(|| panic!("no cron row:\n{out}"));
    assert!(cron_row.contains(&holder), "{cron_row}");
    assert!(!out.contains(PG_PASSWORD), "{out}");
    let (code, json, _) = other.ctl(&["fleet", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("fleet JSON");
    assert_eq!(v["peers"].as_array().map(Vec::len), Some(3), "{json}");
    assert!(!json.contains(PG_PASSWORD), "{json}");

    // Metrics: live peers, the database, who holds the singleton.
    let metrics = |p: &Peer| {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "--unix-socket"])
            .arg(p.scratch.path("run/ctl.sock"))
            .arg("http://bosun/metrics")
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let m = metrics(other);
    assert!(m.contains("bosun_fleet_peers 3"), "{m}");
    assert!(m.contains("bosun_fleet_database_up 1"), "{m}");
    assert!(
        m.contains("bosun_unit_singleton_holder{unit=\"cron\"} 0"),
        "{m}"
    );
    let h = peers.iter().find(|p| p.name == holder).expect("holder");
    let m = metrics(h);
    assert!(
        m.contains("bosun_unit_singleton_holder{unit=\"cron\"} 1"),
        "{m}"
    );

    // `ctl fleet run` of an on-demand task: one ok row per peer, exit 0.
    let (code, out, err) = other.ctl(&["--timeout", "30", "fleet", "run", "hello"]);
    assert_eq!(code, 0, "{out}{err}");
    for p in &peers {
        let row = out
            .lines()
            .find(|l| l.starts_with(&p.name))
            .unwrap_or_else(|| panic!("no row for {}:\n{out}", p.name));
        assert!(row.contains("ok (exit 0)"), "{row}");
    }
    // The same command, read back by its id.
    let (code, json, err) = other.ctl(&["--timeout", "30", "fleet", "--json", "run", "hello"]);
    assert_eq!(code, 0, "{json}{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("command JSON");
    let id = v["id"].as_i64().expect("an id");
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--unix-socket"])
        .arg(other.scratch.path("run/ctl.sock"))
        .arg(format!("http://bosun/v1/fleet/commands/{id}"))
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    assert_eq!(v["action"], "run", "{v}");
    assert_eq!(v["succeeded"], true, "{v}");
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(3), "{v}");

    // A unit no peer has: refused, exit 1.
    let (code, out, err) = other.ctl(&["--timeout", "30", "fleet", "restart", "nosuch"]);
    assert_eq!(code, 1, "{out}{err}");

    // SIGKILL the holder: another peer takes over after the lease expires, with a
    // higher term, and never while the old copy could still run.
    let i = peers.iter().position(|p| p.name == holder).expect("holder");
    let mut dead = peers.remove(i);
    let host_pid = dead.bosun.host_pid();
    let st = Command::new("kill")
        .args(["-KILL", &host_pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let killed_at = now_secs();
    let _ = SIGKILL;
    dead.bosun.wait(T);
    let took_over = Instant::now();
    assert!(
        eventually(T, || starts(&log).len() == 2),
        "nobody took over:\n{}",
        peers[0].bosun.output()
    );
    let second = starts(&log)[1].clone();
    eprintln!(
        "takeover after SIGKILL: {:.2}s (lease_ttl 5s), {} -> {}",
        second.2 - killed_at,
        holder,
        second.0
    );
    assert_ne!(second.0, holder);
    assert!(second.1 > term1, "{second:?} after term {term1}");
    assert!(took_over.elapsed() < T);
    let killed = vec![(holder.clone(), killed_at)];
    assert_no_overlap(&log, &killed);

    // A clean stop of the new holder hands over too: stop line, then the last
    // peer starts it.
    let j = peers
        .iter()
        .position(|p| p.name == second.0)
        .expect("new holder");
    let mut leaving = peers.remove(j);
    leaving.bosun.signal(SIGTERM);
    assert_eq!(leaving.bosun.wait(T), 0, "{}", leaving.bosun.output());
    assert!(
        eventually(T, || starts(&log).len() == 3),
        "the last peer never took over:\n{}",
        peers[0].bosun.output()
    );
    assert_eq!(starts(&log)[2].0, peers[0].name);
    assert_no_overlap(&log, &killed);

    let mut last = peers.remove(0);
    last.bosun.signal(SIGTERM);
    assert_eq!(last.bosun.wait(T), 0, "{}", last.bosun.output());
    assert_no_overlap(&log, &killed);
    let _ = bosun_bin();
}

/// `name`'s state in `p`'s `ctl fleet`: the table's STATE column and the JSON's `state`
/// (the JSON is `GET /v1/fleet`'s).
/// A `ctl` that fails (the socket not up yet) is its exit code and error instead.
fn fleet_state(p: &Peer, name: &str) -> (String, String) {
    let (code, out, err) = p.ctl(&["fleet"]);
    if code != 0 {
        return (format!("ctl fleet exit {code}: {out}{err}"), String::new());
    }
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name));
    let word = row
        .and_then(|r| {
            r.split_whitespace()
                .find(|w| ["live", "left", "dead"].contains(w))
        })
        .unwrap_or("(not listed)");
    let (code, json, err) = p.ctl(&["fleet", "--json"]);
    if code != 0 {
        return (
            word.to_string(),
            format!("ctl fleet --json exit {code}: {err}"),
        );
    }
    let v: serde_json::Value = serde_json::from_str(&json).expect("fleet JSON");
    let peer = v["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|x| x["name"] == name).cloned());
    let state = peer.map_or("(not listed)".into(), |x| {
        x["state"].as_str().unwrap_or("?").to_string()
    });
    (word.to_string(), state)
}

#[test]
fn ctl_fleet_shows_a_peer_that_stopped_cleanly_as_left_and_a_killed_one_as_dead() {
    const T: Duration = Duration::from_secs(30);
    let pg = Pg::start();
    let shared = Scratch::new();
    let mut peers: Vec<Peer> = ["watcher", "stopper", "victim"]
        .iter()
        .map(|n| Peer::start(n, &pg, shared.dir.path()))
        .collect();
    let live = |w: &Peer, n: &str| fleet_state(w, n) == ("live".into(), "live".into());
    for n in ["watcher", "stopper", "victim"] {
        assert!(
            eventually(T, || live(&peers[0], n)),
            "{n} never live: {:?}\n{}",
            fleet_state(&peers[0], n),
            peers[0].bosun.output()
        );
    }

    // A clean stop: the peer deregisters, and is `left` at once, not `dead`.
    let mut stopper = peers.remove(1);
    stopper.bosun.signal(SIGTERM);
    assert_eq!(stopper.bosun.wait(T), 0, "{}", stopper.bosun.output());
    assert!(
        stopper.bosun.output().contains("left the fleet"),
        "{}",
        stopper.bosun.output()
    );
    let watcher = &peers[0];
    assert_eq!(
        fleet_state(watcher, "stopper"),
        ("left".into(), "left".into())
    );
    let (_, json, _) = watcher.ctl(&["fleet", "--json"]);
    let curl = Command::new("curl")
        .args(["-s", "--max-time", "10", "--unix-socket"])
        .arg(watcher.scratch.path("run/ctl.sock"))
        .arg("http://bosun/v1/fleet")
        .output()
        .expect("curl");
    let api: serde_json::Value = serde_json::from_slice(&curl.stdout).expect("/v1/fleet");
    let stopper_row = api["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|x| x["name"] == "stopper").cloned())
        .unwrap_or_else(|| panic!("no stopper in /v1/fleet: {api}\n{json}"));
    assert_eq!(stopper_row["state"], "left", "{api}");

    // SIGKILL: no word to the fleet. Live until its heartbeat expires (lease_ttl 5 s),
    // then `dead`; the one that left is still `left`.
    let mut victim = peers.remove(1);
    let st = Command::new("kill")
        .args(["-KILL", &victim.bosun.host_pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    victim.bosun.wait(T);
    let watcher = &peers[0];
    let dead = eventually(T, || {
        fleet_state(watcher, "victim") == ("dead".into(), "dead".into())
    });
    assert!(dead, "{:?}", fleet_state(watcher, "victim"));
    assert_eq!(
        fleet_state(watcher, "stopper"),
        ("left".into(), "left".into())
    );
    assert_eq!(
        fleet_state(watcher, "watcher"),
        ("live".into(), "live".into())
    );
    let mut last = peers.remove(0);
    last.bosun.signal(SIGTERM);
    assert_eq!(last.bosun.wait(T), 0, "{}", last.bosun.output());
}

#[test]
fn the_database_down_stops_only_the_singleton_and_it_comes_back() {
    const T: Duration = Duration::from_secs(60);
    let mut pg = Pg::start();
    let shared = Scratch::new();
    let log = shared.path("cron.log");
    let peers: Vec<Peer> = ["peer-x", "peer-y"]
        .iter()
        .map(|n| Peer::start(n, &pg, shared.dir.path()))
        .collect();
    for p in &peers {
        assert!(
            eventually(T, || p.ctl(&["health"]).0 == 0),
            "{}",
            p.bosun.output()
        );
    }
    assert!(eventually(T, || starts(&log).len() == 1), "no holder");
    let web_pid = |p: &Peer| {
        let (_, out, _) = p.ctl(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v["units"]
            .as_array()
            .and_then(|us| us.iter().find(|u| u["name"] == "web"))
            .and_then(|u| u["pid"].as_i64())
    };
    let before: Vec<Option<i64>> = peers.iter().map(web_pid).collect();
    assert!(before.iter().all(Option::is_some), "{before:?}");

    pg.stop();
    let stopped = eventually(T, || {
        lines(&log).iter().any(|l| matches!(l, Line::Stop { .. }))
    });
    assert!(
        stopped,
        "the singleton kept running without its database:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    // Local units keep running (same pids); the fleet says the database is down.
    let after: Vec<Option<i64>> = peers.iter().map(web_pid).collect();
    assert_eq!(before, after);
    let (code, out, err) = peers[0].ctl(&["fleet"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("database DOWN"), "{out}");
    assert!(!out.contains(PG_PASSWORD), "{out}");
    for p in &peers {
        let standby = eventually(T, || p.ctl(&["status", "cron"]).1.contains("standby"));
        assert!(standby, "{}: {:?}", p.name, p.ctl(&["status", "cron"]));
    }
    // A fleet command without its database is refused, and says why.
    let (code, out, err) = peers[0].ctl(&["--timeout", "10", "fleet", "restart", "web"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(!format!("{out}{err}").contains(PG_PASSWORD), "{out}{err}");

    pg.restart();
    let back = eventually(T, || starts(&log).len() == 2);
    assert!(
        back,
        "the singleton did not come back:\n{}",
        peers[0].bosun.output()
    );
    assert_no_overlap(&log, &[]);

    // `ctl stop` on the holder gives the lease up: the other peer takes it over at
    // once; `ctl start` there again makes it contend (standby, not a second copy).
    let holder = starts(&log)[1].0.clone();
    let h = peers.iter().find(|p| p.name == holder).expect("holder");
    let (code, out, err) = h.ctl(&["stop", "cron"]);
    assert_eq!(code, 0, "{out}{err}");
    let moved = eventually(T, || starts(&log).len() == 3);
    assert!(
        moved,
        "nobody took over after ctl stop:\n{}",
        h.bosun.output()
    );
    assert_ne!(starts(&log)[2].0, holder);
    let (code, out, err) = h.ctl(&["start", "cron"]);
    assert_eq!(code, 0, "{out}{err}");
    let standby = eventually(T, || h.ctl(&["status", "cron"]).1.contains("standby"));
    assert!(standby, "{:?}", h.ctl(&["status", "cron"]));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(starts(&log).len(), 3);
    assert_no_overlap(&log, &[]);
    for mut p in peers {
        p.bosun.signal(SIGTERM);
        assert_eq!(p.bosun.wait(T), 0, "{}", p.bosun.output());
    }
    assert_no_overlap(&log, &[]);
}

/// The state column of `ctl status UNIT`.
fn unit_state(p: &Peer, unit: &str) -> String {
    let (_, out, _) = p.ctl(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v["units"]
        .as_array()
        .and_then(|us| us.iter().find(|u| u["name"] == unit))
        .and_then(|u| u["state"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// `after = ["cron"]` where cron is a singleton: on the peer where cron is in
/// standby the dependent starts anyway (it used to wait for a lease another peer
/// holds, forever), and both peers are healthy.
#[test]
fn a_unit_after_a_singleton_in_standby_starts() {
    const T: Duration = Duration::from_secs(60);
    let pg = Pg::start();
    let shared = Scratch::new();
    let log = shared.path("cron.log");
    let extra = r#"
[service.reporter]
after = ["cron"]
run = "exec sleep 300"
start_secs = "100ms"
stop_timeout = "1s"
"#;
    let peers: Vec<Peer> = ["dep-a", "dep-b"]
        .iter()
        .map(|n| Peer::start_with(n, &pg, shared.dir.path(), extra))
        .collect();
    assert!(eventually(T, || starts(&log).len() == 1), "no holder");
    let holder = starts(&log)[0].0.clone();
    for p in &peers {
        let healthy = eventually(T, || p.ctl(&["health"]).0 == 0);
        assert!(
            healthy,
            "{} (holder {holder}) never healthy: {:?}",
            p.name,
            p.ctl(&["status"])
        );
        assert_eq!(unit_state(p, "reporter"), "ready", "{}", p.name);
    }
    let standby = peers
        .iter()
        .find(|p| p.name != holder)
        .expect("a standby peer");
    assert_eq!(unit_state(standby, "cron"), "standby");
    for mut p in peers {
        p.bosun.signal(SIGTERM);
        assert_eq!(p.bosun.wait(T), 0, "{}", p.bosun.output());
    }
}

/// `ctl reload` with a changed `[fleet]` (or a changed singleton) is refused, says a
/// restart is needed, names no password, and changes nothing; other changes still
/// reload.
#[test]
fn reload_refuses_a_changed_fleet_and_says_to_restart() {
    const T: Duration = Duration::from_secs(60);
    let pg = Pg::start();
    let shared = Scratch::new();
    let p = Peer::start("reload-a", &pg, shared.dir.path());
    assert!(
        eventually(T, || p.ctl(&["health"]).0 == 0),
        "{}",
        p.bosun.output()
    );
    let web_pid = || p.ctl(&["status", "--json"]).1;
    let pid = |out: String| {
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v["units"]
            .as_array()
            .and_then(|us| us.iter().find(|u| u["name"] == "web"))
            .and_then(|u| u["pid"].as_i64())
    };
    let before = pid(web_pid());
    assert!(before.is_some());
    let write = |lease_ttl: &str, extra: &str| {
        p.scratch.config(
            "",
            &Peer::config(&p.name, &pg, shared.dir.path(), lease_ttl, extra),
        );
    };

    // [fleet] lease_ttl 5s -> 6s.
    write("6s", "");
    let (code, out, err) = p.ctl(&["reload"]);
    let said = format!("{out}{err}");
    assert_ne!(code, 0, "{said}");
    assert!(
        said.contains("[fleet]") && said.contains("restart"),
        "{said}"
    );
    assert!(!said.contains(PG_PASSWORD), "{said}");

    // A new singleton under the same [fleet].
    let new_singleton = r#"
[service.second]
singleton = true
run = "exec sleep 300"
stop_timeout = "1s"
"#;
    write("5s", new_singleton);
    let (code, out, err) = p.ctl(&["reload"]);
    let said = format!("{out}{err}");
    assert_ne!(code, 0, "{said}");
    assert!(
        said.contains("singleton") && said.contains("restart"),
        "{said}"
    );
    assert_eq!(
        unit_state(&p, "second"),
        "?",
        "a refused reload added a unit"
    );
    assert_eq!(pid(web_pid()), before, "a refused reload touched web");

    // Anything else still reloads.
    write(
        "5s",
        "[service.plain]\nrun = \"exec sleep 300\"\nstart_secs = \"100ms\"\n",
    );
    let (code, out, err) = p.ctl(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(eventually(T, || unit_state(&p, "plain") == "ready"));
    assert_eq!(pid(web_pid()), before);
    let mut p = p;
    p.bosun.signal(SIGTERM);
    assert_eq!(p.bosun.wait(T), 0, "{}", p.bosun.output());
}

/// A peer whose only singleton is a scheduled task: `* * * * *`, one line per run.
fn scheduled_peer(name: &str, pg: &Pg, log: &Path) -> Peer {
    let scratch = Scratch::new();
    let body = format!(
        r#"
[fleet]
database = "{url}"
name = "{name}"
lease_ttl = "5s"
renew_every = "500ms"

[task.report]
singleton = true
schedule = "* * * * *"
env = {{ PEER = "{name}" }}
run = "echo \"start $PEER $BOSUN_LEASE_TERM $(date +%s.%N)\" >> {log}"
stop_timeout = "1s"
"#,
        url = pg.url(),
        log = log.display(),
    );
    let config = scratch.config("", &body);
    let bosun = Pid1::run(&scratch, &config, &[]);
    Peer {
        name: name.to_string(),
        scratch,
        bosun,
    }
}

#[test]
fn a_scheduled_singleton_fires_on_the_lease_holder_only() {
    // Two real minute boundaries at most (the timer is unit-tested elsewhere).
    const MINUTE: Duration = Duration::from_secs(75);
    let pg = Pg::start();
    let shared = Scratch::new();
    let log = shared.path("report.log");
    let mut peers: Vec<Peer> = ["peer-a", "peer-b"]
        .iter()
        .map(|n| scheduled_peer(n, &pg, &log))
        .collect();
    for p in &peers {
        let healthy = eventually(Duration::from_secs(30), || p.ctl(&["health"]).0 == 0);
        assert!(healthy, "{}:\n{}", p.name, p.bosun.output());
    }
    // The first boundary: one run in the fleet, by the holder.
    assert!(
        eventually(MINUTE, || !starts(&log).is_empty()),
        "no run:\n{}\n{}",
        peers[0].bosun.output(),
        peers[1].bosun.output()
    );
    std::thread::sleep(Duration::from_secs(5));
    let first = starts(&log);
    assert_eq!(
        first.len(),
        1,
        "one run per due time in the fleet: {first:?}"
    );
    let (holder, term, _) = first[0].clone();
    assert!(term >= 1, "{first:?}");
    let other = peers.iter().position(|p| p.name != holder).expect("a peer");
    let waiting = &peers[other];
    assert!(
        waiting.bosun.stderr().contains("due, not run here"),
        "{}",
        waiting.bosun.output()
    );
    // The holder dies; at a later boundary the other peer, now holding the
    // lease, runs it (and only it).
    let h = peers.iter().position(|p| p.name == holder).expect("holder");
    peers[h].bosun.signal(SIGKILL);
    peers[h].bosun.wait(Duration::from_secs(20));
    assert!(
        eventually(MINUTE * 2, || starts(&log)
            .iter()
            .any(|(p, _, _)| *p != holder)),
        "the other peer never ran it:\n{}",
        peers[other].bosun.output()
    );
    let all = starts(&log);
    let (_, term2, _) = all.last().cloned().expect("a run");
    assert!(term2 > term, "a new lease term: {all:?}");
    assert!(
        all.iter().filter(|(p, _, _)| *p == holder).count() == 1,
        "{all:?}"
    );
    peers[other].bosun.signal(SIGTERM);
    assert_eq!(peers[other].bosun.wait(Duration::from_secs(20)), 0);
}
