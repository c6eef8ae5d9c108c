//! Staging: a restore's verifying pass keeps the stored bytes in `state_dir/staging`,
//! the load's pass reads them from there with the same checks; no room, a failed write
//! or a changed staged file never lets a damaged byte through, and nothing is left
//! behind.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bosun_snapshot::lifecycle::{CmdFuture, DataCommands, Report, Settings};
use bosun_snapshot::{
    FileStore, ItemReader, Lifecycle, ObjectInfo, ObjectReader, Retention, SnapshotWriter, Staging,
    Store, STAGING_DIR,
};
use common::*;
use tokio::io::AsyncRead;

/// A directory store that says it is not local, as an S3 store does: the lifecycle
/// stages its items.
#[derive(Debug)]
struct NotLocal(FileStore);

#[async_trait]
impl Store for NotLocal {
    fn describe(&self) -> String {
        self.0.describe()
    }
    async fn put(
        &self,
        key: &str,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> bosun_snapshot::Result<u64> {
        self.0.put(key, body).await
    }
    async fn get(&self, key: &str) -> bosun_snapshot::Result<ObjectReader> {
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> bosun_snapshot::Result<Vec<ObjectInfo>> {
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> bosun_snapshot::Result<()> {
        self.0.delete(key).await
    }
    async fn put_small(&self, key: &str, data: &[u8]) -> bosun_snapshot::Result<()> {
        self.0.put_small(key, data).await
    }
    async fn get_small(&self, key: &str) -> bosun_snapshot::Result<Vec<u8>> {
        self.0.get_small(key).await
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.expect("entry").path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Open descriptors of this process on files under `dir` (deleted ones included).
fn open_fds_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(e.path()) {
            if target.starts_with(dir) {
                out.push(target.display().to_string());
            }
        }
    }
    out
}

/// The load: digests what it is fed, and notes the staging files it has open then.
struct Loader {
    staging: PathBuf,
    fed: Mutex<Option<(u64, String)>>,
    open_during_load: Mutex<Vec<String>>,
}

impl DataCommands for Loader {
    fn dump<'a>(&'a self, _: &'a str, _: &'a mut SnapshotWriter) -> CmdFuture<'a, u64> {
        Box::pin(async { Err("no dump in this test".into()) })
    }
    fn load<'a>(&'a self, _unit: &'a str, item: ItemReader) -> CmdFuture<'a, u64> {
        Box::pin(async move {
            *self.open_during_load.lock().expect("poisoned") = open_fds_under(&self.staging);
            let (n, digest) = digest_stream(item).await?;
            *self.fed.lock().expect("poisoned") = Some((n, digest));
            Ok(n)
        })
    }
    fn is_ready(&self, _: &str) -> bool {
        true
    }
    fn boot_step(&self, _: String) {}
    fn unit_backup(&self, _: &str, _: Report) {}
    fn snapshot(&self, _: Report) {}
}

fn settings(state_dir: &Path) -> Settings {
    Settings {
        store_url: "file:///test".into(),
        host: "host-s".into(),
        roles: roles(),
        paths: Vec::new(),
        data_units: vec![("db".into(), Duration::from_secs(120))],
        state_dir: state_dir.to_path_buf(),
        retention: Retention::default(),
        recipients: None,
        identities: None,
        verify_after_commit: false,
        writer_stale_after: Duration::from_secs(600),
        stop_budget: Duration::from_secs(60),
    }
}

/// (1) and (4): a boot removes stale staging files; the load's data comes from the
/// staged copy (an open, already unlinked file in `state_dir/staging` while it runs),
/// byte for byte; afterwards the staging directory is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_from_a_remote_store_loads_from_its_staged_copy() {
    init_tracing();
    let store_dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(NotLocal(FileStore::new(store_dir.path())));
    let len = 6 * MIB + 17;
    one_item(&store, "host-s", len).await;
    let staging = state.path().join(STAGING_DIR);
    std::fs::create_dir(&staging).expect("mkdir staging");
    std::fs::write(
        staging.join("stale.db.1-0.stored"),
        b"left by a killed restore",
    )
    .expect("stale file");
    std::fs::create_dir(staging.join("stale-dir")).expect("stale dir");

    let loader = Arc::new(Loader {
        staging: staging.clone(),
        fed: Mutex::new(None),
        open_during_load: Mutex::new(Vec::new()),
    });
    let life = Lifecycle::new(store, settings(state.path()), loader.clone());
    life.boot().await.expect("boot");
    assert_eq!(
        entries(&staging),
        Vec::<PathBuf>::new(),
        "stale staging files are removed at boot"
    );
    life.load("db").await.expect("load");

    assert_eq!(
        loader.fed.lock().expect("poisoned").clone(),
        Some((len, RandReader::digest(5, len))),
        "the load got the item's bytes"
    );
    let open = loader.open_during_load.lock().expect("poisoned").clone();
    assert!(
        open.len() == 1 && open[0].ends_with("(deleted)") && open[0].contains(".db."),
        "the load reads a staged copy, whose name is gone once opened: {open:?}"
    );
    assert_eq!(
        entries(&staging),
        Vec::<PathBuf>::new(),
        "nothing left staged"
    );
    assert_eq!(
        open_fds_under(&staging),
        Vec::<String>::new(),
        "and nothing open"
    );
}

