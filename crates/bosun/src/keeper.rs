//! Glue between bosun-core's [`DataHooks`] and bosun-snapshot's [`Lifecycle`]:
//! the rules that keep data safe live in `bosun_snapshot::lifecycle`; this file
//! only streams the units' `dump`/`load` commands (core's [`PipedProcess`]: the
//! unit's user, env, cwd, umask) and reports to the control plane's [`Handle`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bosun_config::{Config, Plan, Unit};
use bosun_core::piped::{Pipe, PipedProcess};
use bosun_core::reaper::{Exit, Reaper};
use bosun_core::spawn::SpawnError;
use bosun_core::status::{now_ms, BackupInfo, DaemonStatus, TransferStatus};
use bosun_core::supervisor::LastBackups;
use bosun_core::{DataHooks, Handle, HookError, HookFuture, StopContext};
use bosun_core::{Event, EventKind};
use bosun_snapshot::lifecycle::{CmdFuture, DiskState, Report, Settings};
use bosun_snapshot::{
    DataCommands, Identities, ItemReader, Lifecycle, Recipients, Retention, SnapshotKind,
    SnapshotWriter, Store,
};

pub use bosun_snapshot::lifecycle::human_bytes;

/// The last measured stop-backup time recorded in `state_dir`, if any.
pub fn last_stop_backup(state_dir: &std::path::Path) -> Option<Duration> {
    DiskState::read(state_dir).last_stop_backup()
}

/// The `keep_*` keys of `[snapshot]` as a retention policy.
pub fn retention(snap: &bosun_config::SnapshotConfig) -> Retention {
    Retention {
        keep_last: snap.keep_last,
        keep_daily: snap.keep_daily,
        keep_weekly: snap.keep_weekly,
        keep_monthly: snap.keep_monthly,
    }
}

/// `encrypt_to` and `identity_file`, loaded: a config that asks for encryption and
/// cannot get its keys refuses to start (never a silent plaintext upload).
pub fn keys(
    snap: &bosun_config::SnapshotConfig,
) -> Result<(Option<Recipients>, Option<Identities>), bosun_snapshot::Error> {
    let recipients = if snap.encrypt_to.is_empty() {
        None
    } else {
        Some(Recipients::load(&snap.encrypt_to)?)
    };
    let identities = snap
        .identity_file
        .as_deref()
        .map(Identities::load)
        .transpose()?;
    Ok((recipients, identities))
}

/// Why a unit's dump or load failed.
#[derive(Debug, thiserror::Error)]
enum DataError {
    #[error("no unit {0} with a backup table")]
    NoBackup(String),
    #[error("the snapshot holds data for {0} but it has no `load` command")]
    NoLoad(String),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("the command's pipe: {0}")]
    Pipe(std::io::Error),
    #[error("its exit status was lost")]
    ExitLost,
    #[error("`{command}` failed ({exit})")]
    Failed { command: String, exit: Exit },
    #[error(transparent)]
    Snapshot(#[from] bosun_snapshot::Error),
    #[error("streaming the data into `{command}`: {source}; it was killed before the end of its input. If the store changed or broke since the verifying read, pick an older snapshot with `bosun snapshot list` and `bosun snapshot restore ID`")]
    Feed {
        command: String,
        source: std::io::Error,
    },
}

