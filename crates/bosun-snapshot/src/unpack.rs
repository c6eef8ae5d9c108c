//! Restoring an archive of a path (blocking code, run on tokio's blocking pool).
//!
//! The store is not trusted: whoever can write it writes the manifest too, so checksums
//! only prove that the bytes are the ones the manifest names. What protects the disk is
//! that an archive must look exactly like one bosun's writer produces ([`write_tar`]):
//! one root entry `data` (a directory or a regular file), then, for a directory, its
//! entries depth first, each right after its own directory, as regular files,
//! directories and symlinks with plain relative names. Anything else (`..`, absolute
//! names, a symlink root, hard links, devices, fifos, an entry below a symlink, a
//! duplicate, PAX headers, data after the end) fails the restore, naming the entry.
//!
//! Nothing at the destination changes before the archive was read to its end, every
//! entry accepted and the item stream verified: the tree is built in a temporary
//! directory (mode 0700, root's) beside the destination, through directory descriptors
//! only (`openat`, `O_NOFOLLOW`, `O_EXCL`), so no path is resolved twice and no link is
//! followed, even in a directory a unit owns and changes meanwhile. Then the old data is
//! renamed into that temporary directory, the new tree renamed into place, and the old
//! one deleted with it.
//!
//! [`write_tar`]: crate::tarball::write_tar

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use crate::safe_fs::{self, kind, open_dir_at, Located};
use crate::tarball::{unique, RestoreOutcome, OLD_MARK, RESTORE_MARK, ROOT};

/// The name of the previous data inside the temporary directory during a swap.
const OLD: &str = "old";

/// The archive is not one bosun's writer could have produced.
fn tampered(entry: &[u8], why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "archive entry {:?} {why}; bosun's writer never produces that: the snapshot was \
             tampered with or damaged",
            String::from_utf8_lossy(entry)
        ),
    )
}

/// Owner, mode and mtime of an entry, applied after its contents.
#[derive(Debug, Clone, Copy)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
}

impl Meta {
    fn of<R: Read>(e: &tar::Entry<'_, R>, path: &[u8]) -> io::Result<Meta> {
        let h = e.header();
        let bad = |_| tampered(path, "has an unreadable header field");
        let id =
            |v: u64| u32::try_from(v).map_err(|_| tampered(path, "has an owner id out of range"));
        Ok(Meta {
            uid: id(h.uid().map_err(bad)?)?,
            gid: id(h.gid().map_err(bad)?)?,
            // Set-uid and set-gid files are never restored as such: whoever can
            // write the store must not be able to plant a privileged binary.
            mode: h.mode().map_err(bad)?
                & if h.entry_type().is_dir() {
                    0o7777
                } else {
                    0o1777
                },
            mtime: i64::try_from(h.mtime().map_err(bad)?).unwrap_or(i64::MAX),
        })
    }

    fn times(&self) -> Timestamps {
        let t = Timespec {
            tv_sec: self.mtime,
            tv_nsec: 0,
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }

    /// Owner (when root), then mode (a chown clears set-id bits), then mtime.
    fn apply(&self, fd: BorrowedFd<'_>, owners: bool) -> io::Result<()> {
        if owners {
            rfs::fchown(
                fd,
                Some(Uid::from_raw(self.uid)),
                Some(Gid::from_raw(self.gid)),
            )?;
        }
        rfs::fchmod(fd, Mode::from_raw_mode(self.mode))?;
        rfs::futimens(fd, &self.times())?;
        Ok(())
    }
}

/// A directory of the archive being filled.
struct OpenDir {
    /// Its name in the archive (`data/sub`).
    path: Vec<u8>,
    fd: OwnedFd,
    meta: Meta,
}

/// Which kind of root an archive has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RootKind {
    Dir,
    File,
}

/// Builds the archive's tree in the temporary directory.
struct Unpacker<'a> {
    tmp: BorrowedFd<'a>,
    owners: bool,
    /// What the destination is now (`None`: absent): the root must be of the same kind.
    expect: Option<RootKind>,
    dest: &'a Path,
    root: Option<(RootKind, Meta)>,
    /// The directories from `data` down to the one entries are being added to.
    stack: Vec<OpenDir>,
}

/// Where an entry goes.
enum Place<'a> {
    /// The item's root, `data`.
    Root,
    /// `name` in the archive's directory `dir` (`data/sub`).
    Below { dir: &'a [u8], name: &'a [u8] },
}

