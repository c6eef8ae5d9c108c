//! Backups an operator can leave running (issue 15), bosun as PID 1, on `file://` and
//! on Garage (when `BOSUN_GARAGE_ENV` points at the env file `tests/support/garage.sh`
//! wrote): retention after every commit, encryption at rest, verification, one
//! writer per store prefix.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::stores::*;
use common::*;

const T: Duration = Duration::from_secs(60);

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

/// The complete regular snapshots `bosun snapshot list` shows, oldest first.
fn regular(cfg: &Path, store: &StoreUnderTest) -> Vec<String> {
    let (code, out, err) = snapshot_cmd(cfg, store, &["list"]);
    assert_eq!(code, 0, "snapshot list failed: {out}{err}");
    out.lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(1) == Some(&"stop") && cols.get(5) == Some(&"yes")
        })
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

/// An age key pair: writes the identity file and a recipients file; returns their paths.
fn age_key(s: &Scratch, name: &str) -> (PathBuf, PathBuf) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let key = s.path(&format!("{name}.key"));
    fs::write(
        &key,
        format!("# {name}\n{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    let public = s.path(&format!("{name}.pub"));
    fs::write(&public, format!("# {name}\n{}\n", id.to_public())).unwrap();
    (key, public)
}

fn tree_of(s: &Scratch) -> (String, String) {
    (s.read("data/kv.txt"), s.read("files/note.txt"))
}

#[test]
fn encrypted_snapshots_restore_only_with_their_identity_and_never_start_without_keys() {
    let s0 = Scratch::new();
    let keys = Scratch::new();
    let (key, public) = age_key(&keys, "backup");
    let (other_key, _) = age_key(&keys, "other");
    for store in stores(&s0, "encrypted") {
        let a = Scratch::new();
        let enc = format!(
            "encrypt_to = [{:?}]\nidentity_file = {:?}",
            public.display().to_string(),
            key.display().to_string()
        );
        let cfg = kv_config(&a, &store, &enc);
        let (code, out, err) = bosun(&["check", "-c", cfg.to_str().unwrap()], &store.env());
        assert_eq!(code, 0, "{out}{err}");
        let public_key = fs::read_to_string(&public).unwrap();
        let public_key = public_key.lines().nth(1).unwrap();
        assert!(
            out.contains(&format!("encryption: age to {public_key}")),
            "{out}"
        );
        let secret = fs::read_to_string(&key).unwrap();
        assert!(
            !out.contains(&secret.lines().nth(1).unwrap()[16..]),
            "{out}"
        );
        let mut b = Pid1::run(&a, &cfg, &store.env());
        b.wait_for_output("boot complete", T);
        fs::write(a.path("data/kv.txt"), "case file 1\n").unwrap();
        fs::write(a.path("files/note.txt"), "privileged\n").unwrap();
        b.signal(SIGTERM);
        assert_eq!(b.wait(T), 0, "{}", b.output());
        if let Some(dir) = &store.dir {
            let mut objects = 0;
            for e in walk(dir) {
                let data = fs::read(&e).unwrap();
                assert!(
                    !String::from_utf8_lossy(&data).contains("privileged")
                        && !String::from_utf8_lossy(&data).contains("case file"),
                    "plaintext in {}",
                    e.display()
                );
                objects += e.to_string_lossy().ends_with(".age") as usize;
            }
            assert_eq!(objects, 2, "both items encrypted");
        }

        // A new container without identity_file: fails at once, naming the key.
        let c = Scratch::new();
        let cfg_c = kv_config(
            &c,
            &store,
            &format!("encrypt_to = [{:?}]", public.display().to_string()),
        );
        fs::write(c.path("data/kv.txt"), "local\n").unwrap();
        fs::write(c.path("files/note.txt"), "local note\n").unwrap();
        let mut p = Pid1::run(&c, &cfg_c, &store.env());
        assert_ne!(p.wait(T), 0, "{}", p.output());
        let out = p.output();
        assert!(
            out.contains("identity_file") && out.contains("encrypted"),
            "{out}"
        );
        assert_eq!(tree_of(&c), ("local\n".into(), "local note\n".into()));

        // `snapshot restore` with this config warns that the next start would fail.
        let id = regular(&cfg_c, &store).pop().unwrap();
        let (code, out, err) = snapshot_cmd(&cfg_c, &store, &["restore", &id]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            err.contains("warning") && err.contains("identity_file"),
            "{err}"
        );

        // The wrong identity: names the file and the key needed; nothing changed.
        let cfg_c = kv_config(
            &c,
            &store,
            &format!("identity_file = {:?}", other_key.display().to_string()),
        );
        let mut p = Pid1::run(&c, &cfg_c, &store.env());
        assert_ne!(p.wait(T), 0, "{}", p.output());
        let out = p.output();
        assert!(out.contains(&other_key.display().to_string()), "{out}");
        assert_eq!(tree_of(&c), ("local\n".into(), "local note\n".into()));
        let secret = fs::read_to_string(&other_key).unwrap();
        let secret = secret.lines().nth(1).unwrap();
        assert!(!out.contains(&secret[16..]), "a secret in the log:\n{out}");

        // The right one restores.
        let cfg_c = kv_config(&c, &store, &enc);
        let mut p = Pid1::run(&c, &cfg_c, &store.env());
        p.wait_for_output("boot complete", T);
        assert_eq!(
            tree_of(&c),
            ("case file 1\n".into(), "privileged\n".into()),
            "{}",
            p.output()
        );
        p.signal(SIGTERM);
        assert_eq!(p.wait(T), 0, "{}", p.output());
    }
}

#[test]
fn encryption_without_its_key_file_refuses_to_start() {
    let c = Scratch::new();
    let store = stores(&c, "nokey").remove(0);
    let cfg = kv_config(&c, &store, "encrypt_to = [\"/nonexistent/backup.pub\"]");
    // `bosun check` (often run at image build, before secrets are mounted) warns.
    let (code, out, err) = bosun(&["check", "-c", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warning: [snapshot]") && out.contains("/nonexistent/backup.pub"),
        "{out}"
    );
    let mut p = Pid1::run(&c, &cfg, &[]);
    assert_ne!(p.wait(T), 0, "{}", p.output());
    let out = p.output();
    assert!(
        out.contains("/nonexistent/backup.pub") && out.contains("unencrypted"),
        "{out}"
    );
    assert!(!out.contains("boot complete"), "{out}");
    let cfg = kv_config(&c, &store, "identity_file = \"/nonexistent/backup.key\"");
    let mut p = Pid1::run(&c, &cfg, &[]);
    assert_ne!(p.wait(T), 0, "{}", p.output());
    assert!(
        p.output().contains("/nonexistent/backup.key"),
        "{}",
        p.output()
    );
    // Nothing was written to the store.
    assert!(walk(store.dir.as_ref().unwrap()).is_empty());
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn snapshot_verify_reads_everything_and_exits_with_codes_a_cron_job_can_use() {
    let s0 = Scratch::new();
    for store in stores(&s0, "verify") {
        let c = Scratch::new();
        let cfg = kv_config(&c, &store, "verify_after_commit = true");
        fs::write(c.path("data/kv.txt"), "x".repeat(100_000)).unwrap();
        fs::write(c.path("files/note.txt"), "note\n").unwrap();
        let mut b = Pid1::run(&c, &cfg, &store.env());
        b.wait_for_output("boot complete", T);
        ctl_backup(&c, &b);
        let sock = c.path("run/ctl.sock");
        let (code, out, _) = bosun(
            &["ctl", "--socket", sock.to_str().unwrap(), "snapshots"],
            &[],
        );
        assert_eq!(code, 0);
        let id = regular(&cfg, &store).pop().unwrap();
        let line = out
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            line.contains(" ok ") || line.contains(" ok"),
            "ctl snapshots shows the verification: {line}"
        );
        b.signal(SIGTERM);
        assert_eq!(b.wait(T), 0, "{}", b.output());
        assert!(
            b.output().contains("verified after its commit"),
            "{}",
            b.output()
        );

        let (code, out, err) = snapshot_cmd(&cfg, &store, &["verify", "--all"]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(
            out.lines().filter(|l| l.starts_with("ok ")).count(),
            2,
            "{out}"
        );
        let (code, out, err) = snapshot_cmd(&cfg, &store, &["verify"]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, _, err) = snapshot_cmd(&cfg, &store, &["verify", "not-an-id"]);
        assert_eq!(code, 2, "{err}");
        let (code, _, err) = snapshot_cmd(&cfg, &store, &["verify", "20990101T000000Z-nosuch"]);
        assert_eq!(code, 2, "{err}");
        let (_, list, _) = snapshot_cmd(&cfg, &store, &["list"]);
        assert!(
            list.lines().skip(1).all(|l| l.contains(" ok")),
            "every snapshot shows its verification:\n{list}"
        );

        // A damaged object (file store: flip one byte): exit 1, the object named; no
        // data on this disk is touched.
        let Some(dir) = &store.dir else { continue };
        let object = dir.join("snapshots").join(&id).join("kv.zst");
        let mut data = fs::read(&object).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        fs::write(&object, &data).unwrap();
        let before = (c.read("data/kv.txt"), c.read("files/note.txt"));
        let (code, out, err) = snapshot_cmd(&cfg, &store, &["verify", &id]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains("DAMAGED") && out.contains(&format!("snapshots/{id}/kv.zst")),
            "{out}"
        );
        assert_eq!((c.read("data/kv.txt"), c.read("files/note.txt")), before);
        let (_, list, _) = snapshot_cmd(&cfg, &store, &["list"]);
        let line = list.lines().find(|l| l.starts_with(&id)).unwrap();
        assert!(line.contains("DAMAGED"), "{line}");
        // A truncated one.
        fs::write(&object, &data[..data.len() / 2]).unwrap();
        let (code, out, _) = snapshot_cmd(&cfg, &store, &["verify", "--all"]);
        assert_eq!(code, 1, "{out}");
    }
}

#[test]
fn two_containers_on_one_prefix_never_both_commit_and_a_stale_marker_is_taken_over() {
    let s0 = Scratch::new();
    for store in stores(&s0, "writers") {
        let a = Scratch::new();
        let b = Scratch::new();
        // Both refresh every 3.3 s: beta's stop waits at most 10 s for alpha's marker
        // to go stale, sees it refreshed, and refuses.
        let cfg_a = kv_config(&a, &store, "writer_stale_after = \"10s\"");
        let cfg_b = kv_config(&b, &store, "writer_stale_after = \"10s\"");
        fs::write(a.path("data/kv.txt"), "alpha's data\n").unwrap();
        let mut pa = Pid1::run_as_host(&a, &cfg_a, "alpha", &store.env());
        pa.wait_for_output("boot complete", T);
        ctl_backup(&a, &pa);
        let first = regular(&cfg_a, &store);

        // Beta on the same prefix: boots, says so, refuses to commit over alpha.
        let mut pb = Pid1::run_as_host(&b, &cfg_b, "beta", &store.env());
        pb.wait_for_output("boot complete", T);
        fs::write(b.path("data/kv.txt"), "beta's data\n").unwrap();
        let sock = b.path("run/ctl.sock");
        let (code, out, err) = bosun(&["ctl", "--socket", sock.to_str().unwrap(), "backup"], &[]);
        assert_ne!(code, 0, "{out}{err}");
        let msg = format!("{out}{err}");
        assert!(
            msg.contains("another container writes this store prefix")
                && msg.contains("alpha")
                && msg.contains("beta")
                && msg.contains("own prefix"),
            "{msg}"
        );
        pb.signal(SIGTERM);
        assert_ne!(
            pb.wait(T),
            0,
            "beta's stop commits nothing:\n{}",
            pb.output()
        );
        assert_eq!(regular(&cfg_a, &store), first, "beta committed over alpha");

        // Alpha goes on committing, its own marker refreshed.
        ctl_backup(&a, &pa);
        assert_eq!(regular(&cfg_a, &store).len(), 2);

        // Alpha is killed: its marker stays. After writer_stale_after (10 s for beta)
        // beta takes the prefix over.
        pa.signal(SIGKILL);
        pa.wait(T);
        let mut pb = Pid1::run_as_host(&b, &cfg_b, "beta", &store.env());
        pb.wait_for_output("boot complete", T);
        assert!(
            pb.output().contains("another container writes"),
            "{}",
            pb.output()
        );
        let took_over = eventually(Duration::from_secs(30), || {
            let (code, _, _) = bosun(&["ctl", "--socket", sock.to_str().unwrap(), "backup"], &[]);
            code == 0
        });
        assert!(took_over, "{}", pb.output());
        assert!(
            pb.output().contains("taking over the store prefix"),
            "{}",
            pb.output()
        );
        pb.signal(SIGTERM);
        assert_eq!(pb.wait(T), 0, "{}", pb.output());

        // Alpha, restarted on its own disk, is now the one refused (beta stopped
        // cleanly: the prefix is free again, so alpha may commit).
        let mut pa = Pid1::run_as_host(&a, &cfg_a, "alpha", &store.env());
        pa.wait_for_output("boot complete", T);
        pa.signal(SIGTERM);
        assert_eq!(pa.wait(T), 0, "{}", pa.output());
    }
}
