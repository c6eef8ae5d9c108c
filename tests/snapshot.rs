//! Snapshots end to end: bosun as PID 1 backs up on stop and restores on start,
//! against a volume (`file://`) and a real S3 server (Garage, when
//! `BOSUN_GARAGE_ENV` points at the env file `tests/support/garage.sh` wrote),
//! with a real PostgreSQL, and through the faults that lose data elsewhere.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::stores::*;
use common::*;

const T: Duration = Duration::from_secs(60);

/// A key-value "service" whose data is one file, dumped with cat and loaded with cat.
fn kv_config(s: &Scratch, store: &StoreUnderTest, dump: &str, load: &str, budget: &str) -> PathBuf {
    fs::create_dir_all(s.path("data")).unwrap();
    fs::create_dir_all(s.path("files")).unwrap();
    let body = format!(
        r#"
[service.kv]
run = "echo kv up; exec sleep 100000"
start_secs = "100ms"

[service.kv.backup]
dump = {dump:?}
load = {load:?}
timeout = "30s"

[service.app]
after = ["kv"]
# What app sees of kv's data when it starts: the load must come first.
run = "cat {{dir}}/data/kv.txt > {{dir}}/app-saw 2>/dev/null; echo app up; exec sleep 100000"
start_secs = "100ms"

[snapshot]
store = "{url}"
s3_endpoint = "${{S3ENDPOINTURL:-}}"
s3_region = "${{S3REGION:-garage}}"

[snapshot.paths]
files = "{{dir}}/files"
"#,
        url = store.url
    );
    s.config(&format!("stop_budget = \"{budget}\""), &body)
}

fn default_kv(s: &Scratch, store: &StoreUnderTest) -> PathBuf {
    kv_config(
        s,
        store,
        &format!("cat {}/data/kv.txt", s.dir.path().display()),
        &format!("cat > {}/data/kv.txt", s.dir.path().display()),
        "30s",
    )
}

/// LATEST as `bosun snapshot list` shows it (the id marked `*`).
fn latest(cfg: &Path, store: &StoreUnderTest) -> Option<String> {
    let (code, out, err) = bosun(
        &["snapshot", "-c", cfg.to_str().unwrap(), "list"],
        &store.env(),
    );
    assert_eq!(code, 0, "snapshot list failed: {out}{err}");
    out.lines()
        .filter(|l| l.trim_end().ends_with('*'))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .next()
}