/// Checks an entry name and splits it, or says what is wrong with it.
fn split_name(raw: &[u8], is_dir: bool) -> Result<Place<'_>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("has an absolute name");
    }
    let name = match raw.strip_suffix(b"/") {
        Some(n) if is_dir => n,
        _ => raw,
    };
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" => return Err("has an empty name component"),
            b"." => return Err("has a `.` component"),
            b".." => return Err("has a `..` component (it would leave the item)"),
            p if p.contains(&0) => return Err("has a NUL byte in its name"),
            _ => {}
        }
    }
    if name == ROOT.as_bytes() {
        return Ok(Place::Root);
    }
    match name.strip_prefix(ROOT.as_bytes()) {
        Some(rest) if rest.first() == Some(&b'/') => {}
        _ => return Err("is not under the item's root `data`"),
    }
    let cut = name
        .iter()
        .rposition(|b| *b == b'/')
        .expect("checked: below data/");
    Ok(Place::Below {
        dir: &name[..cut],
        name: &name[cut + 1..],
    })
}

fn exists_twice(path: &[u8], e: Errno) -> io::Error {
    if e == Errno::EXIST {
        tampered(path, "appears twice")
    } else {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("archive entry {:?}: {e}", String::from_utf8_lossy(path)),
        )
    }
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> io::Result<()> {
        let path = e.path_bytes().into_owned();
        if e.pax_extensions()?.is_some() {
            return Err(tampered(&path, "has PAX extended headers"));
        }
        let ty = e.header().entry_type();
        let split = split_name(&path, ty.is_dir()).map_err(|why| tampered(&path, why))?;
        let meta = Meta::of(e, &path)?;
        let Place::Below { dir, name } = split else {
            return self.root_entry(e, &path, meta);
        };
        if self.root.is_none() {
            return Err(tampered(&path, "comes before the root entry `data`"));
        }
        // Entries follow their directory: close the directories they are not in.
        while self.stack.last().is_some_and(|d| d.path != dir) {
            self.close_dir()?;
        }
        let Some(parent) = self.stack.last() else {
            return Err(tampered(
                &path,
                "is not right after its directory (or that is not a directory)",
            ));
        };
        let parent = parent.fd.as_fd();
        let name = OsStr::from_bytes(name);
        if ty.is_dir() {
            self.no_data(e, &path)?;
            let fd = self.make_dir(parent, name, &path)?;
            let path = path.strip_suffix(b"/").unwrap_or(&path).to_vec();
            self.stack.push(OpenDir { path, fd, meta });
        } else if ty.is_file() {
            self.write_file(parent, name, e, &path, meta)?;
        } else if ty.is_symlink() {
            self.no_data(e, &path)?;
            let target = match e.link_name_bytes() {
                Some(t) if !t.is_empty() && !t.contains(&0) => t.into_owned(),
                _ => return Err(tampered(&path, "is a symlink without a valid target")),
            };
            rfs::symlinkat(OsStr::from_bytes(&target), parent, name)
                .map_err(|e| exists_twice(&path, e))?;
            if self.owners {
                rfs::chownat(
                    parent,
                    name,
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            rfs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)?;
        } else {
            return Err(tampered(&path, unsupported(ty)));
        }
        Ok(())
    }

    fn root_entry<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &[u8],
        meta: Meta,
    ) -> io::Result<()> {
        if self.root.is_some() {
            return Err(tampered(path, "appears twice"));
        }
        let ty = e.header().entry_type();
        let kind = if ty.is_dir() {
            RootKind::Dir
        } else if ty.is_file() {
            RootKind::File
        } else if ty.is_symlink() {
            return Err(tampered(
                path,
                "(the item's root) is a symlink (bosun archives what a link points to, never the link)",
            ));
        } else {
            return Err(tampered(path, unsupported(ty)));
        };
        if let Some(expect) = self.expect.filter(|k| *k != kind) {
            let (is, holds) = match expect {
                RootKind::Dir => ("a directory", "a file"),
                RootKind::File => ("a file", "a directory"),
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the snapshot holds {holds} for {} but it is {is} here: bosun does not \
                     replace one by the other (remove it first if that is what you want)",
                    self.dest.display()
                ),
            ));
        }
        self.root = Some((kind, meta));
        let name = OsStr::new(ROOT);
        match kind {
            RootKind::Dir => {
                self.no_data(e, path)?;
                let fd = self.make_dir(self.tmp, name, path)?;
                self.stack.push(OpenDir {
                    path: ROOT.as_bytes().to_vec(),
                    fd,
                    meta,
                });
            }
            RootKind::File => self.write_file(self.tmp, name, e, path, meta)?,
        }
        Ok(())
    }

    fn no_data<R: Read>(&self, e: &tar::Entry<'_, R>, path: &[u8]) -> io::Result<()> {
        match e.header().entry_size() {
            Ok(0) => Ok(()),
            _ => Err(tampered(
                path,
                "carries data where bosun's writer writes none",
            )),
        }
    }

    fn make_dir(&self, parent: BorrowedFd<'_>, name: &OsStr, path: &[u8]) -> io::Result<OwnedFd> {
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
            .map_err(|e| exists_twice(path, e))?;
        open_dir_at(parent, name)
    }

    fn write_file<R: Read>(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        e: &mut tar::Entry<'_, R>,
        path: &[u8],
        meta: Meta,
    ) -> io::Result<()> {
        let fd = rfs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|err| exists_twice(path, err))?;
        let mut file = fs::File::from(fd);
        let size = e.header().entry_size().unwrap_or(0);
        let copied = io::copy(e, &mut file)?;
        if copied != size {
            return Err(tampered(path, "ends before its size"));
        }
        meta.apply(file.as_fd(), self.owners)
    }

    /// Gives the innermost open directory its owner, mode and mtime (after its contents).
    fn close_dir(&mut self) -> io::Result<()> {
        if let Some(d) = self.stack.pop() {
            d.meta.apply(d.fd.as_fd(), self.owners)?;
        }
        Ok(())
    }
}

