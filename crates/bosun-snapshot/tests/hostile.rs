//! A hostile or damaged store, and units that own their data directories: archives
//! bosun's writer could not have produced, manifests with invalid names, and symlinks
//! that anyone but root could have made. Each is refused with an error naming the item
//! and the entry, and nothing on disk changes.

mod common;

use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bosun_snapshot::{
    set_latest, FileStore, ItemKind, SnapshotId, SnapshotKind, SnapshotReader, SnapshotWriter,
    Store,
};
use common::*;

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// One entry of a hand-made archive: its raw name, type, and data or link target.
struct Raw<'a> {
    name: &'a [u8],
    ty: tar::EntryType,
    data: &'a [u8],
    link: &'a [u8],
    /// The mode in the header; `None`: 0755 for directories, 0644 else.
    mode: Option<u32>,
}

fn dir(name: &str) -> Raw<'_> {
    Raw {
        name: name.as_bytes(),
        ty: tar::EntryType::Directory,
        data: b"",
        link: b"",
        mode: None,
    }
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name: name.as_bytes(),
        ty: tar::EntryType::Regular,
        data,
        link: b"",
        mode: None,
    }
}

fn link<'a>(name: &'a str, ty: tar::EntryType, target: &'a str) -> Raw<'a> {
    Raw {
        name: name.as_bytes(),
        ty,
        data: b"",
        link: target.as_bytes(),
        mode: None,
    }
}

/// A tar archive with exactly these headers (names and link targets written raw, so the
/// `tar` crate's own checks do not stop a hostile one), ended like the writer ends it.
fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name);
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link);
        h.set_entry_type(e.ty);
        h.set_mode(e.mode.unwrap_or(if e.ty.is_dir() { 0o755 } else { 0o644 }));
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        b.append(&h, e.data).expect("append");
    }
    b.into_inner().expect("finish")
}

/// Writes a snapshot the way anyone who can write the store could: the given items, with
/// sizes and checksums that match, tar items marked as such; `patch` may edit the
/// manifest afterwards. It becomes LATEST.
async fn forge(
    store: &Arc<dyn Store>,
    items: Vec<(&str, ItemKind, Vec<u8>)>,
    patch: impl FnOnce(&mut serde_json::Value),
) -> SnapshotId {
    // Distinct times: no waiting for a free name.
    static NEXT: AtomicU64 = AtomicU64::new(1_767_225_600);
    let at = UNIX_EPOCH + Duration::from_secs(NEXT.fetch_add(1, Ordering::Relaxed));
    let mut w = SnapshotWriter::begin_at(
        store.clone(),
        "mallory",
        &roles(),
        SnapshotKind::Regular,
        at,
    )
    .await
    .expect("begin");
    for (name, _, data) in &items {
        w.put_stream(name, &data[..]).await.expect("put");
    }
    let id = w.id().clone();
    w.commit().await.expect("commit");
    let key = id.manifest_key();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&store.get_small(&key).await.expect("manifest")).expect("json");
    for (name, kind, _) in &items {
        if *kind == ItemKind::Tar {
            let object = store
                .get_small(&id.key(&format!("{name}.zst")))
                .await
                .expect("object");
            store
                .put_small(&id.key(&format!("{name}.tar.zst")), &object)
                .await
                .expect("put object");
            store
                .delete(&id.key(&format!("{name}.zst")))
                .await
                .expect("delete");
            let item = manifest["items"]
                .as_array_mut()
                .expect("items")
                .iter_mut()
                .find(|i| i["name"] == *name)
                .expect("item");
            item["kind"] = "tar".into();
            item["object"] = format!("{name}.tar.zst").into();
        }
    }
    patch(&mut manifest);
    store
        .put_small(&key, &serde_json::to_vec(&manifest).expect("json"))
        .await
        .expect("put manifest");
    id
}

struct Scene {
    tmp: tempfile::TempDir,
    store: Arc<dyn Store>,
}

