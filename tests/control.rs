//! Control-plane tests: `bosun ctl` and the HTTP API against a real bosun
//! running as PID 1 (see `common`), on the unix socket and on TCP.
//!
//! Tools these tests use beyond the binary: `setpriv` (util-linux) to run the
//! client as `nobody`; Python 3 with `prometheus_client` (installed with pip
//! when missing) to parse `/metrics`; Chromium (Debian `chromium`) for the
//! status page. A browser test without Chromium says so loudly and skips.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bosun_core::output::LogLine;
use bosun_core::status::{DaemonStatus, HealthReport, State};
use common::{bosun_bin, eventually, Pid1, Scratch};

const BOOT: Duration = Duration::from_secs(20);

// ---- helpers ---------------------------------------------------------------

/// A bosun under test and where to reach it.
struct Daemon {
    pid1: Pid1,
    scratch: Scratch,
    socket: PathBuf,
}

impl Daemon {
    /// Starts bosun with `[bosun]` extras and units; waits until its socket answers.
    fn start(bosun_extra: &str, units: &str, env: &[(&str, &str)]) -> Daemon {
        let scratch = Scratch::new();
        let config = scratch.config(bosun_extra, units);
        let pid1 = Pid1::run(&scratch, &config, env);
        let socket = scratch.path("run/ctl.sock");
        let d = Daemon {
            pid1,
            scratch,
            socket,
        };
        let up = eventually(BOOT, || d.ctl(&["status"]).0 == 0);
        assert!(up, "bosun's socket never answered\n{}", d.pid1.output());
        d
    }

    /// `bosun ctl --socket … ARGS`.
    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let sock = self.socket.to_str().expect("utf8 path");
        let mut all = vec!["ctl", "--socket", sock];
        all.extend_from_slice(args);
        common::bosun(&all, &[])
    }

    /// `ctl ARGS` that must succeed; its stdout.
    fn ctl_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctl(args);
        assert_eq!(
            code,
            0,
            "ctl {args:?} failed: {out}{err}\n{}",
            self.pid1.output()
        );
        out
    }

    fn status(&self) -> DaemonStatus {
        let out = self.ctl_ok(&["status", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON: {e}: {out}"))
    }

    fn unit(&self, name: &str) -> bosun_core::status::UnitStatus {
        self.status()
            .units
            .into_iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("no unit {name}"))
    }

    /// Waits until every active unit is ready.
    fn wait_healthy(&self) {
        let ok = eventually(BOOT, || self.ctl(&["health"]).0 == 0);
        assert!(
            ok,
            "bosun never became healthy: {:?}\n{}",
            self.ctl(&["health"]),
            self.pid1.output()
        );
    }

    /// Waits until `unit` is ready with a pid, returns the pid.
    fn wait_ready(&self, unit: &str) -> i32 {
        let mut pid = None;
        let ok = eventually(BOOT, || {
            let u = self.unit(unit);
            pid = u.pid;
            u.ready && u.pid.is_some()
        });
        assert!(ok, "{unit} never became ready: {:?}", self.unit(unit));
        pid.unwrap_or_default()
    }

    /// Open fds of bosun, seen from the host.
    fn fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid1.host_pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// `ctl shutdown`, then bosun's exit code, its output, and the scratch
    /// dir (kept alive for a look at what bosun left).
    fn shutdown(mut self) -> (i32, String, Scratch) {
        let (code, out, err) = self.ctl(&["shutdown"]);
        assert_eq!(code, 0, "ctl shutdown: {out}{err}");
        let exit = self.pid1.wait(Duration::from_secs(30));
        (exit, self.pid1.output(), self.scratch)
    }
}

