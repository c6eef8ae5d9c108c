//! The signals bosun acts on. Installed first thing in `main`, before the config
//! is read, so a SIGTERM during boot is never lost (as PID 1, a signal without a
//! handler is simply dropped by the kernel).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// A signal bosun received.
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
    /// SIGUSR1: free for users (forwarded in tini mode).
    Usr1,
    /// SIGUSR2: free for users (forwarded in tini mode).
    Usr2,
    /// SIGWINCH: forwarded in tini mode.
    Winch,
}

impl Sig {
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
}

/// The installed handlers.
pub struct Signals {
    streams: Vec<(Sig, Signal)>,
}

impl Signals {
    /// Installs handlers for every [`Sig`] (needs a tokio runtime).
    pub fn install() -> std::io::Result<Signals> {
        let kinds = [
            (Sig::Term, SignalKind::terminate()),
            (Sig::Int, SignalKind::interrupt()),
            (Sig::Hup, SignalKind::hangup()),
            (Sig::Quit, SignalKind::quit()),
            (Sig::Usr1, SignalKind::user_defined1()),
            (Sig::Usr2, SignalKind::user_defined2()),
            (Sig::Winch, SignalKind::window_change()),
        ];
        let mut streams = Vec::with_capacity(kinds.len());
        for (sig, kind) in kinds {
            streams.push((sig, signal(kind)?));
        }
        Ok(Signals { streams })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Sig {
        std::future::poll_fn(|cx| {
            for (sig, stream) in self.streams.iter_mut() {
                if stream.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(*sig);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}
