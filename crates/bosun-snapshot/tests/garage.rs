//! The suite against a real S3 server (Garage). Needs `BOSUN_GARAGE_ENV=DIR/env` (written
//! by `tests/support/garage.sh start DIR`) or `S3ENDPOINTURL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` (and optionally `S3REGION`, `BOSUN_TEST_BUCKET`) in the
//! environment; without them every test prints "skipped: no Garage" and passes.

mod common;

use std::sync::Arc;

use bosun_snapshot::{latest, open_store, SnapshotReader, Store};
use common::*;

macro_rules! garage_or_skip {
    ($name:expr) => {{
        init_tracing();
        match garage() {
            Some(g) => g,
            None => {
                eprintln!(
                    "skipped: no Garage (set BOSUN_GARAGE_ENV=DIR/env after tests/support/garage.sh start DIR)"
                );
                return;
            }
        }
    }};
}

#[tokio::test]
async fn garage_roundtrip_stream() {
    let g = garage_or_skip!("roundtrip_stream");
    // 5 MiB parts so that a 6 MiB stream already goes through the multipart path.
    let s = garage_store(&g, "roundtrip-stream", |o| o.part_size = 5 * MIB as usize).await;
    roundtrip_stream(s, 6 * MIB + 123).await;
}

#[tokio::test]
async fn garage_roundtrip_tree() {
    let g = garage_or_skip!("roundtrip_tree");
    roundtrip_tree(garage_store(&g, "roundtrip-tree", |_| {}).await).await;
}

#[tokio::test]
async fn garage_uncommitted_keeps_latest() {
    let g = garage_or_skip!("uncommitted");
    let s = garage_store(&g, "uncommitted", |o| o.part_size = 5 * MIB as usize).await;
    uncommitted_keeps_latest(s.clone(), 12 * MIB).await;
}

#[tokio::test]
async fn garage_corruption_detected() {
    let g = garage_or_skip!("corruption");
    corruption_detected(garage_store(&g, "corruption", |_| {}).await).await;
}

#[tokio::test]
async fn garage_damaged_latest() {
    let g = garage_or_skip!("damaged_latest");
    damaged_latest(garage_store(&g, "damaged-latest", |_| {}).await).await;
}

#[tokio::test]
async fn garage_retention_by_name() {
    let g = garage_or_skip!("prune");
    retention_by_name(garage_store(&g, "prune-daily", |_| {}).await).await;
}

/// A stream larger than 16 MiB with the default 8 MiB parts: a multipart upload of 3
/// parts, read back and verified.
#[tokio::test]
async fn garage_multipart_large_stream() {
    let g = garage_or_skip!("multipart");
    let s = garage_store(&g, "multipart", |_| {}).await;
    let len = 20 * MIB + 17;
    roundtrip_stream(s.clone(), len).await;
    let objects = s.list("snapshots/").await.expect("list");
    let db = objects
        .iter()
        .find(|o| o.key.ends_with("/db.zst"))
        .expect("db object");
    assert!(db.size > 16 * MIB, "{db:?}");
}

/// open_store with an s3:// URL and the endpoint, as the daemon does; missing objects
/// are NotFound, a missing bucket is an error, never "no snapshot".
#[tokio::test]
async fn garage_open_store_and_not_found() {
    let g = garage_or_skip!("open_store");
    let url = format!("s3://{}/open-store-{}", g.bucket, std::process::id());
    let s: Arc<dyn Store> = open_store(&url, Some(&g.endpoint), &g.region)
        .await
        .expect("open");
    assert_eq!(latest(s.as_ref()).await.expect("latest"), None);
    let err = s.get_small("nope").await.expect_err("absent");
    assert!(err.is_not_found(), "{err}");
    assert!(SnapshotReader::open_latest(s.clone())
        .await
        .expect("none")
        .is_none());

    let missing = open_store("s3://no-such-bucket-bosun/x", Some(&g.endpoint), &g.region)
        .await
        .expect("open");
    let err = latest(missing.as_ref()).await.expect_err("no bucket");
    assert!(
        !err.is_not_found(),
        "a missing bucket is not 'no snapshot': {err}"
    );
    eprintln!("missing bucket: {err}");
}

