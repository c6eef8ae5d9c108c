//! Secrets from files (`env_files`), config overlays (`-c base -c site`,
//! `include`) and dependents that follow their dependency's own restarts
//! (`restart_dependents`), with bosun really PID 1 (see `common`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bosun_core::status::{DaemonStatus, State, UnitStatus};
use common::{eventually, Pid1, Scratch};

const BOOT: Duration = Duration::from_secs(20);

/// A bosun under test and its control socket.
struct Daemon {
    pid1: Pid1,
    scratch: Scratch,
}

impl Daemon {
    /// `bosun run` with `args` (its `-c` files); waits until the socket answers.
    fn start(scratch: Scratch, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let pid1 = Pid1::start(&scratch, args, env);
        let d = Daemon { pid1, scratch };
        let up = eventually(BOOT, || d.ctl(&["status"]).0 == 0);
        assert!(up, "bosun's socket never answered\n{}", d.pid1.output());
        d
    }

    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let sock = self.scratch.path("run/ctl.sock");
        let mut all = vec!["ctl", "--socket", sock.to_str().expect("utf8 path")];
        all.extend_from_slice(args);
        common::bosun(&all, &[])
    }

    fn ctl_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctl(args);
        assert_eq!(code, 0, "ctl {args:?}: {out}{err}\n{}", self.pid1.output());
        out
    }

    fn unit(&self, name: &str) -> UnitStatus {
        let out = self.ctl_ok(&["status", "--json"]);
        let s: DaemonStatus =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON: {e}: {out}"));
        s.units
            .into_iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("no unit {name}"))
    }

    /// Waits until `unit` is ready with a pid; the pid.
    fn wait_ready(&self, unit: &str) -> i32 {
        let mut pid = None;
        let ok = eventually(BOOT, || {
            let u = self.unit(unit);
            pid = u.pid;
            u.ready && u.pid.is_some()
        });
        assert!(
            ok,
            "{unit} never became ready: {:?}\n{}",
            self.unit(unit),
            self.pid1.output()
        );
        pid.unwrap_or_default()
    }

    fn shutdown(mut self) -> String {
        self.ctl_ok(&["shutdown"]);
        assert_eq!(
            self.pid1.wait(Duration::from_secs(30)),
            0,
            "{}",
            self.pid1.output()
        );
        self.pid1.output()
    }
}

/// `[bosun]` of a scratch dir (state and socket inside it).
fn bosun_table(s: &Scratch) -> String {
    let d = s.dir.path().display();
    format!("[bosun]\nstate_dir = \"{d}/state\"\ncontrol_socket = \"{d}/run/ctl.sock\"\nstop_budget = \"20s\"\n")
}

fn write(path: &Path, text: impl AsRef<[u8]>) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("mkdir");
    }
    fs::write(path, text).expect("write");
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

// ---- env_files ---------------------------------------------------------------

/// Not UTF-8, with a `\r\n` at the end: the unit gets the bytes less the `\r\n`.
const SECRET: &[u8] = b"s3cr\xe9t-\xff-value";

#[test]
fn env_files_reach_the_unit_as_bytes_at_each_start_and_are_never_shown() {
    let s = Scratch::new();
    let secret = s.path("secrets/db_password");
    write(&secret, [SECRET, b"\r\n"].concat());
    let config = s.path("bosun.toml");
    write(
        &config,
        format!(
            "{}\n[service.app]\nrun = 'printf %s \"$DB_PASSWORD\" > {dir}/got; exec sleep 1000'\nenv_files = {{ DB_PASSWORD = \"secrets/db_password\" }}\nstart_secs = \"200ms\"\n",
            bosun_table(&s),
            dir = s.dir.path().display()
        ),
    );
    let (code, out, err) = common::bosun(&["check", "-c", arg(&config)], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("[service.app.env_files]\nDB_PASSWORD = \""),
        "{out}"
    );
    assert!(!err.contains("does not exist"), "the file is there: {err}");

    let d = Daemon::start(s, &["run", "-c", arg(&config)], &[]);
    d.wait_ready("app");
    assert_eq!(fs::read(d.scratch.path("got")).expect("got"), SECRET);

    // Read again at each start: a rotated secret applies on restart.
    write(&secret, b"rotated\n");
    let before = d.unit("app").pid;
    d.ctl_ok(&["restart", "app"]);
    assert!(eventually(BOOT, || {
        let u = d.unit("app");
        u.ready && u.pid != before && fs::read(d.scratch.path("got")).is_ok_and(|b| b == b"rotated")
    }));
    let status = d.ctl_ok(&["status"]);
    let json = d.ctl_ok(&["status", "--json"]);
    let output = d.shutdown();
    for shown in [&status, &json, &output] {
        assert!(!shown.contains("rotated"), "{shown}");
        assert!(
            !shown.as_bytes().windows(4).any(|w| w == b"s3cr"),
            "{shown}"
        );
    }
}

