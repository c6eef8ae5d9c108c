//! Paths walked once, one component at a time, never through a link a unit could have
//! made; after that, work through directory descriptors only.
//!
//! bosun runs as root on directories that unprivileged units may own. A path string is
//! resolved again by every system call that takes it, so a unit that swaps one of its
//! directories for a symlink between two calls would redirect root. Here a path is opened
//! component by component (`openat` with `O_NOFOLLOW`) and the caller then works relative
//! to the directory it got: renaming or replacing that directory by name afterwards does
//! not move the work elsewhere.
//!
//! A symlink in a configured path is followed only when it is *trusted*: owned by root (or
//! by the user bosun runs as) and reached through directories that nobody else can change
//! (each owned by root or bosun's user, not writable by group or others unless sticky).
//! Only root can have put such a link there and nobody else can swap it, so it says what
//! the operator meant (a data directory linked into a volume, `/var/run` → `/run`). Any
//! other symlink is refused: configure the real path.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Symlinks followed in one path at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// The user bosun runs as.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Owned by root or by bosun's own user.
fn trusted_uid(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// A directory only root (or bosun's user) can change: trusted owner, and not writable by
/// group or others unless sticky (then others cannot rename or remove what is not theirs).
fn trusted_dir(st: &rfs::Stat) -> bool {
    let mode = st.st_mode;
    trusted_uid(st.st_uid) && (mode & 0o022 == 0 || mode & 0o1000 != 0)
}

pub(crate) fn kind(st: &rfs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// An I/O error that says which path.
pub(crate) fn at_path(path: &Path, e: impl Into<io::Error>) -> io::Error {
    let e: io::Error = e.into();
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn refused(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, msg)
}

/// Opens a directory in `dir` without following a symlink (`ELOOP` if `name` is one).
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The last component of a path, found by a walk that followed only trusted links.
#[derive(Debug)]
pub(crate) struct Located {
    /// The directory that holds it.
    pub parent: OwnedFd,
    /// Its name in `parent`.
    pub name: OsString,
    /// Where it is: the path given, or where trusted links led (for messages).
    pub path: PathBuf,
    /// Its own metadata (not followed); `None` when it does not exist.
    pub stat: Option<rfs::Stat>,
    /// The trusted symlinks followed on the way.
    pub followed: Vec<PathBuf>,
}

/// The names of an absolute path, `..` resolved lexically (for link targets; the
/// configured path itself is refused with `..` before it gets here).
fn names_of(path: &Path) -> VecDeque<OsString> {
    let mut out: VecDeque<OsString> = VecDeque::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push_back(n.to_os_string()),
            Component::ParentDir => {
                out.pop_back();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Refuses a symlink that anyone but root could have made or swapped: not root's (or
/// bosun's user's), or reached through a directory someone else can change.
fn check_link(
    link: &Path,
    dir: &Path,
    st: &rfs::Stat,
    target: &Path,
    chain_trusted: bool,
) -> io::Result<()> {
    if trusted_uid(st.st_uid) && chain_trusted {
        return Ok(());
    }
    let who = if trusted_uid(st.st_uid) {
        format!(
            "in a directory that someone other than root can change ({} or above)",
            dir.display()
        )
    } else {
        format!("owned by uid {}", st.st_uid)
    };
    Err(refused(format!(
        "{} is a symlink {who} (to {}): bosun does not follow a link that anyone but root \
         could have made or swapped. Configure the real path, or replace the link by the \
         directory itself",
        link.display(),
        target.display()
    )))
}

/// Walks to `path` from `/`: every component must be a directory (created, mode 0755,
/// when missing and `create_parents`), and symlinks are followed only when trusted (see
/// the module). The last component may be anything or absent.
pub(crate) fn locate(path: &Path, create_parents: bool) -> io::Result<Located> {
    let mut todo = names_to_walk(path)?;
    let mut followed = Vec::new();
    'walk: loop {
        let root = Path::new("/");
        let mut dir = rfs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| at_path(root, e))?;
        let mut here = root.to_path_buf();
        let mut chain_trusted = trusted_dir(&rfs::fstat(&dir)?);
        while let Some(name) = todo.pop_front() {
            let full = here.join(&name);
            let stat = match rfs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Some(st),
                Err(Errno::NOENT) => None,
                Err(e) => return Err(at_path(&full, e)),
            };
            if let Some(st) = stat.filter(|st| kind(st) == FileType::Symlink) {
                let target =
                    rfs::readlinkat(&dir, &name, Vec::new()).map_err(|e| at_path(&full, e))?;
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                check_link(&full, &here, &st, &target, chain_trusted)?;
                followed.push(full);
                if followed.len() > MAX_LINKS {
                    return Err(at_path(path, Errno::LOOP));
                }
                // Restart from `/` with the link's target in place of the link.
                todo = splice_link(&here.join(&target), todo, path)?;
                continue 'walk;
            }
            if todo.is_empty() {
                return Ok(Located {
                    parent: dir,
                    name,
                    path: full,
                    stat,
                    followed,
                });
            }
            dir = descend(dir.as_fd(), &name, &full, stat, create_parents)?;
            chain_trusted = chain_trusted && trusted_dir(&rfs::fstat(&dir)?);
            here = full;
        }
        unreachable!("the walk returns at its last component");
    }
}

/// The names from `/` to `path` (made absolute from the working directory);
/// refused when it holds `..` or is `/` itself.
fn names_to_walk(path: &Path) -> io::Result<VecDeque<OsString>> {
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} contains `..`: use the real path", path.display()),
        ));
    }
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let todo = names_of(&abs);
    if todo.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file or directory below /", path.display()),
        ));
    }
    Ok(todo)
}

/// The names left to walk after a link to `target` (absolute): the target's,
/// then the `rest`. Refused when that leads to `/` itself (`path` in the message).
fn splice_link(
    target: &Path,
    rest: VecDeque<OsString>,
    path: &Path,
) -> io::Result<VecDeque<OsString>> {
    let mut next = names_of(target);
    next.extend(rest);
    if next.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} leads to /", path.display()),
        ));
    }
    Ok(next)
}

/// Opens the directory `name` in `dir` (`full` is its path; `stat` what the walk
/// saw there), creating it first when it is missing and `create_parents`.
fn descend(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    full: &Path,
    stat: Option<rfs::Stat>,
    create_parents: bool,
) -> io::Result<OwnedFd> {
    match stat {
        Some(st) if kind(&st) == FileType::Directory => {}
        Some(_) => {
            return Err(at_path(full, Errno::NOTDIR));
        }
        None if create_parents => match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(at_path(full, e)),
        },
        None => return Err(at_path(full, Errno::NOENT)),
    }
    // O_NOFOLLOW: a directory swapped for a link since the stat fails here.
    open_dir_at(dir, name).map_err(|e| at_path(full, e))
}

/// The names in a directory (without `.` and `..`), sorted.
pub(crate) fn list_names(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Removes `name` in `dir` and everything below it, never following a symlink.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if kind(&st) == FileType::Directory {
        match open_dir_at(dir, name) {
            Ok(sub) => remove_contents(sub.as_fd())?,
            // Replaced by something else since the stat: unlink that instead.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::NOTDIR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Empties a directory, never following a symlink.
pub(crate) fn remove_contents(dir: BorrowedFd<'_>) -> io::Result<()> {
    for name in list_names(dir)? {
        remove_all_at(dir, &name)?;
    }
    Ok(())
}

/// fsyncs a directory so that renames in it are durable (best effort).
pub(crate) fn sync(dir: BorrowedFd<'_>) {
    let _ = rfs::fsync(dir);
}
