//! Connection floods against the control API, on loopback: bosun really runs as
//! PID 1 and `bosun ctl health` on the control socket (what a Docker
//! HEALTHCHECK runs) is timed while the flood holds.
//!
//! - A TCP flood on `http_listen` (idle connections that never send a byte,
//!   from 127.0.0.1 and from more loopback addresses) must not keep root's
//!   health check off the socket, nor one client keep the others off TCP, and
//!   bosun must close idle connections by itself.
//! - A slowloris on the socket by a `control_group` member (run as `nobody`
//!   with `setpriv`, from Python) must not starve root either.
//!
//! Every flood is bounded in count and time and closed at the end. The timing
//! bounds are generous (median under 1 s, none over 5 s; before the budgets a
//! check waited 5–10 s or failed); measured numbers belong in the README.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bosun_bin, eventually, Scratch};

const BOOT: Duration = Duration::from_secs(20);
const TOKEN: &str = "flood-test-token-5e0c91";
/// How long bosun may take to close an idle connection by itself: its header
/// timeout (seconds) plus a generous margin for a loaded machine.
const IDLE_CLOSE: Duration = Duration::from_secs(30);
/// How long bosun lets a TCP client leave its answers unread.
const WRITE_STALL: Duration = Duration::from_secs(30);

const UNITS: &str = r#"
[service.web]
run = ["sleep", "1000"]
"#;

// ---- helpers ---------------------------------------------------------------

/// bosun as PID 1 (`unshare`), optionally under `prlimit --nofile`.
struct Bosun {
    child: Child,
    scratch: Scratch,
    socket: PathBuf,
}

impl Bosun {
    fn start(nofile: Option<u32>, bosun_extra: &str, env: &[(&str, &str)]) -> Bosun {
        let scratch = Scratch::new();
        let config = scratch.config(bosun_extra, UNITS);
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("unshare");
                c
            }
            None => Command::new("unshare"),
        };
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(bosun_bin())
            .arg("run")
            .arg("-c")
            .arg(&config)
            .env("BOSUN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(fs::File::create(scratch.path("bosun.out")).expect("out file"))
            .stderr(fs::File::create(scratch.path("bosun.err")).expect("err file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn unshare / prlimit (util-linux)");
        let socket = scratch.path("run/ctl.sock");
        let b = Bosun {
            child,
            scratch,
            socket,
        };
        let up = eventually(BOOT, || b.health().0 == 0);
        assert!(up, "bosun never became healthy\n{}", b.output());
        b
    }

    /// `bosun ctl health` on the socket: its exit code and how long it took
    /// (process start included: that is what a HEALTHCHECK pays).
    fn health(&self) -> (i32, Duration) {
        let t = Instant::now();
        let (code, _, _) = self.ctl(&["health"]);
        (code, t.elapsed())
    }

    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["ctl", "--socket", self.socket.to_str().expect("utf8")];
        all.extend_from_slice(args);
        common::bosun(&all, &[])
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.scratch.read("bosun.out"),
            self.scratch.read("bosun.err")
        )
    }

    /// bosun's open fds, seen from the host (bosun is unshare's child).
    fn fds(&self) -> usize {
        let id = self.child.id();
        let pid = fs::read_to_string(format!("/proc/{id}/task/{id}/children")).unwrap_or_default();
        let pid = pid.split_whitespace().next().unwrap_or("0");
        fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// `ctl shutdown`, then bosun's exit code.
    fn shutdown(mut self) -> i32 {
        let (code, out, err) = self.ctl(&["shutdown"]);
        assert_eq!(code, 0, "ctl shutdown: {out}{err}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("bosun did not exit\n{}", self.output());
    }
}

impl Drop for Bosun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `n` timed health checks, 100 ms apart; every one must succeed, the median
/// must stay under 1 s and none may take the old multi-second wait. Returns
/// the latencies, sorted, for the log.
fn health_checks_stay_fast(b: &Bosun, n: usize, during: &str) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let (code, t) = b.health();
        assert_eq!(
            code,
            0,
            "health check {i} {during} failed after {t:?}\n{}",
            b.output()
        );
        took.push(t);
        std::thread::sleep(Duration::from_millis(100));
    }
    took.sort();
    let (median, max) = (took[n / 2], took[n - 1]);
    eprintln!(
        "ctl health {during}: median {median:?}, max {max:?}, min {:?} ({n} runs)",
        took[0]
    );
    assert!(
        median < Duration::from_secs(1),
        "health checks {during}: median {median:?}: {took:?}"
    );
    assert!(
        max < Duration::from_secs(5),
        "a health check {during} took {max:?}: {took:?}"
    );
    took
}

