//! Backups an operator can leave running (issue 15), bosun as PID 1, on `file://` and
//! on Garage (when `BOSUN_GARAGE_ENV` points at the env file `tests/support/garage.sh`
//! wrote): retention after every commit, encryption at rest, verification, one
//! writer per store prefix.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(60);

/// Where snapshots go in one test.
struct StoreUnderTest {
    url: String,
    env: Vec<(String, String)>,
    /// The directory of a file store (to inspect and damage objects).
    dir: Option<PathBuf>,
}

impl StoreUnderTest {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

fn garage_env() -> Option<Vec<(String, String)>> {
    let path = std::env::var("BOSUN_GARAGE_ENV").ok()?;
    let text = fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect(),
    )
}

/// A file store in `s`, and a Garage prefix unique to this test when Garage runs.
fn stores(s: &Scratch, name: &str) -> Vec<StoreUnderTest> {
    let dir = s.path("store");
    fs::create_dir_all(&dir).unwrap();
    let mut out = vec![StoreUnderTest {
        url: format!("file://{}", dir.display()),
        env: vec![],
        dir: Some(dir),
    }];
    match garage_env() {
        Some(env) => {
            let bucket = env
                .iter()
                .find(|(k, _)| k == "BOSUN_TEST_BUCKET")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "bosun-test".into());
            let unique = s
                .dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            out.push(StoreUnderTest {
                url: format!("s3://{bucket}/{name}-{unique}"),
                env,
                dir: None,
            });
        }
        None => eprintln!(
            "skipped the S3 half of {name}: no Garage (set BOSUN_GARAGE_ENV; tests/run.sh does)"
        ),
    }
    out
}

/// A key-value "service" whose data is one file, dumped and loaded with cat, plus
/// `extra` keys in `[snapshot]`.
fn kv_config(s: &Scratch, store: &StoreUnderTest, extra: &str) -> PathBuf {
    fs::create_dir_all(s.path("data")).unwrap();
    fs::create_dir_all(s.path("files")).unwrap();
    let d = s.dir.path().display();
    let body = format!(
        r#"
[service.kv]
run = "echo kv up; exec sleep 100000"
start_secs = "100ms"

[service.kv.backup]
dump = "cat {d}/data/kv.txt"
load = "cat > {d}/data/kv.txt"
timeout = "30s"

[snapshot]
store = "{url}"
s3_endpoint = "${{S3ENDPOINTURL:-}}"
s3_region = "${{S3REGION:-garage}}"
{extra}

[snapshot.paths]
files = "{d}/files"
"#,
        url = store.url
    );
    s.config("stop_budget = \"30s\"", &body)
}

fn snapshot_cmd(cfg: &Path, store: &StoreUnderTest, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["snapshot", "-c", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    bosun(&all, &store.env())
}

/// The regular snapshots `bosun snapshot list` shows, oldest first.
fn regular(cfg: &Path, store: &StoreUnderTest) -> Vec<String> {
    let (code, out, err) = snapshot_cmd(cfg, store, &["list"]);
    assert_eq!(code, 0, "snapshot list failed: {out}{err}");
    out.lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some("stop"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn ctl_backup(c: &Scratch, b: &Pid1) -> String {
    let sock = c.path("run/ctl.sock");
    let (code, out, err) = bosun(&["ctl", "--socket", sock.to_str().unwrap(), "backup"], &[]);
    assert_eq!(code, 0, "{out}{err}\n{}", b.output());
    out
}

#[test]
fn retention_runs_after_every_commit_and_prune_dry_run_shows_what_would_go() {
    let s0 = Scratch::new();
    for store in stores(&s0, "retention") {
        let c = Scratch::new();
        let cfg = kv_config(&c, &store, "keep_last = 2");
        fs::write(c.path("data/kv.txt"), "v1\n").unwrap();
        let (code, out, err) = bosun(&["check", "-c", cfg.to_str().unwrap()], &store.env());
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("the newest 2 complete snapshot(s) and LATEST")
                && out.contains("daily series (daily/)"),
            "check prints the retention plan:\n{out}"
        );
        let mut b = Pid1::run(&c, &cfg, &store.env());
        b.wait_for_output("boot complete", T);
        for _ in 0..3 {
            ctl_backup(&c, &b);
        }
        b.signal(SIGTERM);
        assert_eq!(b.wait(T), 0, "{}", b.output());
        let out = b.output();
        assert!(out.contains("retention removed"), "{out}");
        let left = regular(&cfg, &store);
        assert_eq!(
            left.len(),
            2,
            "keep_last = 2 after 4 commits: {left:?}\n{out}"
        );

        // A stricter policy: the dry run names what would go and removes nothing.
        let cfg1 = kv_config(&c, &store, "keep_last = 1");
        let (code, out, err) = snapshot_cmd(&cfg1, &store, &["prune", "--dry-run"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains(&format!("would remove {}: beyond keep_last = 1", left[0])),
            "{out}"
        );
        assert!(
            out.contains(&format!("keep   {}: LATEST", left[1])),
            "{out}"
        );
        assert_eq!(regular(&cfg1, &store), left, "a dry run removes nothing");
        let (code, out, err) = snapshot_cmd(&cfg1, &store, &["prune"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&format!("removed {}", left[0])), "{out}");
        assert_eq!(regular(&cfg1, &store), left[1..].to_vec());
    }
}
