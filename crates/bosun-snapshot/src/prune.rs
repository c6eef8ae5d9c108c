//! Retention arithmetic as pure functions: which snapshots of a store a policy keeps,
//! and why. [`crate::prune`] applies a [`PrunePlan`] to a store.
//!
//! The rules, per series:
//! - regular (`snapshots/`): the newest `keep_last` complete snapshots;
//! - daily (`daily/`): grandfather-father-son with restic's `--keep-daily`,
//!   `--keep-weekly`, `--keep-monthly` semantics, by the UTC date in the name (never
//!   by mtime): walking from the newest snapshot to the oldest, a snapshot is kept by
//!   a bucket (day, ISO week, month) when it is the first (newest) one seen in a new
//!   period of that bucket while the bucket still has count left; each kept period
//!   uses up one count. So `keep_daily = 14` keeps the newest snapshot of each of the
//!   14 newest days that *have* a snapshot (a container that was off for a month still
//!   has its last 14 dailies); all three 0: the daily series is not pruned;
//! - always kept: the snapshot `LATEST` names, the newest complete one of each series,
//!   any the caller protects (a restore reads it), and incomplete snapshots newer than
//!   the newest complete one (being written now) or younger than `min_age`;
//! - removed: every other complete snapshot, and incomplete ones (what a stop killed
//!   half-way left) older than the newest complete snapshot of their series.

use std::time::{Duration, SystemTime};

use crate::id::{SnapshotId, SnapshotKind};
use crate::retention::SnapshotInfo;
use crate::time;

/// How many snapshots of each series are kept (`[snapshot] keep_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Regular series: the newest N complete snapshots (default 7).
    pub keep_last: u32,
    /// Daily series: the newest snapshot of each of the N newest days (default 14).
    pub keep_daily: u32,
    /// Daily series: the newest snapshot of each of the N newest ISO weeks (default 0).
    pub keep_weekly: u32,
    /// Daily series: the newest snapshot of each of the N newest months (default 0).
    pub keep_monthly: u32,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            keep_last: 7,
            keep_daily: 14,
            keep_weekly: 0,
            keep_monthly: 0,
        }
    }
}

impl Retention {
    /// True when the daily series is kept whole (all its counts are 0).
    pub fn daily_off(&self) -> bool {
        self.keep_daily == 0 && self.keep_weekly == 0 && self.keep_monthly == 0
    }

    /// One line per series, for `bosun check` and logs.
    pub fn describe(&self) -> Vec<String> {
        let mut daily = Vec::new();
        for (n, what) in [
            (self.keep_daily, "day"),
            (self.keep_weekly, "ISO week"),
            (self.keep_monthly, "month"),
        ] {
            if n > 0 {
                daily.push(format!("the newest of each of the {n} newest {what}s"));
            }
        }
        vec![
            format!(
                "regular series (snapshots/): the newest {} complete snapshot(s) and LATEST",
                self.keep_last
            ),
            if daily.is_empty() {
                "daily series (daily/): not pruned (keep_daily = keep_weekly = keep_monthly = 0)"
                    .to_string()
            } else {
                format!(
                    "daily series (daily/): {}, by the UTC date in the name",
                    daily.join("; ")
                )
            },
            "incomplete snapshots older than the newest complete one of their series (and over an hour old) are removed"
                .to_string(),
        ]
    }
}

/// What a policy does with a store's snapshots, each with its reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Kept, oldest first, with why.
    pub keep: Vec<(SnapshotId, String)>,
    /// To be removed, oldest first, with why.
    pub remove: Vec<(SnapshotId, String)>,
}

/// A bucket of the grandfather-father-son walk: its count, how a snapshot's period is
/// named, and the period last counted.
struct Bucket {
    left: u32,
    period: fn(&SnapshotId) -> String,
    last: Option<String>,
}

fn each(id: &SnapshotId) -> String {
    id.to_string()
}

