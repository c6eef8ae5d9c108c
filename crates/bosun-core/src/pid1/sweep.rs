//! The last act before bosun exits: whatever is still running in the container
//! (daemons that double-forked out of their unit's process group, leftovers of
//! killed units) gets SIGTERM, a grace period, then SIGKILL. Without this, the
//! kernel SIGKILLs them when PID 1 exits, mid-write.

use std::collections::HashMap;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::time::{sleep, Instant};

/// Live (non-zombie) descendants of this process, from /proc.
pub fn descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut zombies = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().unwrap_or("");
        let Some(ppid) = fields.next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if state == "Z" || state == "X" {
            zombies.push(pid);
        }
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![me];
    while let Some(p) = stack.pop() {
        if let Some(kids) = children.get(&p) {
            for &k in kids {
                stack.push(k);
                if !zombies.contains(&k) {
                    out.push(k);
                }
            }
        }
    }
    out
}

/// TERM every leftover descendant, wait up to `grace`, KILL the rest.
/// Returns how many processes were left when the sweep began.
pub async fn sweep(grace: Duration) -> usize {
    let left = descendants();
    if left.is_empty() {
        return 0;
    }
    tracing::info!("{} leftover processes: sending SIGTERM", left.len());
    signal_all(&left, Signal::SIGTERM);
    let until = Instant::now() + grace;
    loop {
        let now_left = descendants();
        if now_left.is_empty() {
            return left.len();
        }
        if Instant::now() >= until {
            tracing::warn!(
                "{} processes ignored SIGTERM: sending SIGKILL",
                now_left.len()
            );
            signal_all(&now_left, Signal::SIGKILL);
            // Give the reaper a moment so they do not outlive us as zombies.
            let until = Instant::now() + Duration::from_secs(2);
            while !descendants().is_empty() && Instant::now() < until {
                sleep(Duration::from_millis(10)).await;
            }
            return left.len();
        }
        sleep(Duration::from_millis(10)).await;
    }
}

fn signal_all(pids: &[i32], sig: Signal) {
    if super::is_pid1() {
        // Every process in our pid namespace but us.
        let _ = kill(Pid::from_raw(-1), sig);
    } else {
        for &p in pids {
            let _ = kill(Pid::from_raw(p), sig);
        }
    }
}
