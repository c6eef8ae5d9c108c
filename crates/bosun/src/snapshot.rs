//! The keeper of the data: bosun-core's [`DataHooks`] implemented with
//! bosun-snapshot. Restore on boot, `load` after a unit is ready, `dump` before
//! it stops, paths and commit after everything stopped; online and daily
//! snapshots for `ctl backup` and `daily_at`.
//!
//! The rules that keep data safe live here:
//! - a store that cannot be reached fails the boot; it is never "no snapshot";
//! - restore runs only when this disk does not already hold that snapshot
//!   (the state file in `state_dir` records the snapshot restored or written last);
//! - a unit whose restore failed is never backed up over the good snapshot;
//! - a snapshot becomes LATEST only once every item is in and the manifest is
//!   written: a stop killed half-way leaves the previous LATEST untouched;
//! - after an unclean stop (the state file still says "running") bosun says so.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant as StdInstant, SystemTime};

use bosun_config::{Config, Plan, SnapshotConfig, Unit};
use bosun_core::reaper::Reaper;
use bosun_core::spawn::{self, Identity, Spec, Stdout};
use bosun_core::status::{now_ms, BackupInfo};
use bosun_core::{DataHooks, Handle, HookFuture, StopContext};
use bosun_snapshot::{SnapshotKind, SnapshotReader, SnapshotWriter, Store};
use serde::{Deserialize, Serialize};

/// How often and how long a store that does not answer is retried at boot.
const STORE_ATTEMPTS: u32 = 6;

/// What `state_dir/snapshot-state.json` remembers across restarts of the same disk.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct DiskState {
    /// The snapshot this disk's data came from or went into last.
    snapshot: Option<String>,
    /// False from boot until a clean stop: a false at boot means the last stop was unclean.
    clean: bool,
    /// How long the last stop's backup took (first dump to commit), in milliseconds;
    /// `bosun check` compares it with `stop_budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_stop_backup_ms: Option<u64>,
}

/// The last measured stop-backup time recorded in `state_dir`, if any.
pub fn last_stop_backup(state_dir: &std::path::Path) -> Option<Duration> {
    let bytes = std::fs::read(state_dir.join("snapshot-state.json")).ok()?;
    let st: DiskState = serde_json::from_slice(&bytes).ok()?;
    st.last_stop_backup_ms.map(Duration::from_millis)
}

/// Keeps the data of one container.
pub struct Keeper {
    store: Arc<dyn Store>,
    store_url: String,
    snap: SnapshotConfig,
    units: HashMap<String, Unit>,
    active: Vec<String>,
    roles: Vec<String>,
    host: String,
    reaper: Reaper,
    state_path: PathBuf,
    handle: OnceLock<Handle>,
    /// Set in `before_boot` when this start restores a snapshot.
    restore: tokio::sync::Mutex<Option<SnapshotReader>>,
    /// Units whose data still has to be loaded before the restore is complete.
    pending_loads: Mutex<HashSet<String>>,
    restored_id: Mutex<Option<String>>,
    /// Units whose load failed: never dumped over the good snapshot.
    failed_loads: Mutex<HashSet<String>>,
    /// The snapshot the stop is writing (begun at the first dump).
    stop_writer: tokio::sync::Mutex<Option<SnapshotWriter>>,
    stop_failed: Mutex<Vec<String>>,
    /// When the stop's first dump began.
    stop_began: Mutex<Option<StdInstant>>,
    /// Bytes the stop's dumps produced.
    stop_bytes: std::sync::atomic::AtomicU64,
    /// One snapshot at a time (stop, `ctl backup`, daily).
    busy: tokio::sync::Mutex<()>,
}

