//! One writer per store prefix: the running marker (`running/<roles>`) names the
//! container that writes this role set's snapshots, and is refreshed while it runs.
//!
//! A container commits only when the marker is its own (same hostname and same
//! instance id, the id kept in its `state_dir`: a restarted container on the same disk
//! is the same writer), absent, or stale: not refreshed for `writer_stale_after`
//! (default 30 min; a live writer refreshes it every third of that, and at each
//! snapshot). A stale marker is taken over; a live one of another container makes
//! this one refuse to commit, naming both. Timestamps are the writers' own clocks:
//! keep them within a fraction of `writer_stale_after` of each other (NTP does).
//! Two containers booting within the same instant can both write the marker; the
//! one whose marker was overwritten finds out at its next refresh or commit.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The content of a running marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterMarker {
    /// The writer's hostname.
    pub host: String,
    /// Its instance id (kept in its `state_dir`).
    pub instance: String,
    /// When it booted, Unix seconds.
    pub since: u64,
    /// When it last refreshed the marker, Unix seconds.
    pub heartbeat: u64,
    /// Its own `writer_stale_after` in seconds (it refreshes every third of it):
    /// others judge it by the longer of theirs and this, so two containers with
    /// different settings never take a live marker for a stale one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after: Option<u64>,
}

impl WriterMarker {
    /// Parses a marker; an older bosun's `host since SECS` line is read as a writer with
    /// no instance id whose last sign of life was its boot.
    pub fn parse(data: &[u8]) -> Option<WriterMarker> {
        if let Ok(m) = serde_json::from_slice::<WriterMarker>(data) {
            return Some(m);
        }
        let text = std::str::from_utf8(data).ok()?;
        let (host, secs) = text.trim().split_once(" since ")?;
        let secs = secs.trim().parse().ok()?;
        Some(WriterMarker {
            host: host.to_string(),
            instance: String::new(),
            since: secs,
            heartbeat: secs,
            stale_after: None,
        })
    }

    /// `web-1 (instance 3f2a…, refreshed 40 s ago)`.
    pub fn describe(&self, now: u64) -> String {
        format!(
            "{} (instance {}, marker refreshed {} s ago)",
            self.host.escape_debug(),
            if self.instance.is_empty() {
                "unknown".to_string()
            } else {
                self.instance.escape_debug().to_string()
            },
            now.saturating_sub(self.heartbeat)
        )
    }
}

/// What a container may do with the marker it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No marker: the prefix is free.
    Free,
    /// Its own (this host and instance, e.g. its previous run on this disk).
    Own,
    /// Another container's, not refreshed for longer than the stale time: taken over.
    Stale(WriterMarker),
    /// Another container's, alive: never commit over it.
    Live(WriterMarker),
}

/// Decides on `found` for the writer `(host, instance)` at `now` (Unix seconds). Pure.
pub fn claim(
    found: Option<&WriterMarker>,
    host: &str,
    instance: &str,
    now: u64,
    stale_after: Duration,
) -> Claim {
    match found {
        None => Claim::Free,
        Some(m) if m.host == host && m.instance == instance => Claim::Own,
        Some(m) if now.saturating_sub(m.heartbeat) > effective_stale(m, stale_after).as_secs() => {
            Claim::Stale(m.clone())
        }
        // A marker from the future (a clock ahead) counts as alive: wait it out.
        Some(m) => Claim::Live(m.clone()),
    }
}

/// How long `m` may go unrefreshed before it is stale, for a reader whose own
/// setting is `mine`: the longer of the two.
pub fn effective_stale(m: &WriterMarker, mine: Duration) -> Duration {
    mine.max(Duration::from_secs(m.stale_after.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(host: &str, instance: &str, heartbeat: u64) -> WriterMarker {
        WriterMarker {
            host: host.into(),
            instance: instance.into(),
            since: 1,
            heartbeat,
            stale_after: None,
        }
    }

    #[test]
    fn claims() {
        let stale = Duration::from_secs(1800);
        assert_eq!(claim(None, "a", "1", 5000, stale), Claim::Free);
        assert_eq!(
            claim(Some(&m("a", "1", 0)), "a", "1", 5000, stale),
            Claim::Own
        );
        // Same hostname, another disk (a replaced pod): not its own.
        let other_disk = m("a", "2", 4000);
        assert_eq!(
            claim(Some(&other_disk), "a", "1", 5000, stale),
            Claim::Live(other_disk.clone())
        );
        assert_eq!(
            claim(Some(&other_disk), "a", "1", 4000 + 1801, stale),
            Claim::Stale(other_disk)
        );
        // A writer that declares a longer stale time than the reader's is judged by it.
        let patient = WriterMarker {
            stale_after: Some(3600),
            ..m("c", "3", 4000)
        };
        assert_eq!(
            claim(Some(&patient), "a", "1", 4000 + 1801, stale),
            Claim::Live(patient.clone())
        );
        assert_eq!(
            claim(Some(&patient), "a", "1", 4000 + 3601, stale),
            Claim::Stale(patient)
        );
        let future = m("b", "9", 99_999);
        assert_eq!(
            claim(Some(&future), "a", "1", 5000, stale),
            Claim::Live(future)
        );
    }

    #[test]
    fn parses_both_forms() {
        let j = serde_json::to_vec(&m("h", "i", 7)).expect("json");
        assert_eq!(WriterMarker::parse(&j), Some(m("h", "i", 7)));
        let old = WriterMarker::parse(b"web1 since 1700000000").expect("legacy");
        assert_eq!(
            (old.host.as_str(), old.instance.as_str(), old.heartbeat),
            ("web1", "", 1_700_000_000)
        );
        assert_eq!(WriterMarker::parse(b"garbage"), None);
    }
}
