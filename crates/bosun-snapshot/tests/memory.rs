//! Memory stays bounded while large items stream through (no whole-object buffers).
//! One test in its own process, so that the peak RSS is ours alone.

mod common;

use std::sync::Arc;

use bosun_snapshot::{FileStore, SnapshotKind, SnapshotReader, SnapshotWriter, Store};
use common::*;

fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn stream_through(store: Arc<dyn Store>, len: u64, budget_mib: u64, what: &str) {
    // Warm up allocator, runtime and client with a small snapshot.
    let mut w = SnapshotWriter::begin(store.clone(), "host-m", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_stream("warm", RandReader::new(1, 1024 * 1024))
        .await
        .expect("warm");
    w.commit().await.expect("commit");

    let base = status_kib("VmRSS:");
    let mut w = SnapshotWriter::begin(store.clone(), "host-m", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_stream("big", RandReader::new(77, len))
        .await
        .expect("put");
    w.commit().await.expect("commit");
    let r = SnapshotReader::open_latest(store.clone())
        .await
        .expect("open")
        .expect("latest");
    let (n, digest) = digest_stream(r.item_stream("big").await.expect("stream"))
        .await
        .expect("read");
    assert_eq!(n, len);
    assert_eq!(digest, RandReader::digest(77, len));
    let peak = status_kib("VmHWM:");
    let grew_mib = peak.saturating_sub(base) / 1024;
    eprintln!(
        "{what}: {} MiB streamed both ways; RSS {} MiB before, peak {} MiB (+{grew_mib} MiB)",
        len / MIB,
        base / 1024,
        peak / 1024
    );
    assert!(
        grew_mib < budget_mib,
        "{what}: peak RSS grew by {grew_mib} MiB for a {} MiB item (budget {budget_mib} MiB)",
        len / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_bounded() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let len = 40 * MIB;
    stream_through(Arc::new(FileStore::new(dir.path())), len, 40, "file store").await;
    match garage() {
        // 8 MiB parts, 2 in flight, one being filled: about 24 MiB of buffers.
        Some(g) => {
            stream_through(garage_store(&g, "memory", |_| {}).await, len, 56, "Garage").await
        }
        None => eprintln!("skipped (Garage part): no Garage"),
    }
}