/// "restoring snapshot X: item data (1 of 2), 40 % of 1.2 GiB": the item about to be
/// restored, and how much of the paths' bytes the items before it made up.
fn restore_step(
    id: &bosun_snapshot::SnapshotId,
    manifest: &bosun_snapshot::Manifest,
    item: &str,
    snap: &SnapshotConfig,
) -> String {
    let names: Vec<&String> = snap
        .paths
        .keys()
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

/// `create_store = true`: makes a missing `file://` store directory (0700, like the
/// volume an image would mount there). An existing directory is left as it is.
fn create_local_store(url: &str) -> Result<(), String> {
    let Some(path) = url.strip_prefix("file://") else {
        return Ok(());
    };
    let path = std::path::Path::new(path);
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| {
            format!(
                "snapshot store: cannot create {} (create_store = true): {e}",
                path.display()
            )
        })?;
    tracing::info!(
        "created the snapshot store directory {} (create_store = true)",
        path.display()
    );
    Ok(())
}

impl Keeper {
    /// A keeper for `config`'s `[snapshot]`, or `None` when the image keeps no data.
    pub async fn new(
        config: &Config,
        plan: &Plan,
        reaper: Reaper,
    ) -> Result<Option<Arc<Keeper>>, String> {
        let Some(snap) = config.snapshot.clone() else {
            return Ok(None);
        };
        if snap.create_store {
            create_local_store(&snap.store)?;
        }
        let store =
            bosun_snapshot::open_store(&snap.store, snap.s3_endpoint.as_deref(), &snap.s3_region)
                .await
                .map_err(|e| format!("snapshot store: {e}"))?;
        // The container's hostname (its short id under docker/podman) names its snapshots.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "bosun".into());
        Ok(Some(Arc::new(Keeper {
            store,
            store_url: bosun_config::redact::redact_url(&snap.store),
            snap,
            units: config
                .units
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            active: plan.units.iter().map(|p| p.name.clone()).collect(),
            roles: plan.roles.clone(),
            host,
            reaper,
            state_path: config.bosun.state_dir.join("snapshot-state.json"),
            handle: OnceLock::new(),
            restore: tokio::sync::Mutex::new(None),
            pending_loads: Mutex::new(HashSet::new()),
            restored_id: Mutex::new(None),
            failed_loads: Mutex::new(HashSet::new()),
            stop_writer: tokio::sync::Mutex::new(None),
            stop_failed: Mutex::new(Vec::new()),
            stop_began: Mutex::new(None),
            stop_bytes: std::sync::atomic::AtomicU64::new(0),
            busy: tokio::sync::Mutex::new(()),
        })))
    }

    /// Gives the keeper the handle it reports backup results through.
    pub fn set_handle(&self, handle: Handle) {
        let _ = self.handle.set(handle);
    }

    /// The store, for listing snapshots.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The store-side "running" marker of this role set: present from boot to
    /// a clean stop, so even a brand-new container (an empty disk) learns that
    /// the previous one was killed.
    fn marker_key(&self) -> String {
        let roles: String = self
            .roles
            .join("+")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '+' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!(
            "running/{}",
            if roles.is_empty() {
                "none".to_string()
            } else {
                roles
            }
        )
    }

    fn read_state(&self) -> DiskState {
        std::fs::read(&self.state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_state(&self, state: &DiskState) -> Result<(), String> {
        let dir = self
            .state_path
            .parent()
            .unwrap_or(std::path::Path::new("/"));
        std::fs::create_dir_all(dir).map_err(|e| format!("state_dir {}: {e}", dir.display()))?;
        let tmp = self.state_path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.state_path)
        };
        write().map_err(|e| format!("cannot write {}: {e}", self.state_path.display()))
    }

    /// Tells `ctl status` (and commands sent during the boot) what the boot is doing.
    fn boot_step(&self, step: String) {
        if let Some(h) = self.handle.get() {
            h.set_boot_step(step);
        }
    }