impl Scene {
    /// A store, a data directory `dest` with a file in it, and a directory `outside`
    /// that archives will try to reach.
    fn new() -> Scene {
        init_tracing();
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("store")).expect("mkdir");
        let store: Arc<dyn Store> = Arc::new(FileStore::new(tmp.path().join("store")));
        let s = Scene { tmp, store };
        std::fs::create_dir_all(s.dest()).expect("mkdir");
        std::fs::write(s.dest().join("precious"), b"keep me").expect("write");
        std::fs::create_dir_all(s.outside()).expect("mkdir");
        std::fs::write(s.outside().join("keep.txt"), b"outside").expect("write");
        s
    }

    fn dest(&self) -> std::path::PathBuf {
        self.tmp.path().join("app/files")
    }

    fn outside(&self) -> std::path::PathBuf {
        self.tmp.path().join("outside")
    }

    fn snapshot_of_disk(&self) -> (String, String, Vec<String>) {
        let names = |p: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(p)
                .expect("ls")
                .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        (
            format!("{:?}", describe_tree(&self.dest())),
            format!("{:?}", describe_tree(&self.outside())),
            names(&self.tmp.path().join("app")),
        )
    }

    /// Restores a forged `files` item holding `archive`: the error, after checking that
    /// nothing on disk changed.
    async fn refused(&self, archive: Vec<u8>) -> String {
        let before = self.snapshot_of_disk();
        let id = forge(&self.store, vec![("files", ItemKind::Tar, archive)], |_| {}).await;
        let reader = SnapshotReader::open(self.store.clone(), id.clone())
            .await
            .expect("open");
        let err = reader
            .restore_path("files", &self.dest())
            .await
            .expect_err("a hostile archive must be refused")
            .to_string();
        assert!(
            err.contains("'files'") && err.contains(&id.to_string()),
            "{err}"
        );
        assert!(err.contains("left unchanged"), "{err}");
        assert_eq!(self.snapshot_of_disk(), before, "the disk changed: {err}");
        err
    }
}

#[tokio::test]
async fn a_symlink_as_the_items_root_is_refused() {
    let s = Scene::new();
    let out = s.outside().display().to_string();
    let err = s
        .refused(raw_tar(&[link("data", tar::EntryType::Symlink, &out)]))
        .await;
    assert!(err.contains("\"data\"") && err.contains("symlink"), "{err}");
    assert!(
        std::fs::symlink_metadata(s.dest()).expect("dest").is_dir(),
        "dest became a link"
    );
}

#[tokio::test]
async fn entries_that_leave_the_item_are_refused_by_name() {
    let s = Scene::new();
    let abs = s.outside().join("planted").display().to_string();
    let out = s.outside().join("keep.txt").display().to_string();
    let outside = s.outside().display().to_string();
    let cases: Vec<(Vec<Raw<'_>>, &str, &str)> = vec![
        (
            vec![dir("data"), file("data/../../../outside/planted", b"x")],
            "data/../../../outside/planted",
            "`..`",
        ),
        (vec![dir("data"), file(&abs, b"x")], &abs, "absolute"),
        (
            vec![dir("data"), link("data/h", tar::EntryType::Link, &out)],
            "data/h",
            "hard link",
        ),
        (
            vec![
                dir("data"),
                link("data/l", tar::EntryType::Symlink, &outside),
                file("data/l/planted", b"x"),
            ],
            "data/l/planted",
            "not right after its directory",
        ),
        (
            vec![dir("data"), link("data/f", tar::EntryType::Fifo, "")],
            "data/f",
            "fifo",
        ),
        (
            vec![dir("data"), link("data/c", tar::EntryType::Char, "")],
            "data/c",
            "device",
        ),
        (
            vec![dir("data"), file("data/a", b"1"), file("data/a", b"2")],
            "data/a",
            "twice",
        ),
        (
            vec![
                dir("data"),
                dir("data/a/"),
                dir("data/b/"),
                file("data/a/x", b"1"),
            ],
            "data/a/x",
            "not right after its directory",
        ),
        (vec![dir("other")], "other", "not under the item's root"),
        (vec![file("data/x", b"1")], "data/x", "before the root"),
        (vec![dir("data"), file("data//x", b"1")], "data//x", "empty"),
        (vec![dir("data"), file("data/./x", b"1")], "data/./x", "`.`"),
    ];
    for (entries, entry, why) in cases {
        let err = s.refused(raw_tar(&entries)).await;
        assert!(
            err.contains(&format!("{entry:?}")) && err.contains(why),
            "{entry}: {err}"
        );
        assert!(err.contains("tampered with or damaged"), "{err}");
    }
    assert!(!s.outside().join("planted").exists());
}

