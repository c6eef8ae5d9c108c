//! What this container's disk remembers across restarts: `state_dir/snapshot-state.json`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The file's name inside `state_dir`.
pub const STATE_FILE: &str = "snapshot-state.json";

/// The state file: which snapshot this disk holds, and whether the last stop was clean.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskState {
    /// The snapshot this disk's data came from or went into last.
    pub snapshot: Option<String>,
    /// False from boot until a clean stop: a false at boot means the last stop was unclean.
    pub clean: bool,
    /// How long the last stop's backup took (first dump to commit), in milliseconds;
    /// `bosun check` compares it with `stop_budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stop_backup_ms: Option<u64>,
    /// This disk's writer instance id (the running marker names it): a container
    /// restarted on this disk is the same writer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl DiskState {
    /// Reads the state in `state_dir`; a missing or unreadable file is "holds nothing".
    pub fn read(state_dir: &Path) -> DiskState {
        std::fs::read(state_dir.join(STATE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the state atomically (temp file, fsync, rename).
    pub fn write(&self, state_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| Error::io(format!("creating state_dir {}", state_dir.display()), e))?;
        let path = state_dir.join(STATE_FILE);
        let tmp: PathBuf = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).expect("the state serializes");
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// The last measured stop-backup time, if any.
    pub fn last_stop_backup(&self) -> Option<Duration> {
        self.last_stop_backup_ms.map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(DiskState::read(dir.path()), DiskState::default());
        let st = DiskState {
            snapshot: Some("20260101T000000Z-h".into()),
            clean: true,
            last_stop_backup_ms: Some(1500),
            instance: Some("0123abcd".into()),
        };
        st.write(&dir.path().join("deeper")).expect("write");
        assert_eq!(DiskState::read(&dir.path().join("deeper")), st);
        assert_eq!(st.last_stop_backup(), Some(Duration::from_millis(1500)));
    }
}
