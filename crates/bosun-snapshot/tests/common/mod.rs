//! The store-independent test suite, run against `file://` and against Garage.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bosun_snapshot::{
    gc_incomplete, latest, list_snapshots, prune, set_latest, ItemKind, Retention, S3Options,
    S3Store, SnapshotId, SnapshotKind, SnapshotReader, SnapshotWriter, Store,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

pub const MIB: u64 = 1024 * 1024;

/// Logs to the test output (RUST_LOG=info to see progress lines).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

pub fn roles() -> Vec<String> {
    vec!["all".to_string()]
}

/// Pseudo-random bytes (xorshift), produced lazily; optionally fails or stalls after a
/// number of bytes.
pub struct RandReader {
    state: u64,
    remaining: u64,
    produced: u64,
    fail_after: Option<u64>,
    stall_after: Option<u64>,
    gate: Option<(u64, tokio::sync::oneshot::Receiver<()>)>,
}

impl RandReader {
    pub fn new(seed: u64, len: u64) -> RandReader {
        RandReader {
            state: seed | 1,
            remaining: len,
            produced: 0,
            fail_after: None,
            stall_after: None,
            gate: None,
        }
    }

    pub fn failing_after(mut self, n: u64) -> RandReader {
        self.fail_after = Some(n);
        self
    }

    /// Waits after `n` bytes until `open` fires (or is dropped).
    pub fn gated_after(mut self, n: u64, open: tokio::sync::oneshot::Receiver<()>) -> RandReader {
        self.gate = Some((n, open));
        self
    }

    pub fn stalling_after(mut self, n: u64) -> RandReader {
        self.stall_after = Some(n);
        self
    }

    /// sha256 of what `RandReader::new(seed, len)` yields.
    pub fn digest(seed: u64, len: u64) -> String {
        let mut r = RandReader::new(seed, len);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.fill(&mut buf);
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        hex(&h.finalize())
    }

    /// Byte `p` depends only on the seed and `p` (not on how reads are cut).
    fn fill(&mut self, out: &mut [u8]) -> usize {
        let n = (out.len() as u64).min(self.remaining) as usize;
        let mut word = [0u8; 8];
        for (i, b) in out[..n].iter_mut().enumerate() {
            let p = self.produced + i as u64;
            if i == 0 || p.is_multiple_of(8) {
                word = splitmix(self.state ^ (p / 8)).to_le_bytes();
            }
            *b = word[(p % 8) as usize];
        }
        self.remaining -= n as u64;
        self.produced += n as u64;
        n
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl AsyncRead for RandReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(f) = self.fail_after {
            if self.produced >= f {
                return Poll::Ready(Err(io::Error::other("simulated dump failure")));
            }
        }
        let produced = self.produced;
        if let Some((n, open)) = self.gate.as_mut() {
            if produced >= *n {
                match Pin::new(open).poll(_cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(_) => self.gate = None,
                }
            }
        }
        if let Some(s) = self.stall_after {
            if self.produced >= s {
                return Poll::Pending; // never woken: the caller is cancelled by a timeout
            }
        }
        let mut tmp = vec![0u8; buf.remaining().min(64 * 1024)];
        let n = self.fill(&mut tmp);
        buf.put_slice(&tmp[..n]);
        Poll::Ready(Ok(()))
    }
}

