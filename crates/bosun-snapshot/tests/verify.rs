//! `verify_item`: the pass that reads an item through sha256 without keeping it, so that
//! a `load` only ever receives verified bytes; and what that pass costs.

mod common;

use std::sync::Arc;
use std::time::Instant;

use bosun_snapshot::{FileStore, Store};
use common::*;

#[tokio::test]
async fn verify_item_catches_a_flipped_bit_and_a_truncation() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path()));
    let reader = one_item(&store, "host-v", 3 * MIB).await;
    assert_eq!(reader.verify_item("db").await.expect("intact"), 3 * MIB);
    let key = reader.id().key("db.zst");
    let good = store.get_small(&key).await.expect("get");

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x01;
    store.put_small(&key, &flipped).await.expect("put");
    let err = reader.verify_item("db").await.expect_err("flipped bit");
    assert!(err.is_integrity(), "{err}");
    assert!(err.to_string().contains("'db'"), "{err}");

    store
        .put_small(&key, &good[..good.len() - 100])
        .await
        .expect("put");
    let err = reader.verify_item("db").await.expect_err("truncated");
    assert!(
        err.is_integrity() && err.to_string().contains("truncated"),
        "{err}"
    );
}

/// What the verifying pass costs a load: the item read once (today's load) against read
/// twice (verify, then load). `cargo test --release -p bosun-snapshot --test verify --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn cost_of_verifying_before_loading_200_mib() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path()));
    let len = 200 * MIB;
    let reader = one_item(&store, "host-v", len).await;
    for round in 0..3 {
        let t0 = Instant::now();
        let (n, _) = digest_stream(reader.item_stream("db").await.expect("stream"))
            .await
            .expect("read");
        let once = t0.elapsed();
        assert_eq!(n, len);
        let t0 = Instant::now();
        reader.verify_item("db").await.expect("verify");
        let (n, _) = digest_stream(reader.item_stream("db").await.expect("stream"))
            .await
            .expect("read");
        let twice = t0.elapsed();
        assert_eq!(n, len);
        eprintln!(
            "round {round}: 200 MiB (incompressible) one pass {once:.2?}, verify + pass {twice:.2?} ({:.2}x)",
            twice.as_secs_f64() / once.as_secs_f64()
        );
    }
}