fn day(id: &SnapshotId) -> String {
    let (y, m, d) = time::civil_from_days(id.day());
    format!("daily {y:04}-{m:02}-{d:02}")
}

fn week(id: &SnapshotId) -> String {
    let (y, w) = iso_week(id.day());
    format!("weekly {y:04}-W{w:02}")
}

fn month(id: &SnapshotId) -> String {
    let (y, m, _) = time::civil_from_days(id.day());
    format!("monthly {y:04}-{m:02}")
}

/// ISO 8601 (year, week) of a day (days since 1970-01-01): weeks start on Monday, and
/// week 1 is the one holding the year's first Thursday.
pub(crate) fn iso_week(days: i64) -> (i64, u32) {
    // 1970-01-01 was a Thursday: Monday = 0.
    let weekday = (days + 3).rem_euclid(7);
    let thursday = days - weekday + 3;
    let (year, _, _) = time::civil_from_days(thursday);
    let jan1 = time::days_from_civil(year, 1, 1);
    (year, ((thursday - jan1) / 7 + 1) as u32)
}

/// The plan for `all` (every snapshot of the store, both series, as
/// [`crate::list_snapshots`] gives them) under `policy` at `now`. `protect`: snapshots
/// that must stay whatever the policy says (one a restore reads). Pure.
pub fn plan_prune(
    all: &[SnapshotInfo],
    policy: &Retention,
    protect: &[SnapshotId],
    now: SystemTime,
    min_age: Duration,
) -> PrunePlan {
    let cutoff = time::unix_secs(now) - min_age.as_secs() as i64;
    let mut plan = PrunePlan::default();
    for kind in [SnapshotKind::Regular, SnapshotKind::Daily] {
        let mut series: Vec<&SnapshotInfo> = all.iter().filter(|s| s.kind == kind).collect();
        // Newest first, the order of the walk.
        series.sort_by(|a, b| b.id.cmp(&a.id));
        let newest_complete = series.iter().find(|s| s.complete).map(|s| s.id.clone());
        let mut buckets = buckets(kind, policy);
        let kept_whole = kind == SnapshotKind::Daily && policy.daily_off();
        let mut n_last = 0u32;
        for s in series {
            let mut why: Vec<String> = Vec::new();
            if s.latest {
                why.push("LATEST".into());
            }
            if protect.contains(&s.id) {
                why.push("being restored".into());
            }
            if s.complete {
                if newest_complete.as_ref() == Some(&s.id) {
                    why.push("newest complete".into());
                }
                if kept_whole {
                    why.push("daily retention off".into());
                }
                count_in_buckets(&mut buckets, &s.id, kind, policy, &mut n_last, &mut why);
            } else if let Some(w) = incomplete_kept(s, newest_complete.as_ref(), cutoff, min_age) {
                why.push(w);
            }
            if why.is_empty() {
                plan.remove
                    .push((s.id.clone(), removal_reason(s, kind, policy)));
            } else {
                plan.keep.push((s.id.clone(), why.join(", ")));
            }
        }
    }
    plan.keep.sort_by(|a, b| a.0.cmp(&b.0));
    plan.remove.sort_by(|a, b| a.0.cmp(&b.0));
    plan
}

/// The buckets of a series under `policy`: `keep_last` for the regular one;
/// `keep_daily`, `keep_weekly`, `keep_monthly` for the daily one.
fn buckets(kind: SnapshotKind, policy: &Retention) -> Vec<Bucket> {
    match kind {
        SnapshotKind::Regular => vec![(policy.keep_last, each as fn(&SnapshotId) -> String)],
        SnapshotKind::Daily => vec![
            (policy.keep_daily, day as fn(&SnapshotId) -> String),
            (policy.keep_weekly, week),
            (policy.keep_monthly, month),
        ],
    }
    .into_iter()
    .map(|(left, period)| Bucket {
        left,
        period,
        last: None,
    })
    .collect()
}

