//! What operators look at and hear from, with bosun really as PID 1: `[hooks]`
//! (commands that write their environment to a file, a real HTTP webhook receiver
//! on 127.0.0.1 written here), backup progress in `ctl status` and `/health`, and
//! the status page in headless Chromium (timeline, restarts, a unit's log,
//! snapshots; a screenshot is written and its path printed).

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bosun_core::status::DaemonStatus;
use common::{eventually, Pid1, Scratch};

const BOOT: Duration = Duration::from_secs(20);

/// `bosun ctl --socket SCRATCH/run/ctl.sock ARGS`.
fn ctl(s: &Scratch, args: &[&str]) -> (i32, String, String) {
    let sock = s.path("run/ctl.sock");
    let mut all = vec!["ctl", "--socket", sock.to_str().expect("utf8 path")];
    all.extend_from_slice(args);
    common::bosun(&all, &[])
}

fn status(s: &Scratch) -> Option<DaemonStatus> {
    let (code, out, _) = ctl(s, &["status", "--json"]);
    (code == 0)
        .then(|| serde_json::from_str(&out).ok())
        .flatten()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A hook command that writes its `BOSUN_*` environment and its stdin to
/// `DIR/hook-EVENT.txt` (appending: one block per run).
fn env_hook(dir: &Path) -> String {
    format!(
        r#"f={d}/hook-$BOSUN_EVENT.txt; {{ echo "event=$BOSUN_EVENT unit=$${{BOSUN_UNIT-<unset>}}"; echo "reason=$BOSUN_REASON"; echo "stdin=$(cat)"; echo "secret=$${{DB_PASSWORD-<unset>}}"; echo ---; }} >> $f; echo "hook saw $BOSUN_EVENT""#,
        d = dir.display()
    )
}

// ---- a real webhook receiver ---------------------------------------------------

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    authorization: Option<String>,
    body: serde_json::Value,
}

/// An HTTP server on 127.0.0.1 that answers each request with the next code of
/// `answers` (the last one repeats) and records what it got.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(answers: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().expect("its address").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        std::thread::spawn(move || {
            for (i, conn) in listener.incoming().enumerate().take(64) {
                let Ok(conn) = conn else { continue };
                let code = *answers.get(i).or(answers.last()).unwrap_or(&200);
                if let Some(r) = serve_one(conn, code) {
                    seen.lock().expect("receiver lock").push(r);
                }
            }
        });
        Receiver { port, got }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("receiver lock").clone()
    }
}

/// Reads one request (headers, a Content-Length body), answers `code`.
fn serve_one(conn: TcpStream, code: u16) -> Option<Received> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let (mut len, mut authorization) = (0usize, None);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "authorization" => authorization = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; len.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    let mut w = conn;
    let _ = write!(
        w,
        "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    Some(Received {
        path,
        authorization,
        body: serde_json::from_slice(&body).ok()?,
    })
}

// ---- hooks -------------------------------------------------------------------