/// One raw HTTP/1.1 request; (status, body). Chunked bodies are de-chunked.
fn http(
    mut s: impl Read + Write,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
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

fn http_unix(sock: &Path, method: &str, path: &str) -> (u16, String) {
    let s = UnixStream::connect(sock).expect("connect to the control socket");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    http(s, method, path, &[], "")
}

fn http_tcp(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let s = TcpStream::connect(addr).expect("connect to the TCP API");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http(s, method, path, &headers, "")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A copy of the bosun binary that any user can run (the build tree may not be).
fn public_bosun(scratch: &Scratch) -> PathBuf {
    let p = scratch.path("bosun-bin");
    fs::copy(bosun_bin(), &p).expect("copy bosun");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod bosun");
    p
}

/// Runs `bin ctl --socket SOCK ARGS` as uid 65534 with the given gid.
fn ctl_as_nobody(bin: &Path, gid: u32, sock: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", &format!("--regid={gid}"), "--clear-groups"])
        .arg(bin)
        .args(["ctl", "--socket"])
        .arg(sock)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv (util-linux)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const WEB_HUP: &str = r#"
[service.web]
run = "trap 'echo got-hup' HUP; echo web-started; while :; do sleep 0.1; done"
roles = ["web"]
"#;

// ---- every command against a running bosun ---------------------------------

#[test]
fn ctl_commands_work_against_a_running_bosun() {
    let units = format!(
        "{WEB_HUP}
[service.worker]
run = [\"sleep\", \"1000\"]
roles = [\"jobs\"]

[task.init]
run = \"echo init-done\"
"
    );
    let d = Daemon::start("", &units, &[]);
    d.wait_healthy();

    // status: the table, every unit, exit 0.
    let table = d.ctl_ok(&["status"]);
    for col in [
        "UNIT",
        "KIND",
        "ROLES",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "READY",
        "LAST EXIT",
    ] {
        assert!(table.contains(col), "no {col} column:\n{table}");
    }
    for u in ["web", "worker", "init"] {
        assert!(
            table.lines().any(|l| l.starts_with(u)),
            "no row for {u}:\n{table}"
        );
    }
    let st = d.status();
    assert_eq!(st.pid, 1, "bosun is PID 1 in its namespace");
    assert_eq!(st.units.len(), 3);
    // Only some units.
    let one = d.ctl_ok(&["status", "web"]);
    assert!(one.contains("web") && !one.contains("worker"), "{one}");
    let (code, _, err) = d.ctl(&["status", "web", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no unit named \"nope\""), "{err}");
    let picked: serde_json::Value =
        serde_json::from_str(&d.ctl_ok(&["status", "--json", "worker"])).expect("json");
    let names: Vec<&str> = picked["units"]
        .as_array()
        .expect("units")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, ["worker"]);
    // bosun picks the units itself (`?units=`) and says so.
    let curl = std::process::Command::new("curl")
        .args(["-si", "--unix-socket"])
        .arg(&d.socket)
        .arg("http://bosun/v1/status?format=table&units=web")
        .output()
        .expect("curl runs");
    assert!(curl.status.success());
    let head = String::from_utf8_lossy(&curl.stdout);
    assert!(
        head.to_ascii_lowercase()
            .contains("x-bosun-units-picked: 1"),
        "{head}"
    );
    assert!(
        head.contains("\nweb ") && !head.contains("\nworker "),
        "{head}"
    );
    // The table bosun renders (plain `status`) and the one ctl renders from
    // the JSON (`status UNIT…`) agree.
    let local = d.ctl_ok(&["status", "web", "worker", "init"]);
    let served = d.ctl_ok(&["status"]);
    let names = |t: &str| -> Vec<String> {
        t.lines()
            .skip(1)
            .map(|l| l.split_whitespace().take(5).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(names(&local), names(&served), "{local}\n{served}");

    // restart: a new process.
    let before = d.wait_ready("web");
    let out = d.ctl_ok(&["restart", "web"]);
    assert!(out.contains("web"), "{out}");
    let after = d.wait_ready("web");
    assert_ne!(before, after, "restart must start a new process");
    assert!(d.unit("web").restarts >= 1);

    // stop, start.
    let out = d.ctl_ok(&["stop", "worker"]);
    assert!(out.contains("stopped"), "{out}");
    let w = d.unit("worker");
    assert_eq!((w.state, w.pid), (State::Stopped, None));
    d.ctl_ok(&["start", "worker"]);
    d.wait_ready("worker");

    // signal: the unit's trap sees it.
    d.ctl_ok(&["signal", "HUP", "web"]);
    let seen = eventually(Duration::from_secs(10), || {
        d.ctl_ok(&["logs", "web"]).contains("got-hup")
    });
    assert!(
        seen,
        "the HUP trap never ran: {}",
        d.ctl_ok(&["logs", "web"])
    );
    assert_eq!(
        d.ctl(&["signal", "NOPE", "web"]).0,
        1,
        "unknown signals are refused"
    );

    // logs -n.
    let last = d.ctl_ok(&["logs", "-n", "1", "web"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    let init = d.ctl_ok(&["logs", "init"]);
    assert!(init.contains("init-done"), "{init}");

    // health.
    let (code, out, _) = d.ctl(&["health"]);
    assert_eq!((code, out.trim()), (0, "healthy"));

    // reload with the same config: nothing restarts.
    let pid = d.wait_ready("web");
    let out = d.ctl_ok(&["reload"]);
    assert!(
        out.contains("reloaded") && out.contains("unchanged 3"),
        "{out}"
    );
    assert_eq!(
        d.unit("web").pid,
        Some(pid),
        "an unchanged unit keeps its process"
    );

    // backup, snapshots: answered (not configured in this config).
    for cmd in ["backup", "snapshots"] {
        let (code, out, err) = d.ctl(&[cmd]);
        assert_ne!(code, 2, "{cmd}: {out}{err}");
        assert!(
            !(out.clone() + &err).trim().is_empty(),
            "{cmd} said nothing"
        );
    }

    // A follower is open when bosun stops: it ends, with exit 0.
    let sock = d.socket.clone();
    let follower = Command::new(bosun_bin())
        .args(["ctl", "--socket"])
        .arg(&sock)
        .args(["logs", "-f", "-n", "0", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a follower");
    let mut follower = Killed(follower);
    std::thread::sleep(Duration::from_millis(300));

    let (exit, output, _scratch) = d.shutdown();
    assert_eq!(exit, 0, "ctl shutdown is a clean stop\n{output}");
    let ended = eventually(Duration::from_secs(10), || {
        matches!(follower.0.try_wait(), Ok(Some(_)))
    });
    assert!(ended, "logs -f did not end when bosun stopped");
    let st = follower.0.try_wait().ok().flatten().and_then(|s| s.code());
    assert_eq!(st, Some(0), "logs -f ends quietly when bosun stops");
    assert!(!sock.exists(), "the socket is removed at exit");
}

#[test]
fn targets_all_and_role_expand_on_the_server() {
    let units = r#"
[service.a]
run = ["sleep", "1000"]
roles = ["web"]
[service.b]
run = ["sleep", "1000"]
roles = ["web", "jobs"]
[service.c]
run = ["sleep", "1000"]
roles = ["jobs"]
[service.off]
run = ["sleep", "1000"]
roles = ["elsewhere"]
[task.init]
run = "echo once >> {dir}/init-runs"
"#;
    let d = Daemon::start("", units, &[("CONTAINERROLE", "web:jobs")]);
    d.wait_healthy();
    let pids = |names: &[&str]| names.iter().map(|n| d.wait_ready(n)).collect::<Vec<_>>();
    let before = pids(&["a", "b", "c"]);

    // role:web restarts a and b, not c.
    let out = d.ctl_ok(&["restart", "role:web"]);
    assert!(out.contains('a') && out.contains('b'), "{out}");
    let after = pids(&["a", "b", "c"]);
    assert_ne!(before[0], after[0]);
    assert_ne!(before[1], after[1]);
    assert_eq!(before[2], after[2], "c has no role web");

    // stop all, start all: every active service; the task is not run again.
    let out = d.ctl_ok(&["stop", "all"]);
    assert_eq!(out.lines().count(), 4, "a, b, c and init answered: {out}");
    for u in ["a", "b", "c"] {
        assert_eq!(d.unit(u).state, State::Stopped);
    }
    d.ctl_ok(&["start", "all"]);
    pids(&["a", "b", "c"]);
    assert_eq!(
        d.unit("off").state,
        State::Inactive,
        "all means active units only"
    );
    assert_eq!(
        d.scratch.read("init-runs").lines().count(),
        1,
        "start all must not re-run tasks"
    );

    // Unknown role, inactive unit, unknown unit.
    let (code, _, err) = d.ctl(&["restart", "role:nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no active unit has role"), "{err}");
    let (code, _, err) = d.ctl(&["start", "off"]);
    assert_eq!(code, 1);
    assert!(err.contains("not active"), "{err}");
}

#[test]
fn api_errors_are_json_with_proper_codes() {
    let units = r#"
[service.web]
run = ["sleep", "1000"]
roles = ["web"]
[service.off]
run = ["sleep", "1000"]
roles = ["elsewhere"]
"#;
    let d = Daemon::start("", units, &[("CONTAINERROLE", "web")]);
    let s = &d.socket;
    let cases: &[(&str, &str, u16)] = &[
        ("POST", "/v1/units/nope/restart", 404),
        ("GET", "/v1/units/nope/logs", 404),
        ("GET", "/v1/status?units=web,nope", 404),
        ("GET", "/v1/status?format=table&units=nope", 404),
        ("POST", "/v1/units/off/start", 409),
        ("POST", "/v1/units/web/signal?sig=BOGUS", 400),
        ("POST", "/v1/units/web/signal", 400),
        ("GET", "/v1/units/web/restart", 405),
        ("POST", "/v1/status", 405),
        ("GET", "/v1/nothing", 404),
        ("GET", "/v1/status?format=yaml", 400),
        ("GET", "/v1/units/web/logs?n=x", 400),
        ("GET", "/v1/snapshots", 501),
        ("POST", "/v1/backup", 501),
    ];
    for (method, path, want) in cases {
        let (code, body) = http_unix(s, method, path);
        assert_eq!(code, *want, "{method} {path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: no error field: {body}"
        );
    }
    // Success answers.
    let (code, body) = http_unix(s, "POST", "/v1/units/web/signal?sig=CONT");
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_unix(s, "GET", "/v1/status");
    assert_eq!(code, 200);
    serde_json::from_str::<DaemonStatus>(&body).expect("DaemonStatus");
    let (code, body) = http_unix(s, "GET", "/");
    assert_eq!(code, 200);
    assert!(body.contains("<title>bosun</title>"));
    // The signal as a JSON body.
    let sock = UnixStream::connect(s).expect("connect");
    let (code, body) = http(
        sock,
        "POST",
        "/v1/units/web/signal",
        &[("Content-Type", "application/json")],
        r#"{"signal":"SIGCONT"}"#,
    );
    assert_eq!(code, 200, "{body}");
}

// ---- the socket: mode, owner, peers -----------------------------------------

#[test]
fn socket_is_0600_root_and_refuses_other_users() {
    let d = Daemon::start("", WEB_HUP, &[]);
    let meta = fs::metadata(&d.socket).expect("socket");
    assert_eq!(meta.mode() & 0o777, 0o600, "socket mode");
    assert_eq!(meta.uid(), 0, "socket owner");

    // nobody must be able to reach the socket's directory for these checks.
    for p in [d.scratch.dir.path().to_path_buf(), d.scratch.path("run")] {
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let bin = public_bosun(&d.scratch);

    // The file mode keeps nobody out.
    let (code, out, err) = ctl_as_nobody(&bin, 65534, &d.socket, &["status"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("Permission denied"), "{err}");

    // Even with the mode opened up (a careless chmod, a bind mount), peer
    // credentials keep nobody out: 403 on every request.
    fs::set_permissions(&d.socket, fs::Permissions::from_mode(0o666)).expect("chmod socket");
    for args in [
        &["status"][..],
        &["restart", "web"],
        &["shutdown"],
        &["logs", "web"],
    ] {
        let (code, out, err) = ctl_as_nobody(&bin, 65534, &d.socket, args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.contains("may not use the control socket"),
            "{args:?}: {err}"
        );
    }
    let (code, _, err) = ctl_as_nobody(&bin, 65534, &d.socket, &["health"]);
    assert_ne!(code, 0, "{err}");
    assert!(d
        .pid1
        .output()
        .contains("refused a connection from uid 65534"));
    // Root still gets in, and nothing happened to the units.
    assert_eq!(d.unit("web").restarts, 0);
    assert_eq!(d.ctl(&["status"]).0, 0);
}

#[test]
fn control_group_opens_the_socket_to_its_members() {
    // Debian's `users` group (gid 100).
    let d = Daemon::start("control_group = \"users\"", WEB_HUP, &[]);
    let meta = fs::metadata(&d.socket).expect("socket");
    assert_eq!(meta.mode() & 0o777, 0o660, "socket mode with control_group");
    assert_eq!((meta.uid(), meta.gid()), (0, 100), "socket owner:group");
    for p in [d.scratch.dir.path().to_path_buf(), d.scratch.path("run")] {
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let bin = public_bosun(&d.scratch);
    let (code, out, err) = ctl_as_nobody(&bin, 100, &d.socket, &["status"]);
    assert_eq!(code, 0, "a member of control_group may: {out}{err}");
    let (code, out, err) = ctl_as_nobody(&bin, 65534, &d.socket, &["status"]);
    assert_eq!(code, 2, "a non-member may not: {out}{err}");
}

// ---- TCP and the token ----------------------------------------------------

#[test]
fn tcp_needs_the_token_on_every_path_but_health_and_metrics() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let token = "tcp-test-token-8d1f2a";
    let scratch_token = Scratch::new();
    let token_file = scratch_token.path("token");
    fs::write(&token_file, format!("  {token}\n")).expect("token file");
    let extra = format!(
        "http_listen = \"{addr}\"\nhttp_token_file = \"{}\"",
        token_file.display()
    );
    let d = Daemon::start(&extra, WEB_HUP, &[]);
    d.wait_healthy();
    let pid = d.wait_ready("web");

    // Open paths.
    for path in ["/health", "/metrics", "/"] {
        let (code, body) = http_tcp(&addr, "GET", path, None);
        assert_eq!(code, 200, "{path} must be open: {body}");
    }
    // Every other path: 401 without a token and with a wrong one.
    let guarded: &[(&str, &str)] = &[
        ("GET", "/v1/status"),
        ("POST", "/v1/units/web/start"),
        ("POST", "/v1/units/web/stop"),
        ("POST", "/v1/units/web/restart"),
        ("POST", "/v1/units/web/signal?sig=HUP"),
        ("POST", "/v1/units/all/restart"),
        ("GET", "/v1/units/web/logs?n=5"),
        ("POST", "/v1/reload"),
        ("GET", "/v1/snapshots"),
        ("POST", "/v1/backup"),
        ("POST", "/v1/shutdown"),
    ];
    for (method, path) in guarded {
        for t in [
            None,
            Some("wrong"),
            Some(&token[..token.len() - 1]),
            Some("tcp-test-token-8d1f2aX"),
        ] {
            let (code, body) = http_tcp(&addr, method, path, t);
            assert_eq!(code, 401, "{method} {path} with {t:?}: {body}");
            assert!(body.contains("\"error\""), "{body}");
        }
    }
    // Nothing happened.
    let u = d.unit("web");
    assert_eq!(
        (u.pid, u.restarts),
        (Some(pid), 0),
        "an unauthorised call changed a unit"
    );
    assert!(
        !d.ctl_ok(&["logs", "web"]).contains("got-hup"),
        "an unauthorised signal was delivered"
    );

    // With the token: every path does its job.
    let ok: &[(&str, &str, u16)] = &[
        ("GET", "/v1/status", 200),
        ("POST", "/v1/units/web/stop", 200),
        ("POST", "/v1/units/web/start", 200),
        ("POST", "/v1/units/web/restart", 200),
        ("GET", "/v1/units/web/logs?n=5", 200),
        ("POST", "/v1/reload", 200),
        ("GET", "/v1/snapshots", 501),
        ("POST", "/v1/backup", 501),
    ];
    for (method, path, want) in ok {
        let (code, body) = http_tcp(&addr, method, path, Some(token));
        assert_eq!(code, *want, "{method} {path}: {body}");
    }
    d.wait_ready("web");
    let (code, body) = http_tcp(&addr, "POST", "/v1/units/web/signal?sig=HUP", Some(token));
    assert_eq!(code, 200, "{body}");

    // ctl over TCP: --token-file, then $BOSUN_HTTP_TOKEN.
    let url = format!("http://{addr}");
    let tf = token_file.to_str().expect("utf8");
    let (code, out, err) =
        common::bosun(&["ctl", "--url", &url, "--token-file", tf, "status"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("web"));
    let (code, _, err) = common::bosun(
        &["ctl", "--url", &url, "status"],
        &[("BOSUN_HTTP_TOKEN", "nope")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("wrong token"), "{err}");
    let (code, out, err) = common::bosun(&["ctl", "--url", &url, "health"], &[]);
    assert_eq!(code, 0, "health needs no token: {out}{err}");
    let (code, out, err) = common::bosun(
        &["ctl", "--url", &url, "shutdown"],
        &[("BOSUN_HTTP_TOKEN", token)],
    );
    assert_eq!(code, 0, "{out}{err}");
    let mut pid1 = d.pid1;
    assert_eq!(pid1.wait(Duration::from_secs(30)), 0);
    assert!(
        !pid1.output().contains(token),
        "the token was logged:\n{}",
        pid1.output()
    );
}

#[test]
fn tcp_without_a_token_refuses_to_start() {
    let port = free_port();
    // No token at all.
    let s = Scratch::new();
    let cfg = s.config(&format!("http_listen = \"127.0.0.1:{port}\""), WEB_HUP);
    let mut p = Pid1::run(&s, &cfg, &[]);
    let code = p.wait(Duration::from_secs(20));
    assert_ne!(code, 0, "bosun must not start\n{}", p.output());
    assert!(
        p.output()
            .contains("refuses to serve its API on TCP without a token"),
        "{}",
        p.output()
    );
    assert!(
        !p.output().contains("web-started"),
        "no unit may start\n{}",
        p.output()
    );

    // An empty token file is no token either.
    let s = Scratch::new();
    fs::write(s.path("token"), "\n  \n").expect("write");
    let extra = format!(
        "http_listen = \"127.0.0.1:{port}\"\nhttp_token_file = \"{}\"",
        s.path("token").display()
    );
    let cfg = s.config(&extra, WEB_HUP);
    let mut p = Pid1::run(&s, &cfg, &[]);
    assert_ne!(p.wait(Duration::from_secs(20)), 0);
    assert!(p.output().contains("is empty"), "{}", p.output());
}

// ---- /metrics through a real Prometheus parser ------------------------------

const PROM_PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out[fam.name] = {"type": fam.type, "samples": [[s.name, s.labels, s.value] for s in fam.samples]}
print(json.dumps(out))
"#;

fn python_with_prometheus_client() -> bool {
    let ok = || {
        Command::new("python3")
            .args(["-c", "import prometheus_client.parser"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok() {
        return true;
    }
    eprintln!("installing prometheus_client with pip for the /metrics test");
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "prometheus_client"])
        .status();
    ok()
}

#[test]
fn metrics_parse_with_prometheus_client() {
    assert!(
        python_with_prometheus_client(),
        "python3 with prometheus_client is needed (pip install prometheus_client)"
    );
    let units = r#"
[service.web]
run = ["sleep", "1000"]
[service.crashy]
run = "sleep 0.2; exit 3"
backoff = { initial = "100ms", max = "200ms" }
start_limit = { burst = 100, interval = "60s" }
[task.init]
run = "true"
"#;
    let d = Daemon::start("", units, &[]);
    d.wait_ready("web");
    let crashed = eventually(BOOT, || d.unit("crashy").restarts >= 1);
    assert!(crashed, "crashy never restarted");
    let (code, text) = http_unix(&d.socket, "GET", "/metrics");
    assert_eq!(code, 200);

    let mut py = Command::new("python3")
        .args(["-c", PROM_PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    py.stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed python");
    let out = py.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the parser rejected /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fams: serde_json::Value = serde_json::from_slice(&out.stdout).expect("parser JSON");

    let value = |sample: &str, labels: &[(&str, &str)]| -> Option<f64> {
        fams.as_object()?.values().find_map(|f| {
            f["samples"].as_array()?.iter().find_map(|s| {
                let matches = s[0] == sample && labels.iter().all(|(k, v)| s[1][k] == *v);
                matches.then(|| s[2].as_f64()).flatten()
            })
        })
    };
    // Types (the parser names counters without _total).
    for (fam, ty) in [
        ("bosun_unit_up", "gauge"),
        ("bosun_unit_ready", "gauge"),
        ("bosun_unit_restarts", "counter"),
        ("bosun_unit_last_exit_code", "gauge"),
        ("bosun_unit_start_time_seconds", "gauge"),
        ("bosun_unit_state", "gauge"),
        ("bosun_process_resident_memory_bytes", "gauge"),
        ("bosun_process_open_fds", "gauge"),
        ("bosun_reaped_orphans", "counter"),
        ("bosun_build_info", "gauge"),
    ] {
        assert_eq!(fams[fam]["type"], ty, "family {fam}: {}", fams[fam]);
    }
    assert_eq!(value("bosun_unit_up", &[("unit", "web")]), Some(1.0));
    assert_eq!(value("bosun_unit_ready", &[("unit", "web")]), Some(1.0));
    assert_eq!(
        value("bosun_unit_ready", &[("unit", "init")]),
        Some(1.0),
        "a done task is ready"
    );
    assert!(value("bosun_unit_restarts_total", &[("unit", "crashy")]).is_some_and(|v| v >= 1.0));
    assert_eq!(
        value("bosun_unit_last_exit_code", &[("unit", "crashy")]),
        Some(3.0)
    );
    assert_eq!(
        value("bosun_unit_state", &[("unit", "web"), ("state", "ready")]),
        Some(1.0)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let start = value("bosun_unit_start_time_seconds", &[("unit", "web")]).unwrap_or(0.0);
    assert!(
        (now - 120.0..=now + 1.0).contains(&start),
        "web start time {start} vs now {now}"
    );
    // One-hot: exactly one state per unit.
    for unit in ["web", "crashy", "init"] {
        let on: f64 = fams["bosun_unit_state"]["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .filter(|s| s[1]["unit"] == unit)
            .filter_map(|s| s[2].as_f64())
            .sum();
        assert_eq!(on, 1.0, "{unit} must be in exactly one state");
    }
    assert!(value("bosun_process_resident_memory_bytes", &[]).is_some_and(|v| v > 1e6));
    assert!(value("bosun_process_open_fds", &[]).is_some_and(|v| v > 3.0));
    assert!(value("bosun_reaped_orphans_total", &[]).is_some());
    assert_eq!(
        value(
            "bosun_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
}

// ---- secrets ---------------------------------------------------------------

#[test]
fn secrets_never_appear_in_status_api_ctl_or_logs() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let token = "tok-GGGG7777-never-logged";
    let secrets = [
        "k-AAAA1111",
        "p-BBBB2222",
        "s-CCCC3333",
        "t-DDDD4444",
        "pw-EEEE5555",
        "pw-FFFF6666",
        "pw-HHHH8888",
        token,
    ];
    let units = r#"
[service.web]
run = ["sleep", "1000"]
env = { API_KEY = "k-AAAA1111", DB_PASSWORD = "p-BBBB2222", SECRET_X = "s-CCCC3333", MY_TOKEN = "t-DDDD4444", PLAIN = "visible" }

[service.gated]
run = ["sleep", "1000"]
wait_for = ["http://admin:pw-EEEE5555@127.0.0.1:1/health"]
wait_for_timeout = "600s"

[service.probed]
run = ["sleep", "1000"]
ready = { http = "http://user:pw-FFFF6666@127.0.0.1:1/ready", timeout = "600s" }
health = { http = "http://user:pw-HHHH8888@127.0.0.1:1/live", interval = "1s", failures = 3 }
"#;
    let extra = format!("http_listen = \"{addr}\"\nlog_file = \"{{dir}}/bosun.log\"");
    let scratch = Scratch::new();
    let extra = extra.replace("{dir}", &scratch.dir.path().display().to_string());
    let config = scratch.config(&extra, units);
    let pid1 = Pid1::run(&scratch, &config, &[("BOSUN_HTTP_TOKEN", token)]);
    let d = Daemon {
        pid1,
        socket: scratch.path("run/ctl.sock"),
        scratch,
    };
    let up = eventually(BOOT, || d.ctl(&["status"]).0 == 0);
    assert!(up, "{}", d.pid1.output());
    d.wait_ready("web");
    // Let the gate and the probe fail a few times, so their messages exist.
    let waited = eventually(BOOT, || {
        let st = d.status();
        st.units
            .iter()
            .filter(|u| !u.detail.is_empty() && u.name != "web")
            .count()
            == 2
    });
    assert!(waited, "{:?}", d.status());
    std::thread::sleep(Duration::from_secs(2));

    let mut seen = Vec::new();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["health"],
        &["health", "--json"],
        &["logs", "web"],
        &["logs", "gated"],
        &["logs", "probed"],
    ] {
        let (_, out, err) = d.ctl(args);
        seen.push((format!("ctl {args:?}"), out + &err));
    }
    for path in [
        "/v1/status",
        "/health",
        "/metrics",
        "/v1/units/web/logs",
        "/v1/units/probed/logs",
        "/v1/units/gated/logs",
    ] {
        let (_, body) = http_unix(&d.socket, "GET", path);
        seen.push((format!("GET {path}"), body));
        let (_, body) = http_tcp(&addr, "GET", path, Some(token));
        seen.push((format!("TCP GET {path}"), body));
    }
    let (_, out, err) = common::bosun(&["check", "-c", config.to_str().expect("utf8")], &[]);
    seen.push(("bosun check".into(), out + &err));
    // Secrets in the environment of a unit must still reach the unit.
    let env = fs::read(format!("/proc/{}/environ", host_pid_of(&d, "web"))).unwrap_or_default();
    let env = String::from_utf8_lossy(&env).into_owned();
    assert!(env.contains("API_KEY=k-AAAA1111"), "the unit lost its env");
    assert!(
        !env.contains(token),
        "units must not inherit the admin token"
    );

    let (exit, output, scratch) = d.shutdown();
    assert_eq!(exit, 0, "{output}");
    seen.push(("bosun's stdout/stderr".into(), output));
    let log = scratch.read("bosun.log");
    assert!(log.contains("starting"), "bosun's log_file is empty");
    seen.push(("bosun's log_file".into(), log));
    for (what, text) in &seen {
        for s in &secrets {
            assert!(!text.contains(s), "{s} leaked into {what}:\n{text}");
        }
    }
    // The redacted forms are there, so the test looked at real messages.
    let all: String = seen.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        all.contains("admin:***@127.0.0.1:1"),
        "no redacted gate URL anywhere"
    );
}

/// The host pid of a unit's process: the child of bosun (of any of its
/// threads) whose pid inside bosun's namespace is the unit's.
fn host_pid_of(d: &Daemon, unit: &str) -> i32 {
    let ns_pid = d.unit(unit).pid.unwrap_or_default();
    let host = d.pid1.host_pid();
    let tasks = fs::read_dir(format!("/proc/{host}/task")).expect("bosun's tasks");
    for t in tasks.flatten() {
        let kids = fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for k in kids.split_whitespace() {
            let status = fs::read_to_string(format!("/proc/{k}/status")).unwrap_or_default();
            let nspid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .unwrap_or("");
            if nspid.split_whitespace().last().and_then(|p| p.parse().ok()) == Some(ns_pid) {
                return k.parse().unwrap_or_default();
            }
        }
    }
    panic!("no host pid for {unit} (ns pid {ns_pid})");
}

// ---- load: many clients, no fd leak -----------------------------------------

#[test]
fn many_clients_leave_bosun_responsive_and_leak_no_fds() {
    let units = r#"
[service.chatty]
run = "i=0; while :; do i=$((i+1)); echo chat-$i; sleep 0.05; done"
[service.web]
run = ["sleep", "1000"]
"#;
    let d = Daemon::start("", units, &[]);
    d.wait_healthy();
    // Warm up (lazy allocations, the first connections), then the baseline.
    for _ in 0..5 {
        d.ctl_ok(&["status"]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let baseline = d.fds();

    // 500 status requests at once.
    let n = 500;
    let barrier = Arc::new(Barrier::new(n));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (b, sock) = (barrier.clone(), d.socket.clone());
            std::thread::spawn(move || {
                b.wait();
                let (code, body) = http_unix(&sock, "GET", "/v1/status");
                code == 200 && serde_json::from_str::<DaemonStatus>(&body).is_ok()
            })
        })
        .collect();
    let good = threads
        .into_iter()
        .filter_map(|t| t.join().ok())
        .filter(|ok| *ok)
        .count();
    eprintln!("{n} concurrent status requests in {:?}", t0.elapsed());
    assert_eq!(good, n, "every concurrent status request must succeed");

    // 50 `ctl logs -f` followers at once.
    let followers: Vec<(Killed, PathBuf)> = (0..50)
        .map(|i| {
            let out = d.scratch.path(&format!("follow-{i}.out"));
            let child = Command::new(bosun_bin())
                .args(["ctl", "--socket"])
                .arg(&d.socket)
                .args(["logs", "-f", "-n", "0", "chatty"])
                .stdout(fs::File::create(&out).expect("out file"))
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn follower");
            (Killed(child), out)
        })
        .collect();
    let all_fed = eventually(Duration::from_secs(20), || {
        followers
            .iter()
            .all(|(_, p)| fs::read_to_string(p).is_ok_and(|s| s.contains("chat-")))
    });
    assert!(all_fed, "not every follower got lines");
    // Still responsive with 50 streams open.
    let t = Instant::now();
    let (code, _) = http_unix(&d.socket, "GET", "/v1/status");
    let took = t.elapsed();
    assert_eq!(code, 200);
    assert!(
        took < Duration::from_secs(1),
        "status took {took:?} with 50 followers"
    );
    let during = d.fds();
    assert!(
        during >= baseline + 50,
        "followers hold connections: {during} vs {baseline}"
    );
    // Each follower sees every line, in order.
    std::thread::sleep(Duration::from_millis(500));
    for (_, p) in &followers {
        let text = fs::read_to_string(p).unwrap_or_default();
        let nums: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("chat-"))
            .filter_map(|n| n.parse().ok())
            .collect();
        assert!(
            nums.windows(2).all(|w| w[1] == w[0] + 1),
            "a follower lost or reordered lines: {nums:?}"
        );
    }

    drop(followers);
    let back = eventually(Duration::from_secs(10), || d.fds() <= baseline);
    assert!(back, "fds leaked: {} now, {baseline} before", d.fds());
    // And bosun still answers.
    assert_eq!(d.ctl(&["status"]).0, 0);
    let (exit, out, _) = d.shutdown();
    assert_eq!(exit, 0, "{out}");
}

#[test]
fn a_connection_flood_is_capped_and_units_keep_restarting() {
    // bosun with 256 fds: the API takes at most 64 connections (a quarter).
    let scratch = Scratch::new();
    let config = scratch.config(
        "",
        r#"
[service.flappy]
run = "sleep 0.2; exit 1"
backoff = { initial = "100ms", max = "100ms" }
start_limit = { burst = 10000, interval = "60s" }
[service.web]
run = ["sleep", "1000"]
"#,
    );
    let log = scratch.path("bosun.out");
    let child = Command::new("prlimit")
        .args([
            "--nofile=256:256",
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
        ])
        .arg(bosun_bin())
        .arg("run")
        .arg("-c")
        .arg(&config)
        .stdout(fs::File::create(&log).expect("log"))
        .stderr(Stdio::from(
            fs::File::create(scratch.path("bosun.err")).expect("err"),
        ))
        .spawn()
        .expect("prlimit (util-linux)");
    let _bosun = Killed(child);
    let socket = scratch.path("run/ctl.sock");
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--socket", socket.to_str().expect("utf8")];
        all.extend_from_slice(args);
        common::bosun(&all, &[])
    };
    assert!(
        eventually(BOOT, || ctl(&["status"]).0 == 0),
        "bosun never answered"
    );
    let starts = || {
        let out = fs::read_to_string(&log).unwrap_or_default() + &scratch.read("bosun.err");
        out.lines()
            .filter(|l| l.contains("started") && l.contains("flappy"))
            .count()
    };

    // 200 clients connect and say nothing: bosun takes 64 of them and lets
    // the rest wait in the backlog, its fds well under its limit.
    let host_pid = {
        let id = _bosun.0.id();
        let mut pid = String::new();
        eventually(BOOT, || {
            pid = fs::read_to_string(format!("/proc/{id}/task/{id}/children")).unwrap_or_default();
            !pid.trim().is_empty()
        });
        pid.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let fds = || {
        fs::read_dir(format!("/proc/{host_pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let idle = fds();
    let flood: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(&socket).ok())
        .collect();
    assert_eq!(
        flood.len(),
        200,
        "connects wait in the backlog, they do not fail"
    );
    std::thread::sleep(Duration::from_millis(500));
    let during = fds();
    assert!(
        during >= idle + 60 && during <= idle + 70,
        "bosun holds about 64 connections: {idle} -> {during}"
    );
    let err = scratch.read("bosun.err") + &fs::read_to_string(&log).unwrap_or_default();
    assert!(err.contains("connections open; new ones wait"), "{err}");

    // Supervision goes on: the flapping unit keeps being restarted.
    let before = starts();
    assert!(
        eventually(Duration::from_secs(10), || starts() >= before + 3),
        "units stopped restarting during the flood: {before} -> {}",
        starts()
    );
    // When the flood goes, the API answers again.
    drop(flood);
    assert!(
        eventually(Duration::from_secs(10), || ctl(&["status"]).0 == 0),
        "the API did not recover"
    );
}

// ---- logs ------------------------------------------------------------------

#[test]
fn logs_keep_a_ring_buffer_and_follow() {
    let units = r#"
[service.printer]
run = "i=1; while [ $i -le 300 ]; do echo line-$i; i=$((i+1)); done; echo printed-all; exec sleep 1000"
[service.waiter]
run = "trap 'echo got-usr1' USR1; while :; do sleep 0.05; done"
"#;
    let d = Daemon::start("log_buffer = 2048", units, &[]);
    let done = eventually(BOOT, || {
        d.ctl_ok(&["logs", "-n", "1", "printer"])
            .contains("printed-all")
    });
    assert!(done, "{}", d.ctl_ok(&["logs", "printer"]));

    // The ring keeps the newest lines within its size.
    let all = d.ctl_ok(&["logs", "printer"]);
    let lines: Vec<&str> = all.lines().collect();
    assert!(
        lines.len() < 300,
        "a 2 KiB ring cannot hold 300 lines: {}",
        lines.len()
    );
    assert!(
        lines.len() > 20,
        "the ring holds more than a few lines: {}",
        lines.len()
    );
    assert_eq!(lines.last().copied(), Some("printed-all"));
    assert!(!all.contains("line-1\n"), "the oldest lines are gone");

    // -n N: exactly the last N.
    let five = d.ctl_ok(&["logs", "-n", "5", "printer"]);
    assert_eq!(
        five,
        "line-297\nline-298\nline-299\nline-300\nprinted-all\n"
    );
    assert_eq!(d.ctl_ok(&["logs", "-n", "0", "printer"]), "");
    // --json: LogLine records; -t: time stamps.
    let json = d.ctl_ok(&["logs", "-n", "2", "--json", "printer"]);
    let recs: Vec<LogLine> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("LogLine"))
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].text, "printed-all");
    let stamped = d.ctl_ok(&["logs", "-n", "1", "-t", "printer"]);
    assert!(
        stamped.starts_with("20") && stamped.contains("Z printed-all"),
        "{stamped}"
    );

    // -f: new lines arrive while following.
    let out = d.scratch.path("follow.out");
    let child = Command::new(bosun_bin())
        .args(["ctl", "--socket"])
        .arg(&d.socket)
        .args(["logs", "-f", "-n", "0", "waiter"])
        .stdout(fs::File::create(&out).expect("out"))
        .spawn()
        .expect("follower");
    let _follower = Killed(child);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        d.ctl_ok(&["signal", "USR1", "waiter"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = eventually(Duration::from_secs(10), || {
        fs::read_to_string(&out).is_ok_and(|s| s.matches("got-usr1").count() == 3)
    });
    assert!(got, "the follower saw: {:?}", fs::read_to_string(&out));
    // `-f -n 2`: the backlog first, then live.
    let (code, _, _) = d.ctl(&["logs", "-n", "2", "nope"]);
    assert_eq!(code, 1, "logs of an unknown unit");
}

// ---- reload -----------------------------------------------------------------

#[test]
fn reload_adds_removes_changes_and_leaves_the_rest() {
    let before = r#"
[service.keep]
run = ["sleep", "1000"]
[service.gone]
run = ["sleep", "1000"]
[service.changed]
run = ["sleep", "1000"]
"#;
    let d = Daemon::start("", before, &[]);
    d.wait_healthy();
    let keep = d.wait_ready("keep");
    let changed = d.wait_ready("changed");

    // A config with an error changes nothing.
    d.scratch.config(
        "",
        &format!("{before}\n[service.bad]\nrun = [\"sleep\"]\nbogus_key = 1\n"),
    );
    let (code, out, err) = d.ctl(&["reload"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("nothing changed") && err.contains("bogus_key"),
        "{err}"
    );
    assert_eq!(d.unit("keep").pid, Some(keep));

    let after = r#"
[service.keep]
run = ["sleep", "1000"]
[service.changed]
run = ["sleep", "1001"]
[service.added]
run = ["sleep", "1000"]
"#;
    d.scratch.config("", after);
    let out = d.ctl_ok(&["reload"]);
    assert!(out.contains("started added"), "{out}");
    assert!(out.contains("stopped gone"), "{out}");
    assert!(out.contains("restarted changed"), "{out}");
    assert!(out.contains("unchanged 1"), "{out}");
    d.wait_ready("added");
    let new_changed = d.wait_ready("changed");
    assert_ne!(new_changed, changed, "a changed unit restarts");
    assert_eq!(
        d.unit("keep").pid,
        Some(keep),
        "an unchanged unit keeps its process"
    );
    let names: Vec<String> = d.status().units.into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["keep", "changed", "added"]);
    // The table and the API follow the new unit set.
    assert!(d.ctl_ok(&["status"]).contains("added"));
    assert_eq!(
        http_unix(&d.socket, "POST", "/v1/units/gone/restart").0,
        404
    );
    d.ctl_ok(&["restart", "added"]);
}

#[test]
fn health_exits_0_1_2() {
    let d = Daemon::start("", WEB_HUP, &[]);
    d.wait_healthy();
    let (code, out, _) = d.ctl(&["health", "--json"]);
    assert_eq!(code, 0);
    let r: HealthReport = serde_json::from_str(&out).expect("HealthReport");
    assert!(r.healthy && r.reasons.is_empty());

    d.ctl_ok(&["stop", "web"]);
    let (code, out, _) = d.ctl(&["health"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("web: stopped"), "{out}");
    let (code, out, _) = d.ctl(&["health", "--json"]);
    assert_eq!(code, 1);
    let r: HealthReport = serde_json::from_str(&out).expect("HealthReport");
    assert!(
        !r.healthy && r.reasons.iter().any(|x| x.starts_with("web:")),
        "{r:?}"
    );
    let (code, _) = http_unix(&d.socket, "GET", "/health");
    assert_eq!(code, 503);

    let sock = d.socket.clone();
    let (exit, _, _scratch) = d.shutdown();
    assert_eq!(exit, 0);
    let s = sock.to_str().expect("utf8");
    let (code, _, err) = common::bosun(&["ctl", "--socket", s, "health"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is bosun running? set --socket or BOSUN_SOCKET"),
        "{err}"
    );
    // $BOSUN_SOCKET is honoured.
    let (code, _, err) = common::bosun(&["ctl", "status"], &[("BOSUN_SOCKET", s)]);
    assert_eq!(code, 2);
    assert!(err.contains(s), "{err}");
}

// ---- the status page in a real browser ---------------------------------------

#[test]
fn status_page_in_headless_chromium() {
    if !have("chromium") || !have("python3") {
        eprintln!();
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("!!! SKIPPED status_page_in_headless_chromium: chromium or python3 missing");
        eprintln!("!!! install it: apt-get install -y chromium");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        return;
    }
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let token = "page-token-5b7c";
    let units = r#"
[service.web]
run = ["sleep", "1000"]
[service.worker]
run = ["sleep", "1000"]
"#;
    let d = Daemon::start(
        &format!("http_listen = \"{addr}\""),
        units,
        &[("BOSUN_HTTP_TOKEN", token)],
    );
    let old = d.wait_ready("web");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/restart_page.py");
    let out = Command::new("timeout")
        .args(["120", "python3"])
        .arg(&script)
        .args([&format!("http://{addr}/"), token, "web"])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.pid1.output()
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).expect("driver JSON");
    let rows = r["rows"].to_string();
    assert!(
        rows.contains("web:ready") && rows.contains("worker:ready"),
        "{r}"
    );
    assert_eq!(
        r["before"],
        old.to_string(),
        "the page shows the real pid: {r}"
    );
    assert_ne!(r["after"], r["before"]);
    assert_eq!(r["stored"], true, "the token is kept in localStorage");
    let new = d.unit("web").pid.unwrap_or_default();
    assert_eq!(
        r["after"],
        new.to_string(),
        "the page shows the new pid: {r}"
    );
    assert!(d.unit("web").restarts >= 1);
}