fn unsupported(ty: tar::EntryType) -> &'static str {
    match ty {
        tar::EntryType::Link => {
            "is a hard link (bosun's writer stores none: it could point outside the item)"
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            "is a device file (bosun's writer skips devices)"
        }
        tar::EntryType::Fifo => "is a fifo (bosun's writer skips fifos)",
        _ => "has an entry type bosun's writer never uses",
    }
}

/// Reads the whole archive into `tmp/data`; then reads `input` to its end (where an item
/// stream verifies its size and checksums), which must hold nothing but zeros.
fn unpack<R: Read>(
    input: R,
    tmp: BorrowedFd<'_>,
    expect: Option<RootKind>,
    dest: &Path,
) -> io::Result<(RootKind, Meta)> {
    let mut archive = tar::Archive::new(input);
    let mut u = Unpacker {
        tmp,
        owners: safe_fs::euid() == 0,
        expect,
        dest,
        root: None,
        stack: Vec::new(),
    };
    for entry in archive.entries()? {
        u.entry(&mut entry?)?;
    }
    while !u.stack.is_empty() {
        u.close_dir()?;
    }
    let root = u.root.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the archive has no root entry `data` (not written by bosun?)",
        )
    })?;
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = rest.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(tampered(
                b"(end)",
                "is followed by data after the end of the archive",
            ));
        }
    }
    Ok(root)
}

/// Removes temporary directories left by an earlier restore that was killed.
fn clean_stale(dir: BorrowedFd<'_>, prefix: &str) {
    let Ok(names) = safe_fs::list_names(dir) else {
        return;
    };
    for name in names {
        let n = name.to_string_lossy();
        if n.starts_with(prefix) && (n.contains(RESTORE_MARK) || n.contains(OLD_MARK)) {
            tracing::info!(name = %n, "removing a leftover from an interrupted restore");
            let _ = safe_fs::remove_all_at(dir, &name);
        }
    }
}

