//! What a unit's processes use: CPU time and resident memory of its whole
//! process tree, read from `/proc` only when someone asks (a status request, a
//! scrape, `ctl top`, or the `max_memory` guard of a unit that sets one). Nothing
//! here runs on its own: an idle bosun burns no CPU ticks for it.
//!
//! A unit's tree is its main process, every process that descends from it
//! (through `ppid`), and every process still in its process group (a child that
//! double-forked and was reparented to bosun keeps the group bosun gave the
//! unit). One pass over `/proc` serves every unit of a request.
//!
//! A pass costs tens of microseconds per process in the container (procfs), so
//! it runs on tokio's blocking pool, never on bosun's one runtime thread, and a
//! pass is shared: callers say how old a pass they accept ([`processes`]), so a
//! flood of scrapes or many `max_memory` units cost one pass per window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::status::UnitStatus;

/// One process, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Its pid.
    pub pid: i32,
    /// Its parent's.
    pub ppid: i32,
    /// Its process group.
    pub pgrp: i32,
    /// utime + stime + cutime + cstime: its own CPU and that of the children it
    /// waited for, in clock ticks.
    pub ticks: u64,
    /// Resident set, in pages.
    pub rss_pages: u64,
}

/// A process tree's use, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeUsage {
    /// CPU time so far, in clock ticks.
    pub ticks: u64,
    /// Resident memory, bytes (the sum over the processes, as `ps` adds it up).
    pub rss_bytes: u64,
    /// How many processes.
    pub processes: u32,
}

/// What `ctl status --json`, `/metrics`, the status page and `ctl top` show of a
/// unit's use. Filled by [`Meter::fill`] when asked (every field absent
/// otherwise), except `memory_restarts`, which the unit's runner counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU use of its process tree between the last two samples, percent of one
    /// core (200 = two cores busy). Absent on the first sample of a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// CPU time its process tree used so far, seconds (the current process's
    /// tree; it starts again from 0 when the unit restarts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Resident memory of its process tree, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// Processes in its tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u32>,
    /// Times the `max_memory` guard stopped it for its restart policy to restart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub memory_restarts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Parses one `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself: the fields are read
/// after the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line[..open].trim().parse().ok()?;
    let f: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // f[0] is field 3 (state): field k is f[k - 3].
    let num = |k: usize| -> Option<u64> { f.get(k - 3)?.parse().ok() };
    let int = |k: usize| -> Option<i32> { f.get(k - 3)?.parse().ok() };
    Some(ProcStat {
        pid,
        ppid: int(4)?,
        pgrp: int(5)?,
        ticks: num(14)? + num(15)? + num(16)? + num(17)?,
        rss_pages: num(24)?,
    })
}

/// Every process in `/proc` (those that vanish while it is read are left out).
pub fn scan() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|l| parse_stat(&l))
        .collect()
}

/// The trees of `roots` (main pids, which are also their process groups) in
/// `procs`, with `page` bytes per page. A process counts once per tree.
pub fn trees(procs: &[ProcStat], roots: &[i32], page: u64) -> HashMap<i32, TreeUsage> {
    let mut children: HashMap<i32, Vec<usize>> = HashMap::new();
    let mut groups: HashMap<i32, Vec<usize>> = HashMap::new();
    for (i, p) in procs.iter().enumerate() {
        children.entry(p.ppid).or_default().push(i);
        groups.entry(p.pgrp).or_default().push(i);
    }
    let index: HashMap<i32, usize> = procs.iter().enumerate().map(|(i, p)| (p.pid, i)).collect();
    let mut out = HashMap::with_capacity(roots.len());
    for &root in roots {
        let mut seen = std::collections::HashSet::new();
        let mut todo: Vec<usize> = index.get(&root).copied().into_iter().collect();
        todo.extend(groups.get(&root).into_iter().flatten().copied());
        let mut u = TreeUsage::default();
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            let p = &procs[i];
            u.ticks += p.ticks;
            u.rss_bytes += p.rss_pages * page;
            u.processes += 1;
            todo.extend(children.get(&p.pid).into_iter().flatten().copied());
        }
        if u.processes > 0 {
            out.insert(root, u);
        }
    }
    out
}

