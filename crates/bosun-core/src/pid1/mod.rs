//! What the kernel asks of PID 1 (tini's job), in one place: the single reaper,
//! the signals bosun handles and forwards, the final sweep of leftovers, and the
//! host facts below (are we PID 1, the subreaper bit, the fd limit, malloc
//! arenas, the umask around a bind).
//!
//! `unsafe` in bosun lives here and in `spawn`/`tini` (between fork and exec);
//! every other crate forbids it.

pub mod reaper;
pub mod signals;
pub(crate) mod spawner;
pub mod sweep;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// True when bosun is the init of its pid namespace (a container's ENTRYPOINT).
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Outside PID 1 (tests, a dev shell), orphans of our units come back to us
/// instead of to the host's init: `PR_SET_CHILD_SUBREAPER`.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}

/// The soft open-files limit, or `None` if it cannot be read.
pub fn fd_soft_limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Raises the soft open-files limit to the hard one (at most 65536): each unit
/// holds two pipe ends, and a 1024 default runs out near 500 units. Units
/// inherit it, as they would under Docker's own (much higher) default.
pub fn raise_fd_limit() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = hard.min(65536);
        if soft < want {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, want, hard);
        }
    }
}

/// Open files bosun keeps besides its units' output pipes and API connections:
/// the reaper, signal and event fds, its sockets and log files, spawns in flight.
pub const FD_RESERVE: u64 = 64;

/// At boot, after [`raise_fd_limit`]: do `piped` units (two output pipe ends
/// each, held for their whole life) and `api` connections fit the soft
/// open-files limit? The error names the limit and the fix, so that a config too
/// big for it fails before anything starts instead of half-starting (units past
/// the limit failing to spawn with EMFILE until their start limit trips).
pub fn check_fd_budget(piped: usize, api: usize) -> Result<(), String> {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => fd_budget(piped as u64, api as u64, soft, hard),
        Err(_) => Ok(()),
    }
}

fn fd_budget(piped: u64, api: u64, soft: u64, hard: u64) -> Result<(), String> {
    let need = piped * 2 + api + FD_RESERVE;
    if need <= soft {
        return Ok(());
    }
    let fit = soft.saturating_sub(api + FD_RESERVE) / 2;
    Err(format!(
        "{piped} units need about {need} open files (2 per unit for its output pipes, \
         {api} for control API connections, {FD_RESERVE} for bosun itself), but the \
         open-files limit is {soft} (hard limit {hard}; bosun raises the soft one to the \
         hard one, at most 65536), which fits {fit} units: raise the limit (`docker run \
         --ulimit nofile=65536:65536`, `ulimit -n` before bosun) or run fewer units \
         (`output = \"inherit\"` units hold no pipes)"
    ))
}

/// One malloc arena: bosun runs one runtime thread plus short-lived spawners and
/// the console writer, and each extra arena is resident memory for the
/// container's whole life. Call before any other thread exists.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The page size, for turning `/proc` page counts into bytes.
pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096)
}

/// Runs `f` with the process umask set to `mask`, then restores it. Only at boot,
/// before any unit is spawned: the umask is process-wide.
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(mask));
    let out = f();
    umask(old);
    out
}

/// True when bosun runs as root (restores may then chown what they write).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// This machine's hostname (`/proc/sys/kernel/hostname`, then `$HOSTNAME`), or
/// `"bosun"` when neither says: a container's short id under docker/podman.
pub fn hostname() -> String {
    let from_proc = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string());
    from_proc
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "bosun".into())
}