#[test]
fn a_missing_unreadable_or_nul_secret_file_fails_the_start_naming_unit_and_path() {
    let s = Scratch::new();
    let secret = s.path("secrets/api_token");
    let config = s.path("bosun.toml");
    write(
        &config,
        format!(
            "{}\n[service.api]\nrun = \"exec sleep 1000\"\nenv_files = {{ API_TOKEN = \"{}\" }}\nstart_secs = \"200ms\"\n",
            bosun_table(&s),
            secret.display()
        ),
    );
    // `bosun check` warns (at build time the secret is not mounted yet) and passes.
    let (code, out, err) = common::bosun(&["check", "-c", arg(&config)], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let warned = format!("{} does not exist now", secret.display());
    assert!(out.contains(&warned) || err.contains(&warned), "{out}{err}");

    // At boot: the unit cannot start, the boot fails, the reason names both.
    let mut b = Pid1::run(&s, &config, &[]);
    assert_eq!(b.wait(BOOT), 1, "{}", b.output());
    let why = format!(
        "cannot read the file of env_files.API_TOKEN for api: {}: No such file or directory",
        secret.display()
    );
    assert!(b.output().contains(&why), "{}", b.output());
    drop(b);

    // Once running: a restart with the file gone (or holding a NUL) is fatal, and
    // the status says why.
    write(&secret, b"token-value\n");
    let d = Daemon::start(s, &["run", "-c", arg(&config)], &[]);
    d.wait_ready("api");
    write(&secret, b"tok\0en\n");
    d.ctl_ok(&["restart", "api"]);
    assert!(eventually(BOOT, || d.unit("api").state == State::Fatal));
    let u = d.unit("api");
    assert!(u.detail.contains("holds a NUL byte"), "{u:?}");
    assert!(u.detail.contains(&secret.display().to_string()), "{u:?}");
    fs::remove_file(&secret).expect("rm");
    d.ctl_ok(&["start", "api"]);
    assert!(eventually(BOOT, || {
        let u = d.unit("api");
        u.state == State::Fatal && u.detail.contains("No such file")
    }));
    assert!(
        d.unit("api").detail.contains("env_files.API_TOKEN for api"),
        "{:?}",
        d.unit("api")
    );
    let output = d.shutdown();
    assert!(output.contains("holds a NUL byte"), "logged: {output}");
    assert!(
        !output.contains("token-value") && !output.contains("tok\0en"),
        "{output}"
    );
}

// ---- overlays ------------------------------------------------------------------

#[test]
fn overlays_and_includes_run_check_and_reload_as_one_config() {
    let s = Scratch::new();
    let dir = s.dir.path().display().to_string();
    let base = s.path("base.toml");
    write(
        &base,
        format!(
            "include = [\"conf.d/*.toml\"]\n{}\n[service.greeter]\nrun = 'echo \"$GREETING $WHO\" > {dir}/greeting; exec sleep 1000'\nenv = {{ GREETING = \"base\", WHO = \"base\" }}\nstart_secs = \"200ms\"\n",
            bosun_table(&s)
        ),
    );
    write(
        &s.path("conf.d/10-hello.toml"),
        "[service.greeter]\nenv = { GREETING = \"hello\" }\n",
    );
    let site = s.path("site/site.toml");
    write(&site, "[service.greeter.env]\nWHO = \"site\"\n");

    // check: the merged config, and where each value came from.
    let (code, out, err) = common::bosun(
        &["check", "-c", arg(&base), "-c", arg(&site), "--origin"],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "config: {dir}/base.toml + {dir}/conf.d/10-hello.toml + {dir}/site/site.toml"
        )),
        "{out}"
    );
    let origin = |key: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no origin for {key}:\n{out}"))
            .to_string()
    };
    assert!(
        origin("service.greeter.env.GREETING")
            .ends_with(&format!("{dir}/conf.d/10-hello.toml:2:20")),
        "{out}"
    );
    assert!(
        origin("service.greeter.env.WHO").ends_with(&format!("{dir}/site/site.toml:2:7")),
        "{out}"
    );
    assert!(
        origin("service.greeter.run").contains(&format!("{dir}/base.toml:")),
        "{out}"
    );

    // An error in an overlay names it, with line:col.
    let broken = s.path("broken.toml");
    write(&broken, "[service.greeter]\nstop_timeout = \"later\"\n");
    let (code, _, err) = common::bosun(&["check", "-c", arg(&base), "-c", arg(&broken)], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{dir}/broken.toml:2:16: `stop_timeout`")),
        "{err}"
    );

    // $BOSUN_CONFIG holds several files, `:`-separated; run reads them all.
    let both = format!("{}:{}", base.display(), site.display());
    let d = Daemon::start(s, &["run"], &[("BOSUN_CONFIG", &both)]);
    d.wait_ready("greeter");
    assert_eq!(common::slurp(&d.scratch.path("greeting")), "hello site\n");

    // Reload reads the whole set again, the include glob too.
    write(
        &d.scratch.path("conf.d/20-bye.toml"),
        "[service.greeter]\nenv = { GREETING = \"bye\" }\n",
    );
    d.ctl_ok(&["reload"]);
    assert!(
        eventually(BOOT, || common::slurp(&d.scratch.path("greeting"))
            == "bye site\n"),
        "{:?}\n{}",
        common::slurp(&d.scratch.path("greeting")),
        d.pid1.output()
    );
    d.shutdown();
}

