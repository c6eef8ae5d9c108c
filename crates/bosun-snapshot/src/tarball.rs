//! Files and directories as tar archives (blocking code, run on tokio's blocking pool).
//!
//! An archive holds one root entry named `data` (the file, or the directory with
//! everything under it), so that a file and a directory restore the same way.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of the root entry in every archive.
pub(crate) const ROOT: &str = "data";
/// Marker in the names of temporary restore directories.
pub(crate) const RESTORE_MARK: &str = ".bosun-restore-";
/// Marker in the names of directories holding the previous data during a swap.
pub(crate) const OLD_MARK: &str = ".bosun-old-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(mark: &str) -> String {
    format!(
        "{mark}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `src` (a file or directory; a symlink is followed) as a tar archive to `out`.
///
/// Keeps regular files, directories and symlinks with their modes, owners and mtimes;
/// skips sockets, fifos and devices with a warning. A file that shrinks while it is read
/// is padded with zeros (and a warning); one that grows is cut at the size it had.
pub(crate) fn write_tar<W: Write>(src: &Path, out: W) -> io::Result<W> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    // The root is followed when it is a symlink (a data directory linked into a volume
    // is backed up by its contents); symlinks below it are kept as symlinks.
    let meta = fs::metadata(src)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    if !(meta.is_dir() || meta.is_file()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is neither a file, a directory nor a symlink",
                src.display()
            ),
        ));
    }
    append(&mut builder, src, Path::new(ROOT), &meta)?;
    builder.into_inner()
}

fn header_for(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_mode(meta.mode() & 0o7777);
    h.set_entry_type(kind);
    h.set_size(0);
    h
}

fn append<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    meta: &fs::Metadata,
) -> io::Result<()> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map_err(ctx)?;
        let mut h = header_for(meta, tar::EntryType::Symlink);
        b.append_link(&mut h, name, target).map_err(ctx)?;
    } else if ft.is_file() {
        let mut h = header_for(meta, tar::EntryType::Regular);
        let size = meta.len();
        h.set_size(size);
        let file = fs::File::open(path).map_err(ctx)?;
        let mut body = Exact {
            inner: file.take(size),
            remaining: size,
            padded: false,
        };
        b.append_data(&mut h, name, &mut body).map_err(ctx)?;
        if body.padded {
            tracing::warn!(path = %path.display(), "file shrank while it was archived; padded with zeros");
        }
    } else if ft.is_dir() {
        let mut h = header_for(meta, tar::EntryType::Directory);
        b.append_data(&mut h, name, io::empty()).map_err(ctx)?;
        let mut names: Vec<OsString> = fs::read_dir(path)
            .map_err(ctx)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(ctx)?;
        names.sort();
        for child in names {
            let child_path = path.join(&child);
            let child_meta = match fs::symlink_metadata(&child_path) {
                Ok(m) => m,
                // Deleted while we walked: nothing to keep.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ctx(e)),
            };
            append(b, &child_path, &name.join(&child), &child_meta)?;
        }
    } else {
        tracing::warn!(path = %path.display(), "skipping a socket, fifo or device file in a backup");
    }
    Ok(())
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

/// Is `dest` a mount point (a different device from its parent)?
fn is_mount_point(dest: &Path, meta: &fs::Metadata) -> bool {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return true,
    };
    match fs::metadata(parent) {
        Ok(pm) => pm.dev() != meta.dev(),
        Err(_) => false,
    }
}