/// Boots, writes data, stops: returns the snapshot id.
fn take_snapshot(s: &Scratch, cfg: &Path, store: &StoreUnderTest, kv: &str, file: &str) -> String {
    let mut b = Pid1::run(s, cfg, &store.env());
    b.wait_for_output("boot complete", T);
    fs::write(s.path("data/kv.txt"), kv).unwrap();
    fs::write(s.path("files/note.txt"), file).unwrap();
    b.signal(SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
    assert!(b.output().contains("committed"), "{}", b.output());
    latest(cfg, store).expect("a LATEST after a clean stop")
}

#[test]
fn backup_on_stop_restore_in_a_new_container_and_not_twice_in_the_same() {
    let s0 = Scratch::new();
    for store in stores(&s0, "roundtrip") {
        let a = Scratch::new();
        let cfg_a = default_kv(&a, &store);
        let id = take_snapshot(&a, &cfg_a, &store, "hello from container A\n", "a file\n");

        // A new container: empty disk, same store. The data comes back before kv's dependents start.
        let b = Scratch::new();
        let cfg_b = default_kv(&b, &store);
        let mut pb = Pid1::run(&b, &cfg_b, &store.env());
        pb.wait_for_output("boot complete", T);
        assert_eq!(
            b.read("data/kv.txt"),
            "hello from container A\n",
            "{}",
            pb.output()
        );
        assert_eq!(b.read("files/note.txt"), "a file\n", "{}", pb.output());
        let out = pb.output();
        assert!(out.contains(&format!("restoring snapshot {id}")), "{out}");
        assert_eq!(
            b.read("app-saw"),
            "hello from container A\n",
            "app started before kv's data was loaded:\n{out}"
        );
        pb.signal(SIGTERM);
        assert_eq!(pb.wait(T), 0, "{}", pb.output());
        let id2 = latest(&cfg_b, &store).unwrap();
        assert_ne!(id, id2);

        // The same container again: its disk holds that snapshot; no second load.
        fs::write(b.path("data/kv.txt"), "changed after the stop\n").unwrap();
        let mut pb = Pid1::run(&b, &cfg_b, &store.env());
        pb.wait_for_output("boot complete", T);
        assert!(
            pb.output().contains("already holds snapshot"),
            "{}",
            pb.output()
        );
        assert_eq!(b.read("data/kv.txt"), "changed after the stop\n");
        pb.signal(SIGTERM);
        assert_eq!(pb.wait(T), 0);
    }
}

#[test]
fn postgresql_rows_survive_into_a_new_container() {
    let s0 = Scratch::new();
    for store in stores(&s0, "postgres") {
        let run_container = |rows: Option<&str>| -> (Scratch, String) {
            let s = Scratch::new();
            let pg = Pg::new(&s, 55433);
            let psql = pg.psql();
            let body = format!(
                r#"{units}
[service.postgres.backup]
dump = "{PG_BIN}/pg_dumpall -h {sock} -p 55433 -U postgres --clean --if-exists"
load = "{psql} -q -v ON_ERROR_STOP=0 -d postgres >/dev/null"
timeout = "120s"

[snapshot]
store = "{url}"
s3_endpoint = "${{S3ENDPOINTURL:-}}"
s3_region = "${{S3REGION:-garage}}"
"#,
                units = pg.units(),
                sock = pg.sock.display(),
                url = store.url,
            );
            let cfg = s.config("stop_budget = \"120s\"", &body);
            let mut b = Pid1::run(&s, &cfg, &store.env());
            b.wait_for_output("boot complete", Duration::from_secs(120));
            let q = |sql: &str| {
                let out = Command::new("sh")
                    .args(["-c", &format!("{psql} -At -d postgres -c \"{sql}\"")])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            };
            if let Some(rows) = rows {
                q("CREATE TABLE notes(id serial primary key, body text)");
                q(&format!(
                    "INSERT INTO notes(body) SELECT '{rows}' || g FROM generate_series(1, 1000) g"
                ));
            }
            let seen = q("SELECT count(*) || ':' || min(body) FROM notes");
            b.signal(SIGTERM);
            assert_eq!(b.wait(Duration::from_secs(120)), 0, "{}", b.output());
            assert!(b.output().contains("committed"), "{}", b.output());
            (s, seen)
        };
        let (_a, seen_a) = run_container(Some("row "));
        assert_eq!(seen_a, "1000:row 1");
        // A fresh data dir: initdb makes an empty cluster, then the dump is loaded.
        let (_b, seen_b) = run_container(None);
        assert_eq!(seen_b, "1000:row 1", "rows did not come back");
    }
}

#[test]
fn a_store_that_cannot_be_reached_fails_the_boot_instead_of_starting_empty() {
    let s = Scratch::new();
    let store = StoreUnderTest {
        url: "s3://bosun-test/unreachable".into(),
        env: vec![
            ("S3ENDPOINTURL".into(), "http://127.0.0.1:9".into()),
            ("AWS_ACCESS_KEY_ID".into(), "GKxxxxxxxx".into()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                "not-a-real-secret-0123456789".into(),
            ),
        ],
        dir: None,
    };
    let cfg = default_kv(&s, &store);
    let mut b = Pid1::run(&s, &cfg, &store.env());
    assert_eq!(b.wait(Duration::from_secs(120)), 1, "{}", b.output());
    let out = b.output();
    assert!(
        out.contains("unreachable") && out.contains("will not start empty"),
        "{out}"
    );
    assert!(
        !out.contains("kv up"),
        "a unit started without its data: {out}"
    );
    assert!(
        !out.contains("not-a-real-secret"),
        "secret in the log: {out}"
    );

    // A volume that is not mounted (the directory is missing) is unreachable too.
    let s = Scratch::new();
    let gone = StoreUnderTest {
        url: format!("file://{}/not-mounted", s.dir.path().display()),
        env: vec![],
        dir: None,
    };
    let cfg = default_kv(&s, &gone);
    let mut b = Pid1::run(&s, &cfg, &[]);
    assert_eq!(b.wait(Duration::from_secs(120)), 1, "{}", b.output());
    assert!(!b.output().contains("kv up"));
}

#[test]
fn a_corrupted_object_fails_the_restore_loudly_and_nothing_starts() {
    let a = Scratch::new();
    let store = stores(&a, "corrupt").remove(0);
    let cfg = default_kv(&a, &store);
    let id = take_snapshot(&a, &cfg, &store, "precious\n", "file\n");
    let dir = store.dir.clone().unwrap().join("snapshots").join(&id);
    // Damage the files item (restored before any unit starts).
    let obj = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("files")
        })
        .expect("files object");
    let mut bytes = fs::read(&obj).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&obj, bytes).unwrap();

    let b = Scratch::new();
    let cfg_b = default_kv(&b, &store);
    let mut p = Pid1::run(&b, &cfg_b, &[]);
    assert_eq!(p.wait(T), 1, "{}", p.output());
    let out = p.output();
    assert!(
        out.contains("restore")
            && out.contains("damaged")
            && out.contains("bosun snapshot restore"),
        "{out}"
    );
    assert!(
        !out.contains("kv up") && !out.contains("app up"),
        "units started after a failed restore: {out}"
    );
    assert_eq!(
        latest(&cfg_b, &store).as_deref(),
        Some(id.as_str()),
        "LATEST moved"
    );
}