#[tokio::test]
async fn a_file_where_a_directory_is_and_trailing_data_are_refused() {
    let s = Scene::new();
    let err = s.refused(raw_tar(&[file("data", b"flat")])).await;
    assert!(
        err.contains("holds a file") && err.contains("is a directory"),
        "{err}"
    );

    let mut archive = raw_tar(&[dir("data"), file("data/a", b"1")]);
    archive.extend_from_slice(b"smuggled");
    let err = s.refused(archive).await;
    assert!(err.contains("after the end of the archive"), "{err}");

    // A PAX header (bosun's writer uses GNU headers only).
    let mut b = tar::Builder::new(Vec::new());
    let record = b"path=data/../../x\n";
    let record = format!("{} {}", record.len() + 3, String::from_utf8_lossy(record));
    let mut pax = tar::Header::new_ustar();
    pax.set_path("PaxHeader").expect("path");
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_size(record.len() as u64);
    pax.set_cksum();
    b.append(&pax, record.as_bytes()).expect("pax");
    let mut h = tar::Header::new_gnu();
    h.set_path("data").expect("path");
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &b""[..]).expect("append");
    let err = s.refused(b.into_inner().expect("finish")).await;
    assert!(err.contains("PAX"), "{err}");
}

/// Whoever can write the store must not be able to hand out privileges: set-uid and
/// set-gid bits on restored files are dropped (a set-gid directory keeps its bit:
/// that only makes new files inherit the group).
#[tokio::test]
async fn a_restore_never_creates_set_id_files() {
    let s = Scene::new();
    let mut suid = file("data/run-me", b"#!/bin/sh\nid\n");
    suid.mode = Some(0o6755);
    let mut shared = dir("data/shared/");
    shared.mode = Some(0o2775);
    let archive = raw_tar(&[dir("data"), suid, shared]);
    let id = forge(&s.store, vec![("files", ItemKind::Tar, archive)], |_| {}).await;
    let r = SnapshotReader::open(s.store.clone(), id)
        .await
        .expect("open");
    r.restore_path("files", &s.dest()).await.expect("restore");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(s.dest().join(p))
            .expect(p)
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("run-me"), 0o755, "set-uid/set-gid kept");
    assert_eq!(mode("shared"), 0o2775);
}

#[tokio::test]
async fn a_well_formed_forged_archive_still_restores() {
    // The checks refuse what the writer cannot produce, not hand-made archives as such.
    let s = Scene::new();
    let archive = raw_tar(&[
        dir("data"),
        file("data/a", b"alpha"),
        dir("data/sub/"),
        link("data/sub/l", tar::EntryType::Symlink, "../a"),
        file("data/z", b"zed"),
    ]);
    let id = forge(&s.store, vec![("files", ItemKind::Tar, archive)], |_| {}).await;
    let r = SnapshotReader::open(s.store.clone(), id)
        .await
        .expect("open");
    r.restore_path("files", &s.dest()).await.expect("restore");
    assert_eq!(std::fs::read(s.dest().join("a")).expect("a"), b"alpha");
    assert_eq!(
        std::fs::read_link(s.dest().join("sub/l")).expect("l"),
        Path::new("../a")
    );
    assert!(!s.dest().join("precious").exists());
}

