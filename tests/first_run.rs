//! What a new user meets first: a missing local store, a demo store that bosun may
//! create, and control commands sent while bosun is still booting. bosun runs as
//! PID 1 (see `common`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{eventually, Pid1, Scratch, SIGTERM};

const UNIT: &str = r#"
[service.worker]
run = "echo up; exec sleep 300"
stop_timeout = "2s"
"#;

/// A `file://` store whose directory is missing will not appear by waiting: the boot
/// fails at once (the old code retried for ~16 s), names the fix, and creates nothing.
#[test]
fn a_missing_file_store_fails_the_boot_at_once() {
    let s = Scratch::new();
    let store = s.path("backup");
    let config = s.config(
        "",
        &format!(
            "{UNIT}\n[snapshot]\nstore = \"file://{}\"\n",
            store.display()
        ),
    );
    let t0 = Instant::now();
    let mut bosun = Pid1::run(&s, &config, &[]);
    let code = bosun.wait(Duration::from_secs(60));
    let took = t0.elapsed();
    assert_eq!(code, 1, "{}", bosun.output());
    let err = bosun.stderr();
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("mount the backup volume"), "{err}");
    assert!(err.contains("create_store = true"), "{err}");
    assert!(
        !err.contains("attempt 2"),
        "retried a store that cannot appear: {err}"
    );
    // Generous: the point is "no retry loop" (the retries alone took 7.5 s of sleeps).
    assert!(took < Duration::from_secs(6), "took {took:?}\n{err}");
    assert!(
        !store.exists(),
        "bosun must not create a production store directory"
    );
    assert!(!bosun.stdout().contains("worker | up"), "a unit started");
}

/// `create_store = true` (the demo's setting) makes the directory, 0700, and the
/// stop commits a snapshot into it that the next start restores.
#[test]
fn create_store_makes_a_missing_store_and_the_next_start_restores_it() {
    let s = Scratch::new();
    let store = s.path("deep/backup");
    let data = s.path("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("kept.txt"), "first run\n").expect("write");
    let body = format!(
        "{UNIT}\n[snapshot]\nstore = \"file://{}\"\ncreate_store = true\n[snapshot.paths]\ndata = \"{}\"\n",
        store.display(),
        data.display()
    );
    let config = s.config("", &body);
    let mut first = Pid1::run(&s, &config, &[]);
    first.wait_for_output("boot complete in", Duration::from_secs(20));
    let mode = std::fs::metadata(&store)
        .expect("store made")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "store mode {mode:o}");
    first.signal(SIGTERM);
    assert_eq!(first.wait(Duration::from_secs(30)), 0, "{}", first.output());
    assert!(store.join("LATEST").exists(), "no snapshot committed");

    // A new container on the same store: an empty disk gets the data back.
    std::fs::remove_dir_all(&data).expect("rm data");
    std::fs::remove_dir_all(s.path("state")).expect("rm state");
    let mut second = Pid1::run(&s, &config, &[]);
    second.wait_for_output("boot complete in", Duration::from_secs(20));
    second.signal(SIGTERM);
    assert_eq!(
        second.wait(Duration::from_secs(30)),
        0,
        "{}",
        second.output()
    );
    assert!(
        second.stderr().contains("restoring snapshot"),
        "{}",
        second.output()
    );
    assert_eq!(
        std::fs::read_to_string(data.join("kept.txt")).unwrap_or_default(),
        "first run\n"
    );
}

/// While bosun waits for its store (before any unit runs), `ctl restart` says that
/// bosun is booting and what it is doing, never "worker is gone"; `ctl status` and
/// `ctl health` show the boot step; `ctl shutdown` ends the boot with 0.
#[test]
fn control_commands_during_the_boot_get_true_answers() {
    let s = Scratch::new();
    // A closed port on loopback: the S3 store does not answer, bosun retries.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let body = format!(
        "{UNIT}\n[snapshot]\nstore = \"s3://bucket/app\"\ns3_endpoint = \"http://127.0.0.1:{port}\"\n"
    );
    let config = s.config("", &body);
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test-secret"),
    ];
    let mut bosun = Pid1::run(&s, &config, &env);
    let sock = s.path("run/ctl.sock");
    let sock = sock.to_str().expect("utf8");
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--socket", sock];
        all.extend_from_slice(args);
        common::bosun(&all, &[])
    };
    assert!(
        eventually(Duration::from_secs(20), || ctl(&["status"]).0 == 0),
        "socket never answered\n{}",
        bosun.output()
    );
    let (code, out, err) = ctl(&["restart", "worker"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("bosun is booting"), "{err}");
    assert!(
        err.contains("s3://bucket/app"),
        "names what it waits for: {err}"
    );
    assert!(!err.contains("is gone"), "{err}");

    let (_, status, _) = ctl(&["status"]);
    assert!(status.contains("booting: "), "{status}");
    let (code, health, _) = ctl(&["health"]);
    assert_eq!(code, 1, "{health}");
    assert!(health.contains("bosun is booting"), "{health}");

    let (code, out, err) = ctl(&["reload"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("bosun is booting"), "{err}");

    let (code, out, err) = ctl(&["shutdown"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(bosun.wait(Duration::from_secs(30)), 0, "{}", bosun.output());
    assert!(!bosun.stdout().contains("worker | up"), "a unit started");
    assert!(
        bosun.stderr().contains("ctl shutdown during restore"),
        "{}",
        bosun.output()
    );
}
