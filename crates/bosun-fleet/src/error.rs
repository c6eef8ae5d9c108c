//! What a fleet call can fail with. Messages carry the redacted database URL at most,
//! never a password.

use std::time::Duration;

/// A failed fleet operation (listing peers, giving a command, waiting for it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// No connection to the fleet database right now (the runner is reconnecting).
    #[error("the fleet database {url} is unreachable: {detail}")]
    DatabaseDown {
        /// The database URL, password redacted.
        url: String,
        /// The last connection error.
        detail: String,
    },
    /// A statement failed.
    #[error("fleet database, {what}: {detail}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The database's message.
        detail: String,
    },
    /// A statement got no answer in time.
    #[error("fleet database, {what}: no answer within {timeout:?}")]
    Timeout {
        /// What was being done.
        what: &'static str,
        /// The statement timeout.
        timeout: Duration,
    },
    /// A command target that is not a unit or `role:R` name.
    #[error("{0}")]
    InvalidTarget(String),
    /// No command with this id (or it was deleted after its retention).
    #[error("no fleet command {0}")]
    NoSuchCommand(i64),
    /// The fleet task has stopped (after [`crate::Handle::shutdown`]).
    #[error("the fleet task has stopped")]
    Stopped,
}
