//! The fleet under faults, each peer PID 1 of its own PID namespace and in its own
//! network namespace (a veth pair to a Linux bridge in the root namespace, addresses
//! 10.201.X.0/24 only inside this test's namespaces; PostgreSQL listens on the
//! bridge's address). The singleton writes its own `start`/`beat`/`stop` lines, with
//! CLOCK_REALTIME (`$EPOCHREALTIME`), into one shared log, and overlap is measured
//! from that log: (a) SIGKILL of the holder, (b) the holder's link cut (and
//! restored), (c) the database frozen (SIGSTOP, then SIGCONT), (d) the database
//! restarted.
//!
//! The test runs a few rounds of each at short timings; the `#[ignore]`d benchmarks
//! (`tests/bench/fleet.sh`) run 20+ rounds at the default timings, the fan-out over 3
//! and 50 peers, and the cost at idle.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::fleetdb::Pg;
use common::{bosun, eventually, Pid1, Scratch, SIGTERM};

// ---- the network ------------------------------------------------------------

/// A bridge in the root namespace and one network namespace per peer, joined by a
/// veth pair; everything made here is removed on drop (also on a panic).
struct Net {
    bridge: String,
    subnet: u8,
    /// (netns, host-side veth) per peer.
    peers: Vec<(String, String)>,
}