/// Counts the complete snapshot `id` in every bucket with room left whose period
/// it opens (the walk is newest first), adding each reason to `why`: `last N of
/// keep_last` for the regular series (`n_last` counts them), the period's name
/// for the daily one.
fn count_in_buckets(
    buckets: &mut [Bucket],
    id: &SnapshotId,
    kind: SnapshotKind,
    policy: &Retention,
    n_last: &mut u32,
    why: &mut Vec<String>,
) {
    for b in buckets {
        if b.left == 0 {
            continue;
        }
        let p = (b.period)(id);
        if b.last.as_ref() != Some(&p) {
            b.left -= 1;
            if kind == SnapshotKind::Regular {
                *n_last += 1;
                why.push(format!("last {n_last} of {}", policy.keep_last));
            } else {
                why.push(p.clone());
            }
            b.last = Some(p);
        }
    }
}

/// Why the incomplete snapshot `s` stays, if it does: there is no complete one
/// yet, it is newer than the newest complete one, or younger than `min_age`
/// (`cutoff`, in Unix seconds).
fn incomplete_kept(
    s: &SnapshotInfo,
    newest_complete: Option<&SnapshotId>,
    cutoff: i64,
    min_age: Duration,
) -> Option<String> {
    match newest_complete {
        None => Some("incomplete, no complete snapshot yet".into()),
        Some(n) if s.id > *n => {
            Some("incomplete, newer than the newest complete one (being written?)".into())
        }
        Some(_) if time::unix_secs(s.time) > cutoff => {
            Some(format!("incomplete, younger than {}s", min_age.as_secs()))
        }
        Some(_) => None,
    }
}

