//! Fleet commands: what an admin asks every peer to do, and each peer's answer.
//!
//! A command is one of four verbs on a name ([`Action`] × [`Target`]): nothing in the
//! database can make bosun run a command line, only start, stop, restart or run a unit
//! that the peer's own config defines. A row whose verb or name is not one of these is
//! acknowledged as failed and never reaches the caller.
//!
//! Delivery: the command is a LOGGED row; each peer that sees it claims it (an ack row
//! in state `running`), hands it to the caller, and writes the outcome. A peer that was
//! away runs an unclaimed command when it comes back, if the command is younger than the
//! catch-up window (10 minutes by default) and the peer was a member of the fleet when
//! it was given. It runs it at most once: a claim left `running` by an earlier boot of
//! the peer is marked failed ("interrupted"), not run again.

use std::fmt;
use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::settings::check_name;

/// What to do with the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Restart the unit(s).
    Restart,
    /// Start the unit(s).
    Start,
    /// Stop the unit(s).
    Stop,
    /// Run an on-demand task, to its exit code.
    Run,
}

impl Action {
    /// The spelling in the database, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Restart => "restart",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Run => "run",
        }
    }

    /// Parses the spelling of [`Action::as_str`].
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "restart" => Action::Restart,
            "start" => Action::Start,
            "stop" => Action::Stop,
            "run" => Action::Run,
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a command acts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// One unit by name (`web`).
    Unit(String),
    /// Every unit active under role `R` on the peer (`role:R`).
    Role(String),
}

impl Target {
    /// Parses `web` or `role:web`; names are letters, digits, `_`, `.` and `-`.
    pub fn parse(s: &str) -> Result<Target, String> {
        let (target, name) = match s.strip_prefix("role:") {
            Some(role) => (Target::Role(role.to_owned()), role),
            None => (Target::Unit(s.to_owned()), s),
        };
        check_name(name).map_err(|why| format!("target {s:?}: the name {why}"))?;
        Ok(target)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unit(u) => f.write_str(u),
            Target::Role(r) => write!(f, "role:{r}"),
        }
    }
}

/// A command as a peer receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Its id in the fleet (`GET /v1/fleet/commands/{id}`).
    pub id: i64,
    /// The verb.
    pub action: Action,
    /// The unit or role.
    pub target: Target,
    /// The peer that gave it.
    pub created_by: String,
    /// When, by the database clock.
    pub created_at: SystemTime,
}

/// How a peer's run of a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AckState {
    /// Done (a task exited 0; a unit was started, stopped or restarted).
    Ok,
    /// It failed (see the exit code and detail).
    Failed,
    /// The target is not active under this peer's roles: not a failure.
    NoSuchUnit,
}

impl AckState {
    /// The spelling in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AckState::Ok => "ok",
            AckState::Failed => "failed",
            AckState::NoSuchUnit => "no-such-unit",
        }
    }
}

/// The outcome a caller hands back for a [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub state: AckState,
    /// A task's exit code, when there is one.
    pub exit_code: Option<i32>,
    /// A short human-readable note (the error, for a failure).
    pub detail: String,
}

impl Outcome {
    /// Done, nothing to add.
    pub fn ok() -> Outcome {
        Outcome {
            state: AckState::Ok,
            exit_code: None,
            detail: String::new(),
        }
    }

    /// A task exited with `code`: ok for 0, failed otherwise.
    pub fn exited(code: i32) -> Outcome {
        Outcome {
            state: if code == 0 {
                AckState::Ok
            } else {
                AckState::Failed
            },
            exit_code: Some(code),
            detail: String::new(),
        }
    }

    /// Failed, with why.
    pub fn failed(detail: impl Into<String>) -> Outcome {
        Outcome {
            state: AckState::Failed,
            exit_code: None,
            detail: detail.into(),
        }
    }

    /// The target is not active here.
    pub fn no_such_unit() -> Outcome {
        Outcome {
            state: AckState::NoSuchUnit,
            exit_code: None,
            detail: String::new(),
        }
    }
}

/// A command handed to the caller, with the way back for its outcome. Dropping it
/// unanswered acknowledges it as failed.
#[derive(Debug)]
pub struct CommandRequest {
    /// The command to carry out.
    pub command: Command,
    reply: oneshot::Sender<Outcome>,
}

impl CommandRequest {
    pub(crate) fn new(command: Command) -> (CommandRequest, oneshot::Receiver<Outcome>) {
        let (reply, rx) = oneshot::channel();
        (CommandRequest { command, reply }, rx)
    }