static NETS: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// `Err` (why) when this machine cannot make network namespaces.
    fn new(n: usize) -> Result<Net, String> {
        let tag = format!(
            "{}{}",
            std::process::id(),
            NETS.fetch_add(1, Ordering::SeqCst)
        );
        let used = Command::new("ip")
            .args(["-o", "-4", "addr"])
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        let used = String::from_utf8_lossy(&used.stdout).to_string();
        let subnet = (1u8..=250)
            .find(|x| !used.contains(&format!("10.201.{x}.")))
            .ok_or("no free 10.201.X.0/24")?;
        let mut net = Net {
            bridge: format!("bsb{tag}"),
            subnet,
            peers: Vec::new(),
        };
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.db_addr()),
            "dev",
            &net.bridge,
        ])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        for i in 0..n {
            let (ns, host, inner) = (
                format!("bosun-{tag}-{i}"),
                format!("bsh{tag}x{i}"),
                format!("bsp{tag}x{i}"),
            );
            ip(&["netns", "add", &ns])?;
            net.peers.push((ns.clone(), host.clone()));
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &host, "master", &net.bridge])?;
            ip(&["link", "set", &host, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &ns, "link", "set", &inner, "name", "eth0"])?;
            let addr = format!("10.201.{subnet}.{}/24", 10 + i);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    /// PostgreSQL's address, on the bridge.
    fn db_addr(&self) -> String {
        format!("10.201.{}.1", self.subnet)
    }

    fn clients(&self) -> String {
        format!("10.201.{}.0/24", self.subnet)
    }

    /// The prefix that runs a command in peer `i`'s namespace (nsenter execs it).
    fn enter(&self, i: usize) -> String {
        format!("--net=/run/netns/{}", self.peers[i].0)
    }

    /// Cuts peer `i` off (its veth's host end down): packets are dropped, nothing
    /// is refused.
    fn cut(&self, i: usize) {
        ip(&["link", "set", &self.peers[i].1, "down"]).expect("cut the link");
    }

    fn heal(&self, i: usize) {
        ip(&["link", "set", &self.peers[i].1, "up"]).expect("restore the link");
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (ns, host) in &self.peers {
            let _ = ip(&["link", "del", host]);
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// The network for a test, or why this machine cannot make one (printed: the test
/// is then skipped, loudly).
fn net_or_skip(n: usize) -> Option<Net> {
    match Net::new(n) {
        Ok(net) => Some(net),
        Err(why) => {
            eprintln!(
                "SKIPPED: this machine cannot make network namespaces and veth pairs ({why}); \
                 the fleet's fault rounds need root with CAP_NET_ADMIN and iproute2"
            );
            None
        }
    }
}

// ---- the singleton's log ------------------------------------------------------

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One run of the singleton on one peer, from its own log lines.
#[derive(Debug, Clone)]
struct Run {
    peer: String,
    term: i64,
    start: f64,
    /// Its last `beat` (or the start).
    last: f64,
    /// Its leader's `stop` line.
    stop: Option<f64>,
}

impl Run {
    /// When its process group was dead: once stopped, its last beat (the child that
    /// ignores SIGTERM beats until bosun kills the group) or the stop line, whichever
    /// is later; for a SIGKILLed peer the kill (the kernel kills a PID namespace with
    /// its PID 1) or its last beat, whichever is later; otherwise it still runs.
    fn end(&self, killed: &[(String, f64)]) -> f64 {
        if let Some(s) = self.stop {
            return s.max(self.last);
        }
        let kill = killed
            .iter()
            .filter(|(p, at)| *p == self.peer && *at >= self.start)
            .map(|(_, at)| *at)
            .fold(f64::INFINITY, f64::min);
        if kill.is_finite() {
            kill.max(self.last)
        } else {
            f64::INFINITY
        }
    }
}

/// The runs in the log, in order of their start.
fn runs(log: &Path) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    // The latest run of each peer.
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for l in fs::read_to_string(log).unwrap_or_default().lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [kind, peer, term, at] = f.as_slice() else {
            continue;
        };
        let (Ok(term), Ok(at)) = (term.parse::<i64>(), at.parse::<f64>()) else {
            continue;
        };
        match *kind {
            "start" => {
                open.insert(peer.to_string(), out.len());
                out.push(Run {
                    peer: peer.to_string(),
                    term,
                    start: at,
                    last: at,
                    stop: None,
                });
            }
            // A peer's lines belong to its latest start (beats go on after the
            // leader's stop until the group is dead).
            "beat" | "stop" => {
                if let Some(&i) = open.get(*peer) {
                    out[i].last = out[i].last.max(at);
                    if *kind == "stop" {
                        out[i].stop = Some(at);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The longest time two runs were alive together, in ms (0 when they never were).
fn overlap_ms(runs: &[Run], killed: &[(String, f64)]) -> f64 {
    let mut worst = 0.0f64;
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            let o = a.end(killed).min(b.end(killed)) - a.start.max(b.start);
            worst = worst.max(o * 1000.0);
        }
    }
    worst
}

// ---- the fleet -----------------------------------------------------------------

/// `lease_ttl` / `renew_every`: set in the config, or the defaults.
#[derive(Clone, Copy)]
struct Timings {
    ttl: Duration,
    renew: Duration,
    in_config: bool,
}

impl Timings {
    fn short() -> Timings {
        Timings {
            ttl: Duration::from_secs(5),
            renew: Duration::from_secs(1),
            in_config: true,
        }
    }

    fn defaults() -> Timings {
        Timings {
            ttl: bosun_fleet::DEFAULT_LEASE_TTL,
            renew: bosun_fleet::DEFAULT_RENEW_EVERY,
            in_config: false,
        }
    }

    fn keys(&self) -> String {
        if self.in_config {
            format!(
                "lease_ttl = \"{}ms\"\nrenew_every = \"{}ms\"\n",
                self.ttl.as_millis(),
                self.renew.as_millis()
            )
        } else {
            String::new()
        }
    }

    /// A generous bound for anything that waits on a lease.
    fn patience(&self) -> Duration {
        self.ttl * 3 + Duration::from_secs(20)
    }
}

/// The singleton's script. The leader writes `start` and, on SIGTERM, `stop`; a child
/// in its process group that ignores SIGTERM writes a `beat` every 50 ms until
/// bosun SIGKILLs the group, so the last beat of a run is (within 50 ms) when its
/// whole process group was dead. Each line: the peer's name, its lease term and
/// CLOCK_REALTIME (`$EPOCHREALTIME`: no fork per line; `read -t` on a pipe that
/// never speaks is bash's sleep without a fork).
fn cron_script(log: &Path) -> String {
    let log = log.display();
    format!(
        "echo \"start $PEER $BOSUN_LEASE_TERM $EPOCHREALTIME\" >> {log}; \
         ( trap '' TERM; exec 3<> <(:); \
           while :; do echo \"beat $PEER $BOSUN_LEASE_TERM $EPOCHREALTIME\" >> {log}; read -t 0.05 -u 3; done ) & \
         trap 'echo \"stop $PEER $BOSUN_LEASE_TERM $EPOCHREALTIME\" >> {log}; exit 0' TERM; \
         while :; do sleep 1 & wait $!; done"
    )
}

/// The singleton a peer has.
#[derive(Clone, Copy)]
enum Cron<'a> {
    /// The script writing to this log.
    Logged(&'a Path),
    /// `sleep`, silent.
    Quiet,
    /// None (the peer has just the on-demand task).
    Absent,
}

/// One bosun of the fleet.
struct Peer {
    name: String,
    scratch: Scratch,
    bosun: Pid1,
}

impl Peer {
    fn start(name: &str, url: &str, t: Timings, cron: Cron, prefix: &[&str]) -> Peer {
        let scratch = Scratch::new();
        let cron = match cron {
            Cron::Logged(log) => format!(
                "[service.cron]\nsingleton = true\nenv = {{ PEER = \"{name}\" }}\nrun = [\"/bin/bash\", \"-c\", '''{}''']\nstart_secs = \"100ms\"\nstop_timeout = \"1s\"\n",
                cron_script(log)
            ),
            Cron::Quiet => "[service.cron]\nsingleton = true\nrun = \"exec sleep 3600\"\nstart_secs = \"100ms\"\nstop_timeout = \"1s\"\n".into(),
            Cron::Absent => String::new(),
        };
        let body = format!(
            "[fleet]\ndatabase = \"{url}\"\nname = \"{name}\"\n{keys}\n{cron}\n[task.noop]\non_demand = true\nrun = \"true\"\n",
            keys = t.keys()
        );
        let config = scratch.config("", &body);
        let args = ["run", "-c", config.to_str().expect("utf8")];
        let bosun = Pid1::start_in(&scratch, prefix, &args, &[("BOSUN_LOG", "info")]);
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

    /// `ctl fleet --json`, when it answers.
    fn fleet(&self) -> Option<serde_json::Value> {
        let (code, out, _) = self.ctl(&["--timeout", "10", "fleet", "--json"]);
        if code != 0 {
            return None;
        }
        serde_json::from_str(&out).ok()
    }

    /// Up with the database, seeing `n` live peers.
    fn sees(&self, n: usize) -> bool {
        self.fleet().is_some_and(|v| {
            v["database_up"] == true
                && v["peers"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["state"] == "live").count())
                    == Some(n)
        })
    }

    /// Its bosun's utime + stime, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.bosun.host_pid())).unwrap_or_default();
        let f: Vec<u64> = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // After "(comm)": state is not a number, so utime/stime are the 11th and 12th
        // numbers (fields 14 and 15 of the line).
        f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)
    }
}

/// Three (or more) peers in their own network namespaces, one singleton, one
/// PostgreSQL on the bridge.
struct Fleet {
    t: Timings,
    /// Holds the shared log's directory.
    _shared: Scratch,
    log: PathBuf,
    peers: Vec<Option<Peer>>,
    /// (peer, when) of every SIGKILL.
    killed: Vec<(String, f64)>,
    pg: Pg,
    net: Net,
}

impl Fleet {
    fn start(net: Net, n: usize, t: Timings) -> Fleet {
        let pg = Pg::start_on(&net.db_addr(), Some(&net.clients()), &[]);
        let shared = Scratch::new();
        // The singleton runs as root; the log is the only thing it writes.
        let log = shared.path("cron.log");
        let mut f = Fleet {
            t,
            _shared: shared,
            log,
            peers: (0..n).map(|_| None).collect(),
            killed: Vec::new(),
            pg,
            net,
        };
        for i in 0..n {
            f.boot(i);
        }
        f.audit_leases();
        f
    }

    fn boot(&mut self, i: usize) {
        let enter = self.net.enter(i);
        let prefix = ["nsenter", enter.as_str()];
        let p = Peer::start(
            &format!("p{i}"),
            &self.pg.url(),
            self.t,
            Cron::Logged(&self.log),
            &prefix,
        );
        self.peers[i] = Some(p);
    }

    fn peer(&self, i: usize) -> &Peer {
        self.peers[i].as_ref().expect("a running peer")
    }

    fn index(&self, name: &str) -> usize {
        self.peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.name == name))
            .expect("a peer of that name")
    }

    fn runs(&self) -> Vec<Run> {
        runs(&self.log)
    }

    fn output(&self) -> String {
        let mut s = String::new();
        for p in self.peers.iter().flatten() {
            s.push_str(&format!("==== {}\n{}\n", p.name, p.bosun.output()));
        }
        s.push_str(&format!(
            "==== singleton log (tail)\n{}",
            tail(&fs::read_to_string(&self.log).unwrap_or_default(), 40)
        ));
        s
    }

    /// Every peer up and seeing all, exactly one run going and beating.
    fn settle(&self) -> Run {
        let n = self.peers.len();
        let ok = eventually(self.t.patience(), || {
            (0..n).all(|i| self.peer(i).sees(n)) && self.current().is_some()
        });
        assert!(ok, "the fleet did not settle:\n{}", self.output());
        self.current().expect("a holder")
    }

    /// The one open run whose beat is recent.
    fn current(&self) -> Option<Run> {
        let now = now_secs();
        let open: Vec<Run> = self
            .runs()
            .into_iter()
            .filter(|r| r.end(&self.killed).is_infinite())
            .collect();
        match open.as_slice() {
            [r] if now - r.last < 1.0 => Some(r.clone()),
            _ => None,
        }
    }

    /// Waits for a run with a term above `term` (the singleton back).
    fn wait_new_run(&self, term: i64, what: &str) -> Run {
        let mut found = None;
        let ok = eventually(self.t.patience(), || {
            found = self.runs().into_iter().find(|r| r.term > term);
            found.is_some()
        });
        assert!(
            ok,
            "{what}: the singleton never came back:\n{}",
            self.output()
        );
        found.expect("found")
    }

    /// Records every write to the lease table (a trigger, into `audit.lease`, with
    /// the database's clock): what each term was granted to and until when it was
    /// held, ghost grants included: a statement a frozen server had begun (its
    /// `now()` is when it began) or ran after its client had given it up.
    fn audit_leases(&self) {
        let ok = eventually(self.t.patience(), || {
            self.pg
                .sql(
                    "SELECT to_regclass('bosun.lease') IS NOT NULL",
                    Duration::from_secs(5),
                )
                .as_deref()
                == Some("t")
        });
        assert!(ok, "the fleet never made its tables:\n{}", self.output());
        let ddl = "CREATE SCHEMA audit;
            CREATE TABLE audit.lease (at timestamptz NOT NULL DEFAULT clock_timestamp(), op text,
              name text, holder text, boot_id text, term bigint, expires_at timestamptz);
            CREATE FUNCTION audit.lease_log() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN
                INSERT INTO audit.lease (op, name, holder, boot_id, term, expires_at)
                VALUES (TG_OP, NEW.name, NEW.holder, NEW.boot_id, NEW.term, NEW.expires_at);
                RETURN NEW;
              END $$;
            CREATE TRIGGER lease_log AFTER INSERT OR UPDATE ON bosun.lease
              FOR EACH ROW EXECUTE FUNCTION audit.lease_log();
            INSERT INTO audit.lease (op, name, holder, boot_id, term, expires_at)
              SELECT 'BEFORE', name, holder, boot_id, term, expires_at FROM bosun.lease;";
        self.pg
            .sql(ddl, Duration::from_secs(10))
            .expect("the lease audit trigger");
    }

    /// The latest expiry (database clock) any write gave `term` of cron.
    fn expiry_of(&self, term: i64) -> Option<f64> {
        let q = format!(
            "SELECT extract(epoch FROM max(expires_at)) FROM audit.lease \
             WHERE name = 'cron' AND term = {term}"
        );
        self.pg.sql(&q, Duration::from_secs(10))?.parse().ok()
    }

    /// Terms the database granted that never ran (no `start` line): (term, holder).
    fn ghost_grants(&self) -> Vec<(i64, String)> {
        let ran: Vec<i64> = self.runs().iter().map(|r| r.term).collect();
        let rows = self
            .pg
            .sql(
                "SELECT DISTINCT term || ' ' || holder FROM audit.lease WHERE name = 'cron'",
                Duration::from_secs(10),
            )
            .unwrap_or_default();
        let mut out: Vec<(i64, String)> = rows
            .lines()
            .filter_map(|l| {
                let (t, h) = l.split_once(' ')?;
                Some((t.parse().ok()?, h.to_string()))
            })
            .filter(|(t, _)| !ran.contains(t))
            .collect();
        out.sort();
        out
    }

    fn overlap(&self) -> f64 {
        overlap_ms(&self.runs(), &self.killed)
    }
}

