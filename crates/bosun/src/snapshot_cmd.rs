//! `bosun snapshot …`: the configured store's snapshots, without a running bosun.
//!
//! Exit codes: 0 done; 1 the store said no (unreachable, damaged, not found); 2 a
//! usage or config error.

use std::path::PathBuf;
use std::sync::Arc;

use bosun_snapshot::{SnapshotKind, Store};
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
    /// Apply the retention policy (keep_last, keep_daily, …) now: what is removed and why.
    Prune {
        /// Only show what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs one `bosun snapshot` command; its exit code.
pub fn main(path: PathBuf, action: SnapshotCmd) -> i32 {
    let Some(config) = crate::load_config(&path, &bosun_config::Env::current()) else {
        return 2;
    };
    let Some(snap) = config.snapshot else {
        eprintln!("bosun: {} has no [snapshot] table", path.display());
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
            SnapshotCmd::Restore { id } => restore(store, &id).await,
            SnapshotCmd::Prune { dry_run } => {
                prune(store, &keeper::retention(&snap), dry_run).await
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
        "{:<40} {:<6} {:<20} {:>10}  {:<8} LATEST",
        "ID", "KIND", "HOST", "SIZE", "COMPLETE"
    );
    for s in list {
        println!(
            "{:<40} {:<6} {:<20} {:>10}  {:<8} {}",
            s.id.to_string(),
            if s.kind == SnapshotKind::Daily {
                "daily"
            } else {
                "stop"
            },
            s.host,
            keeper::human_bytes(s.size),
            if s.complete { "yes" } else { "no" },
            if s.latest { "*" } else { "" }
        );
    }
    0
}

async fn restore(store: Arc<dyn Store>, id: &str) -> i32 {
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
