//! Singleton units: core asks "may I run this unit?" and hears "stop it now". The
//! answers come from outside (the binary feeds them from the fleet, `bosun-fleet`),
//! one `watch` channel of [`Permit`] per singleton unit; core knows nothing of
//! databases.

use std::collections::HashMap;

use tokio::sync::watch;

/// What this container may do with one singleton unit right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    /// Run it, with `$BOSUN_LEASE_TERM = term`. A new term restarts it.
    Run {
        /// The lease's fencing term.
        term: i64,
    },
    /// Keep it stopped and show it as `standby`: another container holds it
    /// (`holder`), or nobody is known to.
    Standby {
        /// The container that holds it, when known.
        holder: Option<String>,
    },
    /// Stop it at once (its stop path: signal, grace, SIGKILL, group dead).
    StopNow,
}

impl Permit {
    /// The term when this permit lets the unit run.
    pub fn term(&self) -> Option<i64> {
        match self {
            Permit::Run { term } => Some(*term),
            _ => None,
        }
    }

    /// The `detail` shown while the unit waits under this permit.
    pub fn detail(&self) -> String {
        match self {
            Permit::Run { term } => format!("lease term {term}"),
            Permit::Standby { holder: Some(h) } => format!("singleton held by {h}"),
            Permit::Standby { holder: None } => "singleton: waiting for the lease".into(),
            Permit::StopNow => "singleton: lease lost, stopping".into(),
        }
    }
}

/// The permits of every singleton unit, by unit name. A singleton without an
/// entry (no fleet configured) runs like any unit.
pub type Permits = HashMap<String, watch::Receiver<Permit>>;

/// The env variable a running singleton gets its term in.
pub const LEASE_TERM_ENV: &str = "BOSUN_LEASE_TERM";

/// Resolves when `rx` no longer says `Run { term }` (or its sender is gone).
pub(crate) async fn revoked(rx: &mut watch::Receiver<Permit>, term: i64) {
    loop {
        if rx.borrow_and_update().term() != Some(term) {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