/// Raises this process's soft fd limit to its hard one (at most 65536): the
/// floods below hold a few thousand sockets. bosun inherits the raised limit.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max.min(65536).max(lim.rlim_cur);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Opens up to `n` TCP connections from `src` to `dst` that never send a
/// byte, 64 connects in flight at a time (a flood outpaces bosun's listen
/// backlog; a connect whose SYN was dropped is retried by the kernel after a
/// second). Bounded: a connect that takes more than 3 s is given up.
fn idle_tcp(src: Ipv4Addr, dst: SocketAddr, n: usize) -> Vec<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let connect = move || async move {
            let sock = tokio::net::TcpSocket::new_v4().ok()?;
            sock.bind(SocketAddr::new(src.into(), 0)).ok()?;
            let s = tokio::time::timeout(Duration::from_secs(3), sock.connect(dst))
                .await
                .ok()?
                .ok()?;
            let s = s.into_std().ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        };
        let mut open = Vec::with_capacity(n);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            if i >= 64 {
                if let Some(Ok(Some(s))) = tasks.join_next().await {
                    open.push(s);
                }
            }
            tasks.spawn(connect());
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok(Some(s)) = r {
                open.push(s);
            }
        }
        open
    })
}

/// What became of a flood connection, seen without waiting.
enum Seen {
    /// Still open, nothing received.
    Open,
    /// Closed (or reset) by bosun without a word.
    Closed,
    /// bosun sent this (a refusal) and closed it.
    Answered(String),
}

fn seen(mut s: &TcpStream) -> Seen {
    let mut buf = [0u8; 2048];
    match s.read(&mut buf) {
        Ok(0) => Seen::Closed,
        Ok(n) => Seen::Answered(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Seen::Open,
        Err(_) => Seen::Closed,
    }
}

/// A sustained flood, the way an attacker keeps one up: from each host, keeps
/// its number of idle connections open, replacing every one bosun closes or
/// turns away, until stopped. Bounded: at most [`FLOOD_LIMIT`] and
/// [`FLOOD_CONNECTS`] connects.
struct Flood {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<FloodEnd>,
}

/// How a flood went.
struct FloodEnd {
    /// Its connections still open when it stopped.
    still_open: Vec<TcpStream>,
    /// Per host: connections bosun turned away with an answer.
    turned_away: Vec<usize>,
    /// Per host: the last such answer.
    refusal: Vec<String>,
}

const FLOOD_LIMIT: Duration = Duration::from_secs(60);
const FLOOD_CONNECTS: usize = 60_000;

impl Flood {
    fn start(dst: SocketAddr, hosts: Vec<(Ipv4Addr, usize)>) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let (stop2, rounds2) = (stop.clone(), rounds.clone());
        let thread = std::thread::spawn(move || {
            let mut open: Vec<Vec<TcpStream>> = hosts.iter().map(|_| Vec::new()).collect();
            let mut turned_away = vec![0; hosts.len()];
            let mut refusal = vec![String::new(); hosts.len()];
            let (t0, mut connects) = (Instant::now(), 0);
            while !stop2.load(Ordering::Relaxed)
                && t0.elapsed() < FLOOD_LIMIT
                && connects < FLOOD_CONNECTS
            {
                for (i, &(host, want)) in hosts.iter().enumerate() {
                    open[i].retain(|s| match seen(s) {
                        Seen::Open => true,
                        Seen::Closed => false,
                        Seen::Answered(text) => {
                            turned_away[i] += 1;
                            refusal[i] = text;
                            false
                        }
                    });
                    let more = want.saturating_sub(open[i].len());
                    connects += more;
                    open[i].extend(idle_tcp(host, dst, more));
                }
                rounds2.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
            FloodEnd {
                still_open: open.into_iter().flatten().collect(),
                turned_away,
                refusal,
            }
        });
        Flood {
            stop,
            rounds,
            thread,
        }
    }

    /// Waits until every host has had its connections opened once.
    fn wait_up(&self) {
        let up = eventually(FLOOD_LIMIT, || self.rounds.load(Ordering::Relaxed) >= 1);
        assert!(up, "the flood never got going");
    }

    fn stop(self) -> FloodEnd {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the flood thread")
    }
}

/// Waits (until `deadline`) for bosun to close `s`: EOF or a reset.
fn closed_by_bosun(s: &TcpStream, deadline: Instant) -> bool {
    let mut s = s;
    if s.set_nonblocking(false).is_err() {
        return false;
    }
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Whether the TCP connection from `local` is still established, by the
/// kernel's table (`/proc/net/tcp`, this network namespace, bosun's too).
fn established(local: SocketAddr) -> bool {
    let SocketAddr::V4(v4) = local else {
        return false;
    };
    let me = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.get(1)?, *f.get(3)?))
        })
        .any(|(addr, state)| addr == me && state == "01")
}

