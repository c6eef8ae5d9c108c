//! Test harness: a real PostgreSQL 15 per test (initdb + postgres on a free loopback
//! port, in a temp dir, as the `postgres` user when run as root), that a test can pause
//! (SIGSTOP to the postmaster and its backends), resume, kill and restart; and peers
//! that record what the fleet tells them.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bosun_fleet::{
    Action, CommandRequest, Decision, Handle, Outcome, PeerInfo, Settings, Singleton, Target,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};
use tokio::sync::mpsc;

/// Where Debian's PostgreSQL 15 binaries live.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser's password (TCP connections authenticate with SCRAM).
pub const PASSWORD: &str = "fleet-test-pw-7f3a";

/// One PostgreSQL server.
pub struct Pg {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Pg {
    /// initdb and start a server on 127.0.0.1 with `extra` `-c name=value` settings.
    pub fn start_with(extra: &[&str], before_start: impl FnOnce(&Path)) -> Pg {
        assert!(
            Path::new(&format!("{PG_BIN}/postgres")).exists(),
            "PostgreSQL 15 is not installed (apt-get install postgresql-15)"
        );
        let dir = tempfile::Builder::new()
            .prefix("bosun-fleet-pg-")
            .tempdir()
            .expect("tempdir");
        let pwfile = dir.path().join("pw");
        fs::write(&pwfile, PASSWORD).expect("pwfile");
        as_postgres_owned(dir.path());
        as_postgres_owned(&pwfile);
        let data = dir.path().join("data");
        let st = pg_command("initdb")
            .args([
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--no-sync",
                "--auth-local=trust",
            ])
            .args(["--auth-host=scram-sha-256", "--pwfile", path(&pwfile)])
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(st.success(), "initdb failed");
        before_start(dir.path());
        let mut pg = Pg {
            port: free_port(),
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        pg.launch();
        pg
    }

    /// A plain server.
    pub fn start() -> Pg {
        Pg::start_with(&[], |_| {})
    }

    fn launch(&mut self) {
        let data = self.dir.path().join("data");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .expect("log");
        let mut cmd = pg_command("postgres");
        cmd.args([
            "-D",
            path(&data),
            "-p",
            &self.port.to_string(),
            "-k",
            path(self.dir.path()),
        ])
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=60",
        ]);
        for e in &self.extra {
            cmd.args(["-c", e]);
        }
        let child = cmd
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(format!("{PG_BIN}/pg_isready"))
                .args([
                    "-q",
                    "-h",
                    path(self.dir.path()),
                    "-p",
                    &self.port.to_string(),
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A URL for the fleet (TCP, password, no TLS).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Fleet settings with short, test-sized timings: ttl 2 s, renew 500 ms,
    /// statement timeout 500 ms.
    pub fn settings(&self, name: &str, schema: &str) -> Settings {
        let mut s = Settings::new(self.url(), name);
        s.schema = schema.into();
        s.lease_ttl = Duration::from_secs(2);
        s.renew_every = Duration::from_millis(500);
        s.statement_timeout = Duration::from_millis(500);
        s
    }

    /// A psql query (unix socket, superuser), its output unaligned, tuples only.
    pub fn sql(&self, query: &str) -> String {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .args([
                "-h",
                path(self.dir.path()),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The postmaster and its children (backends, background workers).
    fn pids(&self) -> Vec<i32> {
        let Some(pm) = self.child.as_ref().map(|c| c.id() as i32) else {
            return vec![];
        };
        let mut pids = vec![pm];
        for entry in fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(pm) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Freezes the server: every process of it stops (connections stay open, nothing
    /// answers), as a hung or partitioned database looks to a client.
    pub fn pause(&self) {
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
        }
    }

    /// Lets it run again.
    pub fn resume(&self) {
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }

    /// Stops the server at once (immediate shutdown) and waits for it.
    pub fn stop(&mut self) {
        self.resume();
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGQUIT);
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pg_command(bin: &str) -> Command {
    let mut cmd = Command::new(format!("{PG_BIN}/{bin}"));
    if nix::unistd::geteuid().is_root() {
        let user = User::from_name("postgres")
            .expect("getpwnam")
            .expect("no postgres user");
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    cmd
}

fn as_postgres_owned(p: &Path) {
    if nix::unistd::geteuid().is_root() {
        let user = User::from_name("postgres")
            .expect("getpwnam")
            .expect("no postgres user");
        nix::unistd::chown(p, Some(user.uid), Some(user.gid)).expect("chown");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// What one peer saw: its decisions over time, and the commands it ran.
#[derive(Default)]
pub struct Journal {
    pub decisions: Vec<(Instant, SystemTime, String, Decision)>,
    pub commands: Vec<(i64, Action, Target)>,
}

/// A peer under test: the fleet handle, and tasks that record its decisions and answer
/// its commands (target `fail` → exit code 3, `missing` → no such unit, else ok).
pub struct TestPeer {
    pub handle: Option<Handle>,
    pub journal: Arc<Mutex<Journal>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TestPeer {
    pub fn start(settings: &Settings, singletons: &[(&str, Duration)]) -> TestPeer {
        let singletons: Vec<Singleton> = singletons
            .iter()
            .map(|(u, s)| Singleton {
                unit: (*u).into(),
                stop_timeout: *s,
            })
            .collect();
        let info = PeerInfo {
            roles: vec!["web".into(), "cron".into()],
            version: "test".into(),
        };
        let (handle, commands) = bosun_fleet::start(settings, info, &singletons).expect("start");
        let journal = Arc::new(Mutex::new(Journal::default()));
        let mut tasks = vec![tokio::spawn(answer(commands, journal.clone()))];
        for s in &singletons {
            let mut rx = handle.decision(&s.unit).expect("decision");
            let (journal, unit) = (journal.clone(), s.unit.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let d = rx.borrow_and_update().clone();
                    journal.lock().expect("journal").decisions.push((
                        Instant::now(),
                        SystemTime::now(),
                        unit.clone(),
                        d,
                    ));
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }));
        }
        TestPeer {
            handle: Some(handle),
            journal,
            tasks,
        }
    }

    pub fn handle(&self) -> &Handle {
        self.handle.as_ref().expect("peer is stopped")
    }

    /// The current decision for `unit`.
    pub fn decision(&self, unit: &str) -> Decision {
        self.handle().decision(unit).expect("unit").borrow().clone()
    }

    /// Like SIGKILL: the task ends without releasing anything.
    pub fn crash(&mut self) {
        self.handle = None;
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// A clean stop: release and deregister.
    pub async fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    pub fn commands(&self) -> Vec<(i64, Action, Target)> {
        self.journal.lock().expect("journal").commands.clone()
    }
}

impl Drop for TestPeer {
    fn drop(&mut self) {
        self.crash();
    }
}

async fn answer(mut commands: mpsc::Receiver<CommandRequest>, journal: Arc<Mutex<Journal>>) {
    while let Some(req) = commands.recv().await {
        let c = req.command.clone();
        journal
            .lock()
            .expect("journal")
            .commands
            .push((c.id, c.action, c.target.clone()));
        let outcome = match &c.target {
            Target::Unit(u) if u == "fail" => Outcome::exited(3),
            Target::Unit(u) if u == "missing" => Outcome::no_such_unit(),
            Target::Unit(u) if u == "slow" => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Outcome::ok()
            }
            _ => Outcome::ok(),
        };
        req.reply(outcome);
    }
}

/// Polls `f` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// Waits until `peer`'s decision for `unit` matches.
pub async fn wait_decision(
    peer: &TestPeer,
    unit: &str,
    timeout: Duration,
    f: impl Fn(&Decision) -> bool,
) -> Decision {
    let mut rx = peer.handle().decision(unit).expect("unit");
    let deadline = Instant::now() + timeout;
    loop {
        let d = rx.borrow_and_update().clone();
        if f(&d) {
            return d;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{unit} on {}: still {d:?} after {timeout:?}",
            peer.handle().name()
        );
        let _ = tokio::time::timeout(left, rx.changed()).await;
    }
}

/// The directory of this crate (for fixtures).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Waits until the peer's database link is up.
pub async fn wait_up(handle: &Handle, timeout: Duration) {
    let mut up = handle.database_up();
    let ok = tokio::time::timeout(timeout, up.wait_for(|u| *u)).await;
    assert!(
        matches!(ok, Ok(Ok(_))),
        "{}: database not up after {timeout:?}: {:?}",
        handle.name(),
        handle.last_error()
    );
}

/// [`eventually`] for an async check.
pub async fn until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f().await
}
