//! The API's seam to the data keeper: the two things it asks of snapshots
//! (list them, take one now), behind a trait, so the handlers never reach
//! into the keeper or `bosun-snapshot` themselves. The one implementation,
//! for [`Keeper`], is the adapter at the bottom of this file.

use std::future::Future;
use std::pin::Pin;
use std::time::UNIX_EPOCH;

use crate::keeper::Keeper;
use crate::protocol::{SnapshotEntry, SnapshotSeries, SnapshotVerified};

/// A boxed future, so the trait stays object-safe.
pub type SnapFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SnapshotError>> + Send + 'a>>;

/// What the control API may ask of the data keeper.
pub trait Snapshots: Send + Sync {
    /// The store's snapshots, oldest first.
    fn list(&self) -> SnapFuture<'_, Vec<SnapshotEntry>>;
    /// Takes a regular snapshot now, against the running units; its id.
    fn backup_now(&self) -> SnapFuture<'_, String>;
}

/// Why a snapshot request failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The config has no `[snapshot]` table.
    #[error("snapshots are not configured: add a [snapshot] table")]
    NotConfigured,
    /// The store could not be listed.
    #[error("listing snapshots: {0}")]
    List(#[from] bosun_snapshot::Error),
    /// The snapshot was not committed (the keeper's words).
    #[error("snapshot failed, LATEST is unchanged: {0}")]
    Backup(bosun_snapshot::Error),
}

impl Snapshots for Keeper {
    fn list(&self) -> SnapFuture<'_, Vec<SnapshotEntry>> {
        Box::pin(async move {
            let store = self.store();
            let list = bosun_snapshot::list_snapshots(store.as_ref()).await?;
            let mut out = Vec::with_capacity(list.len());
            for s in list {
                // A record that cannot be read is shown as "never verified".
                let v = bosun_snapshot::last_verified(store.as_ref(), &s.id)
                    .await
                    .ok()
                    .flatten();
                out.push(entry(s, v));
            }
            Ok(out)
        })
    }

    fn backup_now(&self) -> SnapFuture<'_, String> {
        Box::pin(async move {
            Keeper::backup_now(self, bosun_snapshot::SnapshotKind::Regular)
                .await
                .map_err(SnapshotError::Backup)
        })
    }
}

/// A store's description of a snapshot, as the wire carries it.
fn entry(
    s: bosun_snapshot::SnapshotInfo,
    v: Option<bosun_snapshot::Verification>,
) -> SnapshotEntry {
    SnapshotEntry {
        id: s.id.to_string(),
        kind: if s.kind == bosun_snapshot::SnapshotKind::Daily {
            SnapshotSeries::Daily
        } else {
            SnapshotSeries::Regular
        },
        time_ms: s
            .time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        host: s.host,
        size: s.size,
        complete: s.complete,
        latest: s.latest,
        verified: v.map(|v| SnapshotVerified {
            at_ms: v.at_ms,
            ok: v.ok,
            depth: match v.depth {
                bosun_snapshot::Depth::Full => "full".into(),
                bosun_snapshot::Depth::Ciphertext => "ciphertext".into(),
            },
        }),
    }
}