/// A client that pipelines `GET /metrics` (no token needed) and never reads
/// an answer, until bosun stops taking its requests. bosun must drop it
/// [`WRITE_STALL`] after its own writes stopped; returns how long after the
/// client's last write that was. Bounded in bytes and time.
fn never_reads(dst: SocketAddr) -> Result<Duration, String> {
    let s = idle_tcp(loopback(41), dst, 1)
        .pop()
        .ok_or("no connection")?;
    let local = s.local_addr().map_err(|e| e.to_string())?;
    let reqs = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".repeat(256);
    let (t0, mut last_write, mut sent) = (Instant::now(), Instant::now(), 0usize);
    while last_write.elapsed() < Duration::from_secs(2) {
        if sent > 64 << 20 || t0.elapsed() > Duration::from_secs(40) {
            return Err(format!(
                "bosun took {sent} bytes of requests and kept reading"
            ));
        }
        match (&s).write(&reqs) {
            Ok(n) => {
                sent += n;
                last_write = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("bosun dropped it while it still read: {e}")),
        }
    }
    let deadline = last_write + WRITE_STALL + Duration::from_secs(30);
    while established(local) {
        if Instant::now() > deadline {
            return Err(format!(
                "still open {:?} after it stopped reading ({sent} bytes sent)",
                last_write.elapsed()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(s);
    Ok(last_write.elapsed())
}

/// `GET /health` on TCP from `src`: the status code, 0 if no answer in 5 s.
fn tcp_health_from(src: Ipv4Addr, dst: SocketAddr) -> u16 {
    let mut s = match idle_tcp(src, dst, 1).pop() {
        Some(s) => s,
        None => return 0,
    };
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

// ---- TCP -------------------------------------------------------------------

#[test]
fn a_tcp_flood_leaves_the_control_socket_and_other_clients_answered() {
    raise_fd_limit();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let dst: SocketAddr = ([127, 0, 0, 1], port).into();
    let b = Bosun::start(
        None,
        &format!("http_listen = \"{dst}\""),
        &[("BOSUN_HTTP_TOKEN", TOKEN)],
    );
    let idle_fds = b.fds();
    let quiet = health_checks_stay_fast(&b, 10, "with no flood");

    // A kept-alive connection that asked for /health without a token and then
    // went quiet: bosun must close it, not keep its slot forever.
    let keep_alive = std::thread::spawn(move || {
        let Some(mut s) = idle_tcp(loopback(40), dst, 1).pop() else {
            return Err("no connection".to_string());
        };
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).map_err(|e| format!("no answer: {e}"))?;
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !answer.starts_with("HTTP/1.1 200") || answer.contains("connection: close") {
            return Err(format!("not a kept-alive 200: {answer}"));
        }
        let t = Instant::now();
        if closed_by_bosun(&s, t + IDLE_CLOSE) {
            Ok(t.elapsed())
        } else {
            Err(format!("still open after {IDLE_CLOSE:?}"))
        }
    });

    // A client that never reads its answers must not keep its slot either.
    let stalled = std::thread::spawn(move || never_reads(dst));

    // One client floods: 1200 idle connections from 127.0.0.1, more than all
    // of bosun's API connection slots; three more hosts keep 100 each.
    let mut hosts = vec![(loopback(1), 1200)];
    hosts.extend((2..=4).map(|h| (loopback(h), 100)));
    let t = Instant::now();
    let one = Flood::start(dst, hosts);
    one.wait_up();
    eprintln!("one-client flood up in {:?}", t.elapsed());
    let during_one = health_checks_stay_fast(&b, 20, "during a one-client TCP flood");
    // One client cannot keep another off TCP.
    assert_eq!(
        tcp_health_from(loopback(20), dst),
        200,
        "another TCP client was kept out\n{}",
        b.output()
    );

    // Many clients: nine more hosts with 100 each fill TCP's whole share; the
    // control socket keeps its own.
    let many = Flood::start(dst, (5..=13).map(|h| (loopback(h), 100)).collect());
    many.wait_up();
    let during_many = health_checks_stay_fast(&b, 20, "during a many-client TCP flood");
    let fds = b.fds();
    assert!(
        fds <= idle_fds + 1024 + 16,
        "bosun holds at most 1024 API connections: {idle_fds} -> {fds}"
    );
    let log = b.output();
    assert!(log.contains("TCP connections open"), "{log}");
    assert!(log.contains("too many connections from 127.0.0.1"), "{log}");

    let many = many.stop();
    let one = one.stop();
    // The flooding client was told why most of its connections ended.
    assert!(
        one.turned_away[0] >= 1000,
        "only {} of 127.0.0.1's connections were turned away",
        one.turned_away[0]
    );
    let refusal = &one.refusal[0];
    assert!(
        refusal.starts_with("HTTP/1.1 503")
            && refusal.contains("too many connections from 127.0.0.1"),
        "{refusal}"
    );

    // Idle connections do not hold their slots forever: bosun closes every
    // one it still held.
    let deadline = Instant::now() + IDLE_CLOSE;
    let left: Vec<TcpStream> = one.still_open.into_iter().chain(many.still_open).collect();
    let open = left
        .iter()
        .filter(|s| !closed_by_bosun(s, deadline))
        .count();
    assert_eq!(
        open,
        0,
        "bosun kept {open} of {} idle connections open",
        left.len()
    );
    drop(left);
    let kept_alive = keep_alive.join().expect("the keep-alive thread");
    let kept_alive = kept_alive.unwrap_or_else(|e| panic!("kept-alive connection: {e}"));
    eprintln!("an idle kept-alive connection was closed after {kept_alive:?}");
    let stalled = stalled.join().expect("the never-reading thread");
    let stalled = stalled.unwrap_or_else(|e| panic!("a client that never reads: {e}"));
    eprintln!("a client that never read was dropped {stalled:?} after its last write");

    eprintln!(
        "health medians: quiet {:?}, one-client flood {:?}, many-client flood {:?}",
        quiet[quiet.len() / 2],
        during_one[during_one.len() / 2],
        during_many[during_many.len() / 2]
    );
    assert_eq!(b.health().0, 0);
    assert_eq!(b.shutdown(), 0);
}

// ---- the socket ------------------------------------------------------------

/// Keeps `n` slowloris connections on a unix socket for `secs` seconds: each
/// sends a request line and then one header line every half second, never the
/// blank line that ends the headers; ended ones are replaced. Prints how many
/// were open and how many bosun turned away, with one refusal.
const SLOWLORIS: &str = r#"
import socket, sys, time
path, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + secs
socks, opened, refused, sample = [], 0, 0, ""
while time.time() < end:
    while len(socks) < n and time.time() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(path)
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
        opened += 1
    time.sleep(0.5)
    alive = []
    for s in socks:
        try:
            got = s.recv(4096)
            if got.startswith(b"HTTP/1.1 503"):
                refused += 1
                sample = got.decode(errors="replace")
            s.close()
            continue
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        try:
            s.send(b"X-Slow: 1\r\n")
            alive.append(s)
        except BlockingIOError:
            alive.append(s)
        except OSError:
            s.close()
    socks = alive
print("opened", opened, "refused", refused, "open", len(socks), flush=True)
print(sample, flush=True)
"#;

#[test]
fn a_control_group_slowloris_on_the_socket_does_not_starve_root() {
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        eprintln!("SKIPPED: a_control_group_slowloris_on_the_socket_does_not_starve_root needs /usr/bin/python3 (nobody cannot run a python under /root)");
        return;
    }
    raise_fd_limit();
    // 1024 fds: bosun takes at most 256 API connections; the flood is 1100.
    let b = Bosun::start(Some(1024), "control_group = \"users\"", &[]);
    for p in [b.scratch.dir.path().to_path_buf(), b.scratch.path("run")] {
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let script = b.scratch.path("slowloris.py");
    fs::write(&script, SLOWLORIS).expect("write the script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).expect("chmod");

    // nobody, in group `users` (the control_group): an allowed local user.
    let flood = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=100", "--clear-groups"])
        .arg(python)
        .arg(&script)
        .arg(&b.socket)
        .args(["1100", "12"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)");
    let flood = Reaped(Some(flood));
    // Let it take what it can.
    std::thread::sleep(Duration::from_secs(2));
    let during = health_checks_stay_fast(&b, 20, "during a control_group slowloris");
    let out = flood.finish(Duration::from_secs(30));
    eprintln!("slowloris: {out}");
    assert!(
        out.contains("share for users other than root"),
        "the slowloris was never told why: {out}\n{}",
        b.output()
    );
    eprintln!(
        "health median during the slowloris: {:?}",
        during[during.len() / 2]
    );
    assert_eq!(b.health().0, 0);
    assert_eq!(b.shutdown(), 0);
}

/// The slowloris process: killed if the test ends before it does.
struct Reaped(Option<Child>);

impl Reaped {
    /// Waits for it to end by itself (killing it after `limit`); its output.
    fn finish(mut self, limit: Duration) -> String {
        let Some(mut child) = self.0.take() else {
            return String::new();
        };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let mut text = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut text);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        let _ = child.wait();
        text
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
