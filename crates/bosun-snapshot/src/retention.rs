//! Listing snapshots, moving `LATEST`, and retention.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::id::{SnapshotId, SnapshotKind, LATEST_KEY, MANIFEST_NAME};
use crate::prune::{plan_prune, PrunePlan, Retention};
use crate::reader::{latest, read_manifest};
use crate::store::Store;

/// One snapshot found in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its id.
    pub id: SnapshotId,
    /// When it was started (from its name).
    pub time: SystemTime,
    /// The host that took it (from its name).
    pub host: String,
    /// Total size of its objects in the store, manifest included.
    pub size: u64,
    /// True when its manifest exists (it was committed).
    pub complete: bool,
    /// Its series.
    pub kind: SnapshotKind,
    /// True when `LATEST` names it.
    pub latest: bool,
}

/// Every snapshot in the store, both series, oldest first. Directories whose names are
/// not snapshot ids are ignored.
pub async fn list_snapshots(store: &dyn Store) -> Result<Vec<SnapshotInfo>> {
    let current = latest(store).await.ok().flatten();
    let mut out = Vec::new();
    for kind in [SnapshotKind::Regular, SnapshotKind::Daily] {
        let prefix = format!("{}/", kind.dir());
        let mut found: BTreeMap<String, (u64, bool)> = BTreeMap::new();
        for obj in store.list(&prefix).await? {
            let Some(rest) = obj.key.strip_prefix(&prefix) else {
                continue;
            };
            let Some((name, object)) = rest.split_once('/') else {
                continue;
            };
            let entry = found.entry(name.to_string()).or_insert((0, false));
            entry.0 += obj.size;
            if object == MANIFEST_NAME {
                entry.1 = true;
            }
        }
        for (name, (size, complete)) in found {
            let Ok(id) = SnapshotId::parse_name(kind, &name) else {
                continue;
            };
            out.push(SnapshotInfo {
                time: id.time(),
                host: id.host().to_string(),
                size,
                complete,
                kind,
                latest: current.as_ref() == Some(&id),
                id,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Points `LATEST` at a complete snapshot (of either series), e.g. for
/// `bosun snapshot restore ID`. Refuses a snapshot without a readable manifest.
pub async fn set_latest(store: &dyn Store, id: &SnapshotId) -> Result<()> {
    read_manifest(store, id).await?;
    store
        .put_small(LATEST_KEY, format!("{id}\n").as_bytes())
        .await?;
    tracing::info!(snapshot = %id, "LATEST set");
    Ok(())
}

/// Deletes a snapshot: the manifest first (so that a deletion cut short leaves an
/// incomplete snapshot, never a complete-looking one with missing items), then the rest.
/// Refuses the snapshot that `LATEST` names.
pub async fn delete_snapshot(store: &dyn Store, id: &SnapshotId) -> Result<()> {
    if latest(store).await?.as_ref() == Some(id) {
        return Err(Error::Invalid(format!(
            "snapshot {id} is LATEST: point LATEST elsewhere before deleting it"
        )));
    }
    store.delete(&id.manifest_key()).await?;
    for obj in store.list(&format!("{}/", id.dir())).await? {
        store.delete(&obj.key).await?;
    }
    tracing::info!(snapshot = %id, "snapshot deleted");
    Ok(())
}

/// Applies `policy` (see [`crate::plan_prune`]) to the store: lists both series, plans,
/// and, unless `dry_run`, deletes what the plan removes, logging each. `protect`: ids a
/// restore reads; `min_age`: incomplete snapshots younger than this stay (another
/// writer may still be at work). Returns the plan (what was, or would be, removed).
pub async fn prune(
    store: &dyn Store,
    policy: &Retention,
    protect: &[SnapshotId],
    min_age: Duration,
    dry_run: bool,
) -> Result<PrunePlan> {
    let all = list_snapshots(store).await?;
    let plan = plan_prune(&all, policy, protect, SystemTime::now(), min_age);
    if dry_run {
        return Ok(plan);
    }
    for (id, why) in &plan.remove {
        delete_snapshot(store, id).await?;
        tracing::info!(snapshot = %id, "pruned snapshot {id}: {why}");
    }
    Ok(plan)
}

/// Deletes incomplete snapshots (no manifest) older than the newest complete one of the
/// same series and started more than `min_age` ago: what a stop killed half-way left
/// behind. A snapshot being written now by this host is newer than every complete one;
/// `min_age` (say an hour) also protects one that another container, sharing the store,
/// is still writing. Returns the deleted ids.
pub async fn gc_incomplete(store: &dyn Store, min_age: Duration) -> Result<Vec<SnapshotId>> {
    let cutoff = SystemTime::now()
        .checked_sub(min_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let all = list_snapshots(store).await?;
    let mut deleted = Vec::new();
    for kind in [SnapshotKind::Regular, SnapshotKind::Daily] {
        let newest = all
            .iter()
            .filter(|s| s.kind == kind && s.complete)
            .map(|s| s.id.clone())
            .max();
        let Some(newest) = newest else { continue };
        for s in all.iter().filter(|s| s.kind == kind && !s.complete) {
            if s.id < newest && !s.latest && s.time <= cutoff {
                delete_snapshot(store, &s.id).await?;
                deleted.push(s.id.clone());
            }
        }
    }
    Ok(deleted)
}