/// Removes temporary directories left by an earlier restore that was killed.
fn clean_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && (name.contains(RESTORE_MARK) || name.contains(OLD_MARK)) {
            let p = e.path();
            tracing::info!(path = %p.display(), "removing a leftover from an interrupted restore");
            let _ = remove_any(&p);
        }
    }
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Restores an archive read from `input` to `dest`.
///
/// The archive is unpacked into a temporary sibling of `dest` (same filesystem), then
/// `input` is read to its end: the checksum check of an item stream happens there, so
/// nothing is swapped in before every byte was verified. Only then is the old `dest`
/// moved aside, the new tree renamed into place, and the old one deleted. A failure at
/// any point before the swap leaves `dest` exactly as it was and removes the temporary
/// tree. When `dest` is a mount point (a volume), the swap happens inside it, entry by
/// entry, with the same rule: old contents are removed only after the new ones are
/// complete and verified.
pub(crate) fn restore_tar<R: Read>(input: R, dest: &Path) -> io::Result<RestoreOutcome> {
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot restore to {}: no file name", dest.display()),
            )
        })?;
    if dest.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to restore to {} (contains ..)", dest.display()),
        ));
    }
    // A symlink at dest (a data directory linked into a volume) is restored through:
    // the data goes where the link points, the link stays.
    let resolved;
    let dest = match fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(dest) {
            Ok(target) => {
                tracing::info!(link = %dest.display(), target = %target.display(), "restoring through a symlink");
                resolved = target;
                resolved.as_path()
            }
            Err(_) => dest,
        },
        _ => dest,
    };
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(file_name);
    let parent = dest.parent().unwrap_or(Path::new("/")).to_path_buf();
    fs::create_dir_all(&parent)?;
    let existing = match fs::symlink_metadata(dest) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let in_place = existing
        .as_ref()
        .is_some_and(|m| m.is_dir() && is_mount_point(dest, m));

    // Where to unpack: beside dest, or inside it when it is a mount point.
    let (work_parent, stale_prefix) = if in_place {
        (dest.to_path_buf(), String::new())
    } else {
        (parent.clone(), format!(".{file_name}"))
    };
    clean_stale(&work_parent, &stale_prefix);
    let tmp = work_parent.join(format!("{stale_prefix}{}", unique(RESTORE_MARK)));
    fs::create_dir(&tmp)?;
    let result = unpack_and_swap(input, dest, &tmp, &work_parent, &stale_prefix, in_place);
    let _ = remove_any(&tmp);
    let replaced = result?;
    sync_dir(&parent);
    Ok(RestoreOutcome {
        dest: dest.to_path_buf(),
        in_place,
        replaced,
    })
}

fn unpack_and_swap<R: Read>(
    input: R,
    dest: &Path,
    tmp: &Path,
    work_parent: &Path,
    stale_prefix: &str,
    in_place: bool,
) -> io::Result<bool> {
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    archive.set_preserve_ownerships(root);
    // Unpack validates every path: entries with `..`, absolute paths and writes through
    // symlinks that leave `tmp` are refused or made relative.
    archive.unpack(tmp)?;
    // Read to the very end: the item stream verifies size and sha256 at end of stream.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())?;

    let staged = tmp.join(ROOT);
    let staged_meta = fs::symlink_metadata(&staged).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the archive has no 'data' root entry (not written by bosun?)",
        )
    })?;
    if in_place {
        if !staged_meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a mount point (a directory) but the item is a file",
                    dest.display()
                ),
            ));
        }
        swap_contents(dest, &staged, tmp)?;
        let _ = fs::set_permissions(
            dest,
            fs::Permissions::from_mode(staged_meta.mode() & 0o7777),
        );
        return Ok(true);
    }
    let old = work_parent.join(format!("{stale_prefix}{}", unique(OLD_MARK)));
    let had_old = match fs::rename(dest, &old) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if let Err(e) = fs::rename(&staged, dest) {
        if had_old {
            // Put the old data back.
            let _ = fs::rename(&old, dest);
        }
        return Err(e);
    }
    sync_dir(work_parent);
    if had_old {
        if let Err(e) = remove_any(&old) {
            tracing::warn!(path = %old.display(), error = %e, "could not remove the previous data after a restore");
        }
    }
    Ok(had_old)
}

/// Replaces the contents of directory `dest` by those of `staged` (same filesystem).
fn swap_contents(dest: &Path, staged: &Path, tmp: &Path) -> io::Result<()> {
    let old = dest.join(unique(OLD_MARK));
    fs::create_dir(&old)?;
    let tmp_name = tmp.file_name().map(OsString::from);
    let old_name = old.file_name().map(OsString::from);
    for e in fs::read_dir(dest)? {
        let e = e?;
        let name = e.file_name();
        if Some(&name) == tmp_name.as_ref() || Some(&name) == old_name.as_ref() {
            continue;
        }
        fs::rename(e.path(), old.join(&name))?;
    }
    for e in fs::read_dir(staged)? {
        let e = e?;
        fs::rename(e.path(), dest.join(e.file_name()))?;
    }
    sync_dir(dest);
    if let Err(e) = fs::remove_dir_all(&old) {
        tracing::warn!(path = %old.display(), error = %e, "could not remove the previous data after a restore");
    }
    Ok(())
}
