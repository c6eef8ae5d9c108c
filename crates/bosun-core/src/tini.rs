//! `bosun -- CMD ARGS`: no config, tini's job. CMD is the one essential process;
//! every forwardable signal goes to it, orphans are reaped, and bosun exits with
//! CMD's code (128+n when a signal killed it).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::reaper::Reaper;
use crate::signals::Signals;

/// Runs `argv` until it exits; returns the exit code bosun should use.
pub async fn run(argv: &[OsString], reaper: &Reaper, signals: &mut Signals) -> i32 {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // With a terminal, make the child's group the foreground one so it
            // can read the tty and gets ^C directly (what tini does).
            if libc::isatty(0) == 1 {
                libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, libc::getpid());
                libc::signal(libc::SIGTTOU, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let (child, mut exit) = match reaper.spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bosun: cannot run {}: {e}", argv[0].to_string_lossy());
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    loop {
        tokio::select! {
            e = &mut exit => {
                return e.map(|e| e.code()).unwrap_or(1);
            }
            sig = signals.recv() => {
                if let Ok(s) = Signal::try_from(sig.number()) {
                    let _ = kill(pid, s);
                }
            }
        }
    }
}
