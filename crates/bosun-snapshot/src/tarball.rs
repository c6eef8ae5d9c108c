//! Files and directories as tar archives (blocking code, run on tokio's blocking pool).
//!
//! An archive holds one root entry named `data` (the file, or the directory with
//! everything under it), so that a file and a directory restore the same way. The
//! restore side, which trusts none of this, is [`crate::unpack`].
//!
//! The walk goes through directory descriptors (`openat` with `O_NOFOLLOW`, see
//! [`crate::safe_fs`]): a unit that swaps one of its directories for a symlink while its
//! data is archived gets the symlink archived, never what it points to.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::safe_fs::{self, kind, open_dir_at};

/// The name of the root entry in every archive.
pub(crate) const ROOT: &str = "data";
/// Marker in the names of temporary restore directories.
pub(crate) const RESTORE_MARK: &str = ".bosun-restore-";
/// Marker in the names of directories holding the previous data during a swap (older
/// bosun versions; leftovers are still cleaned up).
pub(crate) const OLD_MARK: &str = ".bosun-old-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn unique(mark: &str) -> String {
    format!(
        "{mark}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `src` (a file or directory) as a tar archive to `out`.
///
/// A symlink at `src` or above it is followed only when root's in directories only root
/// can change (see [`crate::safe_fs`]); any other is refused. Below `src`, regular files,
/// directories and symlinks are kept (symlinks as links) with their modes, owners and
/// mtimes; sockets, fifos and devices are skipped with a warning. A file that shrinks
/// while it is read is padded with zeros (and a warning); one that grows is cut at the
/// size it had.
pub(crate) fn write_tar<W: Write>(src: &Path, out: W) -> io::Result<W> {
    let loc = safe_fs::locate(src, false)?;
    for link in &loc.followed {
        tracing::debug!(link = %link.display(), target = %loc.path.display(), "backing up through a root-owned symlink");
    }
    match loc.stat.as_ref().map(kind) {
        Some(FileType::Directory | FileType::RegularFile) => {}
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is neither a file nor a directory", loc.path.display()),
            ))
        }
        None => return Err(safe_fs::at_path(&loc.path, Errno::NOENT)),
    }
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    if !append(
        &mut builder,
        loc.parent.as_fd(),
        &loc.name,
        Path::new(ROOT),
        &loc.path,
    )? {
        // Gone between the walk and the archive.
        return Err(safe_fs::at_path(&loc.path, Errno::NOENT));
    }
    builder.into_inner()
}

fn header_for(st: &rfs::Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_entry_type(kind);
    h.set_size(0);
    if let Some(gnu) = h.as_gnu_mut() {
        gnu.set_device_major(0);
        gnu.set_device_minor(0);
    }
    h
}

/// Appends `name` in `dir` (and what is below it) as `arc`; `shown` is its path for
/// messages. `Ok(false)`: it no longer exists.
fn append<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    arc: &Path,
    shown: &Path,
) -> io::Result<bool> {
    // An entry that changes type between the stat and the open is looked at again.
    for _ in 0..3 {
        match append_once(b, dir, name, arc, shown)? {
            Appended::Done => return Ok(true),
            Appended::Gone => return Ok(false),
            Appended::Changed => continue,
        }
    }
    Err(io::Error::other(format!(
        "{} kept changing while it was archived",
        shown.display()
    )))
}

enum Appended {
    Done,
    Gone,
    /// Not what the stat said any more; nothing was written.
    Changed,
}

/// One attempt at appending `name` in `dir` as `arc` (`shown` in messages), by
/// what it is now: a symlink, a regular file, or a directory with everything
/// below it; sockets, fifos and devices are skipped with a warning.
fn append_once<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    arc: &Path,
    shown: &Path,
) -> io::Result<Appended> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        // Deleted while we walked: nothing to keep.
        Err(Errno::NOENT) => return Ok(Appended::Gone),
        Err(e) => return Err(safe_fs::at_path(shown, e)),
    };
    match kind(&st) {
        FileType::Symlink => append_symlink(b, dir, name, &st, arc, shown),
        FileType::RegularFile => append_file(b, dir, name, arc, shown),
        FileType::Directory => append_dir(b, dir, name, arc, shown),
        _ => {
            tracing::warn!(path = %shown.display(), "skipping a socket, fifo or device file in a backup");
            Ok(Appended::Done)
        }
    }
}

