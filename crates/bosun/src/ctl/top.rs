//! `bosun ctl top`: the active units by CPU, refreshed every `--interval`
//! seconds (2 by default), until `q` or Ctrl-C, or after `-n` refreshes.
//!
//! Each refresh is one `GET /v1/status`; bosun samples `/proc` for it and gives
//! each unit's CPU rate since the previous sample. The first refresh is preceded
//! by a priming request 300 ms earlier, so even `ctl top -n 1` shows rates.

use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use bosun_core::status::now_ms;

use super::http::{Client, Unreachable};
use super::{get_json, out};
use crate::protocol::paths;
use crate::protocol::{DaemonStatus, UnitStatus};

/// How long before the first refresh its rates start: a window bosun accepts
/// for a rate (it keeps the last one for windows under 250 ms).
const PRIME: Duration = Duration::from_millis(300);

/// `ctl top`: exit code 0, 1 when bosun refuses, `Err` when unreachable.
pub fn top(client: &Client, interval: f64, count: Option<u64>) -> Result<i32, Unreachable> {
    let interval = Duration::from_secs_f64(interval.clamp(0.3, 3600.0));
    if let Err((_, e)) = get_json::<DaemonStatus>(client, paths::STATUS)? {
        eprintln!("bosun ctl: {e}");
        return Ok(1);
    }
    let tty = Keys::start();
    let mut wait = PRIME;
    let mut shown = 0u64;
    loop {
        if tty.as_ref().map_or_else(
            || {
                std::thread::sleep(wait);
                false
            },
            |k| k.quit_within(wait),
        ) {
            break;
        }
        let st: DaemonStatus = match get_json(client, paths::STATUS)? {
            Ok(s) => s,
            Err((_, e)) => {
                eprintln!("bosun ctl: {e}");
                return Ok(1);
            }
        };
        let mut text = String::new();
        if tty.is_some() {
            // Home and clear: a screen that is redrawn, not a scroll.
            text.push_str("\x1b[H\x1b[2J");
        }
        text.push_str(&render(&st, now_ms()));
        if tty.is_some() {
            text.push_str("(q to quit)\n");
        }
        if out(text.as_bytes()).is_err() {
            break;
        }
        shown += 1;
        if count.is_some_and(|n| shown >= n) {
            break;
        }
        wait = interval;
    }
    drop(tty);
    Ok(0)
}

/// The table: one row per active unit, busiest first.
pub fn render(st: &DaemonStatus, now: u64) -> String {
    let mut units: Vec<&UnitStatus> = st.units.iter().filter(|u| u.active).collect();
    units.sort_by(|a, b| {
        let cpu = |u: &UnitStatus| u.usage.cpu_percent.unwrap_or(-1.0);
        cpu(b)
            .total_cmp(&cpu(a))
            .then(b.usage.rss_bytes.cmp(&a.usage.rss_bytes))
            .then(a.name.cmp(&b.name))
    });
    let cpu: f64 = units.iter().filter_map(|u| u.usage.cpu_percent).sum();
    let rss: u64 = units.iter().filter_map(|u| u.usage.rss_bytes).sum();
    let running = units.iter().filter(|u| u.pid.is_some()).count();
    let mut t = format!(
        "bosun {} · {} units, {running} running · CPU {cpu:.1}% · RSS {}\n",
        st.version,
        units.len(),
        human(rss)
    );
    let rows: Vec<[String; 8]> = units
        .iter()
        .map(|u| {
            [
                u.name.clone(),
                u.state.to_string(),
                u.pid.map_or("-".into(), |p| p.to_string()),
                u.usage
                    .cpu_percent
                    .map_or("-".into(), |c| format!("{c:.1}")),
                u.usage.rss_bytes.map_or("-".into(), human),
                u.usage.processes.map_or("-".into(), |p| p.to_string()),
                match u.usage.memory_restarts {
                    0 => u.restarts.to_string(),
                    m => format!("{} ({m} memory)", u.restarts),
                },
                u.uptime_secs(now).map_or("-".into(), duration),
            ]
        })
        .collect();
    let head = [
        "UNIT", "STATE", "PID", "CPU%", "RSS", "PROCS", "RESTARTS", "UPTIME",
    ];
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            // Numbers right-aligned, words left.
            let right = (2..=5).contains(&i);
            let pad = widths[i].saturating_sub(c.chars().count());
            if right {
                l.extend(std::iter::repeat_n(' ', pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                l.extend(std::iter::repeat_n(' ', pad));
            }
            l.push_str("  ");
        }
        t.push_str(l.trim_end());
        t.push('\n');
    };
    line(&head);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    t
}

/// `52.3M`, `1.2G`, `800K`.
fn human(b: u64) -> String {
    const K: f64 = 1024.0;
    let f = b as f64;
    if f >= K * K * K {
        format!("{:.1}G", f / (K * K * K))
    } else if f >= K * K {
        format!("{:.1}M", f / (K * K))
    } else {
        format!("{:.0}K", f / K)
    }
}

/// `45s`, `12m`, `3h05m`, `2d04h`.
fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// The terminal in single-key mode while `top` runs (no echo, no line
/// buffering, Ctrl-C read as a key so the terminal is always restored), and a
/// thread that passes the keys on. `None` when stdin is not a terminal.
struct Keys {
    saved: nix::sys::termios::Termios,
    keys: mpsc::Receiver<u8>,
}

impl Keys {
    fn start() -> Option<Keys> {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        let (tx, keys) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("keys".into())
            .spawn(move || {
                let mut b = [0u8; 1];
                while let Ok(1) = io::stdin().read(&mut b) {
                    if tx.send(b[0]).is_err() {
                        break;
                    }
                }
            });
        if spawned.is_err() {
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
            return None;
        }
        Some(Keys { saved, keys })
    }

    /// Waits `d`; true when `q`, `Q` or Ctrl-C came meanwhile (or stdin ended).
    fn quit_within(&self, d: Duration) -> bool {
        let until = std::time::Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.keys.recv_timeout(left) {
                Ok(b'q' | b'Q' | 3) => return true,
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left);
                    return false;
                }
            }
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        let _ = tcsetattr(io::stdin(), SetArg::TCSANOW, &self.saved);
        let _ = io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_short() {
        assert_eq!(human(50 * 1024 * 1024), "50.0M");
        assert_eq!(human(3 * 1024 * 1024 * 1024 / 2), "1.5G");
        assert_eq!(human(800 * 1024), "800K");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(duration(2 * 86400 + 4 * 3600), "2d04h");
    }
}