/// One pass over `/proc`, and when it was made.
#[derive(Debug, Clone)]
pub struct Processes {
    /// When the pass was made.
    pub at: Instant,
    /// Every process then.
    pub list: Arc<Vec<ProcStat>>,
}

/// The last pass, for callers that accept one as old as it is.
static LAST: Mutex<Option<Processes>> = Mutex::new(None);

/// A pass over `/proc` at most `max_age` old: the last one, or a new one made on
/// the blocking pool.
pub async fn processes(max_age: Duration) -> Processes {
    if let Some(p) = LAST
        .lock()
        .expect("process cache poisoned")
        .as_ref()
        .filter(|p| p.at.elapsed() <= max_age)
    {
        return p.clone();
    }
    let list = tokio::task::spawn_blocking(scan).await.unwrap_or_default();
    let p = Processes {
        at: Instant::now(),
        list: Arc::new(list),
    };
    *LAST.lock().expect("process cache poisoned") = Some(p.clone());
    p
}

/// The tree of `root` in a pass at most `max_age` old.
pub async fn tree_of(root: i32, max_age: Duration) -> Option<TreeUsage> {
    let p = processes(max_age).await;
    trees(&p.list, &[root], crate::pid1::page_size()).remove(&root)
}

/// Clock ticks per second (`_SC_CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Samples closer together than this give no new rate (the last one stands):
/// at 100 ticks a second, a shorter window is mostly rounding. Also how old a
/// pass over `/proc` a request accepts.
const MIN_WINDOW: Duration = Duration::from_millis(250);

/// The previous sample of each unit, so that a request can say how busy the
/// unit was since the one before (a rate needs two samples; bosun takes none on
/// its own).
#[derive(Default)]
pub struct Meter {
    prev: Mutex<HashMap<String, Prev>>,
}

struct Prev {
    pid: i32,
    ticks: u64,
    at: Instant,
    rate: Option<f64>,
}

impl Meter {
    /// Samples every running unit of `units` (a pass over `/proc` at most
    /// 250 ms old) and fills its [`Usage`].
    pub async fn sample(&self, units: &mut [UnitStatus]) {
        if units.iter().all(|u| u.pid.is_none()) {
            self.prev.lock().expect("meter poisoned").clear();
            return;
        }
        let p = processes(MIN_WINDOW).await;
        self.fill(units, &p);
    }