/// Why `s`, kept for no reason, is removed.
fn removal_reason(s: &SnapshotInfo, kind: SnapshotKind, policy: &Retention) -> String {
    if s.complete {
        match kind {
            SnapshotKind::Regular => format!("beyond keep_last = {}", policy.keep_last),
            SnapshotKind::Daily => "beyond keep_daily/keep_weekly/keep_monthly".into(),
        }
    } else {
        "incomplete, older than the newest complete snapshot".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(y: i64, m: u32, d: u32, h: u32) -> i64 {
        time::days_from_civil(y, m, d) * 86_400 + i64::from(h) * 3600
    }

    fn info(kind: SnapshotKind, secs: i64, complete: bool) -> SnapshotInfo {
        let id = SnapshotId::new(kind, time::from_unix_secs(secs), "h");
        SnapshotInfo {
            time: id.time(),
            host: "h".into(),
            size: 1,
            complete,
            kind,
            latest: false,
            id,
        }
    }

    fn daily(dates: &[(i64, u32, u32, u32)]) -> Vec<SnapshotInfo> {
        dates
            .iter()
            .map(|&(y, m, d, h)| info(SnapshotKind::Daily, at(y, m, d, h), true))
            .collect()
    }

    fn names(v: &[(SnapshotId, String)]) -> Vec<String> {
        v.iter()
            .map(|(id, _)| id.name()[..11].to_string())
            .collect()
    }

    fn policy(last: u32, d: u32, w: u32, m: u32) -> Retention {
        Retention {
            keep_last: last,
            keep_daily: d,
            keep_weekly: w,
            keep_monthly: m,
        }
    }

    fn plan(all: &[SnapshotInfo], p: Retention) -> PrunePlan {
        plan_prune(
            all,
            &p,
            &[],
            time::from_unix_secs(at(2030, 1, 1, 0)),
            Duration::ZERO,
        )
    }

    #[test]
    fn iso_weeks_across_year_boundaries() {
        let w = |y, m, d| iso_week(time::days_from_civil(y, m, d));
        assert_eq!(w(2026, 1, 1), (2026, 1)); // a Thursday
        assert_eq!(w(2025, 12, 29), (2026, 1)); // Monday of 2026-W01
        assert_eq!(w(2025, 12, 28), (2025, 52)); // a Sunday
        assert_eq!(w(2021, 1, 3), (2020, 53)); // 2020 had 53 weeks
        assert_eq!(w(2024, 12, 30), (2025, 1));
        assert_eq!(w(2027, 1, 1), (2026, 53)); // a Friday: still 2026's last week
        assert_eq!(w(1970, 1, 1), (1970, 1));
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_day_with_a_snapshot() {
        // Two on 02-28, one on the leap day, one on 03-01; 2028 is a leap year.
        let all = daily(&[
            (2028, 2, 28, 6),
            (2028, 2, 28, 18),
            (2028, 2, 29, 6),
            (2028, 3, 1, 6),
        ]);
        let p = plan(&all, policy(7, 3, 0, 0));
        assert_eq!(
            names(&p.keep),
            ["20280228T18", "20280229T06", "20280301T06"]
        );
        assert_eq!(names(&p.remove), ["20280228T06"]);
        // A gap of a month counts days that have a snapshot, not calendar days.
        let all = daily(&[(2026, 1, 1, 6), (2026, 1, 2, 6), (2026, 2, 20, 6)]);
        let p = plan(&all, policy(7, 2, 0, 0));
        assert_eq!(names(&p.keep), ["20260102T06", "20260220T06"]);
    }

    #[test]
    fn month_ends_and_year_boundaries() {
        // Dailies from 2025-12-25 to 2026-03-05.
        let start = time::days_from_civil(2025, 12, 25);
        let end = time::days_from_civil(2026, 3, 5);
        let all: Vec<SnapshotInfo> = (start..=end)
            .map(|d| info(SnapshotKind::Daily, d * 86_400 + 6 * 3600, true))
            .collect();
        let p = plan(&all, policy(7, 3, 0, 3));
        // 3 newest days, then the newest of each month: March is already counted by
        // 03-05, then the last days of February and of January.
        assert_eq!(
            names(&p.keep),
            [
                "20260131T06",
                "20260228T06",
                "20260303T06",
                "20260304T06",
                "20260305T06"
            ]
        );
        let p = plan(&all, policy(7, 0, 0, 4));
        assert_eq!(
            names(&p.keep),
            ["20251231T06", "20260131T06", "20260228T06", "20260305T06"]
        );
        // Weekly: 2026-W10 (03-02..03-05), W09 ends Sunday 03-01, W08 ends 02-22.
        let p = plan(&all, policy(7, 0, 3, 0));
        assert_eq!(
            names(&p.keep),
            ["20260222T06", "20260301T06", "20260305T06"]
        );
        // W01 of 2026 starts on 2025-12-29: its newest is 2026-01-04.
        let p = plan(&all[..11], policy(7, 0, 2, 0));
        assert_eq!(names(&p.keep), ["20251228T06", "20260104T06"]);
    }

    #[test]
    fn keep_last_and_latest_in_the_regular_series() {
        let mut all: Vec<SnapshotInfo> = (1..=10)
            .map(|d| info(SnapshotKind::Regular, at(2026, 5, d, 12), true))
            .collect();
        all[1].latest = true; // restored from an old one
        let p = plan(&all, policy(3, 14, 0, 0));
        assert_eq!(
            names(&p.keep),
            ["20260502T12", "20260508T12", "20260509T12", "20260510T12"]
        );
        assert_eq!(p.remove.len(), 6);
        assert!(p.remove[0].1.contains("keep_last = 3"), "{:?}", p.remove);
        // Dailies off: the daily series is left whole.
        let d = daily(&[(2020, 1, 1, 0), (2020, 1, 2, 0)]);
        assert!(plan(&d, policy(1, 0, 0, 0)).remove.is_empty());
    }

    #[test]
    fn incomplete_snapshots() {
        let all = vec![
            info(SnapshotKind::Regular, at(2026, 5, 1, 0), false),
            info(SnapshotKind::Regular, at(2026, 5, 2, 0), true),
            info(SnapshotKind::Regular, at(2026, 5, 3, 0), false),
            info(SnapshotKind::Daily, at(2026, 4, 1, 0), false),
        ];
        let p = plan(&all, policy(7, 14, 0, 0));
        assert_eq!(names(&p.remove), ["20260501T00"]);
        assert!(p.remove[0].1.contains("incomplete"));
        // The daily one has no complete sibling: it stays; so does the one being written.
        assert_eq!(
            names(&p.keep),
            ["20260401T00", "20260502T00", "20260503T00"]
        );
        // Too young to tell from one still being written by a slow writer.
        let now = time::from_unix_secs(at(2026, 5, 1, 0) + 60);
        let p = plan_prune(
            &all,
            &policy(7, 14, 0, 0),
            &[],
            now,
            Duration::from_secs(3600),
        );
        assert!(p.remove.is_empty(), "{p:?}");
        // A protected one stays.
        let p = plan_prune(
            &all[..2],
            &policy(7, 14, 0, 0),
            &[all[0].id.clone()],
            time::from_unix_secs(at(2030, 1, 1, 0)),
            Duration::ZERO,
        );
        assert!(p.remove.is_empty(), "{p:?}");
    }

    proptest! {
        #[test]
        fn latest_is_never_removed_and_counts_hold(
            offsets in proptest::collection::vec((0i64..800 * 86_400, any::<bool>(), any::<bool>()), 1..60),
            latest_pick in any::<prop::sample::Index>(),
            last in 1u32..10, d in 0u32..20, w in 0u32..8, m in 0u32..6,
        ) {
            let base = at(2027, 11, 1, 0);
            let mut all: Vec<SnapshotInfo> = offsets
                .iter()
                .map(|&(o, daily, complete)| {
                    let kind = if daily { SnapshotKind::Daily } else { SnapshotKind::Regular };
                    info(kind, base + o, complete)
                })
                .collect();
            all.sort_by(|a, b| a.id.cmp(&b.id));
            all.dedup_by(|a, b| a.id == b.id);
            let li = latest_pick.index(all.len());
            all[li].latest = true;
            let p = policy(last, d, w, m);
            let out = plan(&all, p);
            prop_assert_eq!(out.keep.len() + out.remove.len(), all.len());
            prop_assert!(out.remove.iter().all(|(id, _)| *id != all[li].id));
            let kept = |kind: SnapshotKind| out.keep.iter().filter(|(id, _)| id.kind() == kind).count();
            let complete = |kind: SnapshotKind| all.iter().filter(|s| s.kind == kind && s.complete).count();
            let incomplete = |kind: SnapshotKind| all.iter().filter(|s| s.kind == kind && !s.complete).count();
            // Never more than the counts allow (plus LATEST, the newest and incomplete ones) ...
            prop_assert!(kept(SnapshotKind::Regular) <= last as usize + 2 + incomplete(SnapshotKind::Regular));
            if !p.daily_off() {
                prop_assert!(kept(SnapshotKind::Daily) <= (d + w + m) as usize + 2 + incomplete(SnapshotKind::Daily));
            }
            // ... and never fewer complete ones than the counts ask for, when there are.
            let kept_complete = out.keep.iter().filter(|(id, _)| {
                id.kind() == SnapshotKind::Regular && all.iter().any(|s| s.id == *id && s.complete)
            }).count();
            prop_assert!(kept_complete >= (last as usize).min(complete(SnapshotKind::Regular)));
            let days: std::collections::BTreeSet<i64> = all.iter()
                .filter(|s| s.kind == SnapshotKind::Daily && s.complete).map(|s| s.id.day()).collect();
            let kept_days: std::collections::BTreeSet<i64> = out.keep.iter()
                .filter(|(id, _)| id.kind() == SnapshotKind::Daily && all.iter().any(|s| s.id == *id && s.complete))
                .map(|(id, _)| id.day()).collect();
            prop_assert!(kept_days.len() >= (d as usize).min(days.len()));
        }
    }
}
