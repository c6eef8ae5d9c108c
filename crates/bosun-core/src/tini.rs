//! `bosun -- CMD ARGS`: no config, tini's job. CMD is the one essential process;
//! every signal tini forwards goes to it ([`crate::signals::forwarded`]: all the
//! asynchronous ones, real-time included), orphans are reaped, and bosun exits with
//! CMD's code (128+n when a signal killed it). CMD starts with the signal mask and
//! the ignored signals bosun was started with, as under tini.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::reaper::Reaper;
use crate::signals::{Forwarded, Inherited};

/// Runs `argv` until it exits; returns the exit code bosun should use.
pub async fn run(argv: &[OsString], reaper: &Reaper, signals: &mut Forwarded) -> i32 {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut restore = Inherited::get().restore_in_child();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // With a terminal, make the child's group the foreground one so it
            // can read the tty and gets ^C directly (what tini does). SIGTTOU is
            // ignored here (bosun ignores it in tini mode), so this cannot stop us.
            if libc::isatty(0) == 1 {
                libc::tcsetpgrp(0, libc::getpid());
            }
            // Then the mask and ignored signals bosun inherited, every other
            // signal default (std has already reset SIGPIPE; this runs after).
            restore()
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
    let pid = child.id() as libc::pid_t;
    loop {
        tokio::select! {
            // The exit first: once CMD is reaped, its pid must not be signalled.
            biased;
            e = &mut exit => {
                return e.map(|e| e.code()).unwrap_or(1);
            }
            sig = signals.recv() => {
                // libc, not nix: nix's Signal has no real-time signals. A child that
                // has just exited (ESRCH) is reaped by the other branch.
                // SAFETY: kill(2) with our child's pid and a valid signal number.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}