/// Sleeps a pseudo-random part of `period` (a random phase against the renewals).
fn random_phase(period: Duration) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::thread::sleep(period.mul_f64(f64::from(nanos % 1000) / 1000.0));
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---- the faults ----------------------------------------------------------------

/// What one fault round measured.
#[derive(Debug, Default, Clone)]
struct Round {
    fault: &'static str,
    /// The fault until the new run's start, s.
    failover: Option<f64>,
    /// The old run's stop until the new run's start, s.
    gap: Option<f64>,
    /// The old run dead until its lease's expiry on the database clock, s (> 0: dead
    /// before it could expire).
    dead_before_expiry: Option<f64>,
    /// The longest overlap of two runs so far in the whole log, ms.
    overlap_ms: f64,
    outcome: String,
}

impl Round {
    fn line(&self) -> String {
        let f = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.3}s"));
        format!(
            "{:<9} failover {:>8}  gap {:>8}  dead-before-expiry {:>8}  overlap {:.0} ms  {}",
            self.fault,
            f(self.failover),
            f(self.gap),
            f(self.dead_before_expiry),
            self.overlap_ms,
            self.outcome
        )
    }
}

/// One round of one fault.
type FaultRound = fn(&mut Fleet) -> Round;

/// (a) SIGKILL of the holder's bosun (the kernel kills its PID namespace), then a
/// fresh bosun under the same name in its place.
fn sigkill_round(f: &mut Fleet) -> Round {
    let old = f.settle();
    let i = f.index(&old.peer);
    // A random phase against the renewals.
    random_phase(f.t.renew);
    let mut dead = f.peers[i].take().expect("holder");
    let pid = dead.bosun.host_pid();
    let at = now_secs();
    let st = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    dead.bosun.wait(Duration::from_secs(20));
    f.killed.push((old.peer.clone(), at));
    let new = f.wait_new_run(old.term, "after SIGKILL of the holder");
    let expiry = f.expiry_of(old.term);
    drop(dead);
    f.boot(i);
    Round {
        fault: "sigkill",
        failover: Some(new.start - at),
        gap: Some(new.start - old.end(&f.killed)),
        dead_before_expiry: expiry.map(|e| e - old.end(&f.killed)),
        overlap_ms: f.overlap(),
        outcome: format!("{} -> {} (term {})", old.peer, new.peer, new.term),
    }
}