/// Commits one snapshot by `host` with item `db` of `len` pseudo-random bytes
/// (seed 5), and opens it.
pub async fn one_item(store: &Arc<dyn Store>, host: &str, len: u64) -> SnapshotReader {
    let mut w = SnapshotWriter::begin(store.clone(), host, &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_stream("db", RandReader::new(5, len))
        .await
        .expect("put");
    let id = w.id().clone();
    w.commit().await.expect("commit");
    SnapshotReader::open(store.clone(), id).await.expect("open")
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads a stream to its end, returning (length, sha256).
pub async fn digest_stream<R: AsyncRead + Unpin>(mut r: R) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((total, hex(&h.finalize())))
}

// ---------------------------------------------------------------- Garage

/// Garage connection settings from `BOSUN_GARAGE_ENV` (a file of KEY=VALUE lines written by
/// tests/support/garage.sh) or from the environment (`S3ENDPOINTURL`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `S3REGION`, `BOSUN_TEST_BUCKET`).
#[derive(Debug, Clone)]
pub struct Garage {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
}

pub fn garage() -> Option<Garage> {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Never let the credential chain look beyond the environment in tests.
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        if let Ok(path) = std::env::var("BOSUN_GARAGE_ENV") {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    for line in text.lines() {
                        let line = line.trim().trim_start_matches("export ").trim();
                        if line.starts_with('#') {
                            continue;
                        }
                        if let Some((k, v)) = line.split_once('=') {
                            let v = v.trim().trim_matches('"').trim_matches('\'');
                            std::env::set_var(k.trim(), v);
                        }
                    }
                }
                Err(e) => eprintln!("BOSUN_GARAGE_ENV={path}: {e}"),
            }
        }
    });
    let endpoint = std::env::var("S3ENDPOINTURL")
        .ok()
        .filter(|s| !s.is_empty())?;
    std::env::var("AWS_ACCESS_KEY_ID").ok()?;
    std::env::var("AWS_SECRET_ACCESS_KEY").ok()?;
    Some(Garage {
        endpoint,
        region: std::env::var("S3REGION").unwrap_or_else(|_| "garage".into()),
        bucket: std::env::var("BOSUN_TEST_BUCKET").unwrap_or_else(|_| "bosun-test".into()),
    })
}

/// A fresh prefix in the Garage bucket for one test.
pub async fn garage_store(
    g: &Garage,
    test: &str,
    tweak: impl FnOnce(&mut S3Options),
) -> Arc<dyn Store> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut opts = S3Options {
        bucket: g.bucket.clone(),
        prefix: format!("test-{}-{nanos}/{test}", std::process::id()),
        endpoint: Some(g.endpoint.clone()),
        region: g.region.clone(),
        ..S3Options::default()
    };
    tweak(&mut opts);
    Arc::new(S3Store::connect(opts).await.expect("S3 store"))
}

// ---------------------------------------------------------------- the suite

/// A stream of several MiB round-trips, commit moves LATEST, the manifest is right.
pub async fn roundtrip_stream(store: Arc<dyn Store>, len: u64) {
    let before = latest(store.as_ref()).await.expect("latest");
    assert_eq!(before, None, "a fresh store has no LATEST");
    let mut w = SnapshotWriter::begin(store.clone(), "host-a", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    let item = w
        .put_stream("db", RandReader::new(42, len))
        .await
        .expect("put_stream");
    assert_eq!(item.raw_size, len);
    assert_eq!(item.sha256_raw, RandReader::digest(42, len));
    assert_eq!(item.kind, ItemKind::Stream);
    let small = w
        .put_stream("small", &b"hello world"[..])
        .await
        .expect("small");
    assert_eq!(small.raw_size, 11);
    let id = w.id().clone();
    let manifest = w.commit().await.expect("commit");
    assert_eq!(manifest.items.len(), 2);
    assert_eq!(manifest.host, "host-a");
    assert_eq!(manifest.roles, roles());
    assert_eq!(manifest.id, id.to_string());

    assert_eq!(
        latest(store.as_ref()).await.expect("latest"),
        Some(id.clone())
    );
    let reader = SnapshotReader::open_latest(store.clone())
        .await
        .expect("open")
        .expect("some");
    assert_eq!(reader.id(), &id);
    let (n, digest) = digest_stream(reader.item_stream("db").await.expect("stream"))
        .await
        .expect("read back");
    assert_eq!(n, len);
    assert_eq!(digest, RandReader::digest(42, len));
    let mut out = Vec::new();
    reader
        .item_stream("small")
        .await
        .expect("small")
        .read_to_end(&mut out)
        .await
        .expect("read small");
    assert_eq!(out, b"hello world");
    let err = reader
        .item_stream("absent")
        .await
        .expect_err("no such item");
    assert!(err.is_not_found(), "{err}");

    let listed = list_snapshots(store.as_ref()).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].complete && listed[0].latest);
    assert_eq!(listed[0].host, "host-a");
    assert!(listed[0].size >= item.stored_size);
}

