//! The fleet's PostgreSQL 15 for the integration tests: initdb in a temp dir, run as
//! `postgres`, SCRAM passwords over TCP, on one listen address (loopback, or a test
//! bridge's address for peers in their own network namespaces). It can be paused
//! (SIGSTOP), resumed, stopped (immediate shutdown) and started again on the same
//! port and data.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::eventually;

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const PG_PASSWORD: &str = "fleet-wiring-pw-91c2";

/// A PostgreSQL 15 listening on `host` (TCP, SCRAM) and on a unix socket in its dir.
pub struct Pg {
    pub dir: tempfile::TempDir,
    pub host: String,
    pub port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

fn postgres_user() -> Option<(u32, u32)> {
    let line = fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find(|l| l.starts_with("postgres:"))?
        .to_string();
    let f: Vec<&str> = line.split(':').collect();
    Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

fn pg_command(bin: &str) -> Command {
    let mut cmd = Command::new(format!("{PG_BIN}/{bin}"));
    let (uid, gid) = postgres_user().expect("a postgres user (apt-get install postgresql)");
    cmd.uid(uid).gid(gid);
    cmd
}

impl Pg {
    /// On 127.0.0.1, default settings.
    pub fn start() -> Pg {
        Pg::start_on("127.0.0.1", None, &[])
    }

    /// On `host`; `clients` (a CIDR) may connect with the password besides loopback;
    /// `extra` are `name=value` server settings.
    pub fn start_on(host: &str, clients: Option<&str>, extra: &[&str]) -> Pg {
        assert!(
            Path::new(&format!("{PG_BIN}/postgres")).exists(),
            "PostgreSQL 15 is not installed (apt-get install postgresql); tests/run.sh installs it"
        );
        let dir = tempfile::Builder::new()
            .prefix("bosun-fleet-pg-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_str().expect("utf8").to_string();
        fs::write(dir.path().join("pw"), PG_PASSWORD).expect("pwfile");
        let st = Command::new("chown")
            .args(["-R", "postgres:postgres", &d])
            .status()
            .expect("chown");
        assert!(st.success());
        let st = pg_command("initdb")
            .args(["-D", &format!("{d}/data"), "-U", "postgres", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .args(["--pwfile", &format!("{d}/pw")])
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(st.success(), "initdb failed");
        if let Some(net) = clients {
            let hba = dir.path().join("data/pg_hba.conf");
            let mut text = fs::read_to_string(&hba).expect("pg_hba.conf");
            text.push_str(&format!("host all all {net} scram-sha-256\n"));
            fs::write(&hba, text).expect("pg_hba.conf");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut pg = Pg {
            dir,
            host: host.to_string(),
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        pg.launch();
        pg
    }

    fn launch(&mut self) {
        let d = self.dir.path().to_str().expect("utf8");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .expect("log");
        let mut cmd = pg_command("postgres");
        cmd.args([
            "-D",
            &format!("{d}/data"),
            "-p",
            &self.port.to_string(),
            "-k",
            d,
        ])
        .args(["-c", &format!("listen_addresses={}", self.host)])
        .args(["-c", "fsync=off"]);
        for e in &self.extra {
            cmd.args(["-c", e]);
        }
        let child = cmd
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("postgres");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let d = self.dir.path().to_str().expect("utf8");
        let ready = eventually(Duration::from_secs(30), || {
            Command::new(format!("{PG_BIN}/pg_isready"))
                .args(["-q", "-h", d, "-p", &self.port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        assert!(ready, "postgres did not start: {}", self.log());
    }

    /// The postmaster's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The postmaster and its children (backends, background workers).
    fn pids(&self) -> Vec<i32> {
        let Some(pm) = self.pid().map(|p| p as i32) else {
            return vec![];
        };
        let mut pids = vec![pm];
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
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

    fn signal_all(&self, sig: &str) {
        for pid in self.pids() {
            // A backend may have just ended: say nothing.
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Freezes the server (SIGSTOP to every process of it): connections stay open and
    /// nothing answers.
    pub fn pause(&self) {
        self.signal_all("STOP");
    }

    /// Lets a paused server run again.
    pub fn resume(&self) {
        self.signal_all("CONT");
    }

    /// Immediate shutdown (SIGQUIT), waited for.
    pub fn stop(&mut self) {
        self.resume();
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Back on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Started again after [`Pg::stop`].
    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.launch();
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// The fleet's `database` URL (TCP to `host`, password, no TLS).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{PG_PASSWORD}@{}:{}/postgres?sslmode=disable",
            self.host, self.port
        )
    }

    /// A query over the unix socket as the superuser: its rows, unaligned, tuples only.
    /// `None` when psql fails (the server is down or paused past `timeout`).
    pub fn sql(&self, query: &str, timeout: Duration) -> Option<String> {
        let d = self.dir.path().to_str().expect("utf8");
        let out = Command::new("timeout")
            .arg(format!("{}", timeout.as_secs_f64()))
            .arg(format!("{PG_BIN}/psql"))
            .args(["-h", d, "-p", &self.port.to_string(), "-U", "postgres"])
            .args([
                "-d",
                "postgres",
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-c", query])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop();
    }
}
