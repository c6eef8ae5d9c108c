//! Test harness: runs the real `bosun` binary as PID 1 of a fresh pid namespace
//! (`unshare --pid --fork --mount-proc`, root on these machines) and lets a test
//! read its output, signal it and collect its exit code.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod fleetdb;
pub mod stores;

/// The bosun binary under test.
pub fn bosun_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bosun"))
}

/// A scratch directory for one test.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("bosun-test-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bosun.toml` with a `[bosun]` header pointing state and socket into
    /// the scratch dir, followed by `body`. `{dir}` in body is replaced by the dir.
    pub fn config(&self, bosun_extra: &str, body: &str) -> PathBuf {
        let d = self.dir.path().display().to_string();
        let text = format!(
            "[bosun]\nstate_dir = \"{d}/state\"\ncontrol_socket = \"{d}/run/ctl.sock\"\n{}\n{}",
            bosun_extra,
            body.replace("{dir}", &d)
        );
        let p = self.path("bosun.toml");
        fs::write(&p, text).expect("write config");
        p
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

/// A running `bosun` as PID 1 in its own pid namespace.
pub struct Pid1 {
    child: Child,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub code: Option<i32>,
}

impl Pid1 {
    /// `bosun ARGS...` as PID 1, with extra env.
    pub fn start(scratch: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Pid1 {
        Pid1::spawn(scratch, &[], None, args, env)
    }

    /// Like [`Pid1::start`], with `unshare` run by `prefix` (which must exec it, not
    /// fork: e.g. `nsenter --net=/run/netns/NS`), so bosun can live in another
    /// network namespace.
    pub fn start_in(
        scratch: &Scratch,
        prefix: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Pid1 {
        Pid1::spawn(scratch, prefix, None, args, env)
    }

    /// `bosun run -c CONFIG` as PID 1 with its own hostname (a UTS namespace too):
    /// another container, as far as snapshot ids and writer markers go.
    pub fn run_as_host(
        scratch: &Scratch,
        config: &Path,
        hostname: &str,
        env: &[(&str, &str)],
    ) -> Pid1 {
        let args = ["run", "-c", config.to_str().expect("utf8 path")];
        Pid1::spawn(scratch, &[], Some(hostname), &args, env)
    }

    fn spawn(
        scratch: &Scratch,
        prefix: &[&str],
        hostname: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Pid1 {
        let stdout_path = scratch.path("bosun.stdout");
        let stderr_path = scratch.path("bosun.stderr");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg("unshare");
                c
            }
            None => Command::new("unshare"),
        };
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"]);
        if let Some(h) = hostname {
            // sh sets the hostname, then execs bosun: bosun is still PID 1.
            cmd.args(["--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\"", h]);
        }
        cmd.arg(bosun_bin())
            .args(args)
            .env("BOSUN_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("stderr file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn unshare");
        Pid1 {
            child,
            stdout_path,
            stderr_path,
            code: None,
        }
    }

    /// `bosun run -c CONFIG` as PID 1.
    pub fn run(scratch: &Scratch, config: &Path, env: &[(&str, &str)]) -> Pid1 {
        Pid1::start(
            scratch,
            &["run", "-c", config.to_str().expect("utf8 path")],
            env,
        )
    }

    /// bosun's pid as seen from the host (the child of `unshare`).
    pub fn host_pid(&self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = format!("/proc/{0}/task/{0}/children", self.child.id());
            if let Ok(s) = fs::read_to_string(&p) {
                if let Some(pid) = s.split_whitespace().next().and_then(|x| x.parse().ok()) {
                    return pid;
                }
            }
            assert!(
                Instant::now() < deadline,
                "bosun never started under unshare"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `sig` to bosun itself.
    pub fn signal(&self, sig: i32) {
        let pid = self.host_pid();
        // SAFETY: kill(2) with a pid we just read and a valid signal number.
        unsafe {
            libc_kill(pid, sig);
        }
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Both streams, for assertions and failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// Waits until `needle` appears in stdout or stderr.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stdout().contains(needle) || self.stderr().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{needle:?} did not appear within {timeout:?}\n{}",
            self.output()
        );
    }

    /// Waits for bosun to exit; returns its exit code (128+n for a signal).
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        if let Some(c) = self.code {
            return c;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                use std::os::unix::process::ExitStatusExt;
                let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
                self.code = Some(code);
                return code;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("bosun did not exit within {timeout:?}\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        if self.code.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Signal numbers used by tests.
pub const SIGTERM: i32 = 15;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGHUP: i32 = 1;
pub const SIGUSR1: i32 = 10;

/// Runs `bosun ARGS` to completion (not as PID 1); returns (code, stdout, stderr).
pub fn bosun(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bosun_bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bosun");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads a whole file, empty when missing.
pub fn slurp(p: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(p) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Polls `f` every 20 ms until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Where Debian's PostgreSQL 15 binaries live.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL data directory and socket directory in a scratch dir, owned by
/// the `postgres` user, and the `initdb` task + `postgres` service that run it
/// on `port` (no TCP listener).
pub struct Pg {
    pub data: PathBuf,
    pub sock: PathBuf,
    pub port: u16,
}

impl Pg {
    pub fn new(s: &Scratch, port: u16) -> Pg {
        assert!(
            Path::new(&format!("{PG_BIN}/postgres")).exists(),
            "PostgreSQL 15 is not installed (apt-get install postgresql); tests/run.sh installs it"
        );
        let (data, sock) = (s.path("pgdata"), s.path("pgsock"));
        for d in [&data, &sock] {
            fs::create_dir_all(d).expect("pg dir");
            run_ok("chown", &["postgres:postgres", d.to_str().expect("utf8")]);
        }
        run_ok("chmod", &["700", data.to_str().expect("utf8")]);
        // The postgres user must be able to reach the scratch dir.
        run_ok("chmod", &["755", s.dir.path().to_str().expect("utf8")]);
        Pg { data, sock, port }
    }

    /// `[task.initdb]` and `[service.postgres]` (SIGINT: fast shutdown).
    pub fn units(&self) -> String {
        format!(
            r#"
[task.initdb]
user = "postgres"
run = "test -e {data}/PG_VERSION || {PG_BIN}/initdb -D {data} -A trust -U postgres >/dev/null"

[service.postgres]
user = "postgres"
after = ["initdb"]
run = ["{PG_BIN}/postgres", "-D", "{data}", "-k", "{sock}", "-p", "{port}", "-c", "listen_addresses="]
ready = {{ postgres = "host={sock} port={port} user=postgres dbname=postgres", timeout = "60s" }}
stop_signal = "SIGINT"
stop_timeout = "30s"
"#,
            data = self.data.display(),
            sock = self.sock.display(),
            port = self.port,
        )
    }

    /// `psql` against this server, as a shell command prefix.
    pub fn psql(&self) -> String {
        format!(
            "{PG_BIN}/psql -h {} -p {} -U postgres",
            self.sock.display(),
            self.port
        )
    }
}

fn run_ok(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().expect("run");
    assert!(st.success(), "{cmd} {args:?} failed");
}
