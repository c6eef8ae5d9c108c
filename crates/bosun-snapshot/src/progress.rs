//! The transfers under way (an item being restored or backed up), for status
//! readers: `ctl status`, `/health`, the status page. Every [`Progress`] of
//! `stream` registers one [`Live`] entry here while it exists; reading them costs
//! a lock and a few atomics, so a status request never waits for the stream.
//!
//! [`Progress`]: crate::stream

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One item's transfer, as a status reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// `restoring` or `backing up`.
    pub action: &'static str,
    /// The snapshot it belongs to.
    pub snapshot: String,
    /// The item (a unit's name, or a `[snapshot.paths]` name).
    pub item: String,
    /// Bytes done so far (uncompressed).
    pub done: u64,
    /// The item's size when known (a restore knows it from the manifest).
    pub total: Option<u64>,
    /// Milliseconds since the transfer began.
    pub elapsed_ms: u64,
    /// When it began, Unix time in milliseconds.
    pub started_at_ms: u64,
}

#[derive(Debug)]
struct Entry {
    action: &'static str,
    snapshot: String,
    item: String,
    done: AtomicU64,
    /// 0: unknown.
    total: AtomicU64,
    started: Instant,
    started_at_ms: u64,
}

static ACTIVE: Mutex<Vec<Weak<Entry>>> = Mutex::new(Vec::new());

/// A registered transfer; unregistered when dropped.
#[derive(Debug)]
pub(crate) struct Live(Arc<Entry>);

impl Live {
    pub(crate) fn register(action: &'static str, snapshot: &str, item: &str) -> Live {
        let entry = Arc::new(Entry {
            action,
            snapshot: snapshot.to_string(),
            item: item.to_string(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            started: Instant::now(),
            started_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        });
        let mut active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
        active.retain(|w| w.strong_count() > 0);
        active.push(Arc::downgrade(&entry));
        Live(entry)
    }

    pub(crate) fn set_done(&self, bytes: u64) {
        self.0.done.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn set_total(&self, bytes: u64) {
        self.0.total.store(bytes, Ordering::Relaxed);
    }
}

/// Every transfer under way now, oldest first.
pub fn active() -> Vec<Transfer> {
    let active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
    active
        .iter()
        .filter_map(Weak::upgrade)
        .map(|e| Transfer {
            action: e.action,
            snapshot: e.snapshot.clone(),
            item: e.item.clone(),
            done: e.done.load(Ordering::Relaxed),
            total: Some(e.total.load(Ordering::Relaxed)).filter(|&t| t > 0),
            elapsed_ms: e.started.elapsed().as_millis() as u64,
            started_at_ms: e.started_at_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_is_listed_while_it_lives() {
        let live = Live::register("backing up", "s1", "unit-a-progress-test");
        live.set_done(10);
        live.set_total(40);
        let t = active()
            .into_iter()
            .find(|t| t.item == "unit-a-progress-test")
            .expect("listed");
        assert_eq!((t.done, t.total), (10, Some(40)));
        drop(live);
        assert!(!active().iter().any(|t| t.item == "unit-a-progress-test"));
    }
}