    /// LATEST, retried while the store does not answer. Never "none" for "unreachable".
    async fn latest_with_retries(&self) -> Result<Option<bosun_snapshot::SnapshotId>, String> {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=STORE_ATTEMPTS {
            self.boot_step(if attempt == 1 {
                format!("reading LATEST from {}", self.store_url)
            } else {
                format!(
                    "the snapshot store {} does not answer; attempt {attempt} of {STORE_ATTEMPTS}",
                    self.store_url
                )
            });
            match bosun_snapshot::latest(self.store.as_ref()).await {
                Ok(id) => return Ok(id),
                Err(e) if e.is_retryable() && attempt < STORE_ATTEMPTS => {
                    tracing::warn!("snapshot store {} unreachable (attempt {attempt}/{STORE_ATTEMPTS}): {e}; retrying in {delay:?}", self.store_url);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(8));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot read LATEST from {}: {e}. bosun will not start empty and later overwrite a good snapshot: fix the store (or its credentials) and start again",
                        self.store_url
                    ))
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    async fn boot(&self) -> Result<(), String> {
        let state = self.read_state();
        if state.snapshot.is_some() && !state.clean {
            tracing::warn!(
                "found an unclean stop: the last run on this disk did not finish its stop (killed, or out of budget); its data may be newer or older than the last snapshot"
            );
        }
        let latest = self.latest_with_retries().await?;
        let marker = self.marker_key();
        match self.store.get_small(&marker).await {
            Ok(prev) if state.snapshot.is_none() || state.clean => tracing::warn!(
                "found an unclean stop: the previous container ({}) never finished its stop; restoring the last complete snapshot",
                String::from_utf8_lossy(&prev).trim()
            ),
            _ => {}
        }
        let note = format!("{} since {}", self.host, now_ms() / 1000);
        if let Err(e) = self.store.put_small(&marker, note.as_bytes()).await {
            tracing::warn!("cannot write the running marker {marker}: {e}");
        }
        let mut next = DiskState {
            snapshot: state.snapshot.clone(),
            clean: false,
            last_stop_backup_ms: state.last_stop_backup_ms,
        };
        match latest {
            None => tracing::info!(
                "no snapshot in {} yet: starting with the data on this disk",
                self.store_url
            ),
            Some(id) if state.snapshot.as_deref() == Some(id.to_string().as_str()) => {
                tracing::info!("this disk already holds snapshot {id}: not restoring")
            }
            Some(id) => {
                if !state.clean && state.snapshot.is_some() {
                    tracing::warn!(
                        "restoring the last complete snapshot {id} after the unclean stop"
                    );
                }
                let reader = SnapshotReader::open(self.store.clone(), id.clone())
                    .await
                    .map_err(|e| format!("snapshot {id}: {e}"))?;
                tracing::info!("restoring snapshot {id} from {}", self.store_url);
                for (name, path) in &self.snap.paths {
                    if reader.manifest().item(name).is_none() {
                        tracing::warn!(
                            "snapshot {id} has no item {name:?}; {} is left as it is",
                            path.display()
                        );
                        continue;
                    }
                    self.boot_step(restore_step(&id, reader.manifest(), name, &self.snap));
                    let t0 = StdInstant::now();
                    reader.restore_path(name, path).await.map_err(|e| {
                        format!(
                            "restoring {name} to {}: {e}. Nothing was changed on this disk. \
                             If the snapshot is damaged or unreadable, pick an older one with `bosun snapshot list` and `bosun snapshot restore ID`",
                            path.display()
                        )
                    })?;
                    tracing::info!(
                        "restored {name} to {} in {:.1?}",
                        path.display(),
                        t0.elapsed()
                    );
                }
                for n in self
                    .active
                    .iter()
                    .filter(|n| self.units.get(*n).is_some_and(|u| u.backup.is_some()))
                {
                    if reader.manifest().item(n).is_none() {
                        tracing::warn!(
                            "snapshot {id} (roles {}) has no data for {n}: {n} starts with what is on this disk",
                            reader.manifest().roles.join(":")
                        );
                    }
                }
                let loads: HashSet<String> = self
                    .active
                    .iter()
                    .filter(|n| self.units.get(*n).and_then(|u| u.backup.as_ref()).is_some())
                    .filter(|n| reader.manifest().item(n).is_some())
                    .cloned()
                    .collect();
                let done = loads.is_empty();
                *self.pending_loads.lock().expect("poisoned") = loads;
                *self.restored_id.lock().expect("poisoned") = Some(id.to_string());
                *self.restore.lock().await = Some(reader);
                if done {
                    next.snapshot = Some(id.to_string());
                } else {
                    // Until every unit's data is loaded, this disk does not hold the snapshot.
                    next.snapshot = None;
                }
            }
        }
        self.write_state(&next)
    }

    /// Runs `argv` as `unit` would run (user, env, cwd), stdout or stdin piped.
    fn spawn_for(
        &self,
        unit: &Unit,
        argv: Vec<String>,
        stdin: bool,
    ) -> Result<
        (
            ProcGuard,
            Option<OwnedFd>,
            tokio::sync::oneshot::Receiver<bosun_core::reaper::Exit>,
        ),
        String,
    > {
        let identity = Identity::resolve(unit.user.as_deref(), unit.group.as_deref())?;
        let env = spawn::unit_env(unit)?;
        let spec = Spec {
            argv: argv.clone(),
            env,
            cwd: unit.cwd.as_deref(),
            identity: identity.as_ref(),
            umask: unit.umask,
            stdout: Stdout::Inherit,
            stdin_piped: stdin,
            own_process_group: true,
        };
        let mut cmd = spec.command();
        if !stdin {
            cmd.stdout(Stdio::piped());
        }
        let (mut child, exit) = self
            .reaper
            .spawn(&mut cmd)
            .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
        let fd = if stdin {
            child.stdin.take().map(OwnedFd::from)
        } else {
            child.stdout.take().map(OwnedFd::from)
        };
        Ok((
            ProcGuard {
                pid: child.id() as i32,
                done: false,
            },
            fd,
            exit,
        ))
    }

    async fn load(&self, unit: &Unit) -> Result<(), String> {
        if !self
            .pending_loads
            .lock()
            .expect("poisoned")
            .contains(&unit.name)
        {
            return Ok(());
        }
        let result = self.load_inner(unit).await;
        match &result {
            Ok(()) => {
                let left = {
                    let mut p = self.pending_loads.lock().expect("poisoned");
                    p.remove(&unit.name);
                    p.len()
                };
                if left == 0 {
                    let id = self.restored_id.lock().expect("poisoned").clone();
                    let mut st = self.read_state();
                    st.snapshot = id;
                    self.write_state(&st)?;
                    tracing::info!("restore complete");
                }
            }
            Err(_) => {
                self.failed_loads
                    .lock()
                    .expect("poisoned")
                    .insert(unit.name.clone());
            }
        }
        result
    }

    async fn load_inner(&self, unit: &Unit) -> Result<(), String> {
        let backup = unit.backup.as_ref().ok_or("no backup table")?;
        let Some(load) = &backup.load else {
            return Err(format!(
                "snapshot holds data for {} but it has no `load` command",
                unit.name
            ));
        };
        let reader = self.restore.lock().await;
        let reader = reader.as_ref().ok_or("no snapshot to restore from")?;
        let t0 = StdInstant::now();
        // `load` acts on its input as it reads it (psql runs each statement): it must only
        // ever see verified bytes. A first pass reads the item through sha256 and keeps
        // nothing (no temporary copy of a large database); the second pass feeds `load`
        // and is checked again, in case the object changed in between.
        tracing::info!(unit = %unit.name, "verifying its data in snapshot {} before loading it", reader.id());
        tokio::time::timeout(backup.timeout, reader.verify_item(&unit.name))
            .await
            .map_err(|_| {
                format!(
                    "verifying its data did not finish within {:?}; `{}` was not run",
                    backup.timeout,
                    load.display()
                )
            })?
            .map_err(|e| format!("{e}. `{}` was not run: nothing was loaded", load.display()))?;
        let mut item = reader
            .item_stream(&unit.name)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(unit = %unit.name, "loading its data from snapshot {} ({})", reader.id(), load.display());
        let (mut guard, fd, exit) = self.spawn_for(unit, load.argv(), true)?;
        let fd = fd.ok_or("no stdin pipe")?;
        let mut stdin =
            tokio::net::unix::pipe::Sender::from_owned_fd(fd).map_err(|e| e.to_string())?;
        let pid = guard.pid;
        let work = async {
            let copied = tokio::io::copy(&mut item, &mut stdin).await;
            if copied.is_err() {
                // A clean end of its input could make `load` commit what it got so far:
                // kill it before its stdin closes.
                kill_group(pid);
            }
            drop(stdin);
            let code = exit.await.map_err(|_| "exit status lost".to_string())?;
            let bytes = copied.map_err(|e| {
                format!("streaming the data into `{}`: {e}; it was killed before the end of its input. If the store changed or broke since the verifying read, pick an older snapshot with `bosun snapshot list` and `bosun snapshot restore ID`", load.display())
            })?;
            if !code.success() {
                return Err(format!("`{}` failed ({code})", load.display()));
            }
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(backup.timeout, work)
            .await
            .map_err(|_| format!("load did not finish within {:?}", backup.timeout))??;
        guard.done = true;
        tracing::info!(unit = %unit.name, "loaded {} in {:.1?}", human_bytes(bytes), t0.elapsed());
        Ok(())
    }

    /// Dumps `unit`'s data into `writer`.
    async fn dump(&self, unit: &Unit, writer: &mut SnapshotWriter) -> Result<u64, String> {
        let backup = unit.backup.as_ref().ok_or("no backup table")?;
        let t0 = StdInstant::now();
        tracing::info!(unit = %unit.name, "dumping its data ({}) into snapshot {}", backup.dump.display(), writer.id());
        let (mut guard, fd, exit) = self.spawn_for(unit, backup.dump.argv(), false)?;
        let fd = fd.ok_or("no stdout pipe")?;
        let stdout =
            tokio::net::unix::pipe::Receiver::from_owned_fd(fd).map_err(|e| e.to_string())?;
        let work = async {
            let item = writer.put_stream(&unit.name, stdout).await;
            let code = exit.await.map_err(|_| "exit status lost".to_string())?;
            let item = item.map_err(|e| e.to_string())?;
            if !code.success() {
                return Err(format!("`{}` failed ({code})", backup.dump.display()));
            }
            Ok(item.raw_size)
        };
        let r = tokio::time::timeout(backup.timeout, work)
            .await
            .map_err(|_| format!("dump did not finish within {:?}", backup.timeout))
            .and_then(|r| r);
        let info = BackupInfo {
            at_ms: now_ms(),
            bytes: *r.as_ref().unwrap_or(&0),
            took_ms: t0.elapsed().as_millis() as u64,
            ok: r.is_ok(),
            detail: match &r {
                Ok(_) => writer.id().to_string(),
                Err(e) => e.clone(),
            },
        };
        if let Some(h) = self.handle.get() {
            h.set_unit_backup(&unit.name, info);
        }
        if r.is_ok() {
            guard.done = true;
        }
        r
    }

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

    /// Saves `[snapshot.paths]` into `writer` and commits it.
    /// Items this container writes into its snapshots.
    fn own_items(&self) -> HashSet<String> {
        let units = self
            .active
            .iter()
            .filter(|n| self.units.get(*n).is_some_and(|u| u.backup.is_some()))
            .cloned();
        units.chain(self.snap.paths.keys().cloned()).collect()
    }

    /// Items of the current LATEST that this container does not write: a new
    /// snapshot from it would drop them (split roles sharing one store).
    async fn foreign_items(&self) -> Result<(Option<String>, Vec<String>), String> {
        let Some(id) = bosun_snapshot::latest(self.store.as_ref())
            .await
            .map_err(|e| format!("reading LATEST: {e}"))?
        else {
            return Ok((None, Vec::new()));
        };
        let manifest = bosun_snapshot::read_manifest(self.store.as_ref(), &id)
            .await
            .map_err(|e| format!("reading snapshot {id}: {e}"))?;
        let own = self.own_items();
        let foreign = manifest
            .items
            .iter()
            .map(|i| i.name.clone())
            .filter(|n| !own.contains(n))
            .collect();
        Ok((Some(id.to_string()), foreign))
    }

    /// Saves `[snapshot.paths]` into `writer` and commits it. `None`: there was
    /// nothing to keep, so nothing was committed and LATEST is untouched.
    async fn finish(
        &self,
        mut writer: SnapshotWriter,
        started: StdInstant,
        dumped: u64,
    ) -> Result<Option<String>, String> {
        if let (Some(latest), foreign) = self.foreign_items().await? {
            if !foreign.is_empty() {
                writer.abort();
                return Err(format!(
                    "LATEST ({latest}) holds {} that this container (roles {}) does not own: a snapshot from here would lose them. \
                     Give each role set its own store prefix, e.g. store = \"s3://bucket/app/${{CONTAINERROLE:-all}}\"",
                    foreign.join(", "),
                    self.roles.join(":")
                ));
            }
        }
        let mut bytes = dumped;
        for (name, path) in &self.snap.paths {
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
                    let msg = format!("saving {} as {name}: {e}", path.display());
                    writer.abort();
                    return Err(msg);
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
        let id = writer.id().to_string();
        writer
            .commit()
            .await
            .map_err(|e| format!("committing snapshot {id}: {e}"))?;
        let info = BackupInfo {
            at_ms: now_ms(),
            bytes,
            took_ms: started.elapsed().as_millis() as u64,
            ok: true,
            detail: id.clone(),
        };
        if let Some(h) = self.handle.get() {
            h.set_last_snapshot(info);
        }
        tracing::info!(
            "snapshot {id} committed: {} in {:.1?}",
            human_bytes(bytes),
            started.elapsed()
        );
        Ok(Some(id))
    }

    fn record_failure(&self, started: StdInstant, msg: &str) {
        if let Some(h) = self.handle.get() {
            h.set_last_snapshot(BackupInfo {
                at_ms: now_ms(),
                bytes: 0,
                took_ms: started.elapsed().as_millis() as u64,
                ok: false,
                detail: msg.to_string(),
            });
        }
    }

    /// An online snapshot (`ctl backup`, daily): dumps run against the live units.
    pub async fn backup_now(&self, kind: SnapshotKind) -> Result<String, String> {
        let _one = self.busy.lock().await;
        let started = StdInstant::now();
        let result = async {
            let handle = self.handle.get().ok_or("bosun is not running")?;
            let mut writer =
                SnapshotWriter::begin(self.store.clone(), &self.host, &self.roles, kind)
                    .await
                    .map_err(|e| e.to_string())?;
            let mut bytes = 0;
            for name in &self.active {
                let Some(unit) = self.units.get(name).filter(|u| u.backup.is_some()) else {
                    continue;
                };
                if let Some(why) = self.refuse_reason(name) {
                    writer.abort();
                    return Err(why);
                }
                let ready = handle.unit(name).is_some_and(|u| u.status.borrow().ready);
                if !ready {
                    writer.abort();
                    return Err(format!(
                        "{name} is not ready: a snapshot without its data would not be complete"
                    ));
                }
                match self.dump(unit, &mut writer).await {
                    Ok(b) => bytes += b,
                    Err(e) => {
                        writer.abort();
                        return Err(format!("{name}: {e}"));
                    }
                }
            }
            let id = self.finish(writer, started, bytes).await?.ok_or(
                "this container has no data to snapshot (no unit with a backup table, no paths)",
            )?;
            if kind == SnapshotKind::Latest {
                let mut st = self.read_state();
                st.snapshot = Some(id.clone());
                self.write_state(&st)?;
            }
            Ok(id)
        }
        .await;
        if let Err(e) = &result {
            tracing::error!("snapshot failed: {e}; LATEST is unchanged");
            self.record_failure(started, e);
        }
        result
    }

    /// Takes a daily snapshot at `daily_at` (UTC) and prunes old ones, forever.
    pub fn spawn_daily(self: &Arc<Self>) {
        let Some((h, m)) = self.snap.daily_at else {
            return;
        };
        if self.snap.keep_daily == 0 {
            return;
        }
        let keeper = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(until_next(h, m)).await;
                tracing::info!("daily snapshot");
                if keeper.backup_now(SnapshotKind::Daily).await.is_ok() {
                    match bosun_snapshot::prune_daily(
                        keeper.store.as_ref(),
                        keeper.snap.keep_daily,
                        SystemTime::now(),
                    )
                    .await
                    {
                        Ok(gone) if !gone.is_empty() => tracing::info!(
                            "pruned {} daily snapshots older than {} days",
                            gone.len(),
                            keeper.snap.keep_daily
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!("pruning daily snapshots: {e}"),
                    }
                }
            }
        });
    }
}

/// Time until the next HH:MM UTC.
fn until_next(h: u8, m: u8) -> Duration {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let day = 86_400;
    let target = u64::from(h) * 3600 + u64::from(m) * 60;
    let today = now % day;
    let wait = if target > today {
        target - today
    } else {
        day - today + target
    };
    Duration::from_secs(wait)
}

/// `12.3 MiB`.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// Kills a dump/load process group if its work is abandoned (timeout, stop).
struct ProcGuard {
    pid: i32,
    done: bool,
}

impl Drop for ProcGuard {
    fn drop(&mut self) {
        if !self.done {
            kill_group(self.pid);
        }
    }
}

/// SIGKILL to a dump/load process group.
fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

impl DataHooks for Keeper {
    fn before_boot(&self) -> HookFuture<'_> {
        Box::pin(self.boot())
    }

