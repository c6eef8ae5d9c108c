//! `bosun snapshot …`: the configured store's snapshots, without a running bosun.
//!
//! Exit codes: 0 done; 1 the store said no (unreachable, damaged, not found); 2 a
//! usage or config error. `verify` (for cron jobs and CI): 0 every snapshot checked
//! is intact, 1 one is damaged (the object named on stderr), 2 a usage or config
//! error (no such snapshot included), 3 the store could not be read (unreachable).

use std::path::PathBuf;
use std::sync::Arc;

use std::time::{Duration, Instant};

use bosun_snapshot::{Depth, SnapshotId, SnapshotKind, Store, VerifyProgress};
use clap::Subcommand;

use crate::keeper;

/// What `bosun snapshot` does.
#[derive(Subcommand)]
pub enum SnapshotCmd {
    /// List snapshots: id, time, host, size, complete.
    List,
    /// Make snapshot ID the one restored at the next start (sets LATEST).
    Restore {
        /// The snapshot id, as `bosun snapshot list` shows it.
        id: String,
    },
    /// Read every object of a snapshot (default: LATEST) and check sizes and sha256s,
    /// without restoring; progress on stderr. Exit 0 intact, 1 damaged, 2 usage or
    /// config error, 3 store unreachable.
    Verify {
        /// The snapshot id (`bosun snapshot list`); default LATEST.
        id: Option<String>,
        /// Every complete snapshot, both series.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Apply the retention policy (keep_last, keep_daily, …) now: what is removed and why.
    Prune {
        /// Only show what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs one `bosun snapshot` command; its exit code.
pub fn main(paths: Vec<PathBuf>, action: SnapshotCmd) -> i32 {
    let Some(config) = crate::load_config(&paths, &bosun_config::Env::current()) else {
        return 2;
    };
    let Some(snap) = config.snapshot else {
        eprintln!("bosun: {} has no [snapshot] table", crate::shown(&paths));
        return 2;
    };
    crate::runtime().block_on(async move {
        let store = match bosun_snapshot::open_store(
            &snap.store,
            snap.s3_endpoint.as_deref(),
            &snap.s3_region,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bosun: snapshot store: {e}");
                return 1;
            }
        };
        match action {
            SnapshotCmd::List => list(store).await,
            SnapshotCmd::Restore { id } => {
                let identities = keeper::keys(&snap).ok().and_then(|(_, ids)| ids);
                restore(store, &id, identities).await
            }
            SnapshotCmd::Prune { dry_run } => {
                prune(store, &keeper::retention(&snap), dry_run).await
            }
            SnapshotCmd::Verify { id, all } => {
                let identities = match keeper::keys(&snap) {
                    Ok((_, ids)) => ids,
                    Err(e) => {
                        eprintln!("bosun: [snapshot]: {e}");
                        return 2;
                    }
                };
                verify(store, id.as_deref(), all, identities).await
            }
        }
    })
}

async fn list(store: Arc<dyn Store>) -> i32 {
    let list = match bosun_snapshot::list_snapshots(store.as_ref()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bosun: listing snapshots: {e}");
            return 1;
        }
    };
    println!(
        "{:<40} {:<6} {:<20} {:>10}  {:<8} {:<31} LATEST",
        "ID", "KIND", "HOST", "SIZE", "COMPLETE", "VERIFIED"
    );
    for s in list {
        let verified = match bosun_snapshot::last_verified(store.as_ref(), &s.id).await {
            Ok(v) => verified_column(v.as_ref()),
            Err(_) => "?".to_string(),
        };
        println!(
            "{:<40} {:<6} {:<20} {:>10}  {:<8} {:<31} {}",
            s.id.to_string(),
            if s.kind == SnapshotKind::Daily {
                "daily"
            } else {
                "stop"
            },
            s.host,
            keeper::human_bytes(s.size),
            if s.complete { "yes" } else { "no" },
            verified,
            if s.latest { "*" } else { "" }
        );
    }
    0
}

/// `2026-05-01T06:00:00Z ok`, `… ok(cipher)` (encrypted, checked without a key),
/// `… DAMAGED`, `never`.
pub fn verified_column(v: Option<&bosun_snapshot::Verification>) -> String {
    let Some(v) = v else {
        return "never".into();
    };
    let when = bosun_snapshot::time::format_rfc3339_ms(v.at_ms);
    let when = format!("{}Z", when.get(..19).unwrap_or(&when));
    match (v.ok, v.depth) {
        (false, _) => format!("{when} DAMAGED"),
        (true, bosun_snapshot::Depth::Full) => format!("{when} ok"),
        (true, bosun_snapshot::Depth::Ciphertext) => format!("{when} ok(cipher)"),
    }
}

async fn restore(
    store: Arc<dyn Store>,
    id: &str,
    identities: Option<bosun_snapshot::Identities>,
) -> i32 {
    let list = match bosun_snapshot::list_snapshots(store.as_ref()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bosun: listing snapshots: {e}");
            return 1;
        }
    };
    let Some(found) = list.into_iter().find(|s| s.id.to_string() == id) else {
        eprintln!("bosun: no snapshot {id:?} (see: bosun snapshot list)");
        return 1;
    };
    if !found.complete {
        eprintln!("bosun: snapshot {id} is incomplete (no manifest): it cannot be restored");
        return 1;
    }
    match bosun_snapshot::set_latest(store.as_ref(), &found.id).await {
        Ok(()) => {
            println!("snapshot {id} is now LATEST: the next start of a container on a disk that does not hold it restores it");
            // An encrypted snapshot this config has no key for: the next boot would fail.
            if let Ok(r) =
                bosun_snapshot::SnapshotReader::open(store.clone(), found.id.clone()).await
            {
                if let Err(e) = r.with_identities(identities).check_keys() {
                    eprintln!("warning: {e}");
                }
            }
            0
        }
        Err(e) => {
            eprintln!("bosun: {e}");
            1
        }
    }
}