/// Builds a tree with the kinds of entries a backup meets.
pub fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(root.join("empty-dir")).expect("mkdir");
    std::fs::write(root.join("a.txt"), b"alpha\n").expect("write");
    std::fs::write(root.join("empty"), b"").expect("write");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("sub/big.bin"), &big).expect("write");
    std::fs::write(root.join("sub/deeper/secret"), b"s3cr3t").expect("write");
    std::fs::set_permissions(
        root.join("sub/deeper/secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    std::fs::set_permissions(root.join("a.txt"), std::fs::Permissions::from_mode(0o751))
        .expect("chmod");
    let long = "n".repeat(120);
    std::fs::write(root.join("sub").join(&long), b"long name").expect("write");
    std::os::unix::fs::symlink("../a.txt", root.join("sub/link")).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).expect("symlink");
    let fifo = root.join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("cstring");
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    let old = filetime_of(2_000_000_000);
    set_mtime(&root.join("sub/big.bin"), old);
}

fn filetime_of(secs: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    }
}

fn set_mtime(p: &Path, t: libc::timespec) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("cstring");
    let times = [t, t];
    // SAFETY: valid path and two timespecs.
    unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
}

/// (type, mode, size, content sha or link target, mtime for files) per relative path.
pub fn describe_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).expect("readdir") {
            let e = e.expect("entry");
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).expect("meta");
            let rel = p.strip_prefix(root).expect("rel").to_path_buf();
            let ft = m.file_type();
            let desc = if ft.is_symlink() {
                format!(
                    "link -> {}",
                    std::fs::read_link(&p).expect("readlink").display()
                )
            } else if ft.is_dir() {
                walk(root, &p, out);
                format!("dir {:o}", m.mode() & 0o7777)
            } else if ft.is_file() {
                let data = std::fs::read(&p).expect("read");
                format!(
                    "file {:o} {} {} mtime {}",
                    m.mode() & 0o7777,
                    data.len(),
                    hex(&Sha256::digest(&data)),
                    m.mtime()
                )
            } else {
                "special".to_string()
            };
            out.insert(rel, desc);
        }
    }
    walk(root, root, &mut out);
    out
}

/// A directory tree and a single file round-trip; restoring over existing data replaces it.
pub async fn roundtrip_tree(store: Arc<dyn Store>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("files");
    make_tree(&src);
    let config = tmp.path().join("config.yml");
    std::fs::write(&config, b"debug: true\n").expect("write");

    let mut w = SnapshotWriter::begin(store.clone(), "host-t", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    let item = w.put_path("files", &src).await.expect("put_path");
    assert_eq!(item.kind, ItemKind::Tar);
    w.put_path("config", &config).await.expect("put file");
    let err = w
        .put_path("missing", &tmp.path().join("nope"))
        .await
        .expect_err("missing path");
    assert!(err.to_string().contains("nope"), "{err}");
    w.commit().await.expect("commit");

    let mut expected = describe_tree(&src);
    expected.remove(Path::new("fifo")); // skipped with a warning

    let reader = SnapshotReader::open_latest(store.clone())
        .await
        .expect("open")
        .expect("latest");
    assert!(reader.manifest().item("missing").is_none());

    // Into a fresh place.
    let dest = tmp.path().join("restored/files");
    let outcome = reader.restore_path("files", &dest).await.expect("restore");
    assert!(!outcome.replaced);
    assert_eq!(describe_tree(&dest), expected);
    let dir_mode = std::fs::metadata(&dest).expect("meta").mode() & 0o7777;
    assert_eq!(
        dir_mode,
        std::fs::metadata(&src).expect("meta").mode() & 0o7777
    );

    // Over existing data: stale files disappear, changed files are replaced.
    std::fs::write(dest.join("stale"), b"old").expect("write");
    std::fs::write(dest.join("a.txt"), b"changed").expect("write");
    let outcome = reader
        .restore_path("files", &dest)
        .await
        .expect("restore again");
    assert!(outcome.replaced);
    assert_eq!(describe_tree(&dest), expected);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("restored"))
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary siblings left: {leftovers:?}"
    );

    // A single file.
    let config_dest = tmp.path().join("restored/config.yml");
    std::fs::write(&config_dest, b"old config").expect("write");
    reader
        .restore_path("config", &config_dest)
        .await
        .expect("restore file");
    assert_eq!(std::fs::read(&config_dest).expect("read"), b"debug: true\n");

    // A stream item cannot be restored as a path.
    let err = reader
        .restore_path("nope", &dest)
        .await
        .expect_err("absent");
    assert!(err.is_not_found(), "{err}");
}

