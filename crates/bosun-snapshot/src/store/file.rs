//! A store in a local directory, typically a mounted volume.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{check_key, ObjectInfo, ObjectReader, Store};
use crate::error::{Error, Result};

/// Marker in the names of temporary files; [`FileStore::list`] never shows them.
const TMP_MARK: &str = ".bosun-tmp-";
/// Copy buffer for [`FileStore::put`].
const COPY_BUF: usize = 256 * 1024;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
/// When this process first wrote to a file store, in nanoseconds since the epoch.
static RUN_STAMP: std::sync::LazyLock<u128> = std::sync::LazyLock::new(|| {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
});

/// A store in a directory (`file:///var/lib/bosun/backup`).
///
/// Every write goes to a temporary file in the same directory, is fsynced, then renamed
/// to its final name, and the directory is fsynced: an object is either whole under its
/// final name or absent. The root directory must exist (it is normally a mounted volume):
/// a missing root is [`Error::Unreachable`], never "no snapshot", so that a container
/// started without its volume does not boot empty.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

/// Removes a temporary file unless disarmed (on error and on cancellation).
struct TmpGuard {
    path: Option<PathBuf>,
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl FileStore {
    /// A store rooted at `root` (not created; see the type's documentation).
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        let path = self.root.join(key);
        self.refuse_links(key)?;
        Ok(path)
    }

    /// bosun's writer never puts a symlink in a store: one below the root (a
    /// `snapshots/` pointing at `/etc`, an object pointing at a root-only file)
    /// was planted by whoever can write the volume, and following it would let
    /// them make bosun read, or retention delete, files outside the store.
    fn refuse_links(&self, key: &str) -> Result<()> {
        let mut at = self.root.clone();
        for part in key.split('/') {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::Refused(format!(
                        "{} is a symlink inside the store {}: bosun never follows links in a store \
                         (its own writer makes none); remove it, and check who else can write the backup volume",
                        at.display(),
                        self.describe()
                    )))
                }
                Ok(_) => {}
                Err(_) => break, // not there (yet): nothing below it to follow
            }
        }
        Ok(())
    }

    async fn check_root(&self) -> Result<()> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(self.unreachable("it is not a directory".into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::Missing {
                store: self.describe(),
                detail: e.to_string(),
                hint: format!(
                    "mount the backup volume at {root} (docker run -v NAME:{root}); to start with an empty store, \
                     create the directory (install -d -m 0700 {root}), or set `create_store = true` in [snapshot] \
                     for a demo or development store",
                    root = self.root.display()
                ),
            }),
            Err(e) => Err(self.unreachable(e.to_string())),
        }
    }

    fn unreachable(&self, detail: String) -> Error {
        Error::Unreachable {
            store: self.describe(),
            attempts: 1,
            detail,
            hint: format!(
                "mount the backup volume at {} (or create the directory to start with an empty store)",
                self.root.display()
            ),
        }
    }

    fn not_found(&self, key: &str) -> Error {
        Error::NotFound {
            store: self.describe(),
            what: key.into(),
        }
    }

    /// Creates the parent directories of `path` and fsyncs every directory it created,
    /// plus the parent of the topmost one.
    async fn make_parents(&self, path: &Path) -> Result<()> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        if tokio::fs::metadata(parent).await.is_ok() {
            return Ok(());
        }
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::io(format!("creating directory {}", parent.display()), e))?;
        let mut dir = parent.to_path_buf();
        while dir.starts_with(&self.root) {
            sync_dir(&dir).await?;
            if dir == self.root || !dir.pop() {
                break;
            }
        }
        Ok(())
    }

    async fn write_atomically(
        &self,
        key: &str,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        self.check_root().await?;
        let path = self.path_of(key)?;
        self.make_parents(&path).await?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The pid alone is not unique: in a container bosun is always pid 1, and a
        // killed run leaves its temp files behind. The start time of this process
        // (nanoseconds) tells runs apart.
        let tmp = dir.join(format!(
            ".{name}{TMP_MARK}{}-{}-{}",
            std::process::id(),
            *RUN_STAMP,
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut guard = TmpGuard {
            path: Some(tmp.clone()),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        let mut buf = vec![0u8; COPY_BUF];
        let mut total = 0u64;
        loop {
            let n = body
                .read(&mut buf)
                .await
                .map_err(|e| Error::io(format!("reading the data for {key}"), e))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n])
                .await
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            total += n as u64;
        }
        file.flush()
            .await
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        file.sync_all()
            .await
            .map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
        drop(file);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| Error::io(format!("renaming {} into place", path.display()), e))?;
        guard.path = None;
        sync_dir(&dir).await?;
        Ok(total)
    }
}

/// fsyncs a directory so that renames and creations in it are durable.
async fn sync_dir(dir: &Path) -> Result<()> {
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| Error::io("syncing a directory", io::Error::other(e)))?
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
}