// ---- restart_dependents ----------------------------------------------------------

/// `db` (ready once `db-ok` exists; crashes at start while it does not) and
/// `app` after it; every start of `app` appends its pid to `app.starts`.
fn follower_config(s: &Scratch, db_extra: &str) -> PathBuf {
    let dir = s.dir.path().display().to_string();
    let config = s.path("bosun.toml");
    write(
        &config,
        format!(
            r#"{bosun}
[service.db]
run = "test -f {dir}/db-ok || exit 3; exec sleep 1000"
ready = {{ file = "{dir}/db-ok", interval = "50ms" }}
restart = "always"
backoff = {{ initial = "100ms", max = "300ms" }}
start_limit = {{ burst = 1000, interval = "60s" }}
restart_dependents = true
{db_extra}

[service.app]
run = "echo $$$$ >> {dir}/app.starts; exec sleep 1000"
after = ["db"]
start_secs = "100ms"
"#,
            bosun = bosun_table(s)
        ),
    );
    write(&s.path("db-ok"), "");
    config
}

fn starts(d: &Daemon) -> Vec<String> {
    common::slurp(&d.scratch.path("app.starts"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The dependency is down (and cannot come back while `db-ok` is gone): the
/// dependent stops and waits for it, however many times it restarts meanwhile.
fn assert_follows_and_waits(d: &Daemon, back: &[&str]) {
    assert!(
        eventually(BOOT, || d.unit("db").restarts >= 3),
        "db should be in a crash loop: {:?}",
        d.unit("db")
    );
    let app = d.unit("app");
    assert_eq!(
        app.pid, None,
        "app must be stopped while db is down: {app:?}"
    );
    assert_eq!(app.state, State::Starting, "{app:?}");
    assert_eq!(app.detail, "waiting for db", "{app:?}");
    assert_eq!(starts(d).len(), 1, "no restart storm: {:?}", starts(d));
    // db comes back: app starts again, once, after db is ready.
    for f in back {
        write(&d.scratch.path(f), "");
    }
    let db = d.wait_ready("db");
    let app = d.wait_ready("app");
    assert!(db > 0);
    let s = starts(d);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[1], app.to_string());
}

#[test]
fn dependents_follow_a_crash_of_their_dependency_and_wait_through_its_crash_loop() {
    let s = Scratch::new();
    let config = follower_config(&s, "");
    let d = Daemon::start(s, &["run", "-c", arg(&config)], &[]);
    let db = d.wait_ready("db");
    let app = d.wait_ready("app");
    assert_eq!(starts(&d), [app.to_string()]);
    fs::remove_file(d.scratch.path("db-ok")).expect("rm");
    // The crash: db's process killed from outside bosun's restart logic.
    d.ctl_ok(&["signal", "SIGKILL", "db"]);
    assert!(eventually(BOOT, || d.unit("db").pid != Some(db)));
    assert_follows_and_waits(&d, &["db-ok"]);
    let out = d.shutdown();
    assert!(
        out.contains("db restarted on its own (restart_dependents): stopping"),
        "{out}"
    );
}

#[test]
fn dependents_follow_a_failed_health_check_of_their_dependency() {
    let s = Scratch::new();
    let dir = s.dir.path().display().to_string();
    let health =
        format!("health = {{ file = \"{dir}/db-healthy\", interval = \"100ms\", failures = 1 }}");
    let config = follower_config(&s, &health);
    write(&s.path("db-healthy"), "");
    let d = Daemon::start(s, &["run", "-c", arg(&config)], &[]);
    d.wait_ready("db");
    let app = d.wait_ready("app");
    assert_eq!(starts(&d), [app.to_string()]);
    // db stays up but fails its health check: bosun kills and restarts it.
    fs::remove_file(d.scratch.path("db-ok")).expect("rm");
    fs::remove_file(d.scratch.path("db-healthy")).expect("rm");
    assert_follows_and_waits(&d, &["db-healthy", "db-ok"]);
    let out = d.shutdown();
    assert!(out.contains("health check failed"), "{out}");
}

#[test]
fn a_control_restart_still_restarts_dependents_once_after_ready() {
    let s = Scratch::new();
    let config = follower_config(&s, "");
    let d = Daemon::start(s, &["run", "-c", arg(&config)], &[]);
    d.wait_ready("db");
    d.wait_ready("app");
    d.ctl_ok(&["restart", "db"]);
    assert!(
        eventually(BOOT, || starts(&d).len() == 2),
        "{:?}",
        starts(&d)
    );
    d.wait_ready("app");
    // Give a double restart (the runner's own follow on top of the control one)
    // every chance to show; it must not.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(starts(&d).len(), 2, "{:?}", starts(&d));
    d.shutdown();
}