/// Commits snapshot A and returns its id.
pub async fn commit_small(
    store: &Arc<dyn Store>,
    host: &str,
    content: &'static [u8],
) -> SnapshotId {
    let mut w = SnapshotWriter::begin(store.clone(), host, &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_stream("data", content).await.expect("put");
    let id = w.id().clone();
    w.commit().await.expect("commit");
    id
}

pub async fn read_item(store: &Arc<dyn Store>, id: &SnapshotId, item: &str) -> Vec<u8> {
    let r = SnapshotReader::open(store.clone(), id.clone())
        .await
        .expect("open");
    let mut out = Vec::new();
    r.item_stream(item)
        .await
        .expect("stream")
        .read_to_end(&mut out)
        .await
        .expect("read");
    out
}

/// A writer that fails mid-item, is aborted, or is dropped mid-upload leaves LATEST and
/// its snapshot intact; gc_incomplete cleans up what it left.
pub async fn uncommitted_keeps_latest(store: Arc<dyn Store>, big: u64) {
    let a = commit_small(&store, "host-u", b"version A").await;

    // 1. The dump fails mid-item; then the writer is dropped.
    let mut w = SnapshotWriter::begin(store.clone(), "host-u", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    let err = w
        .put_stream("db", RandReader::new(7, big).failing_after(big / 2))
        .await
        .expect_err("dump fails");
    assert!(err.to_string().contains("simulated dump failure"), "{err}");
    assert!(err.to_string().contains("'db'"), "names the item: {err}");
    drop(w);
    assert_eq!(
        latest(store.as_ref()).await.expect("latest"),
        Some(a.clone())
    );

    // 2. One complete item, then abort.
    let mut w = SnapshotWriter::begin(store.clone(), "host-u", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_stream("data", &b"version B"[..]).await.expect("put");
    let b = w.id().clone();
    w.abort();
    assert_eq!(
        latest(store.as_ref()).await.expect("latest"),
        Some(a.clone())
    );
    assert_eq!(read_item(&store, &a, "data").await, b"version A");
    assert!(SnapshotReader::open(store.clone(), b.clone())
        .await
        .expect_err("incomplete")
        .is_not_found());

    // 3. The upload is cancelled mid-stream (the future is dropped).
    let mut w = SnapshotWriter::begin(store.clone(), "host-u", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    let cancelled = tokio::time::timeout(
        Duration::from_secs(2),
        w.put_stream("db", RandReader::new(9, big).stalling_after(big / 2)),
    )
    .await;
    assert!(cancelled.is_err(), "the stalled upload is cancelled");
    drop(w);
    assert_eq!(
        latest(store.as_ref()).await.expect("latest"),
        Some(a.clone())
    );
    assert_eq!(read_item(&store, &a, "data").await, b"version A");

    let listed = list_snapshots(store.as_ref()).await.expect("list");
    assert!(
        listed.iter().any(|s| s.id == b && !s.complete),
        "{listed:?}"
    );

    // A newer complete snapshot makes the incomplete ones garbage.
    let c = commit_small(&store, "host-u", b"version C").await;
    let kept = gc_incomplete(store.as_ref(), Duration::from_secs(3600))
        .await
        .expect("gc");
    assert!(kept.is_empty(), "too young to collect: {kept:?}");
    let deleted = gc_incomplete(store.as_ref(), Duration::ZERO)
        .await
        .expect("gc");
    assert!(deleted.contains(&b), "{deleted:?}");
    let listed = list_snapshots(store.as_ref()).await.expect("list");
    assert!(listed.iter().all(|s| s.complete), "{listed:?}");
    assert_eq!(
        latest(store.as_ref()).await.expect("latest"),
        Some(c.clone())
    );

    // set_latest goes back to A; refuses an unknown snapshot.
    set_latest(store.as_ref(), &a).await.expect("set_latest");
    assert_eq!(
        latest(store.as_ref()).await.expect("latest"),
        Some(a.clone())
    );
    let err = set_latest(store.as_ref(), &b)
        .await
        .expect_err("incomplete");
    assert!(err.is_not_found(), "{err}");
}

/// A damaged stored object fails reading with a checksum error naming item and snapshot;
/// a restore from it leaves the destination untouched.
pub async fn corruption_detected(store: Arc<dyn Store>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    make_tree(&src);
    let mut w = SnapshotWriter::begin(store.clone(), "host-c", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_stream("db", RandReader::new(3, 2 * MIB))
        .await
        .expect("put");
    w.put_path("files", &src).await.expect("put path");
    let id = w.id().clone();
    let manifest = w.commit().await.expect("commit");

    // Flip one byte in the middle of each object.
    for item in &manifest.items {
        let key = id.key(&item.object);
        let mut data = store.get_small(&key).await.expect("get");
        let mid = data.len() / 2;
        data[mid] ^= 0x55;
        store.put_small(&key, &data).await.expect("put corrupted");
    }
    let reader = SnapshotReader::open(store.clone(), id.clone())
        .await
        .expect("open");
    let err = digest_stream(reader.item_stream("db").await.expect("stream"))
        .await
        .expect_err("corruption must be detected");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("checksum mismatch") && msg.contains("'db'"),
        "{msg}"
    );
    assert!(msg.contains(&id.to_string()), "{msg}");

    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::write(dest.join("precious"), b"keep me").expect("write");
    let before = describe_tree(&dest);
    let err = reader
        .restore_path("files", &dest)
        .await
        .expect_err("corrupted tar");
    assert!(
        err.is_integrity() || err.to_string().contains("checksum"),
        "{err}"
    );
    assert!(err.to_string().contains("files"), "{err}");
    assert_eq!(describe_tree(&dest), before, "destination unchanged");
    let siblings: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        siblings.iter().all(|s| !s.contains("bosun")),
        "{siblings:?}"
    );

    // A truncated object.
    let key = id.key("db.zst");
    let data = store.get_small(&key).await.expect("get");
    store
        .put_small(&key, &data[..data.len() / 3])
        .await
        .expect("truncate");
    let err = digest_stream(reader.item_stream("db").await.expect("stream"))
        .await
        .expect_err("truncation must be detected");
    assert!(err.to_string().contains("'db'"), "{err}");
}

/// Retention goes by the date in the name: keep_last for the regular series, restic's
/// keep_daily/keep_monthly for the daily one, LATEST never removed, incomplete debris
/// removed, a dry run removes nothing.
pub async fn retention_by_name(store: Arc<dyn Store>) {
    let day = |y: i64, m: u32, d: u32, h: u32| -> SystemTime {
        // Days from civil (same algorithm as the crate, kept independent here).
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2.rem_euclid(400);
        let mp = (i64::from(m) + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        UNIX_EPOCH + Duration::from_secs((days * 86_400 + i64::from(h) * 3600) as u64)
    };
    let put = |kind: SnapshotKind, at: SystemTime, commit: bool| {
        let store = store.clone();
        async move {
            let mut w = SnapshotWriter::begin_at(store, "host-d", &roles(), kind, at)
                .await
                .expect("begin");
            w.put_stream("data", &b"kept?"[..]).await.expect("put");
            let id = w.id().clone();
            if commit {
                w.commit().await.expect("commit");
            } else {
                w.abort();
            }
            id
        }
    };
    let mut regular = Vec::new();
    for d in 1..=9 {
        regular.push(put(SnapshotKind::Regular, day(2026, 1, d, 12), true).await);
    }
    // A stop killed half-way, older than the newest complete snapshot.
    let debris = put(SnapshotKind::Regular, day(2026, 1, 8, 18), false).await;
    let mut ids = Vec::new();
    for (m, d) in [(2, 20), (3, 5), (3, 7), (3, 19), (3, 20)] {
        ids.push(put(SnapshotKind::Daily, day(2026, m, d, 6), true).await);
    }
    assert!(
        ids[0].to_string().starts_with("daily/20260220T060000Z-"),
        "{}",
        ids[0]
    );
    // Dailies do not move LATEST.
    assert_eq!(
        latest(store.as_ref()).await.expect("latest"),
        Some(regular[8].clone())
    );
    // An old restore point stays whatever keep_last says.
    set_latest(store.as_ref(), &regular[0]).await.expect("set");
    let policy = Retention {
        keep_last: 3,
        keep_daily: 2,
        keep_weekly: 0,
        keep_monthly: 2,
    };
    let before = list_snapshots(store.as_ref()).await.expect("list");
    let dry = prune(store.as_ref(), &policy, &[], Duration::ZERO, true)
        .await
        .expect("dry run");
    assert_eq!(list_snapshots(store.as_ref()).await.expect("list"), before);
    let plan = prune(store.as_ref(), &policy, &[], Duration::ZERO, false)
        .await
        .expect("prune");
    assert_eq!(plan, dry, "the dry run shows what goes");
    let removed: Vec<SnapshotId> = plan.remove.iter().map(|(id, _)| id.clone()).collect();
    let mut expected = regular[1..6].to_vec();
    expected.push(debris.clone());
    expected.extend([ids[1].clone(), ids[2].clone()]);
    expected.sort();
    assert_eq!(removed, expected);
    let left: Vec<SnapshotId> = list_snapshots(store.as_ref())
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut want = vec![regular[0].clone()];
    want.extend(regular[6..].iter().cloned());
    want.extend([ids[0].clone(), ids[3].clone(), ids[4].clone()]);
    want.sort();
    assert_eq!(left, want);

    // A daily made LATEST for a restore is never pruned.
    set_latest(store.as_ref(), &ids[0])
        .await
        .expect("set_latest daily");
    let policy = Retention {
        keep_daily: 1,
        keep_monthly: 0,
        ..policy
    };
    let plan = prune(store.as_ref(), &policy, &[], Duration::ZERO, false)
        .await
        .expect("prune");
    let removed: Vec<SnapshotId> = plan.remove.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(removed, vec![regular[0].clone(), ids[3].clone()]);
    assert_eq!(read_item(&store, &ids[0], "data").await, b"kept?");
}

/// A LATEST that is garbage, or names a snapshot without manifest, is an error that a
/// caller cannot take for "no snapshot".
pub async fn damaged_latest(store: Arc<dyn Store>) {
    store
        .put_small("LATEST", b"20260101T000000Z-ghost\n")
        .await
        .expect("put");
    let err = SnapshotReader::open_latest(store.clone())
        .await
        .expect_err("manifest missing");
    assert!(!err.is_not_found(), "{err}");
    assert!(err.to_string().contains("20260101T000000Z-ghost"), "{err}");
    store.put_small("LATEST", b"garbage").await.expect("put");
    let err = latest(store.as_ref()).await.expect_err("garbage");
    assert!(!err.is_not_found(), "{err}");
}

/// An age key pair for tests: the identity file's path and the public key.
pub fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("# test key\n{}\n", id.to_string().expose_secret()),
    )
    .expect("write identity");
    (path, id.to_public().to_string())
}

/// Encrypted snapshots: round trip (stream and tree), a missing identity and a wrong one
/// fail at once and change nothing, key rotation keeps old snapshots readable with
/// an identity file that holds both keys, damaged ciphertext is caught.
pub async fn encrypted_roundtrip(store: Arc<dyn Store>, big: u64) {
    use bosun_snapshot::{Identities, Recipients};
    let tmp = tempfile::tempdir().expect("tempdir");
    let (old_file, old_pub) = age_key(tmp.path(), "old.key");
    let (new_file, new_pub) = age_key(tmp.path(), "new.key");
    let both = tmp.path().join("both.key");
    std::fs::write(
        &both,
        std::fs::read_to_string(&old_file).expect("read")
            + &std::fs::read_to_string(&new_file).expect("read"),
    )
    .expect("write");
    let src = tmp.path().join("files");
    make_tree(&src);

    let mut w = SnapshotWriter::begin(store.clone(), "host-e", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.encrypt_to(Recipients::load(std::slice::from_ref(&old_pub)).expect("recipients"));
    w.put_stream("db", RandReader::new(11, big))
        .await
        .expect("put");
    w.put_path("files", &src).await.expect("put path");
    let old = w.id().clone();
    let manifest = w.commit().await.expect("commit");
    assert_eq!(manifest.format, 2);
    for item in &manifest.items {
        let enc = item.encryption.as_ref().expect("encrypted");
        assert_eq!(enc.recipients, vec![old_pub.clone()]);
        assert!(item.object.ends_with(".zst.age"), "{}", item.object);
        let stored = store.get_small(&old.key(&item.object)).await.expect("get");
        assert!(
            stored.starts_with(b"age-encryption.org/v1\n"),
            "an age file"
        );
        assert!(
            !stored.windows(6).any(|w| w == b"alpha\n"),
            "no plaintext in the store"
        );
    }
    let json = store
        .get_small(&old.manifest_key())
        .await
        .expect("manifest");
    assert!(!String::from_utf8_lossy(&json).contains("AGE-SECRET-KEY"));

    // Without identity: fails at once, naming identity_file.
    let bare = SnapshotReader::open(store.clone(), old.clone())
        .await
        .expect("open");
    let err = bare.check_keys().expect_err("no identity");
    assert!(err.to_string().contains("identity_file"), "{err}");
    let err = bare.item_stream("db").await.expect_err("no identity");
    assert!(err.to_string().contains("identity_file"), "{err}");
    // The stored bytes can still be checked without a key.
    assert_eq!(
        bare.verify_stored("db").await.expect("ciphertext checks"),
        manifest.item("db").expect("db").stored_size
    );

    // The wrong identity: named, nothing on disk changed.
    let wrong = bare
        .clone()
        .with_identities(Some(Identities::load(&new_file).expect("load")));
    let err = wrong.check_keys().expect_err("wrong key");
    let msg = err.to_string();
    assert!(
        msg.contains(&new_file.display().to_string()) && msg.contains(&old_pub),
        "{msg}"
    );
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::write(dest.join("precious"), b"keep me").expect("write");
    let before = describe_tree(&dest);
    wrong
        .restore_path("files", &dest)
        .await
        .expect_err("wrong key");
    assert_eq!(describe_tree(&dest), before, "destination unchanged");

    // The right one.
    let right = bare
        .clone()
        .with_identities(Some(Identities::load(&old_file).expect("load")));
    right.check_keys().expect("keys");
    let (n, digest) = digest_stream(right.item_stream("db").await.expect("stream"))
        .await
        .expect("read");
    assert_eq!((n, digest), (big, RandReader::digest(11, big)));
    right.restore_path("files", &dest).await.expect("restore");
    let mut want = describe_tree(&src);
    want.remove(Path::new("fifo")); // never archived
    assert_eq!(describe_tree(&dest), want);

    // Rotation: new snapshots to the new key; an identity file with both reads both.
    let mut w = SnapshotWriter::begin(store.clone(), "host-e", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.encrypt_to(Recipients::load(std::slice::from_ref(&new_pub)).expect("recipients"));
    w.put_stream("db", &b"after rotation"[..])
        .await
        .expect("put");
    let new = w.id().clone();
    w.commit().await.expect("commit");
    let ids = Identities::load(&both).expect("both");
    for (id, want) in [(&old, big), (&new, 14)] {
        let r = SnapshotReader::open(store.clone(), id.clone())
            .await
            .expect("open")
            .with_identities(Some(ids.clone()));
        let (n, _) = digest_stream(r.item_stream("db").await.expect("stream"))
            .await
            .expect("read");
        assert_eq!(n, want);
    }

    // Damaged ciphertext (a flipped byte; a truncated object) is an integrity error.
    let key = old.key("db.zst.age");
    let data = store.get_small(&key).await.expect("get");
    let mut flipped = data.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    store.put_small(&key, &flipped).await.expect("damage");
    let err = digest_stream(right.item_stream("db").await.expect("stream"))
        .await
        .expect_err("damage detected");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("'db'"), "{err}");
    let err = right
        .verify_stored("db")
        .await
        .expect_err("damage detected");
    assert!(err.is_integrity(), "{err}");
    store
        .put_small(&key, &data[..data.len() - 100])
        .await
        .expect("truncate");
    let err = digest_stream(right.item_stream("db").await.expect("stream"))
        .await
        .expect_err("truncation detected");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

/// `verify_snapshot` reads every object: ok on an intact snapshot (recorded beside the
/// manifest), damage named by object for a flipped byte and a truncated object,
/// ciphertext-only checks for an encrypted snapshot without its identity.
pub async fn verify_names_damage(store: Arc<dyn Store>) {
    use bosun_snapshot::{last_verified, verify_snapshot, Depth, Recipients};
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("files");
    make_tree(&src);
    let mut w = SnapshotWriter::begin(store.clone(), "host-v", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_stream("db", RandReader::new(5, 2 * MIB))
        .await
        .expect("put");
    w.put_path("files", &src).await.expect("put path");
    let id = w.id().clone();
    w.commit().await.expect("commit");
    assert_eq!(
        last_verified(store.as_ref(), &id).await.expect("read"),
        None
    );
    let mut ticks = 0;
    let v = verify_snapshot(store.clone(), &id, None, "verifier", &mut |_| ticks += 1)
        .await
        .expect("verify");
    assert!(v.ok && v.depth == Depth::Full, "{v:?}");
    assert_eq!(v.items.len(), 2);
    assert!(ticks > 0, "progress was reported");
    let rec = last_verified(store.as_ref(), &id)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(rec, v);
    // The record does not make the snapshot look different.
    let listed = list_snapshots(store.as_ref()).await.expect("list");
    assert!(listed.iter().any(|s| s.id == id && s.complete));
    SnapshotReader::open(store.clone(), id.clone())
        .await
        .expect("manifest intact");

    // A flipped byte.
    let key = id.key("db.zst");
    let data = store.get_small(&key).await.expect("get");
    let mut bad = data.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x20;
    store.put_small(&key, &bad).await.expect("damage");
    let v = verify_snapshot(store.clone(), &id, None, "verifier", &mut |_| {})
        .await
        .expect("verify");
    assert!(!v.ok, "{v:?}");
    let damage = v.damage.clone().expect("damage");
    assert!(
        damage.contains(&key) && damage.contains("checksum"),
        "{damage}"
    );
    assert!(
        !last_verified(store.as_ref(), &id)
            .await
            .expect("read")
            .expect("rec")
            .ok
    );
    store.put_small(&key, &data).await.expect("repair");
    // A truncated object.
    let key = id.key("files.tar.zst");
    let data = store.get_small(&key).await.expect("get");
    store
        .put_small(&key, &data[..data.len() - 1])
        .await
        .expect("truncate");
    let v = verify_snapshot(store.clone(), &id, None, "verifier", &mut |_| {})
        .await
        .expect("verify");
    assert!(
        v.damage.as_deref().is_some_and(|d| d.contains(&key)),
        "{v:?}"
    );
    // A missing object.
    store.delete(&key).await.expect("delete");
    let v = verify_snapshot(store.clone(), &id, None, "verifier", &mut |_| {})
        .await
        .expect("verify");
    assert!(
        v.damage.as_deref().is_some_and(|d| d.contains(&key)),
        "{v:?}"
    );

    // Encrypted, no identity: only the ciphertext is checked, and it says so.
    let (_key, public) = age_key(tmp.path(), "k");
    let mut w = SnapshotWriter::begin(store.clone(), "host-v", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.encrypt_to(Recipients::load(&[public]).expect("recipients"));
    w.put_stream("db", &b"secret rows"[..]).await.expect("put");
    let enc = w.id().clone();
    w.commit().await.expect("commit");
    let v = verify_snapshot(store.clone(), &enc, None, "verifier", &mut |_| {})
        .await
        .expect("verify");
    assert!(v.ok && v.depth == Depth::Ciphertext, "{v:?}");
}
