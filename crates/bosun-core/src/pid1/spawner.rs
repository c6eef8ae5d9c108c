//! Units are started from threads with a file-descriptor table of their own.
//!
//! A child gets a copy of its parent's fd table, and `execve` then closes every
//! close-on-exec entry in it, one by one. bosun holds two pipe ends per unit, so
//! with 5000 units each start copied and closed 10000 descriptors: a cost that
//! grows with the square of the number of units (a sixth of all the CPU spent
//! starting 5000 units went to `do_close_on_exec`). A spawner thread takes a
//! private copy of the table when it starts (`close_range` with
//! `CLOSE_RANGE_UNSHARE`: the process's table is not touched), while it is small,
//! and closes the files and pipes in it; the children it starts copy the few
//! descriptors left.
//!
//! The pipes of a child are made in the spawner's table, so their parent ends
//! come back to the process's table over a socket pair (`SCM_RIGHTS`). A
//! command given to a spawner must therefore hold no descriptor of bosun's own
//! (no `Stdio::from(fd)`): only piped, null or inherited stdio, which is what
//! [`crate::spawn::Spec::prepared`] builds.
//!
//! Where the kernel or a seccomp profile refuses `close_range` (Linux < 5.9,
//! Docker < 20.10), there is no spawner and children are started in the calling
//! thread, as before.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use std::sync::{mpsc, Condvar, Mutex};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// How many children may be started at once (each spawn waits for its child's exec).
pub(crate) const SLOTS: usize = 2;

/// A spawn to run on a spawner thread.
type Job = Box<dyn FnOnce() -> io::Result<Child> + Send>;

/// The pipes of a started child, as a bit set: which of stdin, stdout, stderr
/// travel over the socket pair, in that order.
const STDIN: u8 = 1;
const STDOUT: u8 = 2;
const STDERR: u8 = 4;

/// One spawner thread and the process's ends of its channels.
struct Slot {
    jobs: mpsc::Sender<Job>,
    answers: mpsc::Receiver<io::Result<(Child, u8)>>,
    /// The process's end of the socket pair the pipes come back on.
    pipes: UnixDatagram,
}

/// The spawner threads (see the module's doc). Blocking: use it off the runtime.
pub(crate) struct Spawner {
    slots: Mutex<Slots>,
    freed: Condvar,
}

struct Slots {
    idle: Vec<Slot>,
    /// Threads still alive (idle or busy).
    live: usize,
}

impl Spawner {
    /// Starts [`SLOTS`] spawner threads, or says why there can be none.
    pub(crate) fn start() -> io::Result<Spawner> {
        let pairs = (0..SLOTS)
            .map(|_| UnixDatagram::pair())
            .collect::<io::Result<Vec<_>>>()?;
        let all: Vec<RawFd> = pairs
            .iter()
            .flat_map(|(a, b)| [a.as_raw_fd(), b.as_raw_fd()])
            .collect();
        let slots = pairs
            .into_iter()
            .map(|(pipes, theirs)| {
                // Each thread closes every socket of the pairs but its own end.
                let close = all
                    .iter()
                    .copied()
                    .filter(|&fd| fd != theirs.as_raw_fd())
                    .collect();
                Slot::start(pipes, theirs, close)
            })
            .collect::<io::Result<_>>()?;
        Ok(Spawner {
            slots: Mutex::new(Slots {
                idle: slots,
                live: SLOTS,
            }),
            freed: Condvar::new(),
        })
    }

    /// Runs `spawn` on a spawner thread and returns its child, with the child's
    /// pipes in the process's fd table. Waits while all spawners are busy; with
    /// none left (each died of a panic in std's spawn), runs it here.
    pub(crate) fn run(&self, spawn: Job) -> io::Result<Child> {
        let slot = {
            let mut slots = self.slots.lock().expect("spawner slots poisoned");
            loop {
                if let Some(slot) = slots.idle.pop() {
                    break slot;
                }
                if slots.live == 0 {
                    drop(slots);
                    return spawn();
                }
                slots = self.freed.wait(slots).expect("spawner slots poisoned");
            }
        };
        let result = slot.run(spawn);
        let mut slots = self.slots.lock().expect("spawner slots poisoned");
        match result {
            Some(_) => slots.idle.push(slot),
            None => slots.live -= 1,
        }
        drop(slots);
        self.freed.notify_all();
        result.unwrap_or_else(|| Err(io::Error::other("a spawner thread ended")))
    }
}

