//! The suite against a `file://` store in a temporary directory, plus file-store cases
//! (full disk).

mod common;

use std::sync::Arc;

use bosun_snapshot::{latest, open_store, FileStore, SnapshotKind, SnapshotWriter, Store};
use common::*;

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path()));
    (dir, store)
}

#[tokio::test]
async fn file_roundtrip_stream() {
    let (_d, s) = store();
    roundtrip_stream(s, 6 * MIB + 123).await;
}

#[tokio::test]
async fn file_roundtrip_tree() {
    let (_d, s) = store();
    roundtrip_tree(s).await;
}

#[tokio::test]
async fn file_uncommitted_keeps_latest() {
    let (d, s) = store();
    uncommitted_keeps_latest(s, 3 * MIB).await;
    // No temporary file survives a failed or cancelled write.
    let mut stack = vec![d.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("ls") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.contains("bosun-tmp"), "leftover {name}");
            if e.file_type().expect("ft").is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[tokio::test]
async fn file_corruption_detected() {
    let (_d, s) = store();
    corruption_detected(s).await;
}

#[tokio::test]
async fn file_retention_by_name() {
    let (_d, s) = store();
    retention_by_name(s).await;
}

#[tokio::test]
async fn file_damaged_latest() {
    let (_d, s) = store();
    damaged_latest(s).await;
}

#[tokio::test]
async fn file_open_store_urls() {
    let (d, _) = store();
    let url = format!("file://{}", d.path().display());
    let s = open_store(&url, None, "us-east-1").await.expect("open");
    assert_eq!(latest(s.as_ref()).await.expect("latest"), None);
    assert!(open_store("file://relative", None, "x").await.is_err());
    assert!(open_store("ftp://x", None, "x").await.is_err());
    assert!(open_store("s3://", None, "x").await.is_err());
}

/// A 2 MiB tmpfs fills up: the write fails with a clear error, the previous snapshot
/// stays LATEST and readable, no partial object is left.
#[tokio::test]
async fn file_full_disk() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("skipped: cannot mount a tmpfs (needs root): {status:?}");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let store: Arc<dyn Store> = Arc::new(FileStore::new(&mnt));
    let a = commit_small(&store, "host-f", b"the good snapshot").await;

    let mut w = SnapshotWriter::begin(store.clone(), "host-f", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    let err = w
        .put_stream("db", RandReader::new(5, 4 * MIB))
        .await
        .expect_err("the disk is full");
    let msg = err.to_string();
    assert!(msg.contains("no space left"), "{msg}");
    eprintln!("full disk: {msg}");
    assert!(msg.contains("'db'"), "{msg}");
    drop(w);
    assert_eq!(
        latest(store.as_ref()).await.expect("latest"),
        Some(a.clone())
    );
    assert_eq!(read_item(&store, &a, "data").await, b"the good snapshot");
    // The space is free again: no partial object.
    let used: u64 = store
        .list("")
        .await
        .expect("list")
        .iter()
        .map(|o| o.size)
        .sum();
    assert!(used < 64 * 1024, "{used}");
    let out = std::process::Command::new("df")
        .arg(&mnt)
        .output()
        .expect("df");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

/// Restoring onto a mount point (a volume) swaps its contents, not the directory, and
/// still only after the new data is verified.
#[tokio::test]
async fn file_restore_onto_mount_point() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("volume");
    std::fs::create_dir(&dest).expect("mkdir");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&dest)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("skipped: cannot mount a tmpfs (needs root): {status:?}");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dest.clone());
    std::fs::write(dest.join("old-file"), b"old").expect("write");
    std::fs::create_dir(dest.join("old-dir")).expect("mkdir");

    let store_dir = dir.path().join("store");
    std::fs::create_dir(&store_dir).expect("mkdir");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(&store_dir));
    let src = dir.path().join("src");
    make_tree(&src);
    let mut w = SnapshotWriter::begin(store.clone(), "host-v", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_path("files", &src).await.expect("put");
    w.commit().await.expect("commit");
    let reader = bosun_snapshot::SnapshotReader::open_latest(store.clone())
        .await
        .expect("open")
        .expect("latest");
    let outcome = reader.restore_path("files", &dest).await.expect("restore");
    assert!(outcome.in_place, "{outcome:?}");
    let mut expected = describe_tree(&src);
    expected.remove(std::path::Path::new("fifo"));
    assert_eq!(describe_tree(&dest), expected);
    // Still the same mount.
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    assert!(mounts.contains(&dest.display().to_string()));
}

/// A data directory that is a symlink into a volume is backed up by its contents and
/// restored through the link.
#[tokio::test]
async fn file_symlinked_data_dir() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = dir.path().join("volume/files");
    make_tree(&volume);
    let link = dir.path().join("app-files");
    std::os::unix::fs::symlink(&volume, &link).expect("symlink");
    let mut expected = describe_tree(&volume);
    expected.remove(std::path::Path::new("fifo"));

    let store_dir = dir.path().join("store");
    std::fs::create_dir(&store_dir).expect("mkdir");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(&store_dir));
    let mut w = SnapshotWriter::begin(store.clone(), "host-l", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_path("files", &link).await.expect("put");
    w.commit().await.expect("commit");

    std::fs::remove_dir_all(&volume).expect("rm");
    std::fs::create_dir(&volume).expect("mkdir");
    std::fs::write(volume.join("junk"), b"junk").expect("write");
    let reader = bosun_snapshot::SnapshotReader::open_latest(store.clone())
        .await
        .expect("open")
        .expect("latest");
    reader.restore_path("files", &link).await.expect("restore");
    assert!(std::fs::symlink_metadata(&link)
        .expect("meta")
        .file_type()
        .is_symlink());
    assert_eq!(describe_tree(&volume), expected);
}

#[tokio::test]
async fn file_encrypted_roundtrip() {
    let (_d, s) = store();
    encrypted_roundtrip(s, 3 * MIB + 17).await;
}

#[tokio::test]
async fn file_verify_names_damage() {
    let (_d, s) = store();
    verify_names_damage(s).await;
}
