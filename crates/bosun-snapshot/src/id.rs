//! Snapshot ids, kinds and the key layout.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::time;

/// The key that names the newest complete snapshot.
pub const LATEST_KEY: &str = "LATEST";
/// The name of a snapshot's manifest, written after all its items.
pub const MANIFEST_NAME: &str = "MANIFEST.json";

/// Which series a snapshot belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    /// The regular series under `snapshots/` (taken at stop, on `ctl backup`); committing
    /// one moves `LATEST` to it. Spelled `"latest"` in manifests (the stored format) and
    /// `"stop"` in `/v1/snapshots` (the API contract); `"regular"` is read too.
    #[serde(rename = "latest", alias = "regular")]
    Regular,
    /// Daily snapshots under `daily/`, kept by `keep_daily`/`keep_weekly`/`keep_monthly`
    /// by the date in their name (see [`crate::plan_prune`]);
    /// committing one does not move `LATEST` (use [`crate::set_latest`] to restore one).
    Daily,
}

impl SnapshotKind {
    /// The top-level directory of this series: `snapshots` or `daily`.
    pub fn dir(self) -> &'static str {
        match self {
            SnapshotKind::Regular => "snapshots",
            SnapshotKind::Daily => "daily",
        }
    }
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapshotKind::Regular => "latest",
            SnapshotKind::Daily => "daily",
        })
    }
}

/// A snapshot's id: `<UTC time YYYYMMDDTHHMMSSZ>-<host>`, in a series.
///
/// Its string form is the bare name for the regular series
/// (`20260131T060000Z-web1`) and `daily/<name>` for daily ones; [`FromStr`] accepts
/// both, plus an explicit `snapshots/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SnapshotId {
    kind: SnapshotKind,
    secs: i64,
    host: String,
}

impl SnapshotId {
    /// An id for a snapshot taken at `time` on `host` (the host is sanitised to
    /// `[A-Za-z0-9._-]`, other characters become `_`).
    pub fn new(kind: SnapshotKind, time: SystemTime, host: &str) -> SnapshotId {
        SnapshotId {
            kind,
            secs: time::unix_secs(time),
            host: sanitize_host(host),
        }
    }

    /// The series.
    pub fn kind(&self) -> SnapshotKind {
        self.kind
    }

    /// When it was started (whole seconds, UTC).
    pub fn time(&self) -> SystemTime {
        time::from_unix_secs(self.secs)
    }

    /// The host that took it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Days since 1970-01-01 (UTC) of its time: the date used for daily retention.
    pub fn day(&self) -> i64 {
        self.secs.div_euclid(86_400)
    }

    /// The name without series: `20260131T060000Z-web1`.
    pub fn name(&self) -> String {
        format!("{}-{}", time::format_compact(self.secs), self.host)
    }

    /// The directory of its objects: `snapshots/<name>` or `daily/<name>`.
    pub fn dir(&self) -> String {
        format!("{}/{}", self.kind.dir(), self.name())
    }

    /// The key of one of its objects.
    pub fn key(&self, object: &str) -> String {
        format!("{}/{}", self.dir(), object)
    }

    /// The key of its manifest.
    pub fn manifest_key(&self) -> String {
        self.key(MANIFEST_NAME)
    }

    /// The same snapshot taken one second later (to avoid reusing a name).
    pub(crate) fn next_second(&self) -> SnapshotId {
        SnapshotId {
            secs: self.secs + 1,
            ..self.clone()
        }
    }

    /// Parses a bare name (`<time>-<host>`) in a series.
    pub fn parse_name(kind: SnapshotKind, name: &str) -> Result<SnapshotId, Error> {
        let bad = || {
            Error::Invalid(format!(
                "invalid snapshot name {name:?}: expected YYYYMMDDTHHMMSSZ-host"
            ))
        };
        let (stamp, host) = (
            name.get(..16).ok_or_else(bad)?,
            name.get(16..).ok_or_else(bad)?,
        );
        let secs = time::parse_compact(stamp).ok_or_else(bad)?;
        let host = host.strip_prefix('-').ok_or_else(bad)?;
        if host.is_empty() || sanitize_host(host) != host {
            return Err(bad());
        }
        let id = SnapshotId {
            kind,
            secs,
            host: host.to_string(),
        };
        // One spelling per snapshot (a leap second `60` would name the next minute).
        if id.name() != name {
            return Err(bad());
        }
        Ok(id)
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            SnapshotKind::Regular => f.write_str(&self.name()),
            SnapshotKind::Daily => write!(f, "daily/{}", self.name()),
        }
    }
}

impl FromStr for SnapshotId {
    type Err = Error;

    fn from_str(s: &str) -> Result<SnapshotId, Error> {
        let s = s.trim();
        if let Some(name) = s.strip_prefix("daily/") {
            SnapshotId::parse_name(SnapshotKind::Daily, name)
        } else if let Some(name) = s.strip_prefix("snapshots/") {
            SnapshotId::parse_name(SnapshotKind::Regular, name)
        } else {
            SnapshotId::parse_name(SnapshotKind::Regular, s)
        }
    }
}

impl Ord for SnapshotId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.secs, &self.host, self.kind).cmp(&(other.secs, &other.host, other.kind))
    }
}

impl PartialOrd for SnapshotId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn sanitize_host(host: &str) -> String {
    let s: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// Checks an item name: `[A-Za-z0-9._-]`, 1–100 characters, not starting with `.`.
pub(crate) fn check_item_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid item name {name:?}: use letters, digits, '.', '_' and '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let t = time::from_unix_secs(1_767_225_600);
        let id = SnapshotId::new(SnapshotKind::Regular, t, "web-1.example");
        assert_eq!(id.to_string(), "20260101T000000Z-web-1.example");
        assert_eq!(id.dir(), "snapshots/20260101T000000Z-web-1.example");
        assert_eq!(id.to_string().parse::<SnapshotId>().expect("parse"), id);
        let daily = SnapshotId::new(SnapshotKind::Daily, t, "h/o st");
        assert_eq!(daily.to_string(), "daily/20260101T000000Z-h_o_st");
        assert_eq!(
            daily.to_string().parse::<SnapshotId>().expect("parse"),
            daily
        );
        assert!("garbage".parse::<SnapshotId>().is_err());
        assert!("20260101T000000Z".parse::<SnapshotId>().is_err());
        assert!("20260101T000000Z-".parse::<SnapshotId>().is_err());
    }
}