    fn after_ready<'a>(&'a self, unit: &'a Unit) -> HookFuture<'a> {
        Box::pin(self.load(unit))
    }

    fn before_stop<'a>(&'a self, unit: &'a Unit, ctx: StopContext) -> HookFuture<'a> {
        Box::pin(async move {
            if !ctx.booted {
                // The data may be half-restored: it must not become a snapshot.
                return Ok(());
            }
            if let Some(why) = self.refuse_reason(&unit.name) {
                self.stop_failed.lock().expect("poisoned").push(why.clone());
                return Err(why);
            }
            self.stop_began
                .lock()
                .expect("poisoned")
                .get_or_insert_with(StdInstant::now);
            let mut slot = self.stop_writer.lock().await;
            if slot.is_none() {
                let w = SnapshotWriter::begin(
                    self.store.clone(),
                    &self.host,
                    &self.roles,
                    SnapshotKind::Latest,
                )
                .await
                .map_err(|e| format!("cannot begin a snapshot in {}: {e}", self.store_url))?;
                *slot = Some(w);
            }
            let writer = slot.as_mut().expect("just set");
            let r = self.dump(unit, writer).await;
            if let Ok(bytes) = &r {
                self.stop_bytes
                    .fetch_add(*bytes, std::sync::atomic::Ordering::Relaxed);
            }
            if let Err(e) = &r {
                self.stop_failed
                    .lock()
                    .expect("poisoned")
                    .push(format!("{}: {e}", unit.name));
            }
            r.map(|_| ())
        })
    }