/// (b) The holder's link cut: it stops its singleton before its lease can expire,
/// another peer takes over after; then the link comes back and it rejoins.
fn partition_round(f: &mut Fleet) -> Round {
    let old = f.settle();
    let i = f.index(&old.peer);
    random_phase(f.t.renew);
    let at = now_secs();
    f.net.cut(i);
    let new = f.wait_new_run(old.term, "after the holder's link was cut");
    f.net.heal(i);
    let expiry = f.expiry_of(old.term);
    let run = f
        .runs()
        .into_iter()
        .find(|r| r.peer == old.peer && r.term == old.term)
        .expect("the old run");
    let stopped = run.stop.unwrap_or_else(|| {
        panic!(
            "the cut-off holder never stopped its singleton:\n{}",
            f.output()
        )
    });
    let dead = run.end(&f.killed);
    Round {
        fault: "partition",
        failover: Some(new.start - at),
        gap: Some(new.start - dead),
        dead_before_expiry: expiry.map(|e| e - dead),
        overlap_ms: f.overlap(),
        outcome: format!(
            "{} stopped {:.2}s after the cut, group dead {:.2}s; {} took over (term {})",
            old.peer,
            stopped - at,
            dead - at,
            new.peer,
            new.term
        ),
    }
}

/// (c) The database frozen for `ttl + renew_every + 1 s`: the holder stops its
/// singleton before its lease can expire; after SIGCONT the singleton comes back.
fn pause_round(f: &mut Fleet) -> Round {
    let old = f.settle();
    random_phase(f.t.renew);
    let at = now_secs();
    f.pg.pause();
    let pause = f.t.ttl + f.t.renew + Duration::from_secs(1);
    let stop_of = |f: &Fleet| {
        f.runs()
            .into_iter()
            .find(|r| r.peer == old.peer && r.term == old.term)
            .and_then(|r| r.stop)
    };
    let stopped = eventually(pause, || stop_of(f).is_some());
    std::thread::sleep(pause.saturating_sub(Duration::from_secs_f64(now_secs() - at)));
    let resumed = now_secs();
    f.pg.resume();
    assert!(
        stopped,
        "the holder kept its singleton running while the database was frozen for {pause:?}:\n{}",
        f.output()
    );
    let stopped = stop_of(f).expect("stopped");
    let new = f.wait_new_run(old.term, "after the database was resumed");
    let expiry = f.expiry_of(old.term);
    let dead = f
        .runs()
        .into_iter()
        .find(|r| r.peer == old.peer && r.term == old.term)
        .map_or(stopped, |r| r.end(&f.killed));
    Round {
        fault: "db-pause",
        failover: Some(new.start - resumed),
        gap: Some(new.start - dead),
        dead_before_expiry: expiry.map(|e| e - dead),
        overlap_ms: f.overlap(),
        outcome: format!(
            "{} stopped {:.2}s into a {:.0}s freeze, group dead {:.2}s; back on {} {:.2}s after SIGCONT (term {})",
            old.peer,
            stopped - at,
            pause.as_secs_f64(),
            dead - at,
            new.peer,
            new.start - resumed,
            new.term
        ),
    }
}

