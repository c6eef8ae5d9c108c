//! A unit's data command (its `dump` or `load`) as a process with one pipe to
//! bosun. It runs under the one rule of [`Spec::for_unit`] (the unit's user,
//! env, cwd, umask, a process group of its own), and its whole group is killed
//! if the work is abandoned (a timeout, the stop budget, a failed stream).

use std::os::fd::OwnedFd;

use bosun_config::Unit;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::oneshot;

use crate::reaper::{Exit, Reaper};
use crate::spawn::{self, Identity, SpawnError, Spec, Stdout};

/// Which end of the process bosun holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipe {
    /// Its stdin: bosun feeds it (a load).
    Stdin,
    /// Its stdout: bosun reads it (a dump); its stderr goes to bosun's.
    Stdout,
}

/// A running data command.
pub struct PipedProcess {
    pid: i32,
    pipe: Option<OwnedFd>,
    exit: Option<oneshot::Receiver<Exit>>,
    done: bool,
}

impl PipedProcess {
    /// Runs `argv` as one of `unit`'s processes with `pipe` connected to bosun.
    pub fn spawn(
        reaper: &Reaper,
        unit: &Unit,
        argv: Vec<String>,
        pipe: Pipe,
    ) -> Result<PipedProcess, SpawnError> {
        let identity = Identity::resolve(unit.user.as_deref(), unit.group.as_deref())?;
        let env = spawn::unit_env(unit)?;
        let spec = Spec::for_unit(unit, identity.as_ref(), env, argv.clone());
        let spec = match pipe {
            Pipe::Stdin => spec.stdin_piped().output(Stdout::Inherit),
            Pipe::Stdout => spec.output(Stdout::Data),
        };
        let (mut child, exit) =
            reaper
                .spawn(&mut spec.command())
                .map_err(|source| SpawnError::Run {
                    program: argv[0].clone(),
                    source,
                })?;
        let fd = match pipe {
            Pipe::Stdin => child.stdin.take().map(OwnedFd::from),
            Pipe::Stdout => child.stdout.take().map(OwnedFd::from),
        };
        Ok(PipedProcess {
            pid: child.id() as i32,
            pipe: fd,
            exit: Some(exit),
            done: false,
        })
    }

    /// The pipe (once).
    pub fn take_pipe(&mut self) -> Option<OwnedFd> {
        self.pipe.take()
    }

    /// SIGKILL to its whole process group now (a load must not see a clean end
    /// of an input that broke off).
    pub fn kill(&self) {
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
    }

    /// Waits for it to exit; `None` if the exit status was lost (bosun exiting).
    pub async fn wait(&mut self) -> Option<Exit> {
        self.exit.take()?.await.ok()
    }

    /// The work succeeded: dropping it no longer kills its group.
    pub fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for PipedProcess {
    fn drop(&mut self) {
        if !self.done {
            self.kill();
        }
    }
}