/// A unit that crash-loops goes `fatal`: the `on_fatal` command runs with the
/// event in its environment and on its stdin; the webhook gets the event's JSON
/// with the bearer token from its file, after two 503s (retried with backoff).
/// The token never reaches bosun's log; the hook's output does, prefixed.
#[test]
fn a_fatal_unit_runs_its_hook_command_and_the_webhook() {
    let s = Scratch::new();
    let rx = Receiver::start(vec![503, 503, 200]);
    let token = "hook-token-9f3e1d";
    fs::write(s.path("token"), format!("{token}\n")).expect("token file");
    let body = format!(
        r#"
[service.web]
run = ["sleep", "1000"]
start_secs = "100ms"

[service.crashy]
run = "sleep 0.5; exit 3"
start_secs = "100ms"
backoff = {{ initial = "50ms", max = "100ms" }}
start_limit = {{ burst = 2, interval = "60s" }}
env = {{ DB_PASSWORD = "hunter2-in-env" }}

[hooks]
on_fatal = {hook:?}
timeout = "10s"
webhook = {{ url = "http://127.0.0.1:{port}/bosun/events", events = ["fatal"], token_file = "{{dir}}/token", retries = 3, timeout = "5s" }}
"#,
        hook = env_hook(s.dir.path()),
        port = rx.port
    );
    let config = s.config("", &body);
    let mut pid1 = Pid1::run(&s, &config, &[]);
    let fired = eventually(BOOT, || s.read("hook-fatal.txt").contains("---"));
    assert!(fired, "the on_fatal hook did not run\n{}", pid1.output());
    let seen = s.read("hook-fatal.txt");
    assert!(seen.contains("event=fatal unit=crashy"), "{seen}");
    assert!(seen.contains(" starts within 60s, last exit 3"), "{seen}");
    assert!(
        seen.contains(r#"stdin={"event":"fatal","unit":"crashy","reason":""#),
        "the event's JSON on stdin: {seen}"
    );
    // The hook is not the unit: the unit's env (a secret) is not in the event.
    assert!(seen.contains("secret=<unset>"), "{seen}");
    pid1.wait_for_output("hook:on_fatal | hook saw fatal", BOOT);
    let posted = eventually(BOOT, || rx.got().len() >= 3);
    assert!(posted, "the webhook got {:?}\n{}", rx.got(), pid1.output());
    let got = rx.got();
    let last = &got[2];
    assert_eq!(last.path, "/bosun/events");
    assert_eq!(
        last.authorization.as_deref(),
        Some(&*format!("Bearer {token}"))
    );
    assert_eq!(last.body["event"], "fatal");
    assert_eq!(last.body["unit"], "crashy");
    assert!(last.body["at_ms"].as_u64().is_some(), "{:?}", last.body);
    // Two failures, then success: logged, and nothing more is sent.
    pid1.wait_for_output("hook:webhook: fatal posted to", BOOT);
    let out = pid1.output();
    assert!(
        out.contains("answered 503 Service Unavailable (attempt 1 of 4)"),
        "{out}"
    );
    // web keeps running: supervision went on.
    let web_up = status(&s).is_some_and(|st| st.units.iter().any(|u| u.name == "web" && u.ready));
    assert!(web_up, "{}", pid1.output());
    let (code, _, _) = ctl(&s, &["shutdown"]);
    assert_eq!(code, 0);
    pid1.wait(Duration::from_secs(30));
    let out = pid1.output();
    assert!(
        !out.contains(token),
        "the bearer token reached the log:\n{out}"
    );
    assert_eq!(
        rx.got().len(),
        3,
        "no retry after the success: {:?}",
        rx.got()
    );
}

/// A boot that fails runs `on_boot_failed` (and `on_fatal` for the task), and
/// bosun still exits 1 at once: a hook that hangs is killed at its timeout.
#[test]
fn a_failed_boot_runs_on_boot_failed_and_a_hanging_hook_is_cut() {
    let s = Scratch::new();
    let body = format!(
        r#"
[task.migrate]
run = "echo migrating; exit 4"

[service.web]
run = ["sleep", "1000"]
after = ["migrate"]

[hooks]
on_boot_failed = {hook:?}
on_fatal = "echo stuck; exec sleep 600"
timeout = "2s"
"#,
        hook = env_hook(s.dir.path())
    );
    let config = s.config("stop_budget = \"20s\"", &body);
    let mut pid1 = Pid1::run(&s, &config, &[]);
    let t0 = Instant::now();
    let code = pid1.wait(Duration::from_secs(60));
    assert_eq!(code, 1, "{}", pid1.output());
    let seen = s.read("hook-boot_failed.txt");
    assert!(
        seen.contains("event=boot_failed unit=<unset>"),
        "{seen}\n{}",
        pid1.output()
    );
    assert!(
        seen.contains("reason=boot failed: task migrate: task failed (exit 4)"),
        "{seen}"
    );
    let out = pid1.output();
    assert!(out.contains("hook:on_fatal | stuck"), "{out}");
    assert!(
        out.contains("hook:on_fatal: still running after its timeout of 2s: killed"),
        "{out}"
    );
    // Generous: the hang (600 s) did not hold the exit, the 2 s timeout did.
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
}

/// A stop that runs out of its budget fires `stop_over_budget` early enough
/// (the hook timeout before the end) for the hook to run within the budget, and
/// a hook still running at the end does not hold the exit.
#[test]
fn a_stop_over_budget_runs_its_hook_within_the_budget() {
    let s = Scratch::new();
    let body = format!(
        r#"
[service.stubborn]
run = "trap '' TERM; while :; do sleep 0.1; done"
stop_timeout = "60s"

[hooks]
on_stop_over_budget = {hook:?}
timeout = "2s"
"#,
        hook = format!("{}; exec sleep 600", env_hook(s.dir.path()))
    );
    let config = s.config("stop_budget = \"6s\"", &body);
    let mut pid1 = Pid1::run(&s, &config, &[]);
    let up = eventually(BOOT, || {
        status(&s).is_some_and(|st| st.units.iter().all(|u| u.ready))
    });
    assert!(up, "{}", pid1.output());
    let t0 = Instant::now();
    let (code, _, _) = ctl(&s, &["shutdown"]);
    assert_eq!(code, 0);
    let exit = pid1.wait(Duration::from_secs(60));
    let took = t0.elapsed();
    assert_eq!(exit, 1, "over budget exits 1\n{}", pid1.output());
    let seen = s.read("hook-stop_over_budget.txt");
    assert!(
        seen.contains("event=stop_over_budget"),
        "{seen}\n{}",
        pid1.output()
    );
    assert!(seen.contains("still stopping stubborn"), "{seen}");
    // The budget holds: 6 s plus the sweep and exit, well under the hook's 600 s.
    assert!(took < Duration::from_secs(20), "the stop took {took:?}");
}

/// A dump that fails (here through `ctl backup`) runs `on_backup_failed` with the
/// unit, and the webhook that asked for `backup_failed` only gets that event.
#[test]
fn a_failed_backup_runs_on_backup_failed() {
    let s = Scratch::new();
    let rx = Receiver::start(vec![200]);
    let body = format!(
        r#"
[service.db]
run = ["sleep", "1000"]
start_secs = "100ms"

[service.db.backup]
dump = "echo partial; echo disk on fire >&2; exit 5"
load = "cat > /dev/null"

[snapshot]
store = "file://{{dir}}/store"
create_store = true

[hooks]
on_backup_failed = {hook:?}
webhook = {{ url = "http://127.0.0.1:{port}/b", events = ["backup_failed"] }}
"#,
        hook = env_hook(s.dir.path()),
        port = rx.port
    );
    let config = s.config("", &body);
    let mut pid1 = Pid1::run(&s, &config, &[]);
    let up = eventually(BOOT, || ctl(&s, &["health"]).0 == 0);
    assert!(up, "{}", pid1.output());
    let (code, out, err) = ctl(&s, &["backup"]);
    assert_ne!(code, 0, "the backup must fail: {out}{err}");
    let fired = eventually(BOOT, || s.read("hook-backup_failed.txt").contains("---"));
    assert!(fired, "on_backup_failed did not run\n{}", pid1.output());
    let seen = s.read("hook-backup_failed.txt");
    assert!(seen.contains("event=backup_failed unit=db"), "{seen}");
    assert!(seen.contains("reason=backup of db failed: "), "{seen}");
    let posted = eventually(BOOT, || {
        rx.got().iter().any(|r| r.body["event"] == "backup_failed")
    });
    assert!(posted, "{:?}\n{}", rx.got(), pid1.output());
    assert!(
        rx.got().iter().all(|r| r.body["event"] == "backup_failed"),
        "{:?}",
        rx.got()
    );
    let (code, _, _) = ctl(&s, &["shutdown"]);
    assert_eq!(code, 0);
    pid1.wait(Duration::from_secs(60));
}

/// `[hooks]` mistakes are caught by `bosun check` with file:line:col.
#[test]
fn check_reports_a_bad_webhook_where_it_is() {
    let s = Scratch::new();
    let config = s.config(
        "",
        "[service.web]\nrun = \"web\"\n[hooks.webhook]\nurl = \"http://127.0.0.1:9/x\"\nevents = [\"fatal\", \"boot-failed\"]\n",
    );
    let (code, _, err) = common::bosun(&["check", "-c", config.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    // [bosun] takes 3 lines in the scratch config.
    assert!(err.contains("bosun.toml:9:20:"), "{err}");
    assert!(
        err.contains("unknown event \"boot-failed\"; did you mean `boot_failed`?"),
        "{err}"
    );
}

// ---- progress ------------------------------------------------------------------

/// A unit whose ~3 MiB dump and load both take about 3 s, with its snapshots in `store`.
fn slow_data_config(s: &Scratch, store: &Path) -> PathBuf {
    let dump = "for i in $(seq 1 30); do head -c 100000 /dev/urandom; sleep 0.1; done";
    let load =
        "for i in $(seq 1 30); do head -c 100000 > /dev/null; sleep 0.1; done; cat > /dev/null";
    let body = format!(
        r#"
[service.db]
run = ["sleep", "1000"]

[service.db.backup]
dump = "{dump}"
load = "{load}"

[snapshot]
store = "file://{store}"
create_store = true
keep_daily = 2
daily_at = "03:00"
"#,
        store = store.display()
    );
    s.config("stop_budget = \"60s\"", &body)
}

/// While a backup runs, `ctl status` says what is backed up, how much, how fast,
/// and (from the second backup on, whose size the first one tells) the total and
/// an ETA; `/health` lists it without turning unhealthy. In a new container the
/// restore (the unit's load) shows the same way, with the size from the manifest.
#[test]
fn backup_and_restore_progress_show_in_ctl_status_and_health() {
    let s = Scratch::new();
    let store = s.path("store");
    let config = slow_data_config(&s, &store);
    let mut pid1 = Pid1::run(&s, &config, &[]);
    let up = eventually(BOOT, || ctl(&s, &["health"]).0 == 0);
    assert!(up, "{}", pid1.output());
    let st = status(&s).expect("status");
    assert!(
        st.next_daily_at_ms.is_some(),
        "next daily in the status: {st:?}"
    );
    let mut lines = Vec::new();
    for round in 0..2 {
        let sock = s.path("run/ctl.sock");
        let backup = std::thread::spawn(move || {
            common::bosun(&["ctl", "--socket", sock.to_str().unwrap(), "backup"], &[])
        });
        let mut seen = String::new();
        let shown = eventually(Duration::from_secs(20), || {
            let (_, out, _) = ctl(&s, &["status"]);
            let want = if round == 0 { " so far, " } else { ", ETA " };
            if out.contains("backing up: db ") && out.contains(want) {
                seen = out;
                true
            } else {
                false
            }
        });
        assert!(
            shown,
            "round {round}: no progress line in ctl status\n{seen}\n{}",
            pid1.output()
        );
        if round == 1 {
            let (code, health, _) = ctl(&s, &["health", "--json"]);
            let h: serde_json::Value = serde_json::from_str(&health).expect("health JSON");
            assert_eq!(code, 0, "a daily/online backup is not unhealthy: {health}");
            assert!(
                h["progress"][0]
                    .as_str()
                    .is_some_and(|p| p.starts_with("backing up: db ")),
                "{health}"
            );
        }
        let (code, out, err) = backup.join().expect("backup thread");
        assert_eq!(code, 0, "ctl backup: {out}{err}");
        lines.push(
            seen.lines()
                .find(|l| l.starts_with("backing up:"))
                .unwrap_or("")
                .to_string(),
        );
    }
    // `backing up: db 1.2 MiB of 2.9 MiB, 950.0 KiB/s, ETA 2s`
    let second = &lines[1];
    assert!(
        second.contains(" of 2.9 MiB, ") && second.contains("/s, ETA "),
        "{lines:?}"
    );
    let (code, _, _) = ctl(&s, &["shutdown"]);
    assert_eq!(code, 0);
    assert_eq!(pid1.wait(Duration::from_secs(60)), 0, "{}", pid1.output());

    // A new container (empty disk, same store): the load at boot shows its progress.
    let b = Scratch::new();
    let config = slow_data_config(&b, &store);
    let mut pid1 = Pid1::run(&b, &config, &[]);
    let mut seen = String::new();
    let shown = eventually(BOOT, || {
        let (_, out, _) = ctl(&b, &["status"]);
        if out.contains("\nbooting: restoring db ")
            && out.contains(" of 2.9 MiB, ")
            && out.contains(", ETA ")
        {
            seen = out;
            true
        } else {
            false
        }
    });
    assert!(
        shown,
        "no restore progress in ctl status\n{seen}\n{}",
        pid1.output()
    );
    let up = eventually(BOOT, || ctl(&b, &["health"]).0 == 0);
    assert!(up, "{}", pid1.output());
    let st = status(&b).expect("status");
    assert!(
        st.transfers.is_empty(),
        "done transfers are gone: {:?}",
        st.transfers
    );
    let (code, _, _) = ctl(&b, &["shutdown"]);
    assert_eq!(code, 0);
    pid1.wait(Duration::from_secs(60));
}

// ---- the status page -------------------------------------------------------------

/// Where the screenshot goes: the test's scratch dir, copied to the target's tmp
/// dir so that it outlives the test.
fn keep_screenshot(shot: &Path) -> PathBuf {
    let kept = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = fs::copy(shot, &kept);
    kept
}

/// The page over TCP: without the token it asks for it and shows nothing;
/// with it, a boot timeline bar per unit in start order (db, then web, then
/// worker), the restarts of the flapping unit, the last lines of a clicked
/// unit's log, the last snapshot and the next daily one.
#[test]
fn status_page_shows_timeline_restarts_log_and_snapshots() {
    if !have("chromium") || !have("python3") {
        eprintln!("!!! SKIPPED status_page_shows_timeline_restarts_log_and_snapshots: chromium or python3 missing (tests/support/install.sh installs them)");
        return;
    }
    let s = Scratch::new();
    fs::create_dir_all(s.path("files")).expect("files dir");
    fs::write(s.path("files/a.txt"), "kept").expect("a file");
    let port = free_port();
    let token = "page-token-77aa";
    let body = r#"
[service.db]
run = "echo db starting; sleep 0.6; touch {dir}/db.ready; echo db ready; exec sleep 1000"
ready = { file = "{dir}/db.ready" }

[service.web]
run = "echo web says hello; echo web on stderr >&2; exec sleep 1000"
after = ["db"]
start_secs = "300ms"

[service.worker]
run = ["sleep", "1000"]
after = ["web"]
start_secs = "300ms"

[service.flappy]
run = "echo flap; sleep 1; exit 1"
start_secs = "200ms"
backoff = { initial = "100ms", max = "200ms" }
start_limit = { burst = 1000, interval = "10s" }

[snapshot]
store = "file://{dir}/store"
create_store = true
keep_daily = 2
daily_at = "03:00"

[snapshot.paths]
files = "{dir}/files"
"#;
    let config = s.config(&format!("http_listen = \"127.0.0.1:{port}\""), body);
    let pid1 = Pid1::run(&s, &config, &[("BOSUN_HTTP_TOKEN", token)]);
    let restarted = eventually(BOOT, || {
        status(&s).is_some_and(|st| {
            st.phase == bosun_core::status::Phase::Running
                && st
                    .units
                    .iter()
                    .filter(|u| u.name != "flappy")
                    .all(|u| u.ready)
                && st
                    .units
                    .iter()
                    .any(|u| u.name == "flappy" && u.restarts >= 1)
        })
    });
    assert!(restarted, "{}", pid1.output());
    let (code, out, err) = ctl(&s, &["backup"]);
    assert_eq!(code, 0, "ctl backup: {out}{err}\n{}", pid1.output());
    // The timeline in the status JSON: each unit was spawned after its
    // dependency was ready.
    let st = status(&s).expect("status");
    let tl = |n: &str| {
        st.units
            .iter()
            .find(|u| u.name == n)
            .expect(n)
            .timeline
            .clone()
    };
    let (db, web, worker) = (tl("db"), tl("web"), tl("worker"));
    assert!(
        db.ready_at_ms.unwrap() <= web.spawned_at_ms.unwrap(),
        "{db:?} {web:?}"
    );
    assert!(
        web.ready_at_ms.unwrap() <= worker.spawned_at_ms.unwrap(),
        "{web:?} {worker:?}"
    );
    assert!(
        web.waiting_at_ms.unwrap() <= db.ready_at_ms.unwrap(),
        "web waited for db"
    );
    let url = format!("http://127.0.0.1:{port}/");
    // Without a token (`--dump-dom`): the prompt, no unit data.
    let dom = Command::new("timeout")
        .args([
            "60",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .arg(format!(
            "--user-data-dir={}",
            s.path("chromium-dump").display()
        ))
        .args(["--virtual-time-budget=3000", "--dump-dom", &url])
        .stderr(Stdio::null())
        .output()
        .expect("chromium --dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("This API needs the bearer token"), "{dom}");
    assert!(
        !dom.contains("class=\"tl-row\""),
        "no timeline without the token: {dom}"
    );
    // With it (DevTools): timeline, restarts, log, snapshots, a screenshot.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/status_page.py");
    let shot = s.path("status-page.png");
    let out = Command::new("timeout")
        .args(["120", "python3"])
        .arg(&script)
        .args([&url, token, "web"])
        .arg(&shot)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        pid1.output()
    );
    let kept = keep_screenshot(&shot);
    println!(
        "screenshot: {} (kept as {})",
        shot.display(),
        kept.display()
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).expect("driver JSON");
    assert!(
        r["prompt"].as_str().is_some_and(|p| p.contains("token")),
        "{r}"
    );
    assert_eq!(r["bars_before_token"], 0, "{r}");
    let order: Vec<&str> = r["timeline"]
        .as_array()
        .expect("timeline rows")
        .iter()
        .filter_map(|row| row["unit"].as_str())
        .filter(|u| *u != "flappy")
        .collect();
    assert_eq!(order, ["db", "web", "worker"], "{r}");
    for row in r["timeline"].as_array().unwrap() {
        let bars = row["bars"].to_string();
        assert!(
            bars.contains("tl-wait") && bars.contains("tl-start") && bars.contains("tl-ready"),
            "{row}"
        );
    }
    let log = r["log"].to_string();
    assert!(
        log.contains("web says hello") && log.contains("web on stderr"),
        "{r}"
    );
    let snaps = r["snapshots"].to_string();
    assert!(snaps.contains("last snapshot: ok"), "{r}");
    assert!(
        snaps.contains("next daily snapshot: ") && snaps.contains("03:00 UTC"),
        "{r}"
    );
    assert!(
        r["web_rss"].as_str().is_some_and(|t| t.ends_with("iB")),
        "the units table shows web's RSS: {r}"
    );
    let restarts = r["restarts"].as_array().expect("restart rows");
    let flappy = restarts
        .iter()
        .find(|x| x["unit"] == "flappy")
        .expect("flappy restarts");
    assert!(flappy["ticks"].as_u64().unwrap_or(0) >= 1, "{r}");
    assert!(
        fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "a real PNG"
    );
    drop(pid1);
}
