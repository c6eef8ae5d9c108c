//! Human renderings of status shared by the server and `bosun ctl`: the
//! `ctl status` table. The server renders it for `GET /v1/status?format=table`
//! so that `ctl status` prints bytes instead of parsing 200 KB of JSON for a
//! thousand units; `ctl status UNIT…` renders the same table from the JSON.

use std::fmt::Write as _;

use crate::protocol::{signal_name, DaemonStatus, UnitStatus};

/// Cells of a table, all in one string: `ctl status` with 1000 units must
/// not cost 10,000 small allocations.
struct Grid {
    text: String,
    /// (start, end) of each cell in `text`, row by row.
    cells: Vec<(usize, usize)>,
    cols: usize,
}

impl Grid {
    fn cell(&mut self, f: impl FnOnce(&mut String)) {
        let start = self.text.len();
        f(&mut self.text);
        self.cells.push((start, self.text.len()));
    }

    fn text(&mut self, t: &str) {
        self.cell(|s| s.push_str(t));
    }

    /// The grid, columns padded to their widest cell, trailing blanks trimmed.
    fn render(&self, out: &mut String) {
        let width = |c: &str| {
            if c.is_ascii() {
                c.len()
            } else {
                c.chars().count()
            }
        };
        let mut widths = vec![0; self.cols];
        for (i, &(a, b)) in self.cells.iter().enumerate() {
            let w = &mut widths[i % self.cols];
            *w = (*w).max(width(&self.text[a..b]));
        }
        for row in self.cells.chunks(self.cols) {
            for (i, &(a, b)) in row.iter().enumerate() {
                let c = &self.text[a..b];
                out.push_str(c);
                if i + 1 < row.len() {
                    let pad = widths[i] + 2 - width(c);
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            let trimmed = out.trim_end_matches(' ').len();
            out.truncate(trimmed);
            out.push('\n');
        }
    }
}

/// The `ctl status` table, with uptimes and ages as of `now` (Unix ms).
pub fn table(st: &DaemonStatus, now: u64) -> String {
    table_of(st, &|f| st.units.iter().for_each(f), now)
}

/// Calls its argument with each unit's status, in order.
pub type EachUnit<'a> = dyn Fn(&mut dyn FnMut(&UnitStatus)) + 'a;

/// [`table`] of the units that `units` lends one at a time (the server renders
/// its units' status where it is kept: no copy of each), with the header from
/// `st` (whose own `units` are not read).
pub fn table_of(st: &DaemonStatus, units: &EachUnit<'_>, now: u64) -> String {
    // One look first: how many rows, and whether a unit has backups (the
    // backup column appears once some unit has them: snapshots on).
    let (mut count, mut backups) = (0, false);
    units(&mut |u| {
        count += 1;
        backups |= u.last_backup.is_some();
    });
    let mut out = String::with_capacity(256 + count * 120);
    let roles = if st.roles.is_empty() {
        "-".to_string()
    } else {
        st.roles.join(", ")
    };
    let _ = write!(
        out,
        "bosun {} (pid {}) {}, roles {} ({roles}), up {}, {} orphans reaped",
        st.version,
        st.pid,
        phase_name(st),
        st.roles_expr,
        duration(now.saturating_sub(st.started_at_ms) / 1000),
        st.reaped_orphans
    );
    if let Some(snap) = &st.last_snapshot {
        let _ = write!(
            out,
            ", last snapshot {} ({} ago)",
            if snap.ok { "ok" } else { "FAILED" },
            duration(now.saturating_sub(snap.at_ms) / 1000)
        );
    }
    // Under the header line, not inside it.
    if let Some(step) = &st.boot_step {
        let _ = write!(out, "\nbooting: {step}");
    }
    // `booting: restoring postgres 1.2 GiB of 3.4 GiB, …` while the boot waits for
    // it; `backing up: postgres …` otherwise.
    for t in &st.transfers {
        if st.phase == crate::protocol::Phase::Booting {
            let _ = write!(out, "\nbooting: {} {}", t.action, t.line());
        } else {
            let _ = write!(out, "\n{}: {}", t.action, t.line());
        }
    }
    out.push('\n');
    let mut head = vec![
        "UNIT",
        "KIND",
        "ROLES",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "READY",
        "LAST EXIT",
    ];
    if backups {
        head.push("LAST BACKUP");
    }
    head.push("DETAIL");
    let mut grid = Grid {
        text: String::with_capacity(count * 80),
        cells: Vec::with_capacity((count + 1) * head.len()),
        cols: head.len(),
    };
    for h in &head {
        grid.text(h);
    }
    units(&mut |u| row(&mut grid, u, now, backups));
    grid.render(&mut out);
    out
}

fn phase_name(st: &DaemonStatus) -> &'static str {
    match st.phase {
        crate::protocol::Phase::Booting => "booting",
        crate::protocol::Phase::Running => "running",
        crate::protocol::Phase::Stopping => "stopping",
    }
}

fn row(g: &mut Grid, u: &UnitStatus, now: u64, backups: bool) {
    let ago = |s: &mut String, at_ms: u64| {
        write_duration(s, now.saturating_sub(at_ms) / 1000);
        s.push_str(" ago");
    };
    g.text(&u.name);
    g.text(&u.kind);
    g.cell(|s| {
        if u.roles.is_empty() {
            s.push('-');
        }
        for (i, r) in u.roles.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(r);
        }
    });
    g.text(u.state.as_str());
    g.cell(|s| match u.pid {
        Some(p) => {
            let _ = write!(s, "{p}");
        }
        None => s.push('-'),
    });
    g.cell(|s| match u.uptime_secs(now) {
        Some(t) => write_duration(s, t),
        None => s.push('-'),
    });
    g.cell(|s| {
        let _ = write!(s, "{}", u.restarts);
    });
    g.text(match (u.active, u.ready) {
        (false, _) => "-",
        (true, true) => "yes",
        (true, false) => "no",
    });
    g.cell(|s| match u.last_exit {
        Some(e) => {
            match e.signal.and_then(signal_name) {
                Some(name) => s.push_str(&name),
                None => {
                    let _ = write!(s, "{}", e.code);
                }
            }
            s.push_str(" (");
            ago(s, e.at_ms);
            s.push(')');
        }
        None => s.push('-'),
    });
    if backups {
        g.cell(|s| match &u.last_backup {
            Some(b) => {
                s.push_str(if b.ok { "ok (" } else { "FAILED (" });
                ago(s, b.at_ms);
                s.push(')');
            }
            None => s.push('-'),
        });
    }
    g.cell(|s| {
        s.push_str(&u.detail);
        if let Some(sc) = &u.schedule {
            schedule(s, sc, now);
        }
    });
}