    /// Reports how it went; the peer writes the acknowledgement.
    pub fn reply(self, outcome: Outcome) {
        // The runner may be gone (shutting down): the claim then stays `running` and
        // the next boot marks it interrupted.
        let _ = self.reply.send(outcome);
    }
}

/// One peer's line in a [`CommandReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowState {
    /// Acknowledged ok.
    Ok,
    /// Acknowledged failed.
    Failed,
    /// Acknowledged: not active there.
    NoSuchUnit,
    /// Claimed, still running.
    Running,
    /// No answer yet (the peer is away, or slow): it still runs the command when it
    /// comes back within the catch-up window.
    Pending,
}

impl RowState {
    /// The spelling in the API: `ok`, `failed`, `no-such-unit`, `running`, `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Ok => "ok",
            RowState::Failed => "failed",
            RowState::NoSuchUnit => "no-such-unit",
            RowState::Running => "running",
            RowState::Pending => "pending",
        }
    }

    pub(crate) fn from_db(state: Option<&str>) -> RowState {
        match state {
            None => RowState::Pending,
            Some("ok") => RowState::Ok,
            Some("no-such-unit") => RowState::NoSuchUnit,
            Some("running") => RowState::Running,
            // `failed`, and any state a newer bosun may write.
            Some(_) => RowState::Failed,
        }
    }

    /// Whether the peer has finished with the command.
    pub fn is_final(self) -> bool {
        !matches!(self, RowState::Running | RowState::Pending)
    }
}

/// One peer's answer to a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRow {
    /// The peer.
    pub peer: String,
    /// Its answer so far.
    pub state: RowState,
    /// A task's exit code.
    pub exit_code: Option<i32>,
    /// Its note.
    pub detail: String,
    /// When it finished, by the database clock.
    pub finished_at: Option<SystemTime>,
    /// Whether it was live when the command was given (the initiator waits for those).
    pub expected: bool,
    /// Whether it is live now.
    pub live: bool,
}

/// A command and every peer's answer: `GET /v1/fleet/commands/{id}`, and what
/// `ctl fleet restart web` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandReport {
    /// The command's id.
    pub id: i64,
    /// The verb.
    pub action: Action,
    /// The target.
    pub target: Target,
    /// Who gave it.
    pub created_by: String,
    /// When.
    pub created_at: SystemTime,
    /// One row per peer that was live when it was given or has answered, by name.
    pub rows: Vec<ReportRow>,
}

impl CommandReport {
    /// Every peer that was live when it was given has finished.
    pub fn complete(&self) -> bool {
        self.rows
            .iter()
            .filter(|r| r.expected)
            .all(|r| r.state.is_final())
    }

    /// The exit rule of `ctl fleet`: every expected peer answered ok or "no such unit
    /// here".
    pub fn succeeded(&self) -> bool {
        self.rows
            .iter()
            .filter(|r| r.expected)
            .all(|r| matches!(r.state, RowState::Ok | RowState::NoSuchUnit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_and_targets() {
        for a in [Action::Restart, Action::Start, Action::Stop, Action::Run] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("exec"), None);
        assert_eq!(Target::parse("web"), Ok(Target::Unit("web".into())));
        assert_eq!(Target::parse("role:web"), Ok(Target::Role("web".into())));
        assert_eq!(Target::parse("role:web").unwrap().to_string(), "role:web");
        for bad in ["", "role:", "rm -rf /", "a;b", "role:$(x)", "../x"] {
            assert!(Target::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn report_rules() {
        let row = |state, expected| ReportRow {
            peer: "p".into(),
            state,
            exit_code: None,
            detail: String::new(),
            finished_at: None,
            expected,
            live: true,
        };
        let mut r = CommandReport {
            id: 1,
            action: Action::Run,
            target: Target::Unit("update".into()),
            created_by: "a".into(),
            created_at: SystemTime::UNIX_EPOCH,
            rows: vec![
                row(RowState::Ok, true),
                row(RowState::NoSuchUnit, true),
                row(RowState::Pending, false),
            ],
        };
        assert!(r.complete() && r.succeeded());
        r.rows.push(row(RowState::Running, true));
        assert!(!r.complete() && !r.succeeded());
        r.rows.pop();
        r.rows.push(row(RowState::Failed, true));
        assert!(r.complete() && !r.succeeded());
        assert_eq!(RowState::from_db(Some("exploded")), RowState::Failed);
    }
}