/// Gives back the pages of bosun's own binary that the boot read: the dynamic
/// loader's relocation table, config parsing, planning, the restore. Only
/// mappings with no privately modified page are touched (not the relocated RELRO data,
/// `.data` or `.bss`): their pages are clean copies of the file, so dropping them
/// loses nothing, and code or constants used again are faulted back in from the
/// page cache; and the heap's free pages. Called once, when the boot is complete; afterwards only what the
/// running supervisor touches is resident (`tests/bench/supervise.sh` measures
/// the daemon's RSS and PSS).
pub fn release_boot_pages() {
    use std::os::unix::fs::MetadataExt;
    let Ok(exe) = std::fs::metadata("/proc/self/exe") else {
        return;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in clean_mappings_of(&smaps, exe.ino()) {
        // SAFETY: [start, end) is a whole private mapping of our own executable
        // file with no privately modified page (from /proc/self/smaps; it is
        // read-only, so none can appear meanwhile): MADV_DONTNEED only drops its
        // page table entries, and the next access maps the same file bytes again.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
    // The boot's heap (the config's documents, the plan, the restore's buffers) is
    // freed by now: give its whole free pages back too.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `(start, end)` of the private read-only mappings (`r--p`, `r-xp`) of the file
/// with inode `ino` that hold no privately modified page, from a `/proc/PID/smaps` text.
fn clean_mappings_of(smaps: &str, ino: u64) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut clean = false;
    let mut flush = |current: Option<(usize, usize)>, clean: bool| {
        if let Some(range) = current.filter(|_| clean) {
            found.push(range);
        }
    };
    for line in smaps.lines() {
        if let Some(range) = mapping_header(line) {
            flush(current, clean);
            current = range.filter(|r| r.2 == ino).map(|r| (r.0, r.1));
            clean = true;
        } else if let Some((key, kb)) = line.split_once(':') {
            // A written page of a private file mapping is a private copy, counted
            // as `Anonymous`. (`*_Dirty` also counts file pages not yet written
            // back to disk, which are the file's bytes: a freshly copied binary.)
            if key == "Anonymous" && kb.trim() != "0 kB" {
                clean = false;
            }
        }
    }
    flush(current, clean);
    found
}

/// A smaps mapping line: `Some(None)` for one that is not a private read-only
/// file mapping, `Some(Some((start, end, inode)))` for one that is, `None` for
/// any other line.
fn mapping_header(line: &str) -> Option<Option<(usize, usize, u64)>> {
    let mut f = line.split_ascii_whitespace();
    let (range, perms) = (f.next()?, f.next()?);
    let (a, b) = range.split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    );
    let (_offset, _dev, inode) = (f.next()?, f.next()?, f.next()?.parse::<u64>().ok()?);
    Some((perms == "r--p" || perms == "r-xp").then_some((start, end, inode)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_mappings_of_the_binary_are_picked() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:01 4242 /usr/bin/bosun
Rss:                 900 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
55d0a0100000-55d0a0700000 r-xp 00100000 fe:01 4242 /usr/bin/bosun
Rss:                1500 kB
Private_Dirty:      1500 kB
Anonymous:             0 kB
55d0a0700000-55d0a0760000 r--p 00700000 fe:01 4242 /usr/bin/bosun
Rss:                 376 kB
Private_Dirty:       376 kB
Anonymous:           376 kB
55d0a0760000-55d0a0770000 rw-p 00760000 fe:01 4242 /usr/bin/bosun
Private_Dirty:         8 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:01 777 /usr/lib/libc.so.6
Private_Dirty:         0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]";
        // The relocated RELRO mapping (read-only now, but modified) is left alone.
        assert_eq!(
            clean_mappings_of(smaps, 4242),
            vec![
                (0x55d0a0000000, 0x55d0a0100000),
                (0x55d0a0100000, 0x55d0a0700000)
            ]
        );
        assert!(clean_mappings_of("garbage\n\n1-2 r--p", 4242).is_empty());
    }

    #[test]
    fn releasing_boot_pages_keeps_the_process_working() {
        release_boot_pages();
        // Code and constants are faulted back in as they are used.
        let v: Vec<String> = (0..100).map(|i| format!("{i:04}")).collect();
        assert_eq!(v[42], "0042");
    }

    #[test]
    fn the_fd_budget_counts_two_pipe_ends_per_unit_and_names_the_limit() {
        // 5000 units at Docker's common 1048576 (clamped to 65536) fit.
        assert!(fd_budget(5000, 1024, 65536, 1_048_576).is_ok());
        // At the bare 1024 default: 1024 - 256 - 64 leaves room for 352 units.
        assert!(fd_budget(352, 256, 1024, 1024).is_ok());
        let e = fd_budget(353, 256, 1024, 1024).unwrap_err();
        assert!(e.contains("353 units need about 1026 open files"), "{e}");
        assert!(
            e.contains("open-files limit is 1024 (hard limit 1024"),
            "{e}"
        );
        assert!(e.contains("fits 352 units"), "{e}");
        assert!(e.contains("--ulimit nofile="), "{e}");
    }
}