/// (d) The database restarted (immediate shutdown, 1 s down): the singleton either
/// keeps running on its holder (it renewed in time) or stops and comes back.
fn restart_round(f: &mut Fleet) -> Round {
    let old = f.settle();
    random_phase(f.t.renew);
    let at = now_secs();
    f.pg.stop();
    std::thread::sleep(Duration::from_secs(1));
    f.pg.start_again();
    let up = now_secs();
    let back = f.settle();
    let outcome = if back.term == old.term && back.peer == old.peer {
        format!(
            "kept running on {} (term {}); database down {:.2}s",
            old.peer,
            old.term,
            up - at
        )
    } else {
        format!(
            "{} term {} -> {} term {}, {:.2}s after the database was back",
            old.peer,
            old.term,
            back.peer,
            back.term,
            back.start - up
        )
    };
    Round {
        fault: "db-restart",
        failover: (back.term != old.term).then_some(back.start - at),
        gap: None,
        dead_before_expiry: None,
        overlap_ms: f.overlap(),
        outcome,
    }
}

fn assert_clean(f: &Fleet, r: &Round) {
    eprintln!("{}", r.line());
    assert_eq!(
        r.overlap_ms,
        0.0,
        "two copies of the singleton overlapped ({}):\n{}",
        r.fault,
        f.output()
    );
    if let Some(g) = r.gap {
        assert!(
            g > 0.0,
            "the new copy started before the old one stopped: {r:?}"
        );
    }
    if let Some(d) = r.dead_before_expiry {
        assert!(
            d > 0.0,
            "the old copy outlived its lease on the database clock: {r:?}"
        );
    }
}