#[test]
fn a_failed_load_is_never_backed_up_over_the_good_snapshot() {
    let a = Scratch::new();
    for store in stores(&a, "failload") {
        let s = Scratch::new();
        let cfg = default_kv(&s, &store);
        let good = take_snapshot(&s, &cfg, &store, "good data\n", "f\n");

        let b = Scratch::new();
        let cfg_b = kv_config(&b, &store, "echo EMPTY", "exit 3", "30s");
        let mut p = Pid1::run(&b, &cfg_b, &store.env());
        assert_eq!(p.wait(T), 1, "{}", p.output());
        assert!(
            p.output().contains("loading its data failed"),
            "{}",
            p.output()
        );
        assert!(!p.output().contains("app up"), "{}", p.output());
        assert_eq!(
            latest(&cfg_b, &store).as_deref(),
            Some(good.as_str()),
            "the failed container overwrote LATEST"
        );
    }
}

#[test]
fn a_stop_that_runs_out_of_budget_mid_backup_keeps_the_previous_latest() {
    let a = Scratch::new();
    for store in stores(&a, "budget") {
        let s = Scratch::new();
        let cfg = default_kv(&s, &store);
        let good = take_snapshot(&s, &cfg, &store, "v1\n", "f\n");
        let slow = kv_config(
            &s,
            &store,
            &format!("cat {}/data/kv.txt; sleep 20", s.dir.path().display()),
            "cat > /dev/null",
            "2s",
        );
        let mut p = Pid1::run(&s, &slow, &store.env());
        p.wait_for_output("boot complete", T);
        p.signal(SIGTERM);
        assert_eq!(p.wait(T), 1, "{}", p.output());
        assert!(p.output().contains("budget"), "{}", p.output());
        assert_eq!(latest(&slow, &store).as_deref(), Some(good.as_str()));
    }
}

/// `writer_stale_after = "10s"` in `cfg`: a replacement's stop can wait out a killed
/// container's marker within the 30 s `stop_budget` (it waits at most half of it).
fn stale_after_10s(cfg: &Path) {
    let text = fs::read_to_string(cfg).unwrap();
    let text = text.replacen(
        "[snapshot]\n",
        "[snapshot]\nwriter_stale_after = \"10s\"\n",
        1,
    );
    fs::write(cfg, text).unwrap();
}

#[test]
fn sigkill_in_the_middle_of_a_backup_leaves_latest_restorable() {
    let a = Scratch::new();
    for store in stores(&a, "sigkill") {
        let s = Scratch::new();
        let cfg = default_kv(&s, &store);
        let good = take_snapshot(&s, &cfg, &store, "before the kill\n", "f\n");
        // A dump that streams half its data, then hangs: bosun is killed mid-item.
        let big = s.path("data/big");
        fs::write(&big, vec![b'x'; 4 << 20]).unwrap();
        let hanging = kv_config(
            &s,
            &store,
            &format!("cat {}; sleep 30", big.display()),
            &format!("cat > {}/data/kv.txt", s.dir.path().display()),
            "60s",
        );
        stale_after_10s(&hanging);
        let mut p = Pid1::run(&s, &hanging, &store.env());
        p.wait_for_output("boot complete", T);
        p.signal(SIGTERM);
        p.wait_for_output("dumping its data", T);
        std::thread::sleep(Duration::from_millis(500));
        p.signal(SIGKILL);
        p.wait(T);
        assert_eq!(
            latest(&cfg, &store).as_deref(),
            Some(good.as_str()),
            "a killed backup became LATEST"
        );

        // A new container restores the last complete snapshot, and says the last stop was unclean.
        let b = Scratch::new();
        let cfg_b = default_kv(&b, &store);
        stale_after_10s(&cfg_b);
        let mut pb = Pid1::run(&b, &cfg_b, &store.env());
        pb.wait_for_output("boot complete", T);
        assert_eq!(b.read("data/kv.txt"), "before the kill\n");
        assert!(pb.output().contains("unclean stop"), "{}", pb.output());
        // The killed container's writer marker is still fresh: the new one, on another
        // disk, waits for it to go stale (nobody refreshes it), takes the prefix over
        // and backs up at its stop, as a replacement container must.
        pb.signal(SIGTERM);
        assert_eq!(pb.wait(Duration::from_secs(120)), 0, "{}", pb.output());
        assert!(
            pb.output().contains("waiting") && pb.output().contains("taking over"),
            "{}",
            pb.output()
        );
        let after = latest(&cfg_b, &store);
        assert!(
            after.is_some() && after.as_deref() != Some(good.as_str()),
            "the replacement's stop committed a new LATEST: {after:?}"
        );
    }
}

