//! The environment bosun is started with, as a container gives it: variables
//! that are not valid UTF-8 (legal on Linux) must not kill PID 1, units inherit
//! them byte for byte, and no config error shows a secret. Runs the real binary,
//! as PID 1 of a fresh pid namespace where it matters.

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(30);

/// `caf\xe9`: "café" in Latin-1, not UTF-8.
fn cafe() -> OsString {
    OsString::from_vec(b"caf\xe9".to_vec())
}

/// The environment of every test here: `X=caf\xe9`, and a variable whose very
/// name is not UTF-8.
fn bad_env() -> Vec<(OsString, OsString)> {
    vec![
        ("X".into(), cafe()),
        (OsString::from_vec(b"N\xff\xfe".to_vec()), "v".into()),
    ]
}

/// `bosun ARGS` to completion (not PID 1) with extra raw env: (code, stdout, stderr).
fn bosun_with(args: &[&str], env: &[(OsString, OsString)]) -> (i32, String, String) {
    let mut cmd = Command::new(bosun_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .envs(env.iter().cloned());
    let out = cmd.output().expect("run bosun");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// bosun as PID 1 (`unshare --pid --fork --mount-proc`), with raw args and env.
struct Init {
    child: Child,
    stderr: std::path::PathBuf,
}

impl Init {
    fn start(s: &Scratch, args: &[OsString], env: &[(OsString, OsString)]) -> Init {
        let stderr = s.path("bosun.stderr");
        let child = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(bosun_bin())
            .args(args)
            .envs(env.iter().cloned())
            .env("BOSUN_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(fs::File::create(s.path("bosun.stdout")).expect("stdout file"))
            .stderr(fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn unshare");
        Init { child, stderr }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `sig` to bosun (the child of `unshare`).
    fn signal(&self, sig: i32) {
        let p = format!("/proc/{0}/task/{0}/children", self.child.id());
        let mut pid: Option<i32> = None;
        assert!(eventually(T, || {
            pid = fs::read_to_string(&p)
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()));
            pid.is_some()
        }));
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.expect("bosun's pid").to_string())
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// The exit code (128+n for signal n); kills it after `timeout`.
    fn wait(&mut self, timeout: Duration) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("bosun did not exit within {timeout:?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Hex bytes as `od -An -tx1` writes them, without spaces: "636166e9".
fn hex(path: &Path) -> String {
    slurp(path).split_whitespace().collect()
}

#[test]
fn check_with_a_non_utf8_variable_exits_0_and_names_it() {
    let s = Scratch::new();
    let cfg = s.config("", "[service.web]\nrun = \"sleep 1\"\n");
    let (code, out, err) = bosun_with(&["check", "-c", cfg.to_str().unwrap()], &bad_env());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warning: environment variable \"X\" is not valid UTF-8"),
        "{out}{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_config_that_needs_a_non_utf8_variable_says_so() {
    let s = Scratch::new();
    // `${X:?}`: the variable is set, but the config cannot use it.
    let cfg = s.config("", "[service.web]\nrun = \"sleep 1\"\nuser = \"${X:?}\"\n");
    let (code, out, err) = bosun_with(&["check", "-c", cfg.to_str().unwrap()], &bad_env());
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("required variable `X` is set but not valid UTF-8"),
        "{err}"
    );
    // The roles variable: an error, not a silent fallback to every role...
    let cfg = s.config("", "[service.web]\nrun = \"sleep 1\"\nroles = [\"web\"]\n");
    let role = [(
        OsString::from("CONTAINERROLE"),
        OsString::from_vec(b"w\xffb".to_vec()),
    )];
    let (code, out, err) = bosun_with(&["check", "-c", cfg.to_str().unwrap()], &role);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("CONTAINERROLE ([bosun] roles_env) is not valid UTF-8"),
        "{err}"
    );
    // ...unless the roles are given.
    let (code, out, err) = bosun_with(
        &["check", "-c", cfg.to_str().unwrap(), "--roles", "web"],
        &role,
    );
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn run_as_pid1_starts_its_units_and_they_inherit_the_exact_bytes() {
    let s = Scratch::new();
    let body = r#"
[task.dump]
run = "printf %s \"$X\" | od -An -tx1 > {dir}/x.hex"
env = { Y = "set by the config" }

[service.web]
after = ["dump"]
run = "printf %s \"$X\" | od -An -tx1 > {dir}/web.hex; trap 'exit 0' TERM; while :; do sleep 0.05; done"
"#;
    let cfg = s.config("stop_budget = \"10s\"", body);
    let args: Vec<OsString> = vec!["run".into(), "-c".into(), cfg.into_os_string()];
    let mut b = Init::start(&s, &args, &bad_env());
    assert!(
        eventually(T, || hex(&s.path("web.hex")) == "636166e9"),
        "the units did not see X=caf\\xe9 (task: {:?}, service: {:?})\n{}",
        slurp(&s.path("x.hex")),
        slurp(&s.path("web.hex")),
        b.log()
    );
    assert_eq!(hex(&s.path("x.hex")), "636166e9", "{}", b.log());
    assert!(
        b.log()
            .contains("environment variable \"X\" is not valid UTF-8"),
        "{}",
        b.log()
    );
    // A reload reads the environment again: PID 1 must survive it.
    b.signal(SIGHUP);
    assert!(
        eventually(T, || b.log().contains("reloaded ")),
        "{}",
        b.log()
    );
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.log());
    assert!(!b.log().contains("panicked"), "{}", b.log());
}

#[test]
fn tini_mode_passes_a_non_utf8_argument_through() {
    let s = Scratch::new();
    let out = s.path("arg.hex");
    let script = format!("printf %s \"$1\" | od -An -tx1 > {}", out.display());
    let args: Vec<OsString> = vec![
        "--".into(),
        "sh".into(),
        "-c".into(),
        script.into(),
        "sh".into(),
        cafe(),
    ];
    let mut b = Init::start(&s, &args, &bad_env());
    assert_eq!(b.wait(T), 0, "{}", b.log());
    assert_eq!(hex(&out), "636166e9", "{}", b.log());
}

#[test]
fn check_never_prints_a_secret_in_a_config_error() {
    // The corpus cases that say which secret must not show (`# never:`), run
    // through the binary with their `# env:`.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/configs/broken");
    let mut n = 0;
    for e in fs::read_dir(dir).expect("tests/configs/broken").flatten() {
        let path = e.path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
        let never: Vec<&str> = header
            .iter()
            .filter_map(|l| l.strip_prefix("# never:"))
            .map(str::trim)
            .collect();
        if never.is_empty() {
            continue;
        }
        let mut env: Vec<(OsString, OsString)> = header
            .iter()
            .filter_map(|l| l.strip_prefix("# env:"))
            .filter_map(|kv| kv.trim().split_once('='))
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        env.extend(bad_env());
        let (code, out, err) = bosun_with(&["check", "-c", path.to_str().unwrap()], &env);
        assert_eq!(code, 2, "{}: {out}{err}", path.display());
        assert!(
            err.contains("***"),
            "{}: nothing masked: {err}",
            path.display()
        );
        for secret in never {
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "{}: {secret:?} shown:\n{out}{err}",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n >= 5, "only {n} corpus cases with a secret");
}
