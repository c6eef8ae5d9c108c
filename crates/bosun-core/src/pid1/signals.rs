//! The signals bosun acts on, forwards or shrugs off, and the signal state it was
//! started with.
//!
//! Handlers are installed first thing, before the config is read, so a SIGTERM during
//! boot is never lost (as PID 1, a signal without a handler is simply dropped by the
//! kernel). `bosun run` acts on the seven [`Sig`]s and catches every other
//! asynchronous signal whose default action would kill bosun when it is not PID 1
//! (ALRM, PWR, XCPU, the real-time ones…): logged once, then ignored. Tini mode
//! ([`Forwarded`]) catches what tini forwards.
//!
//! [`Inherited`] is the mask and the ignored set bosun was started with. bosun itself
//! runs with an empty mask (a SIGTERM blocked by whoever started it must still stop
//! it); tini mode gives the inherited mask and ignored set back to its child, as tini
//! does; units of `bosun run` start clean (empty mask, default dispositions).
//!
//! The standard signals are listed by number with `libc`'s constants; nix's `Signal`
//! and `SigSet` stop at 31, and the real-time signals matter here too.

use std::io;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::signal::unix::{signal, Signal, SignalKind};

/// A signal `bosun run` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// SIGTERM: stop (a second one forces).
    Term,
    /// SIGINT: same as SIGTERM.
    Int,
    /// SIGHUP: reload the config.
    Hup,
    /// SIGQUIT: log every unit's state.
    Quit,
    /// SIGUSR1: free for users.
    Usr1,
    /// SIGUSR2: free for users.
    Usr2,
    /// SIGWINCH: ignored.
    Winch,
}

impl Sig {
    const ALL: [Sig; 7] = [
        Sig::Term,
        Sig::Int,
        Sig::Hup,
        Sig::Quit,
        Sig::Usr1,
        Sig::Usr2,
        Sig::Winch,
    ];

    /// The signal number.
    pub fn number(self) -> i32 {
        match self {
            Sig::Term => libc::SIGTERM,
            Sig::Int => libc::SIGINT,
            Sig::Hup => libc::SIGHUP,
            Sig::Quit => libc::SIGQUIT,
            Sig::Usr1 => libc::SIGUSR1,
            Sig::Usr2 => libc::SIGUSR2,
            Sig::Winch => libc::SIGWINCH,
        }
    }

    fn from_number(n: i32) -> Option<Sig> {
        Sig::ALL.into_iter().find(|s| s.number() == n)
    }
}

/// The standard signals tini forwards: every one but KILL and STOP (which cannot be
/// caught), CHLD (the reaper's), the synchronous ones a fault raises in the faulting
/// thread (SEGV, BUS, FPE, ILL, TRAP, ABRT, SYS), and TTIN/TTOU, which tini ignores
/// itself. TSTP is forwarded. tini forwards the real-time signals too.
const FORWARDED: [i32; 19] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGURG,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGWINCH,
    libc::SIGIO,
    libc::SIGPWR,
];

/// The asynchronous signals `bosun run` does not act on but whose default action
/// terminates (or dumps core): caught so that a stray one cannot kill bosun when it is
/// not PID 1. Not here: PIPE (Rust ignores it; writes fail with EPIPE instead), CONT
/// and URG (ignored by default), TSTP/TTIN/TTOU (they stop, not kill: job control in
/// a terminal keeps working; as PID 1 the kernel drops them).
const STRAY: [i32; 8] = [
    libc::SIGALRM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
];

/// The real-time signals a program may use (the C library keeps the first few).
fn realtime() -> RangeInclusive<i32> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

/// Every signal whose disposition and mask bit a process can have: 1..=31 and the
/// real-time range.
fn all_signals() -> impl Iterator<Item = i32> {
    (1..=31).chain(realtime())
}

/// Every signal tini mode forwards to its child.
pub fn forwarded() -> impl Iterator<Item = i32> {
    FORWARDED.into_iter().chain(realtime())
}

/// The name of signal `n` for messages: `SIGALRM`, `SIGRTMIN+2`.
pub fn name(n: i32) -> String {
    match bosun_config::Signal::from_number(n) {
        Some(s) => s.name.to_string(),
        None if realtime().contains(&n) => format!("SIGRTMIN+{}", n - libc::SIGRTMIN()),
        None => format!("signal {n}"),
    }
}