/// Keeps the data of one container: [`Lifecycle`] behind core's hooks.
pub struct Keeper {
    life: Lifecycle,
    cmds: Arc<Commands>,
    daily_at: Option<(u8, u8)>,
    /// `keep_daily`, `keep_weekly` and `keep_monthly` are all 0: no daily snapshots.
    daily_off: bool,
    /// The daily snapshot and marker refresh tasks, ended when the stop begins.
    daily: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Keeper {
    /// A keeper for `config`'s `[snapshot]`, or `None` when the image keeps no data.
    pub async fn new(
        config: &Config,
        plan: &Plan,
        reaper: Reaper,
    ) -> Result<Option<Arc<Keeper>>, bosun_snapshot::Error> {
        let Some(snap) = config.snapshot.clone() else {
            return Ok(None);
        };
        if snap.create_store {
            bosun_snapshot::create_file_store(&snap.store)?;
        }
        let (recipients, identities) = keys(&snap)?;
        let store =
            bosun_snapshot::open_store(&snap.store, snap.s3_endpoint.as_deref(), &snap.s3_region)
                .await?;
        let data_units: Vec<(String, Duration)> = plan
            .units
            .iter()
            .filter_map(|p| config.units.get(&p.name))
            .filter_map(|u| u.backup.as_ref().map(|b| (u.name.clone(), b.timeout)))
            .collect();
        let settings = Settings {
            store_url: bosun_config::redact::redact_url(&snap.store),
            host: bosun_core::pid1::hostname(),
            roles: plan.roles.clone(),
            paths: snap.paths.clone().into_iter().collect(),
            data_units,
            state_dir: config.bosun.state_dir.clone(),
            retention: retention(&snap),
            recipients,
            identities,
            verify_after_commit: snap.verify_after_commit,
            writer_stale_after: snap.writer_stale_after,
            stop_budget: config.bosun.stop_budget,
        };
        let cmds = Arc::new(Commands {
            units: config
                .units
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            reaper,
            handle: OnceLock::new(),
        });
        let life = Lifecycle::new(store, settings, cmds.clone());
        // An app tier on the data tier's store: no daily snapshot that could only fail.
        let daily_at = snap.daily_at.filter(|_| !life.keeps_nothing());
        Ok(Some(Arc::new(Keeper {
            life,
            cmds,
            daily_at,
            daily_off: retention(&snap).daily_off(),
            daily: Mutex::new(Vec::new()),
        })))
    }

    /// Once the supervisor exists: the handle the keeper reports through, its part
    /// of the status (transfers, next daily), and its timers (marker, daily).
    pub fn attach(self: &Arc<Self>, handle: &Handle) {
        let _ = self.cmds.handle.set(handle.clone());
        handle.set_status_extra(self.status_extra());
        self.spawn_daily();
    }

    /// The store, for listing snapshots.
    pub fn store(&self) -> Arc<dyn Store> {
        self.life.store()
    }

    /// An online snapshot (`ctl backup`): dumps run against the live units.
    pub async fn backup_now(&self, kind: SnapshotKind) -> Result<String, bosun_snapshot::Error> {
        self.life.backup_now(kind).await
    }

    /// Until the stop: refreshes the writer marker every third of
    /// `writer_stale_after`, and takes a daily snapshot at `daily_at` (UTC).
    fn spawn_daily(self: &Arc<Self>) {
        let keeper = self.clone();
        let beat = tokio::spawn(async move { keeper.life.run_heartbeat().await });
        let mut tasks = self.daily.lock().expect("poisoned");
        tasks.push(beat);
        let Some((h, m)) = self.daily_at.filter(|_| !self.daily_off) else {
            return;
        };
        let keeper = self.clone();
        tasks.push(tokio::spawn(
            async move { keeper.life.run_daily(h, m).await },
        ));
    }

    /// Fills in what core does not know: the transfers under way and the next
    /// daily snapshot (for `ctl status`, `/health`, the status page).
    fn status_extra(&self) -> bosun_core::supervisor::StatusExtra {
        let daily = self.daily_at.filter(|_| !self.daily_off);
        Box::new(
            move |st: &mut DaemonStatus, last_backup: &LastBackups<'_>| {
                st.transfers = transfers(last_backup, bosun_snapshot::progress::active());
                st.next_daily_at_ms = daily.map(|(h, m)| {
                    let now = now_ms();
                    let wait = bosun_snapshot::lifecycle::until_next_daily(now / 1000, h, m);
                    now + wait.as_millis() as u64
                });
            },
        )
    }

    /// The stop has begun: no daily snapshot starts or goes on beside it.
    fn end_daily(&self) {
        for task in self.daily.lock().expect("poisoned").drain(..) {
            task.abort();
        }
    }
}

impl DataHooks for Keeper {
    fn before_boot(&self) -> HookFuture<'_> {
        Box::pin(async move { self.life.boot().await.map_err(HookError::from_error) })
    }

    fn after_ready<'a>(&'a self, unit: &'a Unit) -> HookFuture<'a> {
        Box::pin(async move {
            self.life
                .load(&unit.name)
                .await
                .map_err(HookError::from_error)
        })
    }

    fn before_stop<'a>(&'a self, unit: &'a Unit, ctx: StopContext) -> HookFuture<'a> {
        Box::pin(async move {
            self.end_daily();
            if !ctx.booted {
                // The data may be half-restored: it must not become a snapshot.
                return Ok(());
            }
            self.life
                .stop_dump(&unit.name)
                .await
                .map_err(HookError::from_error)
        })
    }

    fn after_stop(&self, ctx: StopContext) -> HookFuture<'_> {
        Box::pin(async move {
            self.end_daily();
            self.life
                .stop_commit(ctx.booted)
                .await
                .map_err(HookError::from_error)
        })
    }
}

/// Runs the units' dump and load commands and reports to the control plane.
struct Commands {
    units: HashMap<String, Unit>,
    reaper: Reaper,
    handle: OnceLock<Handle>,
}

impl Commands {
    fn backup(&self, name: &str) -> Result<(&Unit, &bosun_config::UnitBackup), DataError> {
        let unit = self.units.get(name);
        let backup = unit.and_then(|u| u.backup.as_ref().map(|b| (u, b)));
        backup.ok_or_else(|| DataError::NoBackup(name.into()))
    }