impl Slot {
    /// A thread for `theirs`; `pipes` is the process's end. The thread closes
    /// `close` in its table.
    fn start(pipes: UnixDatagram, theirs: UnixDatagram, close: Vec<RawFd>) -> io::Result<Slot> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (answer_tx, answers) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let (verdict_tx, verdict) = mpsc::channel();
        let process_theirs = theirs.as_raw_fd();
        std::thread::Builder::new()
            .name("bosun-spawn".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let marker = unshare_fd_table().and_then(|()| theirs.as_fd().try_clone_to_owned());
                let _ = ready_tx.send(marker.as_ref().map(|m| m.as_raw_fd()).map_err(|e| e.kind()));
                let private = marker.is_ok() && verdict.recv() == Ok(true);
                drop(marker);
                if !private {
                    return;
                }
                close_inherited(&close);
                for job in job_rx {
                    let answer = job().and_then(|child| send_pipes(&theirs, child));
                    if answer_tx.send(answer).is_err() {
                        return;
                    }
                }
            })?;
        let marker = ready
            .recv()
            .map_err(|_| io::Error::other("the spawner thread ended at its start"))?
            .map_err(io::Error::from)?;
        // The thread made `marker` after its unshare: in a table of its own, the
        // same number here is not its socket. Under valgrind, for one, the call
        // succeeds and shares nothing less; the thread then must close nothing.
        let private = !same_file(marker, process_theirs);
        let _ = verdict_tx.send(private);
        if !private {
            return Err(io::Error::other(
                "close_range did not give the thread a table of its own",
            ));
        }
        // SAFETY: the process's copy of the thread's end is owned by nothing in
        // this table (the thread's `UnixDatagram` owns the copy in its own).
        unsafe { libc::close(process_theirs) };
        Ok(Slot {
            jobs,
            answers,
            pipes,
        })
    }

    /// Runs `spawn` on this slot's thread; `None` when the thread is gone.
    fn run(&self, spawn: Job) -> Option<io::Result<Child>> {
        self.jobs.send(spawn).ok()?;
        let (mut child, sent) = match self.answers.recv().ok()? {
            Ok(answer) => answer,
            Err(e) => return Some(Err(e)),
        };
        if sent != 0 {
            if let Err(e) = take_pipes(&self.pipes, &mut child, sent) {
                // The child runs without its pipes' readers: end it.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                return Some(Err(e));
            }
        }
        Some(Ok(child))
    }
}

/// Gives the calling thread a table of its own: a copy of the process's as it is
/// now; [`close_inherited`] then drops its files, its pipes and the other
/// spawners' sockets. What stays is bosun's stdio and the runtime's sockets and
/// anonymous inodes (its epoll, its wakers, the signal pipe). The signal pipe must stay: the kernel delivers a child's SIGCHLD to the
/// thread that started it, and the handler that runs there writes to that pipe
/// through this thread's table. Call it after the first signal is registered.
fn unshare_fd_table() -> io::Result<()> {
    // SAFETY: a plain system call on integers. With CLOSE_RANGE_UNSHARE and a
    // range past every fd, the thread gets a full private copy of the table and
    // nothing is closed, in it or in the process's.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            u32::MAX,
            u32::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True when fds `a` and `b` of the calling thread's table are the same file.
fn same_file(a: RawFd, b: RawFd) -> bool {
    use nix::sys::stat::fstat;
    match (fstat(a), fstat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// In the thread's own table (after [`unshare_fd_table`], checked): closes the
/// files and pipes and `close`; keeps stdio, sockets and anonymous inodes.
fn close_inherited(close: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/thread-self/fd") else {
        return;
    };
    let mut fds = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        let runtime = target.starts_with("socket:") || target.starts_with("anon_inode:");
        if fd > 2 && (close.contains(&fd) || !runtime) {
            fds.push(fd);
        }
    }
    for fd in fds {
        // SAFETY: closes this thread's private copy of `fd` only; the directory
        // listing's own fd is gone by now (or the close fails harmlessly).
        unsafe { libc::close(fd) };
    }
}

/// Sends the parent ends of `child`'s pipes to the process's table and closes
/// them here. On an error the child is ended: nobody could read its output.
fn send_pipes(sock: &UnixDatagram, mut child: Child) -> io::Result<(Child, u8)> {
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(3);
    let mut sent = 0;
    if let Some(p) = child.stdin.take() {
        fds.push(p.into());
        sent |= STDIN;
    }
    if let Some(p) = child.stdout.take() {
        fds.push(p.into());
        sent |= STDOUT;
    }
    if let Some(p) = child.stderr.take() {
        fds.push(p.into());
        sent |= STDERR;
    }
    if fds.is_empty() {
        return Ok((child, 0));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let tag = [sent];
    let sending = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&tag)],
        &[ControlMessage::ScmRights(&raw)],
        MsgFlags::empty(),
        None,
    );
    if let Err(e) = sending {
        let _ = child.kill();
        return Err(io::Error::other(format!(
            "cannot pass a child's pipes: {e}"
        )));
    }
    Ok((child, sent))
}

