//! A container's snapshots over its life: restore at boot, each unit's `load`
//! after it is ready, each unit's `dump` before it stops, paths and the commit
//! after everything stopped, and online snapshots (`ctl backup`, daily).
//!
//! The rules that keep data safe live here:
//! - a store that cannot be reached fails the boot; it is never "no snapshot";
//! - restore runs only when this disk does not already hold that snapshot
//!   ([`DiskState`] in `state_dir` records the snapshot restored or written last);
//! - a `load` is fed only bytes that were verified first;
//! - a unit whose restore failed is never backed up over the good snapshot;
//! - a snapshot that would drop items of another container is never committed;
//! - a snapshot becomes `LATEST` only once every item is in and the manifest is
//!   written: a stop killed half-way leaves the previous `LATEST` untouched;
//! - after an unclean stop (the state file or the store's running marker says
//!   so) bosun says so.
//!
//! Processes are not this crate's business: the caller runs `dump` and `load`
//! through [`DataCommands`].

mod disk;
mod policy;
mod writer;

pub use disk::{DiskState, STATE_FILE};
pub use policy::{foreign_items, running_marker_key, RestorePlan};
pub use writer::{claim, Claim, WriterMarker};

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::{
    Error, Identities, ItemReader, Manifest, Recipients, Result, Retention, SnapshotId,
    SnapshotKind, SnapshotReader, SnapshotWriter, Store,
};

/// Why an online snapshot of a container without data is refused.
const NO_DATA: &str =
    "this container has no data to snapshot (no unit with a backup table, no paths)";

/// How often a store that does not answer is asked at boot (backoff 0.5 s → 8 s).
pub const STORE_ATTEMPTS: u32 = 6;

/// Why a unit's `dump` or `load` failed, in the caller's own error type.
pub type CmdError = Box<dyn std::error::Error + Send + Sync>;

/// What [`DataCommands`] returns.
pub type CmdFuture<'a, T> =
    Pin<Box<dyn Future<Output = std::result::Result<T, CmdError>> + Send + 'a>>;

/// The caller's side: running a unit's `dump` and `load`, and telling the
/// operator how it went.
pub trait DataCommands: Send + Sync {
    /// Runs `unit`'s dump with its stdout streamed into `writer` as item `unit`;
    /// the raw bytes it produced.
    fn dump<'a>(&'a self, unit: &'a str, writer: &'a mut SnapshotWriter) -> CmdFuture<'a, u64>;
    /// Runs `unit`'s load fed from `item` (already verified once); the bytes fed.
    fn load<'a>(&'a self, unit: &'a str, item: ItemReader) -> CmdFuture<'a, u64>;
    /// Whether `unit` is ready now (an online snapshot needs every data unit ready).
    fn is_ready(&self, unit: &str) -> bool;
    /// What the boot is doing (for `ctl status` while no unit runs yet).
    fn boot_step(&self, step: String);
    /// The outcome of one unit's dump.
    fn unit_backup(&self, unit: &str, report: Report);
    /// The outcome of a whole snapshot.
    fn snapshot(&self, report: Report);
}

/// How a dump or a snapshot went, for status and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Bytes of data (before compression).
    pub bytes: u64,
    /// How long it took.
    pub took: Duration,
    /// Whether it succeeded.
    pub ok: bool,
    /// The snapshot id when it succeeded, else what went wrong.
    pub detail: String,
}

/// What a container keeps, and where.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The store's URL without credentials, for messages.
    pub store_url: String,
    /// This container's name in snapshot ids (its hostname).
    pub host: String,
    /// The active roles (snapshot manifests record them; the running marker is per role set).
    pub roles: Vec<String>,
    /// `[snapshot.paths]`: item name and path, in config order.
    pub paths: Vec<(String, PathBuf)>,
    /// Active units with a backup table, in plan order, with their `timeout`.
    pub data_units: Vec<(String, Duration)>,
    /// `state_dir`.
    pub state_dir: PathBuf,
    /// How many snapshots of each series are kept (`keep_last`, `keep_daily`, …).
    pub retention: Retention,
    /// `encrypt_to`: new snapshots are encrypted to these.
    pub recipients: Option<Recipients>,
    /// `identity_file`: encrypted snapshots are restored with these.
    pub identities: Option<Identities>,
    /// `verify_after_commit`: every snapshot is read back right after its commit.
    pub verify_after_commit: bool,
    /// `writer_stale_after`: another writer's marker older than this is taken over.
    pub writer_stale_after: Duration,
    /// `stop_budget`: a stop waits for another writer's marker at most half of what
    /// is left of it.
    pub stop_budget: Duration,
}

/// Incomplete snapshots younger than this are never pruned: another writer (a
/// misconfigured second container, a slow stop) may still be at work on them.
pub const PRUNE_MIN_AGE: Duration = Duration::from_secs(3600);