/// A multipart upload that fails or is cancelled is aborted: no object under the final
/// key, no unfinished upload left in the bucket.
#[tokio::test]
async fn garage_cancelled_multipart_is_aborted() {
    let g = garage_or_skip!("aborted");
    let store = bosun_snapshot::S3Store::connect(bosun_snapshot::S3Options {
        bucket: g.bucket.clone(),
        prefix: format!("aborted-{}", std::process::id()),
        endpoint: Some(g.endpoint.clone()),
        region: g.region.clone(),
        part_size: 5 * MIB as usize,
        ..Default::default()
    })
    .await
    .expect("connect");
    // Fails after two parts.
    let mut failing = RandReader::new(1, 30 * MIB).failing_after(11 * MIB);
    let err = store
        .put("obj-failed", &mut failing)
        .await
        .expect_err("fails");
    assert!(err.to_string().contains("simulated dump failure"), "{err}");
    // Cancelled after two parts.
    let mut stalled = RandReader::new(2, 30 * MIB).stalling_after(11 * MIB);
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        store.put("obj-cancelled", &mut stalled),
    )
    .await;
    assert!(r.is_err(), "cancelled");
    // The abort of a cancelled upload runs in the background: give it a moment.
    let prefix = store.options().prefix.clone();
    let mut left = usize::MAX;
    for _ in 0..50 {
        let out = store
            .client()
            .list_multipart_uploads()
            .bucket(&g.bucket)
            .prefix(&prefix)
            .send()
            .await
            .expect("list uploads");
        left = out.uploads().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "unfinished multipart uploads remain");
    assert!(store.list("").await.expect("list").is_empty());
    let err = store.get_small("obj-failed").await.expect_err("absent");
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn garage_encrypted_roundtrip() {
    let g = garage_or_skip!("encrypted");
    let s = garage_store(&g, "encrypted", |o| o.part_size = 5 * MIB as usize).await;
    encrypted_roundtrip(s, 7 * MIB + 17).await;
}

#[tokio::test]
async fn garage_verify_names_damage() {
    let g = garage_or_skip!("verify");
    verify_names_damage(garage_store(&g, "verify", |_| {}).await).await;
}

/// Parallel parts and parallel ranged GETs come back in order: a multipart upload of
/// 5 parts with 3 in flight, read in 1 MiB ranges with 3 in flight, byte for byte.
#[tokio::test]
async fn garage_parallel_parts_and_ranges_in_order() {
    let g = garage_or_skip!("parallel");
    let s = garage_store(&g, "parallel", |o| {
        o.part_size = 5 * MIB as usize;
        o.parallel = 3;
        o.get_range = MIB as usize;
        o.get_parallel = 3;
    })
    .await;
    let len = 23 * MIB + 5;
    let written = s
        .put("obj", &mut RandReader::new(41, len))
        .await
        .expect("put");
    assert_eq!(written, len);
    let (n, digest) = digest_stream(s.get("obj").await.expect("get"))
        .await
        .expect("read");
    assert_eq!((n, digest), (len, RandReader::digest(41, len)));
    // Through a snapshot too: the ranges feed the verifying decoder in order.
    roundtrip_stream(s, 12 * MIB + 3).await;
}

