//! The one reaper. PID 1 (or a subreaper) inherits every orphan in the container;
//! exactly one place may call `waitpid(-1)`, or two waiters race and exit codes are
//! lost (the bug that haunts supervisors that mix a reaper loop with a process
//! library that waits on its own children). Every process bosun starts — units,
//! probe commands, dump and load commands — is spawned through [`Reaper::spawn`],
//! which registers its pid before the reaper can see it exit.

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use super::spawner::Spawner;
use crate::spawn::Prepared;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called exit(code).
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128+n for signal n.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }

    /// True for exit code 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// The killing signal, if any.
    pub fn signal(self) -> Option<i32> {
        match self {
            Exit::Code(_) => None,
            Exit::Signal(s) => Some(s),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "killed by {name}")
            }
        }
    }
}

#[derive(Default)]
struct Table {
    waiters: HashMap<i32, oneshot::Sender<Exit>>,
    early: EarlyExits,
}

/// How long an unclaimed exit waits for its spawner (spawns take milliseconds).
const EARLY_KEEP: Duration = Duration::from_secs(2);

/// Exits of pids nobody had claimed yet: an orphan, or a child of
/// [`Reaper::spawn_concurrent`] that exited before its spawner registered it.
/// Each is kept for [`EARLY_KEEP`], then forgotten (it was an orphan).
#[derive(Debug, Default)]
pub(crate) struct EarlyExits {
    /// Oldest first.
    exits: VecDeque<(i32, Exit, Instant)>,
}

impl EarlyExits {
    /// Keeps `pid`'s exit, reaped at `now`, and forgets the ones older than [`EARLY_KEEP`].
    pub(crate) fn record(&mut self, pid: i32, exit: Exit, now: Instant) {
        while self
            .exits
            .front()
            .is_some_and(|e| now.duration_since(e.2) > EARLY_KEEP)
        {
            self.exits.pop_front();
        }
        self.exits.push_back((pid, exit, now));
    }

    /// Takes the exit of `pid`, once. The newest one: if the kernel reused a pid
    /// within the window, the older exit was another (orphaned) process.
    pub(crate) fn claim(&mut self, pid: i32) -> Option<Exit> {
        let i = self.exits.iter().rposition(|e| e.0 == pid)?;
        self.exits.remove(i).map(|e| e.1)
    }
}

/// The reaper: register children, deliver their exits, reap orphans silently.
#[derive(Clone)]
pub struct Reaper {
    table: Arc<Mutex<Table>>,
    orphans: Arc<AtomicU64>,
    /// Threads that start units from a small fd table; `None` where the kernel
    /// cannot give a thread a table of its own.
    spawner: Option<Arc<Spawner>>,
}

impl Reaper {
    /// Installs the SIGCHLD handler and the reaping task (needs a tokio runtime).
    /// When bosun is not PID 1 it becomes a child subreaper first, so orphans of
    /// its units come back to it instead of to the host's init.
    pub fn start() -> std::io::Result<Reaper> {
        if !super::is_pid1() {
            super::become_subreaper()?;
        }
        let mut sigchld = signal(SignalKind::child())?;
        let reaper = Reaper {
            table: Arc::default(),
            orphans: Arc::default(),
            spawner: None,
        };
        let r = reaper.clone();
        tokio::spawn(async move {
            // Reap once at start: children may have exited before the handler existed.
            r.reap_all();
            while sigchld.recv().await.is_some() {
                r.reap_all();
            }
        });
        Ok(reaper)
    }

    /// Starts the threads that [`Reaper::spawn_prepared`] starts units from
    /// (`pid1/spawner.rs`). Call it once, right after [`Reaper::start`] and
    /// before bosun opens a socket of its own: each thread keeps a copy of the
    /// sockets open now (the signal pipe among them). Where the kernel cannot
    /// give a thread a table of its own, units start from bosun's, as before.
    pub fn start_spawners(&mut self) {
        match Spawner::start() {
            Ok(s) => self.spawner = Some(Arc::new(s)),
            Err(e) => tracing::debug!("units start from bosun's own fd table (close_range: {e})"),
        }
    }