#[test]
fn the_singleton_never_runs_twice_under_kills_partitions_and_database_faults() {
    let Some(net) = net_or_skip(3) else { return };
    let mut f = Fleet::start(net, 3, Timings::short());
    for p in f.peers.iter().flatten() {
        let healthy = eventually(f.t.patience(), || p.ctl(&["health"]).0 == 0);
        assert!(healthy, "{} never healthy:\n{}", p.name, p.bosun.output());
    }
    let rounds: [(FaultRound, usize); 4] = [
        (sigkill_round, 3),
        (partition_round, 3),
        (pause_round, 3),
        (restart_round, 2),
    ];
    for (round, n) in rounds {
        for _ in 0..n {
            let r = round(&mut f);
            assert_clean(&f, &r);
        }
    }
    // The singleton is still (or again) running on exactly one peer.
    f.settle();
    eprintln!("terms granted that never ran: {:?}", f.ghost_grants());
    for i in 0..f.peers.len() {
        let mut p = f.peers[i].take().expect("peer");
        p.bosun.signal(SIGTERM);
        assert_eq!(
            p.bosun.wait(Duration::from_secs(30)),
            0,
            "{}",
            p.bosun.output()
        );
    }
    assert_eq!(f.overlap(), 0.0, "{}", f.output());
}