/// A part upload that the store refuses (here: the upload was aborted under it) fails
/// the item; nothing is left under the key, no upload stays open, LATEST is unchanged.
#[tokio::test]
async fn garage_failed_part_aborts_and_keeps_latest() {
    let g = garage_or_skip!("failed_part");
    let prefix = format!("failed-part-{}", std::process::id());
    let store = bosun_snapshot::S3Store::connect(bosun_snapshot::S3Options {
        bucket: g.bucket.clone(),
        prefix: prefix.clone(),
        endpoint: Some(g.endpoint.clone()),
        region: g.region.clone(),
        part_size: 5 * MIB as usize,
        parallel: 2,
        ..Default::default()
    })
    .await
    .expect("connect");
    let client = store.client().clone();
    let s: Arc<dyn Store> = Arc::new(store);
    let a = commit_small(&s, "host-p", b"version A").await;
    let (gate, wait) = tokio::sync::oneshot::channel::<()>();
    let reader = RandReader::new(5, 40 * MIB).gated_after(12 * MIB, wait);
    let mut w = bosun_snapshot::SnapshotWriter::begin(
        s.clone(),
        "host-p",
        &roles(),
        bosun_snapshot::SnapshotKind::Regular,
    )
    .await
    .expect("begin");
    let aborter = async {
        // Once the upload is open, abort it behind the writer's back, then let the
        // dump go on: its next part is refused.
        for _ in 0..200 {
            let out = client
                .list_multipart_uploads()
                .bucket(&g.bucket)
                .prefix(&prefix)
                .send()
                .await
                .expect("list uploads");
            if let Some(u) = out.uploads().first() {
                client
                    .abort_multipart_upload()
                    .bucket(&g.bucket)
                    .key(u.key().expect("key"))
                    .upload_id(u.upload_id().expect("id"))
                    .send()
                    .await
                    .expect("abort");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = gate.send(());
    };
    let (put, ()) = tokio::join!(w.put_stream("db", reader), aborter);
    let err = put.expect_err("a refused part fails the item");
    eprintln!("refused part: {err}");
    drop(w);
    assert_eq!(latest(s.as_ref()).await.expect("latest"), Some(a.clone()));
    assert_eq!(read_item(&s, &a, "data").await, b"version A");
    let open = client
        .list_multipart_uploads()
        .bucket(&g.bucket)
        .prefix(&prefix)
        .send()
        .await
        .expect("list uploads");
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());
    let objects = s.list("snapshots/").await.expect("list");
    assert!(
        !objects.iter().any(|o| o.key.ends_with("/db.zst")),
        "{objects:?}"
    );
}

/// An object replaced while it is read in ranges fails the read (If-Match), instead
/// of mixing two objects; and a snapshot item replaced under a restore fails the
/// restore with the store's error, before its end.
#[tokio::test]
async fn garage_object_replaced_mid_read_fails() {
    let g = garage_or_skip!("replaced");
    let s = garage_store(&g, "replaced", |o| {
        o.get_range = MIB as usize;
        o.get_parallel = 2;
    })
    .await;
    let len = 40 * MIB;
    s.put("obj", &mut RandReader::new(8, len))
        .await
        .expect("put");
    let mut r = s.get("obj").await.expect("get");
    let mut buf = vec![0u8; MIB as usize];
    tokio::io::AsyncReadExt::read_exact(&mut r, &mut buf)
        .await
        .expect("first MiB");
    s.put("obj", &mut RandReader::new(20, len))
        .await
        .expect("replace");
    let err = digest_stream(r).await.expect_err("replaced mid-read");
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );

    // The same under a snapshot's verifying reader.
    let mut w = bosun_snapshot::SnapshotWriter::begin(
        s.clone(),
        "host-r",
        &roles(),
        bosun_snapshot::SnapshotKind::Regular,
    )
    .await
    .expect("begin");
    w.put_stream("db", RandReader::new(10, len))
        .await
        .expect("db");
    let m = w.commit().await.expect("commit");
    let id: bosun_snapshot::SnapshotId = m.id.parse().expect("id");
    let reader = SnapshotReader::open(s.clone(), id.clone())
        .await
        .expect("open");
    let mut item = reader.item_stream("db").await.expect("stream");
    tokio::io::AsyncReadExt::read_exact(&mut item, &mut buf)
        .await
        .expect("first MiB");
    let object = id.key(&m.items[0].object);
    s.put(&object, &mut RandReader::new(30, len))
        .await
        .expect("replace");
    let err = digest_stream(item).await.expect_err("replaced mid-restore");
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );
}

/// A restore's first pass from Garage stages the object's bytes locally (ranged GETs as
/// usual), the second reads them from there, checked, byte for byte; nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_restore_stages_the_verifying_pass() {
    let g = garage_or_skip!("staged");
    let s = garage_store(&g, "staged", |o| {
        o.get_range = MIB as usize;
        o.get_parallel = 4;
    })
    .await;
    let len = 12 * MIB + 5;
    let mut w = bosun_snapshot::SnapshotWriter::begin(
        s.clone(),
        "host-st",
        &roles(),
        bosun_snapshot::SnapshotKind::Regular,
    )
    .await
    .expect("begin");
    w.put_stream("db", RandReader::new(12, len))
        .await
        .expect("db");
    let m = w.commit().await.expect("commit");
    let reader = SnapshotReader::open(s.clone(), m.id.parse().expect("id"))
        .await
        .expect("open");
    let state = tempfile::tempdir().expect("tempdir");
    let staging = bosun_snapshot::Staging::new(state.path().join("staging"));
    let verified = reader
        .verify_item_staged("db", Some(&staging))
        .await
        .expect("first pass");
    let path = verified.staged_path().expect("staged").to_path_buf();
    assert_eq!(
        std::fs::metadata(&path).expect("staged").len(),
        m.items[0].stored_size
    );
    let stream = reader.item_stream_verified(verified).await.expect("stream");
    assert_eq!(
        digest_stream(stream).await.expect("second pass"),
        (len, RandReader::digest(12, len))
    );
    assert_eq!(
        std::fs::read_dir(&staging.dir).expect("dir").count(),
        0,
        "nothing left staged"
    );
}