async fn prune(store: Arc<dyn Store>, policy: &bosun_snapshot::Retention, dry_run: bool) -> i32 {
    let min_age = bosun_snapshot::lifecycle::PRUNE_MIN_AGE;
    match bosun_snapshot::prune(store.as_ref(), policy, &[], min_age, dry_run).await {
        Ok(plan) => {
            let verb = if dry_run { "would remove" } else { "removed" };
            for (id, why) in &plan.remove {
                println!("{verb} {id}: {why}");
            }
            for (id, why) in &plan.keep {
                println!("keep   {id}: {why}");
            }
            println!(
                "{} snapshot(s) {verb}, {} kept",
                plan.remove.len(),
                plan.keep.len()
            );
            0
        }
        Err(e) => {
            eprintln!("bosun: pruning {}: {e}", store.describe());
            1
        }
    }
}

/// Exit codes of `bosun snapshot verify`.
const VERIFY_DAMAGED: i32 = 1;
const VERIFY_USAGE: i32 = 2;
const VERIFY_UNREACHABLE: i32 = 3;

/// Which snapshots `verify` checks: `--all` (every complete one), an id, else LATEST.
async fn verify_targets(
    store: &dyn Store,
    id: Option<&str>,
    all: bool,
) -> Result<Vec<SnapshotId>, i32> {
    if all {
        return match bosun_snapshot::list_snapshots(store).await {
            Ok(l) => Ok(l.into_iter().filter(|s| s.complete).map(|s| s.id).collect()),
            Err(e) => {
                eprintln!("bosun: listing snapshots: {e}");
                Err(VERIFY_UNREACHABLE)
            }
        };
    }
    if let Some(id) = id {
        return id.parse().map(|id| vec![id]).map_err(|e| {
            eprintln!("bosun: {e}");
            VERIFY_USAGE
        });
    }
    match bosun_snapshot::latest(store).await {
        Ok(Some(id)) => Ok(vec![id]),
        Ok(None) => {
            eprintln!(
                "bosun: {} has no LATEST: nothing to verify",
                store.describe()
            );
            Err(VERIFY_USAGE)
        }
        Err(e) if e.is_unreachable() => {
            eprintln!("bosun: {e}");
            Err(VERIFY_UNREACHABLE)
        }
        Err(e) => {
            eprintln!("bosun: {e}");
            Err(VERIFY_DAMAGED)
        }
    }
}

async fn verify(
    store: Arc<dyn Store>,
    id: Option<&str>,
    all: bool,
    identities: Option<bosun_snapshot::Identities>,
) -> i32 {
    let ids = match verify_targets(store.as_ref(), id, all).await {
        Ok(ids) => ids,
        Err(code) => return code,
    };
    let host = bosun_core::pid1::hostname();
    let mut worst = 0;
    for id in &ids {
        let mut last = Instant::now();
        let mut on_progress = |p: VerifyProgress<'_>| {
            if last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                eprintln!("{}", progress_line(id, &p));
            }
        };
        let t0 = Instant::now();
        let r = bosun_snapshot::verify_snapshot(
            store.clone(),
            id,
            identities.clone(),
            &host,
            &mut on_progress,
        )
        .await;
        match r {
            Ok(v) if v.ok => {
                let bytes: u64 = v.items.iter().map(|i| i.bytes).sum();
                let depth = match v.depth {
                    Depth::Full => "sizes and sha256s of the stored and the raw bytes",
                    Depth::Ciphertext => {
                        "encrypted, no identity_file: only the stored (cipher) bytes' sizes and sha256s"
                    }
                };
                println!(
                    "ok {id}: {} item(s), {} in {:.1?} ({depth})",
                    v.items.len(),
                    keeper::human_bytes(bytes),
                    t0.elapsed()
                );
            }
            Ok(v) => {
                println!("DAMAGED {id}: {}", v.damage.unwrap_or_default());
                worst = worst.max(VERIFY_DAMAGED);
            }
            Err(e) if e.is_unreachable() => {
                eprintln!("bosun: verifying {id}: {e}");
                return VERIFY_UNREACHABLE;
            }
            Err(e) if e.is_not_found() => {
                eprintln!("bosun: {e} (see: bosun snapshot list)");
                worst = worst.max(VERIFY_USAGE);
            }
            Err(e) => {
                // A manifest that cannot be read or trusted: the snapshot is damaged.
                println!("DAMAGED {id}: {e}");
                worst = worst.max(VERIFY_DAMAGED);
            }
        }
    }
    worst
}

/// `verifying ID: item db, 512.0 MiB of 1.0 GiB (50 %), 120.3 MiB/s, ETA 4 s`.
fn progress_line(id: &SnapshotId, p: &VerifyProgress<'_>) -> String {
    let secs = p.started.elapsed().as_secs_f64().max(0.001);
    let rate = p.done as f64 / secs;
    let pct = (p.done * 100).checked_div(p.total).unwrap_or(100);
    let eta = if rate > 0.0 {
        format!("{:.0} s", p.total.saturating_sub(p.done) as f64 / rate)
    } else {
        "?".into()
    };
    format!(
        "verifying {id}: item {}, {} of {} ({pct} %), {}/s, ETA {eta}",
        p.item,
        keeper::human_bytes(p.done),
        keeper::human_bytes(p.total),
        keeper::human_bytes(rate as u64)
    )
}