/// Walks `dir` recursively, collecting files as keys relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<ObjectInfo>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.contains(TMP_MARK) {
            continue;
        }
        let ft = entry.file_type()?;
        let path = entry.path();
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file() {
            let rel = path.strip_prefix(root).map_err(io::Error::other)?;
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push(ObjectInfo {
                key,
                size: entry.metadata()?.len(),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl Store for FileStore {
    fn is_local(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn put(&self, key: &str, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<u64> {
        self.write_atomically(key, body).await
    }

    async fn get(&self, key: &str) -> Result<ObjectReader> {
        self.check_root().await?;
        let path = self.path_of(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(Box::pin(tokio::io::BufReader::with_capacity(COPY_BUF, f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.not_found(key)),
            Err(e) => Err(Error::io(format!("opening {}", path.display()), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.check_root().await?;
        // Walk the deepest directory that the prefix names in full.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path_of(dir_part)?
        };
        let root = self.root.clone();
        let prefix_owned = prefix.to_string();
        let mut found = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &start, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| Error::io("listing the store", io::Error::other(e)))?
        .map_err(|e| Error::io(format!("listing {} in {}", prefix, self.describe()), e))?;
        found.retain(|o| o.key.starts_with(&prefix_owned));
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.check_root().await?;
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("deleting {}", path.display()), e)),
        }
        // Remove directories left empty, up to (not including) the root.
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.root || !d.starts_with(&self.root) {
                break;
            }
            if tokio::fs::remove_dir(&d).await.is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        if let Some(parent) = path.parent() {
            // Best effort: the deletion itself succeeded.
            let _ = sync_dir(parent).await;
        }
        Ok(())
    }

    async fn put_small(&self, key: &str, data: &[u8]) -> Result<()> {
        let mut reader = data;
        self.write_atomically(key, &mut reader).await.map(|_| ())
    }

    async fn get_small(&self, key: &str) -> Result<Vec<u8>> {
        self.check_root().await?;
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(data),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.not_found(key)),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_root_is_unreachable_not_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path().join("absent"));
        let err = store.get_small("LATEST").await.expect_err("must fail");
        assert!(err.is_unreachable(), "{err}");
        assert!(!err.is_retryable(), "waiting will not create it: {err}");
        assert!(err.to_string().contains("mount the backup volume"), "{err}");
        assert!(err.to_string().contains("create_store"), "{err}");
        let err = store
            .put_small("LATEST", b"x")
            .await
            .expect_err("must fail");
        assert!(err.is_unreachable(), "{err}");
    }

    #[tokio::test]
    async fn links_planted_in_the_store_are_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("MANIFEST.json"), b"secret").expect("write");
        let root = dir.path().join("store");
        std::fs::create_dir_all(root.join("snapshots")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), root.join("snapshots/20260101T000000Z-x"))
            .expect("link");
        std::os::unix::fs::symlink(outside.path().join("MANIFEST.json"), root.join("LATEST"))
            .expect("link");
        let store = FileStore::new(&root);
        let key = "snapshots/20260101T000000Z-x/MANIFEST.json";
        for err in [
            store.get_small(key).await.expect_err("read through a link"),
            store.delete(key).await.expect_err("delete through a link"),
            store
                .get_small("LATEST")
                .await
                .expect_err("a linked object"),
        ] {
            assert!(
                err.to_string().contains("symlink inside the store"),
                "{err}"
            );
        }
        assert!(
            outside.path().join("MANIFEST.json").exists(),
            "deleted outside the store"
        );
        // Listing does not descend into the link either.
        let all = store.list("snapshots/").await.expect("list");
        assert!(all.is_empty(), "{all:?}");
    }

    #[tokio::test]
    async fn put_get_list_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path());
        let err = store.get_small("LATEST").await.expect_err("absent");
        assert!(err.is_not_found(), "{err}");
        store.put_small("a/b/c", b"hello").await.expect("put");
        store.put_small("a/d", b"x").await.expect("put");
        store.put_small("ab", b"y").await.expect("put");
        assert_eq!(store.get_small("a/b/c").await.expect("get"), b"hello");
        let keys: Vec<_> = store
            .list("a/")
            .await
            .expect("list")
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["a/b/c", "a/d"]);
        assert_eq!(store.list("a").await.expect("list").len(), 3);
        assert!(store.list("zzz/").await.expect("list").is_empty());
        store.delete("a/b/c").await.expect("delete");
        store.delete("a/b/c").await.expect("delete twice");
        assert!(!dir.path().join("a/b").exists(), "empty dir removed");
        // No temporary files remain.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[tokio::test]
    async fn failed_stream_leaves_nothing() {
        struct Failing(u32);
        impl AsyncRead for Failing {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<io::Result<()>> {
                if self.0 == 0 {
                    return std::task::Poll::Ready(Err(io::Error::other("dump failed")));
                }
                self.0 -= 1;
                buf.put_slice(&[7u8; 1000]);
                std::task::Poll::Ready(Ok(()))
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path());
        store.put_small("obj", b"old").await.expect("put");
        let err = store.put("obj", &mut Failing(5)).await.expect_err("fails");
        assert!(err.to_string().contains("dump failed"), "{err}");
        assert_eq!(store.get_small("obj").await.expect("old kept"), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