fn bit(sig: i32) -> u64 {
    debug_assert!((1..=64).contains(&sig), "signal {sig} out of range");
    1u64 << (sig - 1)
}

fn listen(numbers: impl Iterator<Item = i32>) -> io::Result<Vec<(i32, Signal)>> {
    numbers
        .map(|n| Ok((n, signal(SignalKind::from_raw(n))?)))
        .collect()
}

/// The first of `streams` to fire (cancel-safe: a signal is taken only when returned).
async fn next(streams: &mut [(i32, Signal)]) -> i32 {
    std::future::poll_fn(|cx| {
        for (n, stream) in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*n);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// `bosun run`'s handlers.
pub struct Signals {
    streams: Vec<(i32, Signal)>,
    /// Stray signals already logged (bit n-1 for signal n): each is logged once, so
    /// a flood, or a SIGXFSZ raised by writing the log itself, cannot loop.
    logged: u64,
}

impl Signals {
    /// Installs `bosun run`'s handlers (needs a tokio runtime): the seven [`Sig`]s and
    /// the stray signals. Signals bosun inherited as ignored go back to their default
    /// first, so units start with default dispositions.
    pub fn install() -> io::Result<Signals> {
        let inherited = Inherited::get();
        // PIPE stays as Rust set it (ignored); std resets it in every child.
        for sig in all_signals().filter(|&s| inherited.ignores(s) && s != libc::SIGPIPE) {
            // SAFETY: SIG_DFL for a signal bosun has no handler for yet.
            if unsafe { libc::signal(sig, libc::SIG_DFL) } == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
        }
        let acted = Sig::ALL.into_iter().map(Sig::number);
        Ok(Signals {
            streams: listen(acted.chain(STRAY).chain(realtime()))?,
            logged: 0,
        })
    }

    /// The next signal to act on. Stray signals are logged (once each) and skipped.
    pub async fn recv(&mut self) -> Sig {
        loop {
            let n = next(&mut self.streams).await;
            if let Some(sig) = Sig::from_number(n) {
                return sig;
            }
            if self.logged & bit(n) == 0 {
                self.logged |= bit(n);
                let name = name(n);
                tracing::warn!(
                    "ignoring {name}: bosun run acts on SIGTERM, SIGINT, SIGHUP and SIGQUIT \
                     (to signal a unit: bosun ctl signal {} UNIT); further ones are ignored silently",
                    name.trim_start_matches("SIG")
                );
            }
        }
    }
}

/// Tini mode's handlers: every signal in [`forwarded`].
pub struct Forwarded {
    streams: Vec<(i32, Signal)>,
}

impl Forwarded {
    /// Installs them (needs a tokio runtime), and ignores SIGTTIN and SIGTTOU in bosun
    /// itself, as tini does: once the child's group owns the terminal, bosun writing
    /// to it must not stop bosun (nor, as PID 1, loop on a dropped SIGTTOU). The child
    /// gets its inherited dispositions back ([`Inherited::restore_in_child`]).
    pub fn install() -> io::Result<Forwarded> {
        for sig in [libc::SIGTTIN, libc::SIGTTOU] {
            // SAFETY: SIG_IGN for a signal without a handler.
            if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Forwarded {
            streams: listen(forwarded())?,
        })
    }

    /// The number of the next signal to forward.
    pub async fn recv(&mut self) -> i32 {
        next(&mut self.streams).await
    }
}

/// Empties the calling thread's signal mask. `main` calls it first thing (after
/// [`Inherited::record`]), so bosun and every thread it starts can receive a SIGTERM
/// that whoever started bosun had blocked.
pub fn unblock_all() {
    // SAFETY: sigemptyset/pthread_sigmask on a local sigset_t (cannot fail with a
    // valid set and SIG_SETMASK).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The signal mask and the ignored signals bosun was started with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inherited {
    /// Bit n-1 set: signal n was ignored (SIG_IGN).
    ignored: u64,
    /// Bit n-1 set: signal n was blocked.
    blocked: u64,
}

static RECORDED: AtomicBool = AtomicBool::new(false);
static RECORDED_IGNORED: AtomicU64 = AtomicU64::new(0);
static RECORDED_BLOCKED: AtomicU64 = AtomicU64::new(0);

impl Inherited {
    /// Reads them now: the calling thread's mask, and every signal set to SIG_IGN.
    pub fn read() -> Inherited {
        let mut inherited = Inherited::default();
        // SAFETY: sigaction with a null new action only reads; pthread_sigmask with
        // a null new set only reads; both write to locals.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            let got_mask =
                libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) == 0;
            for sig in all_signals() {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction == libc::SIG_IGN
                {
                    inherited.ignored |= bit(sig);
                }
                if got_mask && libc::sigismember(&mask, sig) == 1 {
                    inherited.blocked |= bit(sig);
                }
            }
        }
        inherited
    }

    /// Records [`Inherited::read`] for [`Inherited::get`]; only the first call counts.
    /// The binary calls it from an `.init_array` hook, before Rust's runtime sets
    /// SIGPIPE to ignored (after that, an inherited ignored SIGPIPE cannot be told
    /// from Rust's own), and again at the top of `main` in case the hook did not run.
    pub fn record() {
        if RECORDED.load(Ordering::Acquire) {
            return;
        }
        let now = Inherited::read();
        RECORDED_IGNORED.store(now.ignored, Ordering::Relaxed);
        RECORDED_BLOCKED.store(now.blocked, Ordering::Relaxed);
        RECORDED.store(true, Ordering::Release);
    }

    /// What [`Inherited::record`] saw, or [`Inherited::read`] now if it never ran.
    pub fn get() -> Inherited {
        if !RECORDED.load(Ordering::Acquire) {
            return Inherited::read();
        }
        Inherited {
            ignored: RECORDED_IGNORED.load(Ordering::Relaxed),
            blocked: RECORDED_BLOCKED.load(Ordering::Relaxed),
        }
    }

    /// True when signal `sig` was ignored.
    pub fn ignores(self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.ignored & bit(sig) != 0
    }

    /// True when signal `sig` was blocked.
    pub fn blocks(self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.blocked & bit(sig) != 0
    }

    /// A `pre_exec` hook that gives a child exactly these: the signals that were
    /// ignored ignored, every other one default, and this mask. Everything it needs
    /// is prepared now; the hook itself only makes async-signal-safe calls.
    pub fn restore_in_child(self) -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
        let dispositions: Vec<(i32, libc::sighandler_t)> = all_signals()
            .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
            .map(|s| {
                let action = if self.ignores(s) {
                    libc::SIG_IGN
                } else {
                    libc::SIG_DFL
                };
                (s, action)
            })
            .collect();
        // SAFETY: sigemptyset/sigaddset on a local sigset_t.
        let mask = unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut mask);
            for sig in all_signals().filter(|&s| self.blocks(s)) {
                libc::sigaddset(&mut mask, sig);
            }
            mask
        };
        move || {
            for &(sig, action) in &dispositions {
                // SAFETY: signal(2) is async-signal-safe; sig is a valid, catchable signal.
                if unsafe { libc::signal(sig, action) } == libc::SIG_ERR {
                    return Err(io::Error::last_os_error());
                }
            }
            // SAFETY: pthread_sigmask is async-signal-safe; mask is a valid set.
            let rc =
                unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) };
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_is_tinis_set() {
        let fwd: Vec<i32> = forwarded().collect();
        for sig in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGCHLD,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGABRT,
            libc::SIGSYS,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ] {
            assert!(!fwd.contains(&sig), "{} must not be forwarded", name(sig));
        }
        // Everything else in 1..=31, and the real-time signals.
        assert_eq!(fwd.iter().filter(|&&s| s <= 31).count(), 31 - 12);
        assert!(fwd.contains(&libc::SIGRTMIN()) && fwd.contains(&libc::SIGRTMAX()));
    }

    #[test]
    fn stray_signals_are_neither_acted_on_nor_default_ignored() {
        for sig in STRAY {
            assert!(Sig::from_number(sig).is_none(), "{}", name(sig));
            assert!(FORWARDED.contains(&sig), "{}", name(sig));
        }
    }

    #[test]
    fn names() {
        assert_eq!(name(libc::SIGALRM), "SIGALRM");
        assert_eq!(name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
    }
}
