//! The decisions that keep data safe, as pure functions: where the running marker
//! lives, whether to restore, and whether a new snapshot would drop another
//! container's items.

use std::collections::HashSet;

use crate::{Manifest, SnapshotId};

use super::disk::DiskState;

/// The store-side "running" marker of a role set: present from boot to a clean
/// stop, so even a brand-new container (an empty disk) learns that the previous
/// one was killed. `running/sql+redis`; odd characters become `_`.
pub fn running_marker_key(roles: &[String]) -> String {
    let roles: String = roles
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
    format!("running/{}", if roles.is_empty() { "none" } else { &roles })
}

/// What the boot does with the store's `LATEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestorePlan {
    /// The store has no snapshot yet: start with the data on this disk.
    NothingInStore,
    /// This disk already holds `LATEST` (a restarted container): do not restore.
    AlreadyHeld(SnapshotId),
    /// Restore `LATEST` (a new container, or this disk holds another snapshot).
    Restore(SnapshotId),
}

impl RestorePlan {
    /// Restore only when this disk does not already hold `latest`.
    pub fn decide(disk: &DiskState, latest: Option<SnapshotId>) -> RestorePlan {
        match latest {
            None => RestorePlan::NothingInStore,
            Some(id) if disk.snapshot.as_deref() == Some(id.to_string().as_str()) => {
                RestorePlan::AlreadyHeld(id)
            }
            Some(id) => RestorePlan::Restore(id),
        }
    }
}

/// Items of `latest` that this container does not write (`own`): a snapshot from
/// here would lose them (split roles sharing one store prefix).
pub fn foreign_items(latest: &Manifest, own: &HashSet<String>) -> Vec<String> {
    latest
        .items
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| !own.contains(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SnapshotId {
        s.parse().expect("valid id")
    }

    #[test]
    fn marker_keys() {
        assert_eq!(running_marker_key(&[]), "running/none");
        assert_eq!(
            running_marker_key(&["sql".into(), "redis".into()]),
            "running/sql+redis"
        );
        assert_eq!(running_marker_key(&["a b/c".into()]), "running/a_b_c");
    }

    #[test]
    fn restore_only_what_this_disk_does_not_hold() {
        let latest = id("20260101T000000Z-host");
        let empty = DiskState::default();
        let holds = DiskState {
            snapshot: Some(latest.to_string()),
            ..DiskState::default()
        };
        let other = DiskState {
            snapshot: Some("20251231T000000Z-host".into()),
            clean: true,
            ..DiskState::default()
        };
        assert_eq!(
            RestorePlan::decide(&empty, None),
            RestorePlan::NothingInStore
        );
        assert_eq!(
            RestorePlan::decide(&holds, None),
            RestorePlan::NothingInStore
        );
        assert_eq!(
            RestorePlan::decide(&empty, Some(latest.clone())),
            RestorePlan::Restore(latest.clone())
        );
        assert_eq!(
            RestorePlan::decide(&holds, Some(latest.clone())),
            RestorePlan::AlreadyHeld(latest.clone())
        );
        assert_eq!(
            RestorePlan::decide(&other, Some(latest.clone())),
            RestorePlan::Restore(latest)
        );
    }
}