    fn after_stop(&self, ctx: StopContext) -> HookFuture<'_> {
        Box::pin(async move {
            let started = StdInstant::now();
            let writer = self.stop_writer.lock().await.take();
            if !ctx.booted {
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
                self.record_failure(started, &msg);
                return Err(msg);
            }
            let _one = self.busy.lock().await;
            let writer = match writer {
                Some(w) => w,
                None => SnapshotWriter::begin(
                    self.store.clone(),
                    &self.host,
                    &self.roles,
                    SnapshotKind::Latest,
                )
                .await
                .map_err(|e| format!("cannot begin a snapshot in {}: {e}", self.store_url))?,
            };
            let dumped = self.stop_bytes.load(std::sync::atomic::Ordering::Relaxed);
            let began = self.stop_began.lock().expect("poisoned").unwrap_or(started);
            match self.finish(writer, began, dumped).await {
                Ok(id) => {
                    if let Err(e) = self.store.delete(&self.marker_key()).await {
                        tracing::warn!("cannot remove the running marker: {e}");
                    }
                    let held = id.or_else(|| self.read_state().snapshot);
                    self.write_state(&DiskState {
                        snapshot: held,
                        clean: true,
                        last_stop_backup_ms: Some(began.elapsed().as_millis() as u64),
                    })
                }
                Err(e) => {
                    self.record_failure(started, &e);
                    Err(format!("{e}; LATEST is unchanged"))
                }
            }
        })
    }
}