/// A directory store is not staged: reading its file twice costs what a copy would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_from_a_directory_store_reads_it_twice() {
    init_tracing();
    let store_dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(store_dir.path()));
    let len = 2 * MIB;
    one_item(&store, "host-s", len).await;
    let staging = state.path().join(STAGING_DIR);
    let loader = Arc::new(Loader {
        staging: staging.clone(),
        fed: Mutex::new(None),
        open_during_load: Mutex::new(Vec::new()),
    });
    let life = Lifecycle::new(store, settings(state.path()), loader.clone());
    life.boot().await.expect("boot");
    life.load("db").await.expect("load");
    assert_eq!(
        loader.fed.lock().expect("poisoned").clone(),
        Some((len, RandReader::digest(5, len)))
    );
    assert_eq!(
        loader.open_during_load.lock().expect("poisoned").clone(),
        Vec::<String>::new()
    );
    assert_eq!(entries(&staging), Vec::<PathBuf>::new());
}

/// (2) A staged copy changed between the passes fails the second pass with an
/// integrity error (a load never ends successfully on it), and is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_copy_changed_between_the_passes_fails_the_second() {
    init_tracing();
    let store_dir = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(store_dir.path()));
    let reader = one_item(&store, "host-s", 3 * MIB).await;
    let staging = Staging::new(state.path().join(STAGING_DIR));

    for (what, damage) in [
        ("a flipped bit", Damage::Flip),
        ("a truncation", Damage::Truncate),
    ] {
        let verified = reader
            .verify_item_staged("db", Some(&staging))
            .await
            .expect("first pass");
        let path = verified.staged_path().expect("staged").to_path_buf();
        let stored = reader.manifest().item("db").expect("db").stored_size;
        assert_eq!(std::fs::metadata(&path).expect("staged").len(), stored);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "staged files are the owner's only");
        assert_eq!(mode(&staging.dir), 0o700);
        damage.apply(&path);
        let stream = reader
            .item_stream_verified(verified)
            .await
            .expect("second pass opens");
        assert_eq!(entries(&staging.dir), Vec::<PathBuf>::new(), "{what}");
        let err = digest_stream(stream).await.expect_err(what);
        let integrity = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<bosun_snapshot::IntegrityError>());
        assert!(integrity.is_some(), "{what}: {err}");
        assert!(err.to_string().contains("'db'"), "{what}: {err}");
        assert_eq!(open_fds_under(&staging.dir), Vec::<String>::new(), "{what}");
    }
}

enum Damage {
    Flip,
    Truncate,
}

impl Damage {
    /// Changes the file in place (the same inode the second pass holds open).
    fn apply(&self, path: &Path) {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open staged");
        let len = f.metadata().expect("len").len();
        match self {
            Damage::Flip => {
                let mut b = [0u8; 1];
                f.seek(SeekFrom::Start(len / 2)).expect("seek");
                f.read_exact(&mut b).expect("read");
                b[0] ^= 0x01;
                f.seek(SeekFrom::Start(len / 2)).expect("seek");
                f.write_all(&b).expect("write");
            }
            Damage::Truncate => f.set_len(len - 100).expect("truncate"),
        }
    }
}

/// A 1 MiB tmpfs, unmounted on drop; `None` when mounting is not allowed (not root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// (3) No room for the staged copy: checked first (skipped up front), or a write that
/// fails on a full disk (ENOSPC) half-way. Either way the restore reads the store, gets
/// the right bytes, and leaves the staging filesystem empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_room_to_stage_reads_the_store_and_leaves_nothing() {
    init_tracing();
    let state = tempfile::tempdir().expect("tempdir");
    let Some(tmpfs) = Tmpfs::mount(&state.path().join("small")) else {
        eprintln!("skipped: cannot mount a tmpfs (not root)");
        return;
    };
    let checked = Staging::new(tmpfs.0.join(STAGING_DIR));
    let unchecked = Staging {
        skip_space_check: true,
        ..checked.clone()
    };
    // 512 KiB would fit in the tmpfs, but not with room for the load and the margin.
    let cases = [
        ("checked first", 512 * 1024, checked),
        ("ENOSPC half-way", 3 * MIB, unchecked),
    ];
    for (what, len, staging) in cases {
        let store_dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(FileStore::new(store_dir.path()));
        let reader = one_item(&store, "host-s", len).await;
        let verified = reader
            .verify_item_staged("db", Some(&staging))
            .await
            .unwrap_or_else(|e| panic!("{what}: staging never fails the first pass: {e}"));
        assert_eq!(verified.staged_path(), None, "{what}");
        assert_eq!(entries(&staging.dir), Vec::<PathBuf>::new(), "{what}");
        let stream = reader
            .item_stream_verified(verified)
            .await
            .expect("second pass");
        assert_eq!(
            digest_stream(stream).await.expect(what),
            (len, RandReader::digest(5, len)),
            "{what}"
        );
        let st = df_free(&tmpfs.0);
        assert_eq!(
            st.0, st.1,
            "{what}: the tmpfs is empty again (free == total)"
        );
    }
    drop(tmpfs);
}

/// (free, total) bytes of the filesystem at `dir`, from `df` (no extra dependency).
fn df_free(dir: &Path) -> (u64, u64) {
    let out = std::process::Command::new("df")
        .args(["--output=avail,size", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).expect("df line");
    let mut it = line
        .split_whitespace()
        .map(|v| v.parse::<u64>().expect("number"));
    (it.next().expect("avail"), it.next().expect("size"))
}