#[tokio::test]
async fn manifest_names_are_checked_on_read_as_on_write() {
    let s = Scene::new();
    type Patch = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Patch, &str)> = vec![
        (
            "../../x",
            Box::new(|m| m["items"][0]["name"] = "../../x".into()),
            "invalid name",
        ),
        (
            "/abs",
            Box::new(|m| m["items"][0]["name"] = "/abs".into()),
            "invalid name",
        ),
        (
            "db",
            Box::new(|m| m["items"][0]["object"] = "../../LATEST".into()),
            "stored as",
        ),
        (
            "db",
            Box::new(|m| {
                let item = m["items"][0].clone();
                m["items"].as_array_mut().expect("items").push(item);
            }),
            "twice",
        ),
        (
            "db",
            Box::new(|m| m["items"][0]["sha256_raw"] = "../x".into()),
            "sha256",
        ),
    ];
    for (item, patch, why) in cases {
        let id = forge(
            &s.store,
            vec![("db", ItemKind::Stream, b"rows".to_vec())],
            patch,
        )
        .await;
        let err = SnapshotReader::open(s.store.clone(), id.clone())
            .await
            .expect_err("a tampered manifest must be refused")
            .to_string();
        assert!(
            err.contains(&id.to_string())
                && err.contains(&format!("{item:?}"))
                && err.contains(why),
            "{err}"
        );
        assert!(err.contains("tampered with or damaged"), "{err}");
        let err = set_latest(s.store.as_ref(), &id)
            .await
            .expect_err("set_latest reads the manifest too");
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn snapshot_ids_have_one_spelling() {
    assert!("20260101T000000Z-h".parse::<SnapshotId>().is_ok());
    for bad in [
        "20260101T000060Z-h",
        "../20260101T000000Z-h",
        "20260101T000000Z-h/../x",
        "snapshots/../LATEST",
        "/20260101T000000Z-h",
    ] {
        assert!(bad.parse::<SnapshotId>().is_err(), "{bad}");
    }
}

/// A backup made as root of a path whose symlinks a unit made.
async fn backup(store: &Arc<dyn Store>, path: &Path) -> bosun_snapshot::Result<()> {
    let mut w = SnapshotWriter::begin(store.clone(), "host", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    let r = w.put_path("files", path).await.map(|_| ());
    w.abort();
    r
}

#[tokio::test]
async fn a_symlink_anyone_but_root_could_have_made_is_never_followed() {
    if !is_root() {
        eprintln!("skipped: needs root (to give a link to another user)");
        return;
    }
    let s = Scene::new();
    let app = s.tmp.path().join("app");
    // The data directory becomes a link owned by the unit's user.
    std::fs::remove_dir_all(s.dest()).expect("rm");
    symlink(s.outside(), s.dest()).expect("symlink");
    lchown(s.dest(), Some(NOBODY), Some(NOBODY)).expect("lchown");
    let before = s.snapshot_of_disk();
    let err = backup(&s.store, &s.dest())
        .await
        .expect_err("backup through a unit's link")
        .to_string();
    assert!(
        err.contains("owned by uid 65534") && err.contains("real path"),
        "{err}"
    );
    assert!(err.contains(&s.dest().display().to_string()), "{err}");

    // And a restore does not go through it.
    let archive = raw_tar(&[dir("data"), file("data/new", b"n")]);
    let id = forge(&s.store, vec![("files", ItemKind::Tar, archive)], |_| {}).await;
    let r = SnapshotReader::open(s.store.clone(), id)
        .await
        .expect("open");
    let err = r
        .restore_path("files", &s.dest())
        .await
        .expect_err("restore through a unit's link")
        .to_string();
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert_eq!(s.snapshot_of_disk(), before);

    // A root-owned link is no better in a directory the unit can change: it could swap
    // in another.
    std::fs::remove_file(s.dest()).expect("rm");
    symlink(s.outside(), s.dest()).expect("symlink");
    std::os::unix::fs::chown(&app, Some(NOBODY), Some(NOBODY)).expect("chown");
    let err = r
        .restore_path("files", &s.dest())
        .await
        .expect_err("restore through a link in a unit's directory")
        .to_string();
    assert!(err.contains("someone other than root can change"), "{err}");
    let err = backup(&s.store, &s.dest())
        .await
        .expect_err("backup")
        .to_string();
    assert!(err.contains("someone other than root can change"), "{err}");

    // A link higher up, made by the unit.
    std::os::unix::fs::chown(&app, Some(0), Some(0)).expect("chown");
    std::fs::remove_file(s.dest()).expect("rm");
    let real = s.tmp.path().join("real");
    std::fs::create_dir_all(real.join("files")).expect("mkdir");
    std::fs::rename(&app, s.tmp.path().join("app-moved")).expect("mv");
    symlink(&real, &app).expect("symlink");
    lchown(&app, Some(NOBODY), Some(NOBODY)).expect("lchown");
    let err = r
        .restore_path("files", &s.dest())
        .await
        .expect_err("restore through a unit's link above")
        .to_string();
    assert!(
        err.contains(&app.display().to_string()) && err.contains("uid 65534"),
        "{err}"
    );
    assert_eq!(
        describe_tree(&real).len(),
        1,
        "nothing restored into the link's target"
    );

    // The operator's own link (root's, in root's directories) is followed.
    lchown(&app, Some(0), Some(0)).expect("lchown");
    r.restore_path("files", &s.dest())
        .await
        .expect("restore through root's link");
    assert_eq!(std::fs::read(real.join("files/new")).expect("new"), b"n");
    assert!(std::fs::symlink_metadata(&app).expect("app").is_symlink());
}

#[tokio::test]
async fn symlinks_inside_a_backed_up_tree_are_kept_as_links() {
    let s = Scene::new();
    symlink(s.outside(), s.dest().join("escape")).expect("symlink");
    std::fs::set_permissions(s.outside(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let mut w = SnapshotWriter::begin(s.store.clone(), "host", &roles(), SnapshotKind::Regular)
        .await
        .expect("begin");
    w.put_path("files", &s.dest()).await.expect("put");
    w.commit().await.expect("commit");
    let restored = s.tmp.path().join("restored/files");
    let r = SnapshotReader::open_latest(s.store.clone())
        .await
        .expect("open")
        .expect("latest");
    r.restore_path("files", &restored).await.expect("restore");
    let tree = describe_tree(&restored);
    assert_eq!(tree.len(), 2, "{tree:?}");
    assert!(std::fs::symlink_metadata(restored.join("escape"))
        .expect("escape")
        .is_symlink());
}
