//! Starting a unit's process: identity, environment, readiness plumbing (log
//! matcher, `$NOTIFY_SOCKET`), the spawn itself and its output pipes.

use std::os::fd::OwnedFd;
use std::time::Duration;

use bosun_config::{Output, Probe, UnitKind};
use tokio::time::Instant;

use super::follow::Probing;
use super::notify::NotifySocket;
use super::{Outcome, Proc, Runner, UnitError, SPAWN_SLOTS};
use crate::output::Stream;
use crate::reaper::Exit;
use crate::spawn::{self, Identity, Spec, Stdout};
use crate::status::{now_ms, ExitInfo, State};

impl Runner {
    /// Spawns the process once and follows it until it is down.
    pub(super) async fn run_once(&mut self) -> Outcome {
        let (probing, notify) = match self.prepare() {
            Ok(p) => p,
            Err(why) => return Outcome::Fatal(why),
        };
        let mut proc = match self.spawn_process(&probing).await {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let started = Instant::now();
        let unit = self.unit.clone();
        tracing::info!(unit = %unit.name, pid = proc.pid, "started");
        self.set(|s| {
            s.state = State::Starting;
            s.pid = Some(proc.pid);
            s.started_at_ms = Some(now_ms());
            s.timeline.spawned_at_ms.get_or_insert_with(now_ms);
            s.detail = match &unit.ready.probe {
                Some(p) => format!("waiting for ready probe {}", p.kind()),
                None if unit.kind == UnitKind::Task => "running".into(),
                None => format!("ready after {:?} alive", unit.start_secs),
            };
        });
        let outcome = self.follow(&mut proc, started, probing).await;
        drop(notify);
        self.set(|s| {
            s.pid = None;
            if let Outcome::Exited { exit, .. } = &outcome {
                s.last_exit = Some(ExitInfo {
                    code: exit.code(),
                    signal: exit.signal(),
                    at_ms: now_ms(),
                });
            }
        });
        outcome
    }

    /// Everything a start needs before the spawn: who it runs as, its environment
    /// (`env_file` re-read now), and the readiness plumbing its probe uses.
    fn prepare(&self) -> Result<(Probing, Option<NotifySocket>), UnitError> {
        let unit = &self.unit;
        let identity = Identity::resolve(unit.user.as_deref(), unit.group.as_deref())?;
        let mut env = spawn::unit_env(unit)?;
        if let Some(term) = self.term {
            env.push((crate::lease::LEASE_TERM_ENV.into(), term.to_string().into()));
        }
        let log_matched = match &unit.ready.probe {
            Some(Probe::Log(re)) => {
                let re = regex::Regex::new(re)?;
                Some(self.log.arm_matcher(re))
            }
            _ => None,
        };
        let notify = if matches!(unit.ready.probe, Some(Probe::Notify)) {
            let n = NotifySocket::bind(&self.env.notify_dir, &unit.name, identity.as_ref())
                .map_err(UnitError::NotifySocket)?;
            env.push(("NOTIFY_SOCKET".into(), n.path.clone().into_os_string()));
            Some(n)
        } else {
            None
        };
        let probing = Probing {
            identity,
            env,
            log_matched,
            notified: notify.as_ref().map(|n| n.ready.clone()),
        };
        Ok((probing, notify))
    }

    /// Spawns the unit's process and starts pumping its output. A spawn that
    /// fails (no such program) counts as an exit with 127, so the restart policy
    /// decides what follows.
    async fn spawn_process(&mut self, probing: &Probing) -> Result<Proc, Outcome> {
        let unit = self.unit.clone();
        let output = if unit.output == Output::Inherit {
            Stdout::Inherit
        } else {
            Stdout::Piped
        };
        let spec = Spec::for_unit(
            &unit,
            probing.identity.as_ref(),
            probing.env.clone(),
            unit.run.argv(),
        )
        .output(output);
        self.restarts.started(Instant::now());
        let prepared = spec.prepared();
        // Off the runtime thread, two at a time: a spawn blocks its caller until
        // the child has exec'd, and 100 units should not exec in a row.
        let reaper = self.env.reaper.clone();
        let _permit = SPAWN_SLOTS.acquire().await;
        let spawned = tokio::task::spawn_blocking(move || reaper.spawn_prepared(prepared))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        let (mut child, exit) = spawned.map_err(|e| {
            let msg = format!("cannot start {}: {e}", spec.argv[0]);
            self.log.line(Stream::Stderr, &format!("bosun: {msg}"));
            Outcome::Exited {
                exit: Exit::Code(127),
                ran: Duration::ZERO,
                why: Some(msg),
            }
        })?;
        let pipes = [
            (child.stdout.take().map(OwnedFd::from), Stream::Stdout),
            (child.stderr.take().map(OwnedFd::from), Stream::Stderr),
        ];
        for (fd, stream) in pipes {
            let Some(fd) = fd else { continue };
            match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                Ok(rx) => {
                    tokio::spawn(self.log.clone().pump(rx, stream));
                }
                Err(e) => tracing::warn!(unit = %unit.name, "cannot read output: {e}"),
            }
        }
        Ok(Proc {
            pid: child.id() as i32,
            exit,
        })
    }
}
