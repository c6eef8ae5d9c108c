//! The fleet's wire types: `GET /v1/fleet`, `POST /v1/fleet/commands`,
//! `GET /v1/fleet/commands/{id}`.

use serde::{Deserialize, Serialize};

/// `GET /v1/fleet`: this peer's view of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// This peer's `[fleet] name`.
    pub name: String,
    /// The database, its password masked.
    pub database: String,
    /// Whether this peer reaches the database now.
    pub database_up: bool,
    /// The last database error, redacted (when down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Every peer that registered (dead and left ones are kept a day); empty when the
    /// database cannot be reached.
    pub peers: Vec<FleetPeer>,
    /// Every singleton's lease.
    pub singletons: Vec<FleetSingleton>,
}

/// One peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetPeer {
    /// Its name.
    pub name: String,
    /// Its active roles.
    pub roles: Vec<String>,
    /// Its `[fleet] url` (may be empty).
    pub url: String,
    /// Its bosun version.
    pub version: String,
    /// `live`, `left` (it stopped cleanly and deregistered) or `dead` (its heartbeat
    /// expired without a word), by the database clock.
    pub state: String,
    /// Milliseconds since its last heartbeat, by the database clock.
    pub last_seen_ago_ms: u64,
    /// This peer (the one that answered).
    #[serde(default)]
    pub me: bool,
}

/// One singleton's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSingleton {
    /// The unit.
    pub unit: String,
    /// The peer that holds (or last held) it.
    pub holder: String,
    /// The fencing term.
    pub term: i64,
    /// Since when this term is held, Unix time in milliseconds.
    pub since_ms: u64,
    /// Held now (false: expired or released).
    pub held: bool,
}

/// `POST /v1/fleet/commands`: `{"action": "restart", "target": "web"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCommandRequest {
    /// `restart`, `start`, `stop` or `run`.
    pub action: String,
    /// A unit name or `role:NAME` (`run`: a task).
    pub target: String,
    /// How long to wait for the peers' answers, like `"60s"` (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A fleet command and every peer's answer so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCommandReply {
    /// The command's id (`GET /v1/fleet/commands/{id}`).
    pub id: i64,
    /// Its action.
    pub action: String,
    /// Its target.
    pub target: String,
    /// The peer that gave it.
    pub created_by: String,
    /// Every expected peer has a final answer.
    pub complete: bool,
    /// Every expected peer answered ok or "no such unit here".
    pub succeeded: bool,
    /// One row per peer.
    pub rows: Vec<FleetCommandRow>,
}

/// One peer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCommandRow {
    /// The peer.
    pub peer: String,
    /// `ok`, `failed`, `no-such-unit`, `running` or `pending`.
    pub state: String,
    /// The task's exit code (`run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// What happened, in words.
    #[serde(default)]
    pub detail: String,
    /// The peer was live when the command was given (its answer counts).
    pub expected: bool,
    /// The peer is live now.
    pub live: bool,
}
