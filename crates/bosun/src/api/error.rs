//! The API's errors and their HTTP statuses, decided once, from the type:
//! [`ApiError::status`] is the only place that maps a failure to a code.
//! Handlers return the typed errors of the layer they call (`ActError`,
//! `ReloadError`, [`SnapshotError`], [`Denied`]) and never re-check what that
//! layer already checked to pick a code.

use std::path::PathBuf;

use bosun_core::{ActError, ReloadError, ScaleError};
use hyper::header::{HeaderValue, ALLOW, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use super::auth::{AuthSetupError, Denied};
use super::body::Body;
use super::handlers::json;
use super::snapshots::SnapshotError;
use crate::protocol::ErrorReply;

/// Everything a request can fail with; the answer is `{"error": "..."}` with
/// the status of [`ApiError::status`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Not allowed to ask (403 on the socket, 401 on TCP).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A unit command that was not carried out.
    #[error(transparent)]
    Act(#[from] ActError),
    /// A reload that changed nothing.
    #[error(transparent)]
    Reload(#[from] ReloadError),
    /// A scale that changed nothing.
    #[error(transparent)]
    Scale(#[from] ScaleError),
    /// A scale request without a count.
    #[error("how many? send {{\"instances\": N}} (1 to 1000)")]
    NoCount,
    /// A snapshot request that failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// No route for the path.
    #[error("no such path: {0} (see GET /v1/status)")]
    NoSuchPath(String),
    /// A known path with the wrong method; the methods it takes.
    #[error("method not allowed here; use {0}")]
    MethodNotAllowed(&'static str),
    /// `?format=` is neither `json` nor `table`.
    #[error("unknown format {0:?} (json or table)")]
    UnknownFormat(String),
    /// `?n=` is not a number.
    #[error("n must be a number of lines")]
    BadLineCount,
    /// A signal request without a signal.
    #[error("which signal? use ?sig=HUP or a body {{\"signal\": \"HUP\"}}")]
    NoSignal,
    /// A signal name or number bosun does not know.
    #[error("unknown signal {0:?} (use a name like HUP or a number 1-31)")]
    UnknownSignal(String),
    /// The request body could not be read (too large, broken off).
    #[error("cannot read the request body: {0}")]
    Body(String),
    /// A fleet path, and `[fleet]` has no database.
    #[error("no fleet here: set [fleet] database to join one")]
    NoFleet,
    /// A fleet call failed (the database is down, no such command, …).
    #[error(transparent)]
    Fleet(#[from] bosun_fleet::FleetError),
    /// A fleet command that cannot be given (unknown action, bad target, bad timeout).
    #[error("{0}")]
    BadFleetCommand(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Denied(Denied::Forbidden { .. }) => StatusCode::FORBIDDEN,
            ApiError::Denied(Denied::NoToken | Denied::WrongToken) => StatusCode::UNAUTHORIZED,
            ApiError::Act(e) => act_status(e),
            ApiError::Reload(ReloadError::Stopping) => StatusCode::SERVICE_UNAVAILABLE,
            // Booting: 409 as before (bosun answered, the answer is "not now").
            ApiError::Reload(
                ReloadError::Booting { .. }
                | ReloadError::Invalid(_)
                | ReloadError::Plan { .. }
                | ReloadError::NeedsRestart { .. },
            ) => StatusCode::CONFLICT,
            ApiError::Scale(ScaleError::NoSuchUnit(_)) => StatusCode::NOT_FOUND,
            ApiError::Scale(ScaleError::NotInstanced(_) | ScaleError::Count { .. }) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Scale(ScaleError::Stopping) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Scale(
                ScaleError::NotActive { .. } | ScaleError::Booting { .. } | ScaleError::Plan(_),
            ) => StatusCode::CONFLICT,
            ApiError::Snapshot(SnapshotError::NotConfigured) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Snapshot(SnapshotError::List(_)) => StatusCode::BAD_GATEWAY,
            ApiError::Snapshot(SnapshotError::Backup(_)) => StatusCode::CONFLICT,
            ApiError::NoSuchPath(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnknownFormat(_)
            | ApiError::BadLineCount
            | ApiError::NoSignal
            | ApiError::NoCount
            | ApiError::UnknownSignal(_)
            | ApiError::Body(_)
            | ApiError::BadFleetCommand(_)
            | ApiError::Fleet(bosun_fleet::FleetError::InvalidTarget(_)) => StatusCode::BAD_REQUEST,
            ApiError::NoFleet => StatusCode::NOT_IMPLEMENTED,
            ApiError::Fleet(bosun_fleet::FleetError::NoSuchCommand(_)) => StatusCode::NOT_FOUND,
            ApiError::Fleet(bosun_fleet::FleetError::Stopped) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Fleet(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The error as an answer: JSON with its status, and the headers some
    /// statuses call for (`WWW-Authenticate`, `Allow`).
    pub fn response(&self) -> Response<Body> {
        let mut message = self.to_string();
        if let ApiError::Reload(_) | ApiError::Fleet(_) = self {
            // Config errors quote the file; a URL in it must not carry its password.
            message = bosun_config::redact::redact_url(&message);
        }
        let mut r = json(
            self.status(),
            &ErrorReply {
                error: message,
                results: Vec::new(),
            },
        );
        match self {
            ApiError::Denied(Denied::NoToken | Denied::WrongToken) => {
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed(allow) => {
                r.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        r
    }
}

/// The status of a unit command's failure (also per unit in a multi-unit answer).
pub fn act_status(e: &ActError) -> StatusCode {
    match e {
        ActError::NoSuchUnit(_) | ActError::NoUnitWithRole(_) | ActError::NoActiveUnit => {
            StatusCode::NOT_FOUND
        }
        ActError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
        // Booting: 409 as before (bosun answered, the answer is "not now").
        ActError::NotActive { .. }
        | ActError::Booting { .. }
        | ActError::Gone(_)
        | ActError::AlreadyRunning(_)
        | ActError::Unit(_)
        | ActError::NotReady { .. }
        | ActError::RollingStopped { .. } => StatusCode::CONFLICT,
        ActError::NotOnDemand(_) | ActError::OneInstance { .. } => StatusCode::BAD_REQUEST,
    }
}

/// Why a connection is turned away at once (a 503 with these words): its
/// share of the connection budget is full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// Socket peers other than root and bosun's own user hold their whole share.
    #[error("the control socket's share for users other than root and bosun's own user is full ({0} connections); try again shortly")]
    GuestsFull(usize),
    /// One TCP client holds its whole share.
    #[error("too many connections from {ip} (at most {limit} per client); try again shortly")]
    ClientFull {
        /// The client's address.
        ip: std::net::IpAddr,
        /// Its share.
        limit: usize,
    },
}

/// Why the API cannot start (bosun then refuses to start: exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `control_group` cannot be resolved.
    #[error(transparent)]
    Group(AuthSetupError),
    /// `http_listen` is set, and there is no usable token.
    #[error("http_listen = {addr:?} is set but {source}; bosun refuses to serve its API on TCP without a token")]
    Token {
        /// `http_listen`.
        addr: String,
        /// What is wrong with the token.
        source: AuthSetupError,
    },
    /// The socket's directory cannot be created.
    #[error("cannot create {}: {source}", dir.display())]
    SocketDir {
        /// The directory.
        dir: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// Another bosun answers on the socket.
    #[error("{}: another bosun is already listening there", .0.display())]
    SocketInUse(PathBuf),
    /// A stale socket file cannot be removed.
    #[error("cannot remove the stale socket {}: {source}", path.display())]
    StaleSocket {
        /// The socket.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// Something that is not a socket is in the way.
    #[error("{} exists and is not a socket; not touching it", .0.display())]
    NotASocket(PathBuf),
    /// The socket path cannot be inspected.
    #[error("cannot inspect {}: {source}", path.display())]
    Inspect {
        /// The socket.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// bind(2) on the socket failed.
    #[error("cannot listen on {}: {source}", path.display())]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The socket cannot be given to `control_group`.
    #[error("cannot give {} to group {group}: {source}", path.display())]
    Chown {
        /// The socket.
        path: PathBuf,
        /// The group.
        group: String,
        /// Why not.
        source: nix::Error,
    },
    /// The socket's mode cannot be set.
    #[error("cannot chmod {}: {source}", path.display())]
    Chmod {
        /// The socket.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// `http_listen` cannot be bound.
    #[error("cannot listen on http_listen = {addr:?}: {source}")]
    Listen {
        /// `http_listen`.
        addr: String,
        /// Why not.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_act_error_has_the_status_it_had() {
        let cases = [
            (ActError::NoSuchUnit("x".into()), 404),
            (ActError::NoUnitWithRole("r".into()), 404),
            (ActError::NoActiveUnit, 404),
            (
                ActError::NotActive {
                    unit: "off".into(),
                    roles: "web".into(),
                },
                409,
            ),
            (ActError::Stopping, 503),
            (
                ActError::Booting {
                    unit: "w".into(),
                    step: "restoring".into(),
                },
                409,
            ),
            (ActError::Gone("w".into()), 409),
            (
                ActError::Unit(bosun_core::unit::UnitError::NotRunning("w".into())),
                409,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(ApiError::from(e).status().as_u16(), want);
        }
        assert_eq!(ApiError::from(ReloadError::Stopping).status().as_u16(), 503);
        assert_eq!(
            ApiError::from(SnapshotError::NotConfigured)
                .status()
                .as_u16(),
            501
        );
    }

    #[test]
    fn a_refused_token_says_bearer() {
        let r = ApiError::from(Denied::WrongToken).response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
        let r = ApiError::from(Denied::Forbidden { uid: 7 }).response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
        let r = ApiError::MethodNotAllowed("POST").response();
        assert_eq!(r.headers()[ALLOW], "POST");
    }
}