/// One container's snapshot lifecycle.
pub struct Lifecycle {
    store: Arc<dyn Store>,
    s: Settings,
    cmds: Arc<dyn DataCommands>,
    /// The snapshot this boot restores from, while loads are pending.
    restore: tokio::sync::Mutex<Option<SnapshotReader>>,
    /// Units whose data still has to be loaded before the restore is complete.
    pending_loads: Mutex<HashSet<String>>,
    restored_id: Mutex<Option<String>>,
    /// Units whose load failed: never dumped over the good snapshot.
    failed_loads: Mutex<HashSet<String>>,
    /// The snapshot the stop is writing (begun at the first dump).
    stop_writer: tokio::sync::Mutex<Option<SnapshotWriter>>,
    stop_failed: Mutex<Vec<String>>,
    stop_began: Mutex<Option<Instant>>,
    stop_bytes: AtomicU64,
    /// One snapshot at a time (the stop's commit, `ctl backup`, daily).
    busy: tokio::sync::Mutex<()>,
    /// This container's instance id (from `state_dir`), set at boot.
    instance: Mutex<Option<String>>,
    /// One dump of a unit at a time: a daily snapshot and the stop never dump
    /// the same unit at once.
    dump_locks: HashMap<String, tokio::sync::Mutex<()>>,
}

