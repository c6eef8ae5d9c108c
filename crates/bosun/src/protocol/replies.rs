//! The control API's own request and answer bodies, next to the daemon's
//! status types that `bosun-core` defines. One type per body, used on both
//! sides.

use serde::{Deserialize, Serialize};

/// Every error answer: `{"error": "..."}` with a 4xx/5xx status. Action
/// answers that failed carry their per-unit results as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, in words meant for the admin.
    pub error: String,
    /// Per-unit results of a start/stop/restart/signal that failed for some unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<UnitResult>,
}

/// A plain success: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReply {
    /// What happened.
    pub message: String,
}

/// The answer of `POST /v1/units/{target}/{start|stop|restart|signal}`: one
/// result per unit the target expanded to (`all`, `role:web`, or one name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReply {
    /// In config order.
    pub results: Vec<UnitResult>,
}

/// What one action did to one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitResult {
    /// The unit.
    pub unit: String,
    /// Whether the action was accepted.
    pub ok: bool,
    /// What happened, or why not.
    pub message: String,
}

/// The body `POST /v1/units/{target}/signal` accepts when `?sig=` is absent:
/// `{"signal": "HUP"}` (a name with or without `SIG`, or a number as a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRequest {
    /// The signal.
    pub signal: String,
}

/// The body of `POST /v1/units/{service}/scale`: `{"instances": 6}`, how many
/// instances of a service with `instances` to run from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleRequest {
    /// The new count, 1 to 1000.
    pub instances: u32,
}

/// The series a snapshot belongs to, as `GET /v1/snapshots` and `ctl snapshots`
/// spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotSeries {
    /// The regular series (clean stops, `ctl backup`): the one LATEST points into.
    /// `"stop"` on the wire (the name scripts know); `"regular"` is read too.
    #[serde(rename = "stop", alias = "regular")]
    Regular,
    /// Daily snapshots (`daily_at`): they never move LATEST.
    #[serde(rename = "daily")]
    Daily,
}

impl SnapshotSeries {
    /// The wire name (`stop`, `daily`), for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotSeries::Regular => "stop",
            SnapshotSeries::Daily => "daily",
        }
    }
}

/// One snapshot in `GET /v1/snapshots` (the list is oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    /// Its id (`20240501T120000Z-host`).
    pub id: String,
    /// Its series.
    pub kind: SnapshotSeries,
    /// When it was started, Unix time in milliseconds.
    pub time_ms: u64,
    /// The host that took it.
    pub host: String,
    /// Its size in the store, in bytes.
    pub size: u64,
    /// Its manifest exists: it was committed and can be restored.
    pub complete: bool,
    /// It is the one LATEST names (what the next start on an empty disk restores).
    pub latest: bool,
    /// Its last verification (`bosun snapshot verify`, `verify_after_commit`); absent
    /// when never verified (or from an older bosun).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<SnapshotVerified>,
}

/// When a snapshot was last verified, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotVerified {
    /// When, Unix time in milliseconds.
    pub at_ms: u64,
    /// Every item checked out.
    pub ok: bool,
    /// `full`, or `ciphertext` (encrypted, checked without a key).
    pub depth: String,
}

/// The answer of `POST /v1/backup`: the message `ctl backup` prints, and the
/// snapshot's id for scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReply {
    /// `snapshot ID committed`.
    pub message: String,
    /// The snapshot's id.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_entries_keep_their_wire_names() {
        let e = SnapshotEntry {
            id: "20240501T120000Z-h".into(),
            kind: SnapshotSeries::Regular,
            time_ms: 1,
            host: "h".into(),
            size: 2,
            complete: true,
            latest: false,
            verified: None,
        };
        let json = serde_json::to_string(&e).expect("serialise");
        assert_eq!(
            json,
            r#"{"id":"20240501T120000Z-h","kind":"stop","time_ms":1,"host":"h","size":2,"complete":true,"latest":false}"#
        );
        assert_eq!(
            serde_json::from_str::<SnapshotEntry>(&json).expect("parse"),
            e
        );
        let daily: SnapshotSeries = serde_json::from_str(r#""daily""#).expect("daily");
        assert_eq!(daily, SnapshotSeries::Daily);
        let regular: SnapshotSeries = serde_json::from_str(r#""regular""#).expect("alias");
        assert_eq!(regular, SnapshotSeries::Regular);
    }
}

/// One NDJSON line of `POST /v1/units/{task}/run`: the task's output lines as
/// they come, then one `Done` line with its exit code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunEvent {
    /// The run ended.
    Done {
        /// The task's exit code (128+n for signal n; 1 when it could not start).
        exit_code: i32,
        /// Its status detail (`done`, `task failed (exit 3)`, …).
        detail: String,
    },
    /// A line of its output.
    Line(crate::protocol::LogLine),
}