#[test]
fn a_full_volume_gives_a_clear_error_and_keeps_the_previous_snapshot() {
    let s = Scratch::new();
    let mnt = s.path("small");
    fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .map(|st| st.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let store = StoreUnderTest {
        url: format!("file://{}", mnt.display()),
        env: vec![],
        dir: Some(mnt.clone()),
    };
    let cfg = default_kv(&s, &store);
    let good = take_snapshot(&s, &cfg, &store, "small\n", "f\n");
    // 3 MiB of incompressible data cannot fit in what is left of 1 MiB.
    let mut noise = vec![0u8; 3 << 20];
    std::io::Read::read_exact(&mut fs::File::open("/dev/urandom").unwrap(), &mut noise).unwrap();
    fs::write(s.path("files/noise.bin"), noise).unwrap();
    let mut p = Pid1::run(&s, &cfg, &[]);
    p.wait_for_output("boot complete", T);
    p.signal(SIGTERM);
    assert_eq!(p.wait(T), 1, "{}", p.output());
    assert!(
        p.output().to_lowercase().contains("no space left"),
        "{}",
        p.output()
    );
    assert_eq!(latest(&cfg, &store).as_deref(), Some(good.as_str()));
    // And it still restores.
    let b = Scratch::new();
    let cfg_b = default_kv(&b, &store);
    let mut pb = Pid1::run(&b, &cfg_b, &[]);
    pb.wait_for_output("boot complete", T);
    assert_eq!(b.read("data/kv.txt"), "small\n");
    pb.signal(SIGTERM);
    let _ = pb.wait(T);
}

#[test]
fn snapshot_restore_marks_an_older_snapshot_for_the_next_start() {
    let s = Scratch::new();
    let store = stores(&s, "pick").remove(0);
    let cfg = default_kv(&s, &store);
    let old = take_snapshot(&s, &cfg, &store, "old\n", "f\n");
    std::thread::sleep(Duration::from_millis(1100)); // ids have one-second resolution
    let new = take_snapshot(&s, &cfg, &store, "new\n", "f\n");
    assert_ne!(old, new);
    let (code, out, err) = bosun(
        &["snapshot", "-c", cfg.to_str().unwrap(), "restore", &old],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(latest(&cfg, &store).as_deref(), Some(old.as_str()));
    // The same disk holds "new", so the marked "old" is restored on the next start.
    let mut p = Pid1::run(&s, &cfg, &[]);
    p.wait_for_output("boot complete", T);
    assert_eq!(s.read("data/kv.txt"), "old\n", "{}", p.output());
    p.signal(SIGTERM);
    assert_eq!(p.wait(T), 0);
    let (code, _, _) = bosun(
        &[
            "snapshot",
            "-c",
            cfg.to_str().unwrap(),
            "restore",
            "20990101T000000Z-nosuch",
        ],
        &[],
    );
    assert_eq!(code, 1);
}

#[test]
fn ctl_backup_takes_an_online_snapshot_and_ctl_snapshots_lists_it() {
    let s = Scratch::new();
    for store in stores(&s, "online") {
        let c = Scratch::new();
        let cfg = default_kv(&c, &store);
        fs::write(c.path("data/kv.txt"), "live data\n").unwrap();
        let mut b = Pid1::run(&c, &cfg, &store.env());
        b.wait_for_output("boot complete", T);
        let sock = c.path("run/ctl.sock");
        let sock = sock.to_str().unwrap();
        let (code, out, err) = bosun(&["ctl", "--socket", sock, "backup"], &[]);
        assert_eq!(code, 0, "{out}{err}\n{}", b.output());
        assert!(out.contains("committed"), "{out}");
        let id = latest(&cfg, &store).expect("ctl backup moved LATEST");
        assert!(out.contains(&id), "{out}");
        let (code, out, _) = bosun(&["ctl", "--socket", sock, "snapshots"], &[]);
        assert_eq!(code, 0);
        let line = out
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{out}"));
        assert!(
            line.contains("yes") && line.trim_end().ends_with('*'),
            "{line}"
        );
        // Status shows the unit's last backup.
        let (code, out, _) = bosun(&["ctl", "--socket", sock, "status", "--json"], &[]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let kv = v["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "kv")
            .unwrap();
        assert_eq!(kv["last_backup"]["ok"], true, "{out}");
        assert_eq!(kv["last_backup"]["bytes"], 10, "{out}");
        b.signal(SIGTERM);
        assert_eq!(b.wait(T), 0, "{}", b.output());
    }
}

/// A data tier (`sql` and `redis`, each with a backup table) and an app tier (`web`,
/// nothing to keep) on one store, as docassemble's containers share one bucket.
fn split_config(s: &Scratch, store: &StoreUnderTest) -> PathBuf {
    fs::create_dir_all(s.path("data")).unwrap();
    let body = format!(
        r#"
[service.db]
roles = ["sql"]
run = "exec sleep 100000"
start_secs = "100ms"

[service.db.backup]
dump = "cat {{dir}}/data/kv.txt"
load = "cat > {{dir}}/data/kv.txt"

[service.cache]
roles = ["redis"]
run = "exec sleep 100000"
start_secs = "100ms"

[service.cache.backup]
dump = "cat {{dir}}/data/cache.txt"
load = "cat > {{dir}}/data/cache.txt"

[service.web]
roles = ["web"]
run = "exec sleep 100000"
start_secs = "100ms"

[snapshot]
store = "{url}"
daily_at = "03:00"
"#,
        url = store.url
    );
    s.config("stop_budget = \"30s\"", &body)
}

/// `next_daily_at_ms` in `ctl status --json` of the bosun whose scratch is `s`.
fn next_daily(s: &Scratch) -> serde_json::Value {
    let sock = s.path("run/ctl.sock");
    let (code, out, err) = bosun(
        &[
            "ctl",
            "--socket",
            sock.to_str().unwrap(),
            "status",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["next_daily_at_ms"].clone()
}

#[test]
fn split_roles_sharing_a_store_never_drop_each_others_data() {
    let s0 = Scratch::new();
    let store = stores(&s0, "split").remove(0);
    // The data tier takes a snapshot holding db and cache.
    let data = Scratch::new();
    let cfg_data = split_config(&data, &store);
    fs::write(data.path("data/kv.txt"), "rows\n").unwrap();
    fs::write(data.path("data/cache.txt"), "keys\n").unwrap();
    let mut p = Pid1::run(&data, &cfg_data, &[("CONTAINERROLE", "sql:redis")]);
    p.wait_for_output("boot complete", T);
    p.signal(SIGTERM);
    assert_eq!(p.wait(T), 0, "{}", p.output());
    let good = latest(&cfg_data, &store).unwrap();
    // A container that owns only part of LATEST (cache, not db) must not commit over
    // it: its own data would be lost, so the stop fails and says why and what to do.
    let part = Scratch::new();
    let cfg_part = split_config(&part, &store);
    fs::write(part.path("data/cache.txt"), "other keys\n").unwrap();
    let mut p = Pid1::run(&part, &cfg_part, &[("CONTAINERROLE", "redis")]);
    p.wait_for_output("boot complete", T);
    p.signal(SIGTERM);
    assert_eq!(p.wait(T), 1, "{}", p.output());
    assert!(
        p.output()
            .contains("holds db that this container (roles redis) does not own")
            && p.output().contains("its own store prefix"),
        "{}",
        p.output()
    );
    assert_eq!(latest(&cfg_part, &store).as_deref(), Some(good.as_str()));
}

/// The app tier owns no data: its stop after the data tier's (the e2e's step 5b) is a
/// clean stop, exit 0, with LATEST untouched; two app containers on one store do not
/// contend for the writer marker, and `ctl backup` there says there is nothing to keep.
#[test]
fn an_app_tier_without_data_stops_cleanly_beside_the_data_tiers_snapshot() {
    let s0 = Scratch::new();
    let store = stores(&s0, "app-tier").remove(0);
    let data = Scratch::new();
    let cfg_data = split_config(&data, &store);
    fs::write(data.path("data/kv.txt"), "rows\n").unwrap();
    fs::write(data.path("data/cache.txt"), "keys\n").unwrap();
    let mut p = Pid1::run(&data, &cfg_data, &[("CONTAINERROLE", "sql:redis")]);
    p.wait_for_output("boot complete", T);
    assert!(
        next_daily(&data).is_u64(),
        "the data tier has a daily snapshot"
    );
    p.signal(SIGTERM);
    assert_eq!(p.wait(T), 0, "{}", p.output());
    let good = latest(&cfg_data, &store).unwrap();

    let (a, b) = (Scratch::new(), Scratch::new());
    let (cfg_a, cfg_b) = (split_config(&a, &store), split_config(&b, &store));
    let mut pa = Pid1::run(&a, &cfg_a, &[("CONTAINERROLE", "web")]);
    let mut pb = Pid1::run(&b, &cfg_b, &[("CONTAINERROLE", "web")]);
    pa.wait_for_output("boot complete", T);
    pb.wait_for_output("boot complete", T);
    // No daily snapshot that could only fail (an ERROR every night).
    assert!(next_daily(&a).is_null(), "{}", next_daily(&a));
    let sock = a.path("run/ctl.sock");
    let (code, out, err) = bosun(&["ctl", "--socket", sock.to_str().unwrap(), "backup"], &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("no data to snapshot"), "{out}{err}");
    for p in [&mut pa, &mut pb] {
        p.signal(SIGTERM);
        assert_eq!(p.wait(T), 0, "the app tier's stop failed\n{}", p.output());
        let log = p.output();
        assert!(log.contains("nothing to keep in this container"), "{log}");
        assert!(!log.contains("snapshot started"), "{log}");
        assert!(!log.contains("another container writes"), "{log}");
    }
    assert_eq!(latest(&cfg_a, &store).as_deref(), Some(good.as_str()));
    // The data is still there for the next data-tier container.
    let next = Scratch::new();
    let cfg_next = split_config(&next, &store);
    let mut p = Pid1::run(&next, &cfg_next, &[("CONTAINERROLE", "sql:redis")]);
    p.wait_for_output("boot complete", T);
    assert_eq!(next.read("data/kv.txt"), "rows\n", "{}", p.output());
    assert_eq!(next.read("data/cache.txt"), "keys\n", "{}", p.output());
    p.signal(SIGTERM);
    assert_eq!(p.wait(T), 0, "{}", p.output());
}

// ------------------------------------------------------------ the trust boundary

/// One ustar header (+ data, padded) with the name and link target written raw: what
/// anyone who can write the store can put in an archive.
fn tar_entry(out: &mut Vec<u8>, name: &str, kind: u8, data: &[u8], link: &str) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mut octal = |at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(100, 8, if kind == b'5' { 0o755 } else { 0o644 });
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, data.len() as u64);
    octal(136, 12, 1_700_000_000);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tar_of(entries: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        tar_entry(&mut out, name, *kind, data, link);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Writes a snapshot into the file store at `dir` the way anyone who can write the store
/// could: `items` are (name, tar?, raw bytes), with sizes and checksums that match;
/// `patch` edits the manifest last. It becomes LATEST; returns its id.
fn forge(
    dir: &Path,
    items: &[(&str, bool, Vec<u8>)],
    patch: impl FnOnce(&mut serde_json::Value),
) -> String {
    use bosun_snapshot::{FileStore, SnapshotKind, SnapshotWriter, Store};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(FileStore::new(dir));
        let roles = ["all".to_string()];
        let mut w = SnapshotWriter::begin(store, "mallory", &roles, SnapshotKind::Regular)
            .await
            .unwrap();
        for (name, _, data) in items {
            w.put_stream(name, &data[..]).await.unwrap();
        }
        let id = w.id().clone();
        w.commit().await.unwrap();
        id.to_string()
    });
    let snap = dir.join("snapshots").join(&id);
    let manifest_path = snap.join("MANIFEST.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    for (name, tar, _) in items.iter().filter(|i| i.1) {
        assert!(*tar);
        fs::rename(
            snap.join(format!("{name}.zst")),
            snap.join(format!("{name}.tar.zst")),
        )
        .unwrap();
        let item = m["items"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|i| i["name"] == *name)
            .unwrap();
        item["kind"] = "tar".into();
        item["object"] = format!("{name}.tar.zst").into();
    }
    patch(&mut m);
    fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    id
}

/// Every path below `dir` with its type, mode and content (links as their target).
fn tree(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let what = if m.is_symlink() {
            format!("-> {}", fs::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            "dir".into()
        } else {
            String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
        };
        out.push(format!(
            "{} {:o} {}:{} {what}",
            p.display(),
            m.mode(),
            m.uid(),
            m.gid()
        ));
    }
    out.sort();
    out
}

#[test]
fn a_hostile_archive_fails_the_boot_naming_item_and_entry_and_changes_nothing() {
    let s = Scratch::new();
    let store = stores(&s, "hostile").remove(0);
    let store_dir = store.dir.clone().unwrap();
    let cfg = default_kv(&s, &store);
    fs::write(s.path("files/mine.txt"), "mine\n").unwrap();
    fs::create_dir_all(s.path("outside")).unwrap();
    fs::write(s.path("outside/keep.txt"), "outside\n").unwrap();
    let outside = s.path("outside").display().to_string();
    let planted = s.path("outside/planted").display().to_string();
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        // 1. The item's root is a symlink out of the item.
        (
            tar_of(&[("data", b'2', b"", &outside)]),
            "\"data\"",
            "symlink",
        ),
        // 8. `..` and absolute entries.
        (
            tar_of(&[
                ("data", b'5', b"", ""),
                ("data/../../outside/planted", b'0', b"x", ""),
            ]),
            "data/../../outside/planted",
            "`..`",
        ),
        (
            tar_of(&[("data", b'5', b"", ""), (&planted, b'0', b"x", "")]),
            &planted,
            "absolute",
        ),
        (
            tar_of(&[
                ("data", b'5', b"", ""),
                ("data/h", b'1', b"", "../../outside/keep.txt"),
            ]),
            "data/h",
            "hard link",
        ),
    ];
    for (archive, entry, why) in cases {
        let id = forge(
            &store_dir,
            &[
                ("kv", false, b"forged\n".to_vec()),
                ("files", true, archive),
            ],
            |_| {},
        );
        let before = (tree(&s.path("files")), tree(&s.path("outside")));
        let mut p = Pid1::run(&s, &cfg, &[]);
        assert_eq!(p.wait(T), 1, "{}", p.output());
        let out = p.output();
        assert!(
            out.contains(&format!("restoring files to {}", s.path("files").display()))
                && out.contains(&id)
                && out.contains(entry)
                && out.contains(why)
                && out.contains("tampered with or damaged"),
            "{entry}: {out}"
        );
        assert!(!out.contains("kv up"), "a unit started: {out}");
        assert_eq!(
            (tree(&s.path("files")), tree(&s.path("outside"))),
            before,
            "{entry}: the disk changed\n{out}"
        );
        assert!(!s.path("data/kv.txt").exists(), "{out}");
    }
}

#[test]
fn a_manifest_naming_an_item_outside_the_snapshot_is_refused() {
    let s = Scratch::new();
    let store = stores(&s, "badname").remove(0);
    let store_dir = store.dir.clone().unwrap();
    let cfg = default_kv(&s, &store);
    for bad in ["../../x", "/abs"] {
        let id = forge(&store_dir, &[("kv", false, b"forged\n".to_vec())], |m| {
            m["items"][0]["name"] = bad.into()
        });
        let mut p = Pid1::run(&s, &cfg, &[]);
        assert_eq!(p.wait(T), 1, "{}", p.output());
        let out = p.output();
        assert!(
            out.contains(&id) && out.contains(bad) && out.contains("invalid name"),
            "{out}"
        );
        assert!(!out.contains("kv up"), "{out}");
        // `bosun snapshot restore` refuses it too.
        let (code, o, e) = bosun(
            &["snapshot", "-c", cfg.to_str().unwrap(), "restore", &id],
            &[],
        );
        assert_eq!(code, 1, "{o}{e}");
    }
}

#[test]
fn a_damaged_dump_never_reaches_load() {
    for damage in ["flipped", "truncated"] {
        let a = Scratch::new();
        let store = stores(&a, "dumpdamage").remove(0);
        let cfg = default_kv(&a, &store);
        let id = take_snapshot(&a, &cfg, &store, &"row\n".repeat(50_000), "f\n");
        let obj = store
            .dir
            .clone()
            .unwrap()
            .join("snapshots")
            .join(&id)
            .join("kv.zst");
        let mut bytes = fs::read(&obj).unwrap();
        match damage {
            "flipped" => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x10;
            }
            _ => bytes.truncate(bytes.len() - 20),
        }
        fs::write(&obj, bytes).unwrap();

        let b = Scratch::new();
        let marker = b.path("loaded");
        let cfg_b = kv_config(
            &b,
            &store,
            "true",
            &format!("cat > {}", marker.display()),
            "30s",
        );
        let mut p = Pid1::run(&b, &cfg_b, &[]);
        assert_eq!(p.wait(T), 1, "{damage}: {}", p.output());
        let out = p.output();
        assert!(
            out.contains("checksum mismatch")
                && out.contains("'kv'")
                && out.contains("was not run"),
            "{damage}: {out}"
        );
        assert!(
            !marker.exists(),
            "{damage}: load ran on damaged data\n{out}"
        );
        assert!(!out.contains("app up"), "{out}");
        assert_eq!(latest(&cfg_b, &store).as_deref(), Some(id.as_str()));
    }
}

#[test]
fn a_unit_that_swaps_its_data_dir_for_a_symlink_cannot_redirect_backup_or_restore() {
    let s = Scratch::new();
    let store = stores(&s, "swap").remove(0);
    let run = |cmd: &str, args: &[&str]| {
        assert!(
            Command::new(cmd).args(args).status().unwrap().success(),
            "{cmd} {args:?}"
        );
    };
    let dir = s.dir.path().display().to_string();
    run("chmod", &["755", &dir]);
    // The unit owns its data directory and the directory above it.
    fs::create_dir_all(s.path("app/files")).unwrap();
    fs::write(s.path("app/files/note.txt"), "the unit's data\n").unwrap();
    run("chown", &["-R", "nobody:nogroup", &format!("{dir}/app")]);
    // Root's, and root's only.
    fs::create_dir_all(s.path("secret")).unwrap();
    fs::write(s.path("secret/key"), "root only\n").unwrap();
    run("chmod", &["700", &format!("{dir}/secret")]);
    run("chmod", &["600", &format!("{dir}/secret/key")]);
    let secret_before = tree(&s.path("secret"));
    let body = format!(
        r#"
[service.evil]
user = "nobody"
run = "if [ -e {dir}/swap ]; then rm -rf {dir}/app/files && ln -s {dir}/secret {dir}/app/files; fi; echo evil up; exec sleep 100000"
start_secs = "100ms"

[snapshot]
store = "{url}"

[snapshot.paths]
files = "{dir}/app/files"
"#,
        url = store.url
    );
    let cfg = s.config("stop_budget = \"30s\"", &body);
    let mut p = Pid1::run(&s, &cfg, &[]);
    p.wait_for_output("boot complete", T);
    p.signal(SIGTERM);
    assert_eq!(p.wait(T), 0, "{}", p.output());
    let good = latest(&cfg, &store).expect("a first snapshot");

    // The unit replaces its data directory with a link to the root-only one.
    fs::write(s.path("swap"), "").unwrap();
    let mut p = Pid1::run(&s, &cfg, &[]);
    p.wait_for_output("boot complete", T);
    assert!(
        eventually(T, || fs::symlink_metadata(s.path("app/files"))
            .is_ok_and(|m| m.is_symlink())),
        "{}",
        p.output()
    );
    p.signal(SIGTERM);
    assert_eq!(
        p.wait(T),
        1,
        "the backup followed the unit's link\n{}",
        p.output()
    );
    let out = p.output();
    assert!(
        out.contains(&format!("{dir}/app/files is a symlink owned by uid 65534")),
        "{out}"
    );
    assert_eq!(latest(&cfg, &store).as_deref(), Some(good.as_str()));
    let archived: Vec<_> = fs::read_dir(s.path("store/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("files.tar.zst").exists())
        .collect();
    assert_eq!(
        archived,
        vec![s.path("store/snapshots").join(&good)],
        "{out}"
    );

    // A new container on this disk restores the good snapshot: not through the link.
    fs::remove_file(s.path("state/snapshot-state.json")).unwrap();
    let mut p = Pid1::run(&s, &cfg, &[]);
    assert_eq!(p.wait(T), 1, "{}", p.output());
    let out = p.output();
    assert!(
        out.contains("restoring files")
            && out.contains(&format!("{dir}/app/files is a symlink owned by uid 65534")),
        "{out}"
    );
    assert!(!out.contains("evil up"), "{out}");
    assert_eq!(tree(&s.path("secret")), secret_before, "{out}");
    assert!(fs::symlink_metadata(s.path("app/files"))
        .unwrap()
        .is_symlink());
}