/// Restores an archive read from `input` to `dest` (see the module).
///
/// When `dest` is a mount point (a volume), its contents are swapped instead of the
/// directory itself, with the same rule: the old contents go only once the new ones are
/// complete and verified. A symlink at `dest` or above it is followed only when trusted
/// (see [`safe_fs`]); any other fails the restore before anything is read.
pub(crate) fn restore_tar<R: Read>(input: R, dest: &Path) -> io::Result<RestoreOutcome> {
    let Located {
        parent,
        name,
        path,
        stat,
        followed,
    } = safe_fs::locate(dest, true)?;
    for link in &followed {
        tracing::info!(link = %link.display(), target = %path.display(), "restoring through a root-owned symlink");
    }
    let expect = match stat.as_ref().map(kind) {
        None => None,
        Some(FileType::Directory) => Some(RootKind::Dir),
        Some(FileType::RegularFile) => Some(RootKind::File),
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is neither a file nor a directory: bosun does not replace it",
                    path.display()
                ),
            ))
        }
    };
    // A directory on another device than its parent is a mount point: work inside it.
    let mount = match (&stat, expect) {
        (Some(st), Some(RootKind::Dir)) if st.st_dev != rfs::fstat(&parent)?.st_dev => {
            Some(open_dir_at(parent.as_fd(), &name).map_err(|e| safe_fs::at_path(&path, e))?)
        }
        _ => None,
    };
    let (work, prefix) = match &mount {
        Some(fd) => (fd.as_fd(), String::new()),
        None => (parent.as_fd(), format!(".{}", name.to_string_lossy())),
    };
    clean_stale(work, &prefix);
    let tmp_name = OsString::from(format!("{prefix}{}", unique(RESTORE_MARK)));
    let tmp_path = match &mount {
        Some(_) => path.join(&tmp_name),
        None => path.with_file_name(&tmp_name),
    };
    let result = in_temp_dir(work, &tmp_name, &tmp_path, |tmp| {
        let (_, meta) = unpack(input, tmp, expect, &path)?;
        match &mount {
            Some(dest) => swap_contents(dest.as_fd(), tmp, &tmp_name, meta).map(|()| true),
            None => swap(parent.as_fd(), &name, tmp),
        }
    });
    let replaced = result?;
    safe_fs::sync(parent.as_fd());
    Ok(RestoreOutcome {
        dest: path,
        in_place: mount.is_some(),
        replaced,
    })
}

/// Runs `f` in a new directory `work/tmp_name` (mode 0700, bosun's), then removes it
/// with what is in it, unless a failed swap left the previous data there (`old`).
fn in_temp_dir(
    work: BorrowedFd<'_>,
    tmp_name: &OsStr,
    tmp_path: &Path,
    f: impl FnOnce(BorrowedFd<'_>) -> io::Result<bool>,
) -> io::Result<bool> {
    rfs::mkdirat(work, tmp_name, Mode::from_raw_mode(0o700))
        .map_err(|e| safe_fs::at_path(tmp_path, e))?;
    let tmp = match open_dir_at(work, tmp_name) {
        Ok(fd) if rfs::fstat(&fd)?.st_uid == safe_fs::euid() => fd,
        Ok(_) => {
            return Err(io::Error::other(format!(
                "{} was replaced while in use",
                tmp_path.display()
            )))
        }
        Err(e) => return Err(safe_fs::at_path(tmp_path, e)),
    };
    let result = f(tmp.as_fd());
    if result.is_err() && rfs::statat(&tmp, OLD, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
        // The swap failed half-way and could not be undone: keep the previous data.
        return result.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{e} (the previous data is in {})",
                    tmp_path.join(OLD).display()
                ),
            )
        });
    }
    if let Err(e) = safe_fs::remove_contents(tmp.as_fd()) {
        tracing::warn!(path = %tmp_path.display(), error = %e, "could not remove the previous data after a restore");
    }
    let _ = rfs::unlinkat(work, tmp_name, AtFlags::REMOVEDIR);
    result
}

/// Renames `parent/name` into `tmp/old` (if there), then `tmp/data` to `parent/name`.
fn swap(parent: BorrowedFd<'_>, name: &OsStr, tmp: BorrowedFd<'_>) -> io::Result<bool> {
    let had_old = match rfs::renameat(parent, name, tmp, OLD) {
        Ok(()) => true,
        Err(Errno::NOENT) => false,
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = rfs::renameat(tmp, ROOT, parent, name) {
        if had_old {
            // Put the old data back.
            let _ = rfs::renameat(tmp, OLD, parent, name);
        }
        return Err(e.into());
    }
    safe_fs::sync(parent);
    Ok(had_old)
}

/// Replaces the contents of the mounted directory `dest` by those of `tmp/data`.
fn swap_contents(
    dest: BorrowedFd<'_>,
    tmp: BorrowedFd<'_>,
    tmp_name: &OsStr,
    meta: Meta,
) -> io::Result<()> {
    rfs::mkdirat(tmp, OLD, Mode::from_raw_mode(0o700))?;
    let old = open_dir_at(tmp, OsStr::new(OLD))?;
    for name in safe_fs::list_names(dest)? {
        if name != tmp_name {
            rfs::renameat(dest, &name, &old, &name)?;
        }
    }
    let staged = open_dir_at(tmp, OsStr::new(ROOT))?;
    for name in safe_fs::list_names(staged.as_fd())? {
        rfs::renameat(&staged, &name, dest, &name)?;
    }
    meta.apply(dest, safe_fs::euid() == 0)?;
    safe_fs::sync(dest);
    Ok(())
}
