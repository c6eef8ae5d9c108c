//! A store that cannot be reached is an error, never "no snapshot".

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bosun_snapshot::{
    latest, FileStore, S3Options, S3Store, SnapshotKind, SnapshotReader, SnapshotWriter, Store,
};
use common::*;

#[tokio::test]
async fn s3_closed_port_is_unreachable() {
    init_tracing();
    // This process talks only to 127.0.0.1: fake credentials keep the AWS chain from
    // looking for instance metadata.
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        std::env::set_var("AWS_ACCESS_KEY_ID", "GKtest0000000000000000000000");
        std::env::set_var(
            "AWS_SECRET_ACCESS_KEY",
            "0000000000000000000000000000000000000000000000000000000000000000",
        );
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let store: Arc<dyn Store> = Arc::new(
        S3Store::connect(S3Options {
            bucket: "bosun-test".into(),
            prefix: "x".into(),
            endpoint: Some(endpoint.clone()),
            region: "garage".into(),
            attempts: 3,
            initial_backoff: Duration::from_millis(50),
            ..S3Options::default()
        })
        .await
        .expect("client"),
    );
    let started = Instant::now();
    let err = latest(store.as_ref())
        .await
        .expect_err("must not be Ok(None)");
    assert!(err.is_unreachable(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&endpoint), "{msg}");
    assert!(msg.contains("3 attempt"), "{msg}");
    assert!(msg.contains("S3ENDPOINTURL"), "{msg}");
    assert!(
        !msg.contains("00000000000000000000000000000000"),
        "no secret in messages: {msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    eprintln!("{msg}");

    let err = SnapshotReader::open_latest(store.clone())
        .await
        .expect_err("unreachable");
    assert!(err.is_unreachable(), "{err}");
    let err = SnapshotWriter::begin(store.clone(), "h", &roles(), SnapshotKind::Regular)
        .await
        .expect_err("unreachable");
    assert!(err.is_unreachable(), "{err}");
    let mut data: &[u8] = &[1u8; 100];
    let err = store.put("k", &mut data).await.expect_err("unreachable");
    assert!(err.is_unreachable(), "{err}");
}

#[tokio::test]
async fn file_store_without_its_volume_is_unreachable() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().join("not-mounted")));
    let err = latest(store.as_ref())
        .await
        .expect_err("must not be Ok(None)");
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("not-mounted"), "{err}");
    let empty: Arc<dyn Store> = Arc::new(FileStore::new(dir.path()));
    assert_eq!(latest(empty.as_ref()).await.expect("empty store"), None);
}
