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