// ---- benchmarks (not run by CI: tests/bench/fleet.sh) -----------------------------

fn rounds_wanted() -> usize {
    std::env::var("BOSUN_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn stats(name: &str, xs: &[f64], unit: &str) {
    if xs.is_empty() {
        println!("{name}: n=0");
        return;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    println!(
        "{name}: n={} min {:.3}{unit} median {:.3}{unit} max {:.3}{unit}",
        v.len(),
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    );
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
#[ignore = "benchmark: tests/bench/fleet.sh"]
fn bench_faults_default_timings() {
    let Some(net) = net_or_skip(3) else { return };
    let t = Timings::defaults();
    let n = rounds_wanted();
    let only = std::env::var("BOSUN_BENCH_FAULTS").unwrap_or_default();
    println!(
        "fault rounds: 3 peers in their own network namespaces, lease_ttl {:?}, renew_every {:?} (defaults), {n} rounds each; load {}",
        t.ttl,
        t.renew,
        loadavg()
    );
    let mut f = Fleet::start(net, 3, t);
    let faults: [(&str, FaultRound); 4] = [
        ("sigkill", sigkill_round),
        ("partition", partition_round),
        ("db-pause", pause_round),
        ("db-restart", restart_round),
    ];
    let mut all: Vec<Round> = Vec::new();
    for (name, round) in faults {
        if !only.is_empty() && !only.split(',').any(|x| x == name) {
            continue;
        }
        let mut last_overlap = f.overlap();
        for k in 0..n {
            let r = round(&mut f);
            // Per round: the overlap this round added.
            let mut r2 = r.clone();
            r2.overlap_ms = (r.overlap_ms - last_overlap).max(0.0);
            last_overlap = r.overlap_ms;
            println!("{name} {k:>2}: {}", r2.line());
            all.push(r2);
        }
        let of: Vec<&Round> = all.iter().filter(|r| r.fault == name).collect();
        let pick =
            |g: fn(&Round) -> Option<f64>| of.iter().filter_map(|r| g(r)).collect::<Vec<f64>>();
        stats(&format!("{name}: failover"), &pick(|r| r.failover), " s");
        stats(
            &format!("{name}: gap old stop -> new start"),
            &pick(|r| r.gap),
            " s",
        );
        stats(
            &format!("{name}: dead before the lease's expiry"),
            &pick(|r| r.dead_before_expiry),
            " s",
        );
        let backends = f.pg.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bosun-fleet'",
            Duration::from_secs(5),
        );
        println!(
            "{name}: the fleet's backends on the server after the rounds: {} (3 peers)",
            backends.unwrap_or_default()
        );
        let overlaps: Vec<f64> = of.iter().map(|r| r.overlap_ms).collect();
        println!(
            "{name}: overlap per round (ms): {:?}; rounds with overlap: {}; load {}",
            overlaps,
            overlaps.iter().filter(|o| **o > 0.0).count(),
            loadavg()
        );
    }
    println!(
        "goal for sigkill failover: <= lease_ttl + renew_every + 1 s = {:.1} s",
        (t.ttl + t.renew).as_secs_f64() + 1.0
    );
    println!("total overlap in the whole log: {:.0} ms", f.overlap());
    println!(
        "terms the database granted that never ran (ghost grants: statements a frozen \
         server had begun, or ran after their client had given them up): {:?}",
        f.ghost_grants()
    );
}

/// `n` peers in the root namespace on loopback, each with one unit, and the
/// median time of `ctl fleet run noop` until every ack.
fn fan_out(n: usize, times: usize) -> Vec<f64> {
    let conns = format!("max_connections={}", n + 20);
    let pg = Pg::start_on("127.0.0.1", None, &[&conns]);
    let max: usize = pg
        .sql("SHOW max_connections", Duration::from_secs(5))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(max >= n + 4, "max_connections {max} does not fit {n} peers");
    // One unit each: the on-demand task.
    let peers: Vec<Peer> = (0..n)
        .map(|i| {
            Peer::start(
                &format!("f{i}"),
                &pg.url(),
                Timings::defaults(),
                Cron::Absent,
                &[],
            )
        })
        .collect();
    let all_up = eventually(Duration::from_secs(120), || peers[0].sees(n));
    assert!(
        all_up,
        "not every peer joined:\n{}",
        peers[0].bosun.output()
    );
    let mut out = Vec::new();
    for _ in 0..times {
        let t = Instant::now();
        let (code, o, e) = peers[0].ctl(&["--timeout", "30", "fleet", "run", "noop"]);
        let took = t.elapsed().as_secs_f64();
        assert_eq!(code, 0, "{o}{e}");
        let ok = o.lines().filter(|l| l.contains("ok (exit 0)")).count();
        assert_eq!(ok, n, "{o}");
        out.push(took);
    }
    let backends = pg
        .sql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            Duration::from_secs(5),
        )
        .unwrap_or_default();
    println!("  {n} peers: max_connections {max}, client backends {backends}");
    drop(peers);
    out
}

#[test]
#[ignore = "benchmark: tests/bench/fleet.sh"]
fn bench_fan_out_3_and_50_peers() {
    for (n, times) in [(3, 20), (50, 10)] {
        println!("fan-out: {n} peers, load {}", loadavg());
        let xs = fan_out(n, times);
        stats(
            &format!("fan-out `ctl fleet run noop` over {n} peers, until every ack"),
            &xs,
            " s",
        );
    }
}

#[test]
#[ignore = "benchmark: tests/bench/fleet.sh"]
fn bench_idle_cost_default_timings() {
    let pg = Pg::start_on(
        "127.0.0.1",
        None,
        &[
            "shared_preload_libraries=pg_stat_statements",
            "pg_stat_statements.track=all",
        ],
    );
    pg.sql(
        "CREATE EXTENSION pg_stat_statements",
        Duration::from_secs(10),
    )
    .expect("pg_stat_statements");
    let peers: Vec<Peer> = (0..3)
        .map(|i| {
            Peer::start(
                &format!("i{i}"),
                &pg.url(),
                Timings::defaults(),
                Cron::Quiet,
                &[],
            )
        })
        .collect();
    assert!(eventually(Duration::from_secs(60), || peers
        .iter()
        .all(|p| p.sees(3))));
    // Let the first rounds and pulls pass.
    std::thread::sleep(Duration::from_secs(10));
    let commits = || {
        pg.sql(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'",
            Duration::from_secs(5),
        )
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
    };
    pg.sql("SELECT pg_stat_statements_reset()", Duration::from_secs(5));
    let c0 = commits();
    let ticks0: Vec<u64> = peers.iter().map(Peer::cpu_ticks).collect();
    std::thread::sleep(Duration::from_secs(20));
    let ticks: Vec<u64> = peers
        .iter()
        .zip(&ticks0)
        .map(|(p, t0)| p.cpu_ticks() - t0)
        .collect();
    std::thread::sleep(Duration::from_secs(40));
    let c1 = commits();
    let rows = pg
        .sql(
            "SELECT calls || ' ' || regexp_replace(left(query, 70), '\\s+', ' ', 'g') FROM pg_stat_statements \
             WHERE query NOT LIKE '%pg_stat%' ORDER BY calls DESC",
            Duration::from_secs(5),
        )
        .unwrap_or_default();
    let total: u64 = rows
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    println!(
        "idle, 3 peers, 1 singleton, default timings, load {}:\n  {:.1} statements per peer per minute (pg_stat_statements), {:.1} transactions per peer per minute (pg_stat_database, incl. this probe's)\n  bosun CPU over 20 s: {ticks:?} ticks (utime+stime; goal <= 1)",
        loadavg(),
        total as f64 / 3.0,
        (c1 - c0) as f64 / 3.0,
    );
    for l in rows.lines() {
        println!("    {l}");
    }
}
