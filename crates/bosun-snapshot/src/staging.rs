//! Staging: the verifying pass of a restore keeps the stored bytes of an item (the
//! object's bytes, still compressed and encrypted) in a file on local disk, so that the
//! loading pass reads them from there instead of from the store a second time.
//!
//! Staging is an optimisation, never a requirement: when the file cannot be made or
//! written (no room, read-only, permission), it is dropped, said once at info level, and
//! the loading pass reads the store as it would without staging. The loading pass checks
//! the staged bytes exactly as it checks the store's (sizes and sha256s of the stored and
//! the raw bytes), so a staged file changed in between fails it like a changed object.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::manifest::ManifestItem;
use crate::stream::human;

/// The staging directory's name inside `state_dir`.
pub const STAGING_DIR: &str = "staging";

/// Free space kept on the staging filesystem beyond the staged copy and the load's own
/// writes (see [`Staging::keep_free`]).
pub const STAGING_KEEP_FREE: u64 = 256 * 1024 * 1024;

/// Where a restore stages the stored bytes of an item, and how much room it leaves.
#[derive(Debug, Clone)]
pub struct Staging {
    /// The directory, created 0700 when missing (the keeper's: `state_dir/staging`).
    pub dir: PathBuf,
    /// Bytes that must stay free on the directory's filesystem besides the staged copy
    /// (`stored_size`) and the item's `raw_size` (what a `load` writes, when the data
    /// lives on the same disk): an item is staged only when all of that fits.
    pub keep_free: u64,
    /// Test seam: skip the free-space check, to reach the fallback on a failed write.
    #[doc(hidden)]
    pub skip_space_check: bool,
}

impl Staging {
    /// Staging in `dir`, keeping [`STAGING_KEEP_FREE`] free.
    pub fn new(dir: impl Into<PathBuf>) -> Staging {
        Staging {
            dir: dir.into(),
            keep_free: STAGING_KEEP_FREE,
            skip_space_check: false,
        }
    }

    /// The staging file for `item` of `snapshot`, or `None` (said once at info level)
    /// when it would not fit or cannot be made.
    pub(crate) fn create(&self, snapshot: &str, item: &ManifestItem) -> Option<StagedFile> {
        match self.try_create(snapshot, item) {
            Ok(Some(f)) => Some(f),
            Ok(None) => None,
            Err(e) => {
                tracing::info!(
                    item = %item.name,
                    "not staging item '{}' in {}: {e}; its load reads it from the store again",
                    item.name,
                    self.dir.display()
                );
                None
            }
        }
    }

    fn try_create(&self, snapshot: &str, item: &ManifestItem) -> io::Result<Option<StagedFile>> {
        prepare_dir(&self.dir)?;
        if !self.skip_space_check {
            let st = rustix::fs::statvfs(&self.dir)?;
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            let needed = item
                .stored_size
                .saturating_add(item.raw_size)
                .saturating_add(self.keep_free);
            if free < needed {
                tracing::info!(
                    item = %item.name,
                    "not staging item '{}' in {}: {} free, staging needs {} ({} stored, room for the load's {} and {} to spare); its load reads it from the store again",
                    item.name,
                    self.dir.display(),
                    human(free),
                    human(needed),
                    human(item.stored_size),
                    human(item.raw_size),
                    human(self.keep_free)
                );
                return Ok(None);
            }
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{snapshot}.{}.{}-{}.stored",
            item.name,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        // O_EXCL (create_new) with O_NOFOLLOW: never an existing file, never a link.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        Ok(Some(StagedFile {
            file: Some(file),
            path,
            written: 0,
            unlinked: false,
        }))
    }
}

/// Makes `dir` (0700) when missing; refuses anything but a directory of bosun's own
/// user, and closes it to others when it is open.
fn prepare_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let md = std::fs::symlink_metadata(dir)?;
    if !md.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    if md.uid() != crate::safe_fs::euid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("owned by uid {}, not bosun's", md.uid()),
        ));
    }
    if md.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Removes what a restore left in the staging directory `dir` (a crash, a kill): the
/// keeper calls it at its start. Returns how many entries were removed; a missing
/// directory is none.
pub fn clear_staging(dir: &Path) -> io::Result<usize> {
    use rustix::fs::{Mode, OFlags};
    let fd = match rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let names = crate::safe_fs::list_names(std::os::fd::AsFd::as_fd(&fd))?;
    crate::safe_fs::remove_contents(std::os::fd::AsFd::as_fd(&fd))?;
    Ok(names.len())
}

/// A staging file: its name is removed when it is dropped, or as soon as the loading
/// pass opened it (the open descriptor keeps its bytes until that pass ends).
#[derive(Debug)]
pub(crate) struct StagedFile {
    file: Option<File>,
    path: PathBuf,
    written: u64,
    unlinked: bool,
}

impl StagedFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().expect("a staged file has its file");
        file.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// For the loading pass: the file from its start, its name already gone.
    pub(crate) fn into_reader(mut self) -> io::Result<tokio::fs::File> {
        let mut file = self.file.take().expect("a staged file has its file");
        self.unlink();
        file.rewind()?;
        Ok(tokio::fs::File::from_std(file))
    }

    fn unlink(&mut self) {
        if !self.unlinked {
            self.unlinked = true;
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!("removing the staging file {}: {e}", self.path.display());
                }
            }
        }
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        self.unlink();
    }
}

/// The staging file of a verifying pass, shared with the [`Tee`] that writes it; `None`
/// once dropped (a write failed) or taken.
pub(crate) type StageSlot = Arc<Mutex<Option<StagedFile>>>;

/// Passes the store's bytes through unchanged, writing a copy into the staging file.
/// A failed write drops the staging file (said once) and never fails the read.
pub(crate) struct Tee<R> {
    inner: R,
    slot: StageSlot,
    item: String,
}

impl<R> Tee<R> {
    pub(crate) fn new(inner: R, slot: StageSlot, item: &str) -> Tee<R> {
        Tee {
            inner,
            slot,
            item: item.to_string(),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Tee<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let new = &buf.filled()[before..];
            let mut slot = this.slot.lock().expect("poisoned");
            // Runs on the decoding thread (a blocking one): a plain write is fine.
            if let (false, Some(staged)) = (new.is_empty(), slot.as_mut()) {
                if let Err(e) = staged.write(new) {
                    tracing::info!(
                        item = %this.item,
                        "not staging item '{}': writing {} failed after {} ({e}); its load reads it from the store again",
                        this.item,
                        staged.path().display(),
                        human(staged.written())
                    );
                    *slot = None;
                }
            }
        }
        r
    }
}