    /// Fills the [`Usage`] of every running unit of `units` from `procs`:
    /// memory and CPU time then, and the CPU rate since the previous sample of
    /// the same process (absent on the first).
    pub fn fill(&self, units: &mut [UnitStatus], procs: &Processes) {
        let roots: Vec<i32> = units.iter().filter_map(|u| u.pid).collect();
        let page = crate::pid1::page_size();
        let hz = clock_ticks();
        let trees = trees(&procs.list, &roots, page);
        let now = procs.at;
        let mut prev = self.prev.lock().expect("meter poisoned");
        let mut next = HashMap::with_capacity(roots.len());
        for u in units.iter_mut() {
            let Some(pid) = u.pid else { continue };
            let Some(t) = trees.get(&pid) else { continue };
            u.usage.cpu_seconds = Some(t.ticks as f64 / hz as f64);
            u.usage.rss_bytes = Some(t.rss_bytes);
            u.usage.processes = Some(t.processes);
            let mut p = Prev {
                pid,
                ticks: t.ticks,
                at: now,
                rate: None,
            };
            if let Some(old) = prev.remove(&u.name).filter(|o| o.pid == pid) {
                let ms = now.saturating_duration_since(old.at).as_millis();
                if ms < MIN_WINDOW.as_millis() {
                    p = old;
                } else {
                    // A child that exited unwaited takes its ticks along: no negative rates.
                    let used = t.ticks.saturating_sub(old.ticks) as f64 / hz as f64;
                    p.rate = Some((used * 100_000.0 / ms as f64 * 10.0).round() / 10.0);
                }
            }
            u.usage.cpu_percent = p.rate;
            next.insert(u.name.clone(), p);
        }
        // Units that stopped or went away are forgotten.
        *prev = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let l = "4242 (we(i)rd name) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 555 1000000 250 18446744073709551615";
        let p = parse_stat(l).expect("parses");
        assert_eq!(
            p,
            ProcStat {
                pid: 4242,
                ppid: 1,
                pgrp: 4242,
                ticks: 13,
                rss_pages: 250
            }
        );
        assert_eq!(parse_stat("12 (x) S 1"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn a_tree_is_descendants_plus_its_group() {
        let p = |pid, ppid, pgrp, ticks, rss_pages| ProcStat {
            pid,
            ppid,
            pgrp,
            ticks,
            rss_pages,
        };
        let procs = [
            p(1, 0, 1, 1000, 100), // bosun
            p(10, 1, 10, 5, 1),    // unit a
            p(11, 10, 10, 5, 1),   // its child
            p(12, 11, 12, 5, 1),   // a grandchild in a group of its own
            p(13, 1, 10, 5, 1),    // reparented to bosun, still in a's group
            p(20, 1, 20, 7, 2),    // unit b
        ];
        let t = trees(&procs, &[10, 20, 99], 4096);
        assert_eq!(
            t[&10],
            TreeUsage {
                ticks: 20,
                rss_bytes: 4 * 4096,
                processes: 4
            }
        );
        assert_eq!(t[&20].processes, 1);
        assert!(!t.contains_key(&99));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn this_process_is_found_in_proc_and_a_pass_is_shared() {
        let me = std::process::id() as i32;
        let t = tree_of(me, Duration::ZERO).await.expect("our own tree");
        assert!(t.rss_bytes > 0 && t.processes >= 1, "{t:?}");
        let a = processes(Duration::from_secs(60)).await;
        let b = processes(Duration::from_secs(60)).await;
        assert!(Arc::ptr_eq(&a.list, &b.list));
    }

    #[test]
    fn the_rate_is_cpu_time_over_the_window_between_samples() {
        let t0 = Instant::now();
        let hz = clock_ticks();
        let at = |ms: u64, ticks: u64| Processes {
            at: t0 + Duration::from_millis(ms),
            list: Arc::new(vec![ProcStat {
                pid: if ms < 1000 { 7 } else { 8 },
                ppid: 1,
                pgrp: if ms < 1000 { 7 } else { 8 },
                ticks,
                rss_pages: 1,
            }]),
        };
        let mut units = [unit_status("u", Some(7))];
        let m = Meter::default();
        m.fill(&mut units, &at(0, 0));
        assert_eq!(units[0].usage.cpu_percent, None);
        // Half a second, hz/4 ticks (a quarter second of CPU): 50 %.
        m.fill(&mut units, &at(500, hz / 4));
        assert_eq!(units[0].usage.cpu_percent, Some(50.0));
        // Too close to the last: the last rate stands.
        m.fill(&mut units, &at(600, hz));
        assert_eq!(units[0].usage.cpu_percent, Some(50.0));
        // A new process of the unit starts over.
        units[0].pid = Some(8);
        m.fill(&mut units, &at(1200, 0));
        assert_eq!(units[0].usage.cpu_percent, None);
    }

    fn unit_status(name: &str, pid: Option<i32>) -> UnitStatus {
        UnitStatus {
            name: name.into(),
            kind: "service".into(),
            roles: vec![],
            active: true,
            state: crate::status::State::Ready,
            ready: true,
            pid,
            started_at_ms: None,
            restarts: 0,
            last_exit: None,
            detail: String::new(),
            essential: false,
            last_backup: None,
            on_demand: false,
            runs: 1,
            singleton: false,
            lease_term: None,
            instance: None,
            usage: Usage::default(),
            own_restarts: 0,
            timeline: Default::default(),
            restart_times_ms: Vec::new(),
            schedule: None,
        }
    }
}