    /// Spawns `cmd` and registers its pid; the receiver yields its exit.
    /// Never wait on the returned `Child` (the reaper does); it is returned for
    /// its pipes only.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<(Child, oneshot::Receiver<Exit>)> {
        // The lock is held across fork+exec so the reaper cannot reap this pid
        // before it is in the table.
        let mut table = self.table.lock().expect("reaper table poisoned");
        let child = cmd.spawn()?;
        let (tx, rx) = oneshot::channel();
        table.waiters.insert(child.id() as i32, tx);
        Ok((child, rx))
    }

    /// Spawns `cmd` without holding the reaper's lock, so several threads can
    /// spawn at once (each vfork waits for its child's exec: one thread would
    /// exec the children one after another).
    ///
    /// Only for commands without `pre_exec` hooks, uid or gid: std then uses
    /// `posix_spawn`, which never waits on the child itself. (On the fork path,
    /// std reaps a child whose exec failed and panics if the reaper got there
    /// first; [`Reaper::spawn`] holds the lock for that reason.)
    pub fn spawn_concurrent(
        &self,
        cmd: &mut Command,
    ) -> std::io::Result<(Child, oneshot::Receiver<Exit>)> {
        let child = cmd.spawn()?;
        let rx = self.register(child.id() as i32);
        Ok((child, rx))
    }

    /// Registers a child spawned without the lock: its exit may already be in.
    fn register(&self, pid: i32) -> oneshot::Receiver<Exit> {
        let (tx, rx) = oneshot::channel();
        let mut table = self.table.lock().expect("reaper table poisoned");
        match table.early.claim(pid) {
            Some(exit) => {
                // It exited before we got here: it was ours, not an orphan.
                self.orphans.fetch_sub(1, Ordering::Relaxed);
                let _ = tx.send(exit);
            }
            None => {
                table.waiters.insert(pid, tx);
            }
        }
        rx
    }

    /// Spawns a unit's process (or its probe's) and registers its pid, on a
    /// spawner thread when there is one (`pid1/spawner.rs`: the child then copies
    /// a handful of descriptors instead of all of bosun's). Blocking: call it off
    /// the runtime's threads.
    pub fn spawn_prepared(
        &self,
        prepared: Prepared,
    ) -> std::io::Result<(Child, oneshot::Receiver<Exit>)> {
        let Prepared { mut command, fork } = prepared;
        let Some(spawner) = &self.spawner else {
            return if fork {
                self.spawn(&mut command)
            } else {
                self.spawn_concurrent(&mut command)
            };
        };
        if fork {
            // As in `spawn`: the lock is held across the fork and exec.
            let mut table = self.table.lock().expect("reaper table poisoned");
            let child = spawner.run(Box::new(move || command.spawn()))?;
            let (tx, rx) = oneshot::channel();
            table.waiters.insert(child.id() as i32, tx);
            return Ok((child, rx));
        }
        let child = spawner.run(Box::new(move || command.spawn()))?;
        let rx = self.register(child.id() as i32);
        Ok((child, rx))
    }

    /// Orphans reaped so far.
    pub fn orphans_reaped(&self) -> u64 {
        self.orphans.load(Ordering::Relaxed)
    }

    /// True while a process started through [`Reaper::spawn`] has not been reaped.
    pub fn has_waiters(&self) -> bool {
        !self
            .table
            .lock()
            .expect("reaper table poisoned")
            .waiters
            .is_empty()
    }

    fn reap_all(&self) {
        let mut table = self.table.lock().expect("reaper table poisoned");
        loop {
            let (pid, exit) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue, // stopped/continued: not an exit
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("waitpid failed: {e}");
                    return;
                }
            };
            match table.waiters.remove(&pid.as_raw()) {
                Some(tx) => {
                    let _ = tx.send(exit);
                }
                None => {
                    self.orphans.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(pid = pid.as_raw(), "reaped orphan ({exit})");
                    table.early.record(pid.as_raw(), exit, Instant::now());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_exit_of_a_child_from_a_spawner_thread_is_delivered() {
        let mut reaper = Reaper::start().expect("reaper");
        reaper.start_spawners();
        assert!(reaper.spawner.is_some(), "close_range works here");
        for code in [3, 0, 7] {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &format!("exit {code}")]);
            let prepared = Prepared {
                command: cmd,
                fork: false,
            };
            let r = reaper.clone();
            let (_child, exit) = tokio::task::spawn_blocking(move || r.spawn_prepared(prepared))
                .await
                .expect("joined")
                .expect("spawned");
            // The kernel sends the SIGCHLD to the spawner thread: lost there,
            // this would wait forever.
            let exit = tokio::time::timeout(Duration::from_secs(20), exit)
                .await
                .expect("the exit arrives")
                .expect("sent");
            assert_eq!(exit, Exit::Code(code));
        }
    }

    #[test]
    fn an_early_exit_is_claimed_once() {
        let mut t = EarlyExits::default();
        let now = Instant::now();
        t.record(42, Exit::Code(3), now);
        assert_eq!(t.claim(42), Some(Exit::Code(3)));
        assert_eq!(t.claim(42), None);
        assert_eq!(t.claim(7), None);
    }

    #[test]
    fn old_exits_are_forgotten_when_new_ones_come() {
        let mut t = EarlyExits::default();
        let t0 = Instant::now();
        t.record(1, Exit::Code(0), t0);
        t.record(2, Exit::Code(0), t0 + EARLY_KEEP + Duration::from_millis(1));
        assert_eq!(t.claim(1), None, "kept past EARLY_KEEP");
        assert_eq!(t.claim(2), Some(Exit::Code(0)));
    }

    #[test]
    fn a_reused_pid_claims_the_newest_exit() {
        let mut t = EarlyExits::default();
        let t0 = Instant::now();
        t.record(9, Exit::Signal(9), t0);
        t.record(9, Exit::Code(0), t0 + Duration::from_millis(5));
        assert_eq!(t.claim(9), Some(Exit::Code(0)));
        assert_eq!(t.claim(9), Some(Exit::Signal(9)));
    }
}