/// Receives the pipes [`send_pipes`] sent and puts them back on `child`.
fn take_pipes(sock: &UnixDatagram, child: &mut Child, sent: u8) -> io::Result<()> {
    let mut tag = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(3);
    let truncated = {
        let mut iov = [IoSliceMut::new(&mut tag)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        )
        .map_err(|e| io::Error::other(format!("cannot take a child's pipes: {e}")))?;
        for cmsg in msg.cmsgs().map_err(io::Error::other)? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: the kernel just installed these descriptors in our
                // table; nothing else refers to them.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        msg.flags.contains(MsgFlags::MSG_CTRUNC)
    };
    if truncated || tag[0] != sent || fds.len() != sent.count_ones() as usize {
        return Err(io::Error::other(
            "a child's pipes came back incomplete (is the open-files limit reached?)",
        ));
    }
    let mut fds = fds.into_iter();
    if sent & STDIN != 0 {
        child.stdin = fds.next().map(ChildStdin::from);
    }
    if sent & STDOUT != 0 {
        child.stdout = fds.next().map(ChildStdout::from);
    }
    if sent & STDERR != 0 {
        child.stderr = fds.next().map(ChildStderr::from);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    #[test]
    fn a_child_gets_none_of_the_processs_fds_and_its_pipes_reach_the_process() {
        let spawner = Spawner::start().expect("close_range is available here");
        // Descriptors the process holds without close-on-exec: a child started
        // from the process's own table would inherit every one of them.
        let held: Vec<OwnedFd> = (0..50)
            .map(|_| OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null")))
            .collect();
        for fd in &held {
            nix::fcntl::fcntl(
                fd.as_raw_fd(),
                nix::fcntl::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .expect("clear FD_CLOEXEC");
        }
        let child = spawner.run(Box::new(|| {
            Command::new("sh")
                .args(["-c", "echo err >&2; exec ls /proc/self/fd"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        }));
        let mut child = child.expect("spawned");
        let mut out = String::new();
        let mut err = String::new();
        let mut stdout = child.stdout.take().expect("stdout came back");
        stdout.read_to_string(&mut out).expect("read stdout");
        let mut stderr = child.stderr.take().expect("stderr came back");
        stderr.read_to_string(&mut err).expect("read stderr");
        let _ = child.wait();
        // 0, 1, 2 and the fd `ls` reads /proc/self/fd through.
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["0", "1", "2", "3"]
        );
        assert_eq!(err, "err\n");
        for fd in &held {
            assert!(
                nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::F_GETFD).is_ok(),
                "the process's own fds stay open"
            );
        }
    }

    #[test]
    fn a_child_starts_with_no_signal_blocked() {
        let spawner = Spawner::start().expect("close_range is available here");
        let mut child = spawner
            .run(Box::new(|| {
                Command::new("grep")
                    .args(["^SigBlk", "/proc/self/status"])
                    .stdout(Stdio::piped())
                    .spawn()
            }))
            .expect("spawned");
        let mut out = String::new();
        let mut stdout = child.stdout.take().expect("stdout came back");
        stdout.read_to_string(&mut out).expect("read stdout");
        let _ = child.wait();
        assert_eq!(
            out.split_whitespace().nth(1),
            Some("0000000000000000"),
            "{out}"
        );
    }

    #[test]
    fn spawns_go_on_when_every_spawner_thread_died() {
        let spawner = Spawner::start().expect("close_range is available here");
        for _ in 0..SLOTS {
            let r = spawner.run(Box::new(|| panic!("a bug in a spawn")));
            assert!(r.is_err(), "a thread that died is an error, not a hang");
        }
        let mut ok = spawner
            .run(Box::new(|| Command::new("true").spawn()))
            .expect("spawned in the calling thread");
        assert!(ok.wait().expect("wait").success());
    }

    #[test]
    fn a_failed_spawn_is_an_error_and_the_slot_stays() {
        let spawner = Spawner::start().expect("close_range is available here");
        for _ in 0..(SLOTS + 1) {
            let r = spawner.run(Box::new(|| Command::new("/nonexistent/program").spawn()));
            assert_eq!(r.err().map(|e| e.kind()), Some(io::ErrorKind::NotFound));
        }
        let mut ok = spawner
            .run(Box::new(|| Command::new("true").spawn()))
            .expect("a later spawn works");
        assert!(ok.wait().expect("wait").success());
    }
}