    async fn run_dump(&self, name: &str, writer: &mut SnapshotWriter) -> Result<u64, DataError> {
        let (unit, backup) = self.backup(name)?;
        let mut p = PipedProcess::spawn(&self.reaper, unit, backup.dump.argv(), Pipe::Stdout)?;
        let fd = p.take_pipe().ok_or(DataError::ExitLost)?;
        let stdout =
            tokio::net::unix::pipe::Receiver::from_owned_fd(fd).map_err(DataError::Pipe)?;
        let item = writer.put_stream(name, stdout).await;
        let code = p.wait().await.ok_or(DataError::ExitLost)?;
        let item = item?;
        if !code.success() {
            let command = backup.dump.display();
            return Err(DataError::Failed {
                command,
                exit: code,
            });
        }
        p.finish();
        Ok(item.raw_size)
    }

    async fn run_load(&self, name: &str, mut item: ItemReader) -> Result<u64, DataError> {
        let (unit, backup) = self.backup(name)?;
        let load = backup.load.as_ref();
        let load = load.ok_or_else(|| DataError::NoLoad(name.into()))?;
        let mut p = PipedProcess::spawn(&self.reaper, unit, load.argv(), Pipe::Stdin)?;
        let fd = p.take_pipe().ok_or(DataError::ExitLost)?;
        let mut stdin =
            tokio::net::unix::pipe::Sender::from_owned_fd(fd).map_err(DataError::Pipe)?;
        let copied = tokio::io::copy(&mut item, &mut stdin).await;
        if copied.is_err() {
            // A clean end of its input could make `load` commit what it got so far:
            // kill it before its stdin closes.
            p.kill();
        }
        drop(stdin);
        let code = p.wait().await.ok_or(DataError::ExitLost)?;
        let command = load.display();
        let bytes = copied.map_err(|source| DataError::Feed {
            command: command.clone(),
            source,
        })?;
        if !code.success() {
            return Err(DataError::Failed {
                command,
                exit: code,
            });
        }
        p.finish();
        Ok(bytes)
    }
}

/// The status rows of `active`: a backup's total is estimated from the unit's
/// last good backup (a dump's size is not known before its end).
fn transfers(
    last_backup: &LastBackups<'_>,
    active: Vec<bosun_snapshot::progress::Transfer>,
) -> Vec<TransferStatus> {
    active
        .into_iter()
        .map(|t| {
            let total = t.total.or_else(|| {
                last_backup(&t.item)
                    .filter(|b| b.ok && b.bytes > 0)
                    .map(|b| b.bytes)
            });
            let rate = (t.done * 1000).checked_div(t.elapsed_ms).unwrap_or(0);
            let eta = total.and_then(|tot| tot.saturating_sub(t.done).checked_div(rate));
            TransferStatus {
                action: t.action.to_string(),
                item: t.item,
                snapshot: t.snapshot,
                done_bytes: t.done,
                total_bytes: total,
                rate_bytes_per_sec: rate,
                eta_secs: eta,
            }
        })
        .collect()
}

fn info(r: Report) -> BackupInfo {
    BackupInfo {
        at_ms: now_ms(),
        bytes: r.bytes,
        took_ms: r.took.as_millis() as u64,
        ok: r.ok,
        detail: r.detail,
    }
}

impl DataCommands for Commands {
    fn dump<'a>(&'a self, unit: &'a str, writer: &'a mut SnapshotWriter) -> CmdFuture<'a, u64> {
        Box::pin(async move { Ok(self.run_dump(unit, writer).await?) })
    }

    fn load<'a>(&'a self, unit: &'a str, item: ItemReader) -> CmdFuture<'a, u64> {
        Box::pin(async move { Ok(self.run_load(unit, item).await?) })
    }

    fn is_ready(&self, unit: &str) -> bool {
        let h = self.handle.get();
        h.and_then(|h| h.unit(unit))
            .is_some_and(|u| u.status.borrow().ready)
    }

    fn boot_step(&self, step: String) {
        if let Some(h) = self.handle.get() {
            h.set_boot_step(step);
        }
    }

    fn unit_backup(&self, unit: &str, report: Report) {
        if let Some(h) = self.handle.get() {
            if !report.ok {
                let why = format!("backup of {unit} failed: {}", report.detail);
                h.emit(Event::new(EventKind::BackupFailed, Some(unit), why));
            }
            h.set_unit_backup(unit, info(report));
        }
    }

    fn snapshot(&self, report: Report) {
        if let Some(h) = self.handle.get() {
            if !report.ok {
                let why = format!("snapshot failed: {}", report.detail);
                h.emit(Event::new(EventKind::BackupFailed, None, why));
            }
            h.set_last_snapshot(info(report));
        }
    }
}