/// The symlink `name` (stat `st`) with its target as it reads now.
fn append_symlink<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &rfs::Stat,
    arc: &Path,
    shown: &Path,
) -> io::Result<Appended> {
    let ctx = |e: io::Error| safe_fs::at_path(shown, e);
    let target = match rfs::readlinkat(dir, name, Vec::new()) {
        Ok(t) => PathBuf::from(OsString::from_vec(t.into_bytes())),
        Err(Errno::NOENT | Errno::INVAL) => return Ok(Appended::Changed),
        Err(e) => return Err(ctx(e.into())),
    };
    let mut h = header_for(st, tar::EntryType::Symlink);
    b.append_link(&mut h, arc, target).map_err(ctx)?;
    Ok(Appended::Done)
}

/// The regular file `name`, opened without following links and checked again
/// once open; exactly the size it had then (zeros if it shrank meanwhile).
fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    arc: &Path,
    shown: &Path,
) -> io::Result<Appended> {
    let ctx = |e: io::Error| safe_fs::at_path(shown, e);
    // O_NONBLOCK: a fifo swapped in since the stat must not block the open.
    let flags = OFlags::RDONLY | OFlags::NONBLOCK;
    let fd = match rfs::openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => return Ok(Appended::Changed),
        Err(e) => return Err(ctx(e.into())),
    };
    let st = rfs::fstat(&fd).map_err(|e| ctx(e.into()))?;
    if kind(&st) != FileType::RegularFile {
        return Ok(Appended::Changed);
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    let mut h = header_for(&st, tar::EntryType::Regular);
    h.set_size(size);
    let mut body = Exact {
        inner: fs::File::from(fd).take(size),
        remaining: size,
        padded: false,
    };
    b.append_data(&mut h, arc, &mut body).map_err(ctx)?;
    if body.padded {
        tracing::warn!(path = %shown.display(), "file shrank while it was archived; padded with zeros");
    }
    Ok(Appended::Done)
}

/// The directory `name`, opened without following links, then each of its
/// entries (recursively, through [`append`]).
fn append_dir<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    arc: &Path,
    shown: &Path,
) -> io::Result<Appended> {
    let ctx = |e: io::Error| safe_fs::at_path(shown, e);
    let fd = match open_dir_at(dir, name) {
        Ok(fd) => fd,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)
            ) =>
        {
            return Ok(Appended::Changed)
        }
        Err(e) => return Err(ctx(e)),
    };
    let st = rfs::fstat(&fd).map_err(|e| ctx(e.into()))?;
    let mut h = header_for(&st, tar::EntryType::Directory);
    b.append_data(&mut h, arc, io::empty()).map_err(ctx)?;
    for child in safe_fs::list_names(fd.as_fd()).map_err(ctx)? {
        append(
            b,
            fd.as_fd(),
            &child,
            &arc.join(&child),
            &shown.join(&child),
        )?;
    }
    Ok(Appended::Done)
}

/// Reads exactly `remaining` bytes: the file's bytes, then zeros if it shrank.
struct Exact {
    inner: io::Take<fs::File>,
    remaining: u64,
    padded: bool,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let mut n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            buf[..max].fill(0);
            self.padded = true;
            n = max;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// The path restored.
    pub dest: PathBuf,
    /// True when `dest` was a mount point, so its contents were swapped instead of the
    /// directory itself.
    pub in_place: bool,
    /// True when there was something at `dest` before, now replaced.
    pub replaced: bool,
}