impl Lifecycle {
    /// A lifecycle over `store`; `cmds` runs the units' dump and load commands.
    pub fn new(
        store: Arc<dyn Store>,
        settings: Settings,
        cmds: Arc<dyn DataCommands>,
    ) -> Lifecycle {
        let dump_locks = settings
            .data_units
            .iter()
            .map(|(n, _)| (n.clone(), tokio::sync::Mutex::new(())))
            .collect();
        Lifecycle {
            store,
            s: settings,
            cmds,
            restore: tokio::sync::Mutex::new(None),
            pending_loads: Mutex::new(HashSet::new()),
            restored_id: Mutex::new(None),
            failed_loads: Mutex::new(HashSet::new()),
            stop_writer: tokio::sync::Mutex::new(None),
            stop_failed: Mutex::new(Vec::new()),
            stop_began: Mutex::new(None),
            stop_bytes: AtomicU64::new(0),
            busy: tokio::sync::Mutex::new(()),
            instance: Mutex::new(None),
            dump_locks,
        }
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    fn timeout_of(&self, unit: &str) -> Duration {
        self.s
            .data_units
            .iter()
            .find(|(n, _)| n == unit)
            .map_or(Duration::from_secs(300), |(_, t)| *t)
    }

    fn disk(&self) -> DiskState {
        DiskState::read(&self.s.state_dir)
    }

    /// `LATEST`, asked again with backoff while the store does not answer.
    /// Never `None` for "unreachable"; a missing local store fails at once.
    async fn latest_with_retries(&self) -> Result<Option<SnapshotId>> {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=STORE_ATTEMPTS {
            self.cmds.boot_step(if attempt == 1 {
                format!("reading LATEST from {}", self.s.store_url)
            } else {
                format!(
                    "the snapshot store {} does not answer; attempt {attempt} of {STORE_ATTEMPTS}",
                    self.s.store_url
                )
            });
            match crate::latest(self.store.as_ref()).await {
                Err(e) if e.is_retryable() && attempt < STORE_ATTEMPTS => {
                    tracing::warn!("snapshot store {} unreachable (attempt {attempt}/{STORE_ATTEMPTS}): {e}; retrying in {delay:?}", self.s.store_url);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(8));
                }
                Err(e) => {
                    return Err(Error::Refused(format!(
                        "cannot read LATEST from {}: {e}. bosun will not start empty and later overwrite a good snapshot: fix the store (or its credentials) and start again",
                        self.s.store_url
                    )))
                }
                Ok(id) => return Ok(id),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// `state_dir/staging`: where a load's first pass stages the stored bytes.
    fn staging_dir(&self) -> PathBuf {
        self.s.state_dir.join(crate::STAGING_DIR)
    }

    /// Staging for a load's two passes: none for a store of local files (reading them
    /// twice costs what reading a staged copy would, and a copy would take disk space).
    fn staging(&self) -> Option<crate::Staging> {
        (!self.store.is_local()).then(|| crate::Staging::new(self.staging_dir()))
    }

    /// The boot: says so after an unclean stop, marks this role set as running,
    /// restores `[snapshot.paths]` and remembers which units' data to load.
    pub async fn boot(&self) -> Result<()> {
        // What a restore killed half-way left staged: never read, only in the way.
        match crate::clear_staging(&self.staging_dir()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                "removed {n} stale staging file(s) from {}",
                self.staging_dir().display()
            ),
            Err(e) => tracing::warn!(
                "cannot clear the staging directory {}: {e}",
                self.staging_dir().display()
            ),
        }
        let disk = self.disk();
        if disk.snapshot.is_some() && !disk.clean {
            tracing::warn!(
                "found an unclean stop: the last run on this disk did not finish its stop (killed, or out of budget); its data may be newer or older than the last snapshot"
            );
        }
        let latest = self.latest_with_retries().await?;
        let instance = match disk.instance.clone() {
            Some(i) => i,
            None => {
                // Kept at once: a boot that fails later is still this disk's writer.
                let i = new_instance_id();
                DiskState {
                    instance: Some(i.clone()),
                    ..disk.clone()
                }
                .write(&self.s.state_dir)?;
                i
            }
        };
        *self.instance.lock().expect("poisoned") = Some(instance.clone());
        self.mark_running(&disk).await;
        let mut next = DiskState {
            clean: false,
            instance: Some(instance),
            ..disk.clone()
        };
        match RestorePlan::decide(&disk, latest) {
            RestorePlan::NothingInStore => tracing::info!(
                "no snapshot in {} yet: starting with the data on this disk",
                self.s.store_url
            ),
            RestorePlan::AlreadyHeld(id) => {
                tracing::info!("this disk already holds snapshot {id}: not restoring")
            }
            RestorePlan::Restore(id) => {
                if !disk.clean && disk.snapshot.is_some() {
                    tracing::warn!(
                        "restoring the last complete snapshot {id} after the unclean stop"
                    );
                }
                let held = self.restore_paths(id).await?;
                next.snapshot = held;
            }
        }
        next.write(&self.s.state_dir)
    }

    /// The store-side marker at boot: warns when the previous writer never finished
    /// its stop, then claims the prefix for this container, unless another live
    /// container holds it (then this one boots, but will not commit).
    async fn mark_running(&self, disk: &DiskState) {
        if self.keeps_nothing() {
            return; // it never commits, so it never claims the prefix
        }
        let marker = running_marker_key(&self.s.roles);
        let found = match self.store.get_small(&marker).await {
            Ok(data) => WriterMarker::parse(&data),
            Err(_) => None,
        };
        if found.is_some() && (disk.snapshot.is_none() || disk.clean) {
            if let Some(m) = &found {
                if matches!(self.claim_of(Some(m)), Claim::Live(_)) {
                    tracing::warn!(
                        "found an unclean stop, or a second writer: {} has not removed its marker; either it was killed before it finished its stop, or it still runs on this prefix",
                        m.describe(unix_now())
                    );
                } else {
                    tracing::warn!(
                        "found an unclean stop: the previous container ({}) never finished its stop; restoring the last complete snapshot",
                        m.describe(unix_now())
                    );
                }
            }
        }
        if let Err(e) = self.claim_writer().await {
            tracing::error!("{e}");
        }
    }

    fn me(&self) -> (String, String) {
        let instance = self.instance.lock().expect("poisoned").clone();
        (self.s.host.clone(), instance.unwrap_or_default())
    }

    fn claim_of(&self, found: Option<&WriterMarker>) -> Claim {
        let (host, instance) = self.me();
        claim(
            found,
            &host,
            &instance,
            unix_now(),
            self.s.writer_stale_after,
        )
    }

    /// Before a commit: like [`Self::claim_writer`], but another container's marker
    /// that would go stale within `writer_stale_after` is waited for once, then read
    /// again. A container killed a moment ago (the usual case of a replacement on a
    /// new disk) leaves a marker nobody refreshes: it goes stale and is taken over,
    /// so the replacement's first stop still backs up. A live writer refreshes its
    /// marker every third of that time, so after the wait it is still live and this
    /// container refuses, as before.
    async fn claim_writer_for_commit(&self) -> Result<()> {
        let Some(wait) = self.wait_for_other_writer().await else {
            return self.claim_writer().await;
        };
        let began = *self.stop_began.lock().expect("poisoned");
        let left = began.map_or(self.s.stop_budget, |b| {
            self.s.stop_budget.saturating_sub(b.elapsed())
        });
        let wait = wait.min(left / 2);
        tracing::warn!(
            "another container's writer marker is fresh: waiting {wait:?} for it to go stale (its container was killed) or be refreshed (it still runs)"
        );
        tokio::time::sleep(wait).await;
        self.claim_writer().await
    }

    /// How long until another container's marker on this prefix goes stale, when it
    /// is live now (`None`: own, free, stale, or unreadable).
    async fn wait_for_other_writer(&self) -> Option<Duration> {
        let key = running_marker_key(&self.s.roles);
        let marker = WriterMarker::parse(&self.store.get_small(&key).await.ok()?)?;
        let Claim::Live(other) = self.claim_of(Some(&marker)) else {
            return None;
        };
        let stale = writer::effective_stale(&other, self.s.writer_stale_after);
        let age = Duration::from_secs(unix_now().saturating_sub(other.heartbeat));
        // Stale means older than `stale` in whole seconds (`writer::claim`), so
        // the wait is one second past it: capped at `stale`, a marker refreshed
        // just before its container died was still live after the wait whenever
        // the second turned over late, and the replacement did not back up.
        Some(stale.saturating_sub(age) + Duration::from_secs(1))
    }

    /// Claims (or refreshes) this role set's writer marker: `Ok` when it is this
    /// container's now; refused, naming both containers and the fix, while another
    /// live container holds it.
    async fn claim_writer(&self) -> Result<()> {
        let key = running_marker_key(&self.s.roles);
        let found = match self.store.get_small(&key).await {
            Ok(data) => {
                let m = WriterMarker::parse(&data);
                if m.is_none() {
                    tracing::warn!("the writer marker {key} is unreadable: taking it over");
                }
                m
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let now = unix_now();
        let (host, instance) = self.me();
        let since = match self.claim_of(found.as_ref()) {
            Claim::Live(other) => {
                return Err(Error::Refused(format!(
                    "another container writes this store prefix ({}, marker {key}): {}. This container is {} (instance {}). \
                     Two containers committing to one prefix overwrite each other's LATEST, so this one does not commit. \
                     Fix: give each container its own prefix (e.g. store = \"s3://bucket/app/${{HOSTNAME}}\"), or stop the other one; \
                     a marker not refreshed for writer_stale_after ({:?}) is taken over automatically",
                    self.s.store_url,
                    other.describe(now),
                    host.escape_debug(),
                    instance,
                    self.s.writer_stale_after
                )))
            }
            Claim::Stale(other) => {
                tracing::warn!(
                    "taking over the store prefix {} from {}: its marker is older than writer_stale_after ({:?})",
                    self.s.store_url,
                    other.describe(now),
                    self.s.writer_stale_after
                );
                now
            }
            Claim::Own => found.map_or(now, |m| m.since),
            Claim::Free => now,
        };
        let mine = WriterMarker {
            host,
            instance,
            since,
            heartbeat: now,
            stale_after: Some(self.s.writer_stale_after.as_secs()),
        };
        let json = serde_json::to_vec(&mine).expect("the marker serializes");
        self.store.put_small(&key, &json).await
    }

    /// Forever, every third of `writer_stale_after`: refreshes this container's writer
    /// marker (the caller aborts it at the stop). One small GET and PUT each time.
    pub async fn run_heartbeat(&self) {
        if self.keeps_nothing() {
            return; // no marker to refresh: see `mark_running`
        }
        let every = self.s.writer_stale_after / 3;
        loop {
            tokio::time::sleep(every).await;
            if self.instance.lock().expect("poisoned").is_none() {
                continue; // not booted yet
            }
            if let Err(e) = self.claim_writer().await {
                tracing::warn!("refreshing the writer marker: {e}");
            }
        }
    }

    /// Removes the writer marker at a clean stop, when it is this container's.
    async fn release_writer(&self) {
        let key = running_marker_key(&self.s.roles);
        let found = match self.store.get_small(&key).await {
            Ok(data) => WriterMarker::parse(&data),
            Err(_) => return,
        };
        if self.claim_of(found.as_ref()) != Claim::Own {
            return;
        }
        if let Err(e) = self.store.delete(&key).await {
            tracing::warn!("cannot remove the running marker: {e}");
        }
    }

    /// Restores the paths of snapshot `id` and arms the units' loads. The snapshot
    /// this disk holds afterwards: `id` when nothing is left to load, else none
    /// until the last load succeeded.
    async fn restore_paths(&self, id: SnapshotId) -> Result<Option<String>> {
        let reader = SnapshotReader::open(self.store.clone(), id.clone())
            .await?
            .with_identities(self.s.identities.clone());
        // An encrypted snapshot without its key fails here, before anything is touched.
        reader.check_keys().map_err(|e| {
            Error::Refused(format!(
                "cannot restore snapshot {id}: {e}. Or pick another snapshot with `bosun snapshot list` and `bosun snapshot restore ID`"
            ))
        })?;
        tracing::info!("restoring snapshot {id} from {}", self.s.store_url);
        let manifest = reader.manifest().clone();
        for (name, path) in &self.s.paths {
            if manifest.item(name).is_none() {
                tracing::warn!(
                    "snapshot {id} has no item {name:?}; {} is left as it is",
                    path.display()
                );
                continue;
            }
            self.cmds
                .boot_step(restore_step(&id, &manifest, name, &self.s));
            let t0 = Instant::now();
            reader.restore_path(name, path).await.map_err(|e| {
                Error::Refused(format!(
                    "restoring {name} to {}: {e}. Nothing was changed on this disk. \
                     If the snapshot is damaged or unreadable, pick an older one with `bosun snapshot list` and `bosun snapshot restore ID`",
                    path.display()
                ))
            })?;
            tracing::info!(
                "restored {name} to {} in {:.1?}",
                path.display(),
                t0.elapsed()
            );
        }
        let mut loads = HashSet::new();
        for (n, _) in &self.s.data_units {
            if manifest.item(n).is_some() {
                loads.insert(n.clone());
            } else {
                tracing::warn!(
                    "snapshot {id} (roles {}) has no data for {n}: {n} starts with what is on this disk",
                    manifest.roles.join(":")
                );
            }
        }
        let done = loads.is_empty();
        *self.pending_loads.lock().expect("poisoned") = loads;
        *self.restored_id.lock().expect("poisoned") = Some(id.to_string());
        *self.restore.lock().await = Some(reader);
        Ok(done.then(|| id.to_string()))
    }

    /// After `unit` is ready: loads its data when this boot restores a snapshot
    /// that holds some. Its bytes are verified in a first pass (from an S3 store, the
    /// stored bytes are staged in `state_dir/staging` meanwhile when they fit), then fed
    /// to `load` from the staged copy (else the store again) and checked again.
    pub async fn load(&self, unit: &str) -> Result<()> {
        if !self.pending_loads.lock().expect("poisoned").contains(unit) {
            return Ok(());
        }
        let result = self.load_verified(unit).await;
        if result.is_err() {
            self.failed_loads
                .lock()
                .expect("poisoned")
                .insert(unit.to_string());
            return result;
        }
        let left = {
            let mut p = self.pending_loads.lock().expect("poisoned");
            p.remove(unit);
            p.len()
        };
        if left == 0 {
            let mut st = self.disk();
            st.snapshot = self.restored_id.lock().expect("poisoned").clone();
            st.write(&self.s.state_dir)?;
            tracing::info!("restore complete");
        }
        Ok(())
    }

    async fn load_verified(&self, unit: &str) -> Result<()> {
        let timeout = self.timeout_of(unit);
        let reader = self.restore.lock().await;
        let reader = reader
            .as_ref()
            .ok_or_else(|| Error::Invalid("no snapshot to restore from".into()))?;
        let t0 = Instant::now();
        tracing::info!(
            unit = %unit,
            "verifying its data in snapshot {} before loading it",
            reader.id()
        );
        let staging = self.staging();
        let verified =
            tokio::time::timeout(timeout, reader.verify_item_staged(unit, staging.as_ref()))
                .await
                .map_err(|_| {
                    Error::Refused(format!(
                    "verifying its data did not finish within {timeout:?}; its load was not run"
                ))
                })?
                .map_err(|e| {
                    Error::Refused(format!("{e}. Its load was not run: nothing was loaded"))
                })?;
        let from = if verified.staged_path().is_some() {
            "its copy staged on local disk"
        } else {
            "the store"
        };
        let item = reader.item_stream_verified(verified).await?;
        tracing::info!(unit = %unit, "loading its data from snapshot {} ({from})", reader.id());
        let bytes = tokio::time::timeout(timeout, self.cmds.load(unit, item))
            .await
            .map_err(|_| Error::Refused(format!("load did not finish within {timeout:?}")))?
            .map_err(|e| Error::Command(format!("{unit}: {e}")))?;
        tracing::info!(
            unit = %unit,
            "loaded {} in {:.1?}",
            human_bytes(bytes),
            t0.elapsed()
        );
        Ok(())
    }

    /// Why `unit`'s data must not be dumped over the good snapshot, if so.
    fn refuse_reason(&self, unit: &str) -> Option<String> {
        if self.failed_loads.lock().expect("poisoned").contains(unit) {
            return Some(format!(
                "the restore of {unit} failed at boot: its data is not backed up over the good snapshot"
            ));
        }
        if self.pending_loads.lock().expect("poisoned").contains(unit) {
            return Some(format!(
                "{unit}'s data was never loaded: not backing it up over the good snapshot"
            ));
        }
        None
    }

    /// One dump of `unit` into `writer`, under the unit's dump lock, reported.
    async fn dump(&self, unit: &str, writer: &mut SnapshotWriter) -> Result<u64> {
        let _one = match self.dump_locks.get(unit) {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let t0 = Instant::now();
        tracing::info!(unit = %unit, "dumping its data into snapshot {}", writer.id());
        let timeout = self.timeout_of(unit);
        let r = match tokio::time::timeout(timeout, self.cmds.dump(unit, writer)).await {
            Ok(r) => r,
            Err(_) => Err(format!("dump did not finish within {timeout:?}").into()),
        };
        let report = Report {
            bytes: *r.as_ref().unwrap_or(&0),
            took: t0.elapsed(),
            ok: r.is_ok(),
            detail: match &r {
                Ok(_) => writer.id().to_string(),
                Err(e) => e.to_string(),
            },
        };
        self.cmds.unit_backup(unit, report);
        r.map_err(|e| Error::Command(format!("{unit}: {e}")))
    }

    /// Before `unit` stops (its dependents are down, it is still up): its dump
    /// into the stop's snapshot, begun at the first dump.
    pub async fn stop_dump(&self, unit: &str) -> Result<()> {
        if let Some(why) = self.refuse_reason(unit) {
            self.stop_failed.lock().expect("poisoned").push(why.clone());
            return Err(Error::Refused(why));
        }
        self.stop_began
            .lock()
            .expect("poisoned")
            .get_or_insert_with(Instant::now);
        let mut slot = self.stop_writer.lock().await;
        if slot.is_none() {
            // Another live writer on this prefix: upload nothing (checked again at the
            // commit). A marker left by a container killed a moment ago is waited out.
            if let Err(e) = self.claim_writer_for_commit().await {
                self.stop_failed
                    .lock()
                    .expect("poisoned")
                    .push(e.to_string());
                return Err(e);
            }
            *slot = Some(self.begin(SnapshotKind::Regular).await?);
        }
        let writer = slot.as_mut().expect("just set");
        match self.dump(unit, writer).await {
            Ok(bytes) => {
                self.stop_bytes.fetch_add(bytes, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.stop_failed
                    .lock()
                    .expect("poisoned")
                    .push(e.to_string());
                Err(e)
            }
        }
    }

    async fn begin(&self, kind: SnapshotKind) -> Result<SnapshotWriter> {
        let mut w = SnapshotWriter::begin(self.store.clone(), &self.s.host, &self.s.roles, kind)
            .await
            .map_err(|e| {
                Error::Refused(format!(
                    "cannot begin a snapshot in {}: {e}",
                    self.s.store_url
                ))
            })?;
        if let Some(r) = &self.s.recipients {
            w.encrypt_to(r.clone());
        }
        Ok(w)
    }

    /// After every unit stopped: the paths, the commit, the running marker gone,
    /// the state clean. `booted`: the boot had completed (else nothing is kept).
    pub async fn stop_commit(&self, booted: bool) -> Result<()> {
        let started = Instant::now();
        let writer = self.stop_writer.lock().await.take();
        if !booted {
            if let Some(w) = writer {
                w.abort();
            }
            tracing::warn!(
                "the boot did not complete: no snapshot is taken, LATEST stays as it was"
            );
            return Ok(());
        }
        let failed = self.stop_failed.lock().expect("poisoned").clone();
        if !failed.is_empty() {
            if let Some(w) = writer {
                w.abort();
            }
            let msg = format!(
                "snapshot not committed, LATEST is unchanged: {}",
                failed.join("; ")
            );
            self.failed(started, &msg);
            return Err(Error::Refused(msg));
        }
        let _one = self.busy.lock().await;
        let writer = match writer {
            Some(w) => w,
            None if self.keeps_nothing() => {
                // An app tier beside a data tier on one store: nothing of its own to
                // keep, so no snapshot, no claim on the prefix and no refusal over
                // the data tier's LATEST. A clean stop, not a failed backup.
                tracing::info!(
                    "nothing to keep in this container (roles {}: no unit with a backup table, no [snapshot] paths): no snapshot taken, LATEST unchanged",
                    self.s.roles.join(":")
                );
                return self.mark_clean_stop(None, None);
            }
            None => self.begin(SnapshotKind::Regular).await?,
        };
        let dumped = self.stop_bytes.load(Ordering::Relaxed);
        let began = self.stop_began.lock().expect("poisoned").unwrap_or(started);
        let id = match self.finish(writer, began, dumped).await {
            Ok(id) => id,
            Err(e) => {
                self.failed(started, &e.to_string());
                return Err(Error::Refused(format!("{e}; LATEST is unchanged")));
            }
        };
        self.release_writer().await;
        self.mark_clean_stop(id, Some(began.elapsed()))
    }

    /// The state file after a clean stop: the snapshot this disk now holds (`id`, else
    /// the one it held) and how long the stop's backup took, when it took one.
    fn mark_clean_stop(&self, id: Option<String>, backup: Option<Duration>) -> Result<()> {
        let disk = self.disk();
        DiskState {
            snapshot: id.or(disk.snapshot),
            clean: true,
            last_stop_backup_ms: backup
                .map(|d| d.as_millis() as u64)
                .or(disk.last_stop_backup_ms),
            instance: disk.instance,
        }
        .write(&self.s.state_dir)
    }

    /// This container's roles own no data: no active unit with a backup table, and
    /// no `[snapshot.paths]`. Its snapshots would be empty, so it takes none (at its
    /// stop, daily, or on `ctl backup`) and never claims the store prefix.
    pub fn keeps_nothing(&self) -> bool {
        self.s.data_units.is_empty() && self.s.paths.is_empty()
    }

    /// Items this container writes into its snapshots.
    fn own_items(&self) -> HashSet<String> {
        let units = self.s.data_units.iter().map(|(n, _)| n.clone());
        units
            .chain(self.s.paths.iter().map(|(n, _)| n.clone()))
            .collect()
    }

    /// Refuses to commit over a `LATEST` that holds items this container does not write.
    async fn check_foreign(&self) -> Result<()> {
        let Some(id) = crate::latest(self.store.as_ref()).await? else {
            return Ok(());
        };
        let manifest: Manifest = crate::read_manifest(self.store.as_ref(), &id).await?;
        let foreign = foreign_items(&manifest, &self.own_items());
        if foreign.is_empty() {
            return Ok(());
        }
        Err(Error::Refused(format!(
            "LATEST ({id}) holds {} that this container (roles {}) does not own: a snapshot from here would lose them. \
             Give each role set its own store prefix, e.g. store = \"s3://bucket/app/${{CONTAINERROLE:-all}}\"",
            foreign.join(", "),
            self.s.roles.join(":")
        )))
    }

    /// Saves the paths into `writer` and commits it. `None`: there was nothing to
    /// keep, so nothing was committed and `LATEST` is untouched.
    async fn finish(
        &self,
        mut writer: SnapshotWriter,
        began: Instant,
        dumped: u64,
    ) -> Result<Option<String>> {
        if let Err(e) = self.claim_writer_for_commit().await {
            writer.abort();
            return Err(e);
        }
        let mut bytes = dumped;
        for (name, path) in &self.s.paths {
            if tokio::fs::symlink_metadata(path).await.is_err() {
                tracing::warn!(
                    "{} does not exist: item {name} is not in this snapshot",
                    path.display()
                );
                continue;
            }
            match writer.put_path(name, path).await {
                Ok(item) => bytes += item.raw_size,
                Err(e) => {
                    writer.abort();
                    return Err(Error::Refused(format!(
                        "saving {} as {name}: {e}",
                        path.display()
                    )));
                }
            }
        }
        if writer.items().is_empty() {
            tracing::info!(
                "nothing to keep in this container: no snapshot committed, LATEST unchanged"
            );
            writer.abort();
            return Ok(None);
        }
        // Only a snapshot that would be committed can drop another container's items.
        if let Err(e) = self.check_foreign().await {
            writer.abort();
            return Err(e);
        }
        let writer_id = writer.id().clone();
        let id = writer_id.to_string();
        writer
            .commit()
            .await
            .map_err(|e| Error::Refused(format!("committing snapshot {id}: {e}")))?;
        self.cmds.snapshot(Report {
            bytes,
            took: began.elapsed(),
            ok: true,
            detail: id.clone(),
        });
        tracing::info!(
            "snapshot {id} committed: {} in {:.1?}",
            human_bytes(bytes),
            began.elapsed()
        );
        if self.s.verify_after_commit {
            self.verify_committed(writer_id, began).await;
        }
        self.prune_after_commit().await;
        Ok(Some(id))
    }

    /// `verify_after_commit`: reads what was just written back from the store. A
    /// damaged snapshot is reported (log, status) as a failed snapshot; it stays, for
    /// the operator to look at (`bosun snapshot verify`, `bosun snapshot restore`).
    async fn verify_committed(&self, id: SnapshotId, began: Instant) {
        let t0 = Instant::now();
        let r = crate::verify_snapshot(
            self.store.clone(),
            &id,
            self.s.identities.clone(),
            &self.s.host,
            &mut |_| {},
        )
        .await;
        match r {
            Ok(v) if v.ok => tracing::info!(
                "snapshot {id} verified after its commit ({:?}) in {:.1?}",
                v.depth,
                t0.elapsed()
            ),
            Ok(v) => {
                let msg = format!(
                    "snapshot {id} is damaged right after its commit: {}; check the store, then `bosun snapshot verify --all`",
                    v.damage.unwrap_or_default()
                );
                tracing::error!("{msg}");
                self.failed(began, &msg);
            }
            Err(e) => tracing::warn!("cannot verify snapshot {id} after its commit: {e}"),
        }
    }

    /// Retention after a commit: a failure is logged, never fails the snapshot (it is
    /// committed; what was not pruned now is at the next commit). A snapshot this boot
    /// still restores from is never pruned.
    async fn prune_after_commit(&self) {
        let protect: Vec<SnapshotId> = if self.pending_loads.lock().expect("poisoned").is_empty() {
            Vec::new()
        } else {
            let restoring = self.restored_id.lock().expect("poisoned").clone();
            restoring.and_then(|r| r.parse().ok()).into_iter().collect()
        };
        let policy = self.s.retention;
        match crate::prune(self.store.as_ref(), &policy, &protect, PRUNE_MIN_AGE, false).await {
            Ok(plan) if !plan.remove.is_empty() => {
                let gone: Vec<String> = plan.remove.iter().map(|(id, _)| id.to_string()).collect();
                tracing::info!(
                    "retention removed {} snapshot(s): {}",
                    gone.len(),
                    gone.join(", ")
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "pruning old snapshots in {}: {e}; they stay until the next commit",
                self.s.store_url
            ),
        }
    }

    fn failed(&self, started: Instant, msg: &str) {
        self.cmds.snapshot(Report {
            bytes: 0,
            took: started.elapsed(),
            ok: false,
            detail: msg.to_string(),
        });
    }

    /// An online snapshot (`ctl backup`, daily): dumps run against the live units,
    /// each under its dump lock. A regular one becomes `LATEST` and what this disk holds.
    pub async fn backup_now(&self, kind: SnapshotKind) -> Result<String> {
        let _one = self.busy.lock().await;
        let started = Instant::now();
        let result = self.online(kind, started).await;
        if let Err(e) = &result {
            tracing::error!("snapshot failed: {e}; LATEST is unchanged");
            self.failed(started, &e.to_string());
        }
        result
    }

    async fn online(&self, kind: SnapshotKind, started: Instant) -> Result<String> {
        if self.keeps_nothing() {
            return Err(Error::Refused(NO_DATA.into()));
        }
        // Another live writer on this prefix: upload nothing (checked again at the commit).
        self.claim_writer().await?;
        let mut writer = self.begin(kind).await?;
        let mut bytes = 0;
        for (name, _) in &self.s.data_units {
            let refused = self.refuse_reason(name).or_else(|| {
                (!self.cmds.is_ready(name)).then(|| {
                    format!(
                        "{name} is not ready: a snapshot without its data would not be complete"
                    )
                })
            });
            if let Some(why) = refused {
                writer.abort();
                return Err(Error::Refused(why));
            }
            match self.dump(name, &mut writer).await {
                Ok(b) => bytes += b,
                Err(e) => {
                    writer.abort();
                    return Err(e);
                }
            }
        }
        let id = self
            .finish(writer, started, bytes)
            .await?
            .ok_or_else(|| Error::Refused(NO_DATA.into()))?;
        if kind == SnapshotKind::Regular {
            let mut st = self.disk();
            st.snapshot = Some(id.clone());
            st.write(&self.s.state_dir)?;
        }
        Ok(id)
    }

    /// Forever: at each `HH:MM` UTC a daily snapshot (the caller aborts it at the stop).
    pub async fn run_daily(&self, hour: u8, minute: u8) {
        loop {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            tokio::time::sleep(until_next_daily(now, hour, minute)).await;
            tracing::info!("daily snapshot");
            let _ = self.daily().await;
        }
    }

    /// A daily snapshot (retention runs after its commit, as after every commit).
    pub async fn daily(&self) -> Result<String> {
        self.backup_now(SnapshotKind::Daily).await
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new instance id: 16 hex digits from the kernel's random source (time and pid
/// if that cannot be read). Kept in `state_dir`, it tells this disk's container apart
/// from another with the same hostname.
fn new_instance_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if random.is_err() {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = (t ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    crate::stream::hex(&b)
}

/// "restoring snapshot X: item data (1 of 2), 40 % of 1.2 GiB": the item about to be
/// restored, and how much of the paths' bytes the items before it made up.
fn restore_step(id: &SnapshotId, manifest: &Manifest, item: &str, s: &Settings) -> String {
    let names: Vec<&String> = s
        .paths
        .iter()
        .map(|(n, _)| n)
        .filter(|n| manifest.item(n).is_some())
        .collect();
    let size = |n: &str| manifest.item(n).map_or(0, |i| i.raw_size);
    let total: u64 = names.iter().map(|n| size(n)).sum();
    let pos = names.iter().position(|n| *n == item).unwrap_or(0);
    let done: u64 = names[..pos].iter().map(|n| size(n)).sum();
    let pct = (done * 100).checked_div(total).unwrap_or(0);
    format!(
        "restoring snapshot {id}: item {item} ({} of {}), {pct} % of {}",
        pos + 1,
        names.len(),
        human_bytes(total)
    )
}

/// `12.3 MiB`.
pub fn human_bytes(b: u64) -> String {
    crate::stream::human(b)
}

/// Time from `now` (Unix seconds) until the next `HH:MM` UTC: the daily snapshot's timer.
pub fn until_next_daily(now_secs: u64, hour: u8, minute: u8) -> Duration {
    const DAY: u64 = 86_400;
    let target = u64::from(hour) * 3600 + u64::from(minute) * 60;
    let today = now_secs % DAY;
    Duration::from_secs(if target > today {
        target - today
    } else {
        DAY - today + target
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_timer_waits_for_the_next_occurrence() {
        let midnight = 20_000 * 86_400;
        assert_eq!(
            until_next_daily(midnight, 6, 0),
            Duration::from_secs(6 * 3600)
        );
        assert_eq!(
            until_next_daily(midnight + 6 * 3600, 6, 0),
            Duration::from_secs(86_400),
            "at 06:00 sharp the next one is tomorrow"
        );
        assert_eq!(
            until_next_daily(midnight + 23 * 3600 + 59 * 60, 0, 0),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