/// A scheduled task's timer, after its detail: `next 2026-12-02 06:00 +01:00 (in
/// 16h39m), last run 2h ago exit 0, 1 skipped`.
fn schedule(s: &mut String, sc: &crate::protocol::ScheduleStatus, now: u64) {
    if !s.is_empty() {
        s.push_str("; ");
    }
    match (&sc.next_run_local, sc.next_run_ms) {
        (Some(local), Some(at)) => {
            let _ = write!(s, "next {local} (in ");
            write_duration(s, at.saturating_sub(now).div_ceil(1000));
            s.push(')');
        }
        _ => {
            let _ = write!(s, "schedule {} ({})", sc.expr, sc.timezone);
        }
    }
    if let Some(at) = sc.last_run_ms {
        s.push_str(", last run ");
        write_duration(s, now.saturating_sub(at) / 1000);
        s.push_str(" ago");
        if let Some(code) = sc.last_exit_code {
            let _ = write!(s, " exit {code}");
        }
    }
    if sc.skipped > 0 {
        let _ = write!(s, ", {} skipped", sc.skipped);
    }
    // (A refused `ctl run` already put it in the detail.)
    if let Some(why) = sc.elsewhere.as_ref().filter(|w| !s.contains(w.as_str())) {
        let _ = write!(s, ", not run here: {why}");
    }
}

/// `3d4h`, `2h05m`, `4m12s`, `12s`.
pub fn duration(secs: u64) -> String {
    let mut s = String::new();
    write_duration(&mut s, secs);
    s
}

fn write_duration(out: &mut String, secs: u64) {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let _ = if d > 0 {
        write!(out, "{d}d{h}h")
    } else if h > 0 {
        write!(out, "{h}h{m:02}m")
    } else if m > 0 {
        write!(out, "{m}m{s:02}s")
    } else {
        write!(out, "{s}s")
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(65), "1m05s");
        assert_eq!(duration(3 * 3600 + 60), "3h01m");
        assert_eq!(duration(2 * 86400 + 3 * 3600), "2d3h");
    }

    #[test]
    fn a_scheduled_singleton_held_elsewhere_says_so() {
        let sc = crate::protocol::ScheduleStatus {
            expr: "* * * * *".into(),
            timezone: "UTC".into(),
            next_run_ms: Some(61_000),
            next_run_local: Some("2026-12-01 14:53 +00:00".into()),
            elsewhere: Some("singleton held by app1".into()),
            ..Default::default()
        };
        let mut s = String::new();
        schedule(&mut s, &sc, 10_000);
        assert_eq!(
            s,
            "next 2026-12-01 14:53 +00:00 (in 51s), not run here: singleton held by app1"
        );
        let mut s = String::new();
        schedule(
            &mut s,
            &crate::protocol::ScheduleStatus {
                elsewhere: None,
                ..sc
            },
            10_000,
        );
        assert_eq!(s, "next 2026-12-01 14:53 +00:00 (in 51s)");
    }
}
