//! `GET /metrics`: Prometheus text exposition format 0.0.4, written by hand
//! (a dozen families do not need a metrics library).
//!
//! Per-unit series cover the units active in this container only: a unit of
//! another role is not "down" here, and alerting on it would be noise.

use std::fmt::Write;

use crate::protocol::{DaemonStatus, Phase, State, UnitStatus};

const STATES: [State; 9] = [
    State::Inactive,
    State::Starting,
    State::Ready,
    State::Stopping,
    State::Stopped,
    State::Exited,
    State::Backoff,
    State::Fatal,
    State::Standby,
];

/// The whole exposition for one scrape.
pub fn render(st: &DaemonStatus) -> String {
    let mut out = String::with_capacity(512 + st.units.len() * 900);
    let units: Vec<&UnitStatus> = st.units.iter().filter(|u| u.active).collect();
    render_units(&mut out, &units);
    render_usage(&mut out, &units);
    render_instances(&mut out, st);
    render_daemon(&mut out, st);
    out
}

/// What the units' process trees use (sampled for this scrape; a unit without a
/// running process has no sample), and the restarts `max_memory` made.
fn render_usage(out: &mut String, units: &[&UnitStatus]) {
    let cpu = (
        "bosun_unit_cpu_seconds_total",
        "counter",
        "CPU time used by the unit's process tree (its current process; starts again at a restart).",
    );
    per_unit(out, units, cpu, |u| u.usage.cpu_seconds);
    let rss = (
        "bosun_unit_memory_rss_bytes",
        "gauge",
        "Resident memory of the unit's process tree, bytes.",
    );
    per_unit(out, units, rss, |u| u.usage.rss_bytes);
    let procs = (
        "bosun_unit_processes",
        "gauge",
        "Processes in the unit's process tree.",
    );
    per_unit(out, units, procs, |u| u.usage.processes);
    let mem = (
        "bosun_unit_memory_restarts_total",
        "counter",
        "Restarts because the unit's process tree grew past max_memory.",
    );
    per_unit(out, units, mem, |u| Some(u.usage.memory_restarts));
}

/// How many instances each service with `instances` runs (after `ctl scale`);
/// the instances' own series carry `unit="worker#2"`.
fn render_instances(out: &mut String, st: &DaemonStatus) {
    if st.instances.is_empty() {
        return;
    }
    let name = "bosun_service_instances";
    family(
        out,
        name,
        "gauge",
        "Instances a service with `instances` runs now.",
    );
    for (service, n) in &st.instances {
        sample(out, name, &[("service", service)], n);
    }
}

/// The fleet's gauges: live peers (this one included; absent when the database
/// cannot be asked) and whether the database is reachable.
pub fn render_fleet(out: &mut String, live_peers: Option<usize>, database_up: bool) {
    if let Some(n) = live_peers {
        family(
            out,
            "bosun_fleet_peers",
            "gauge",
            "Live peers in the fleet, this one included.",
        );
        sample(out, "bosun_fleet_peers", &[], n);
    }
    family(
        out,
        "bosun_fleet_database_up",
        "gauge",
        "1 when this peer reaches the fleet database.",
    );
    sample(out, "bosun_fleet_database_up", &[], database_up as u8);
}

/// One family with one sample per unit that has a value.
fn per_unit<V: std::fmt::Display>(
    out: &mut String,
    units: &[&UnitStatus],
    (name, kind, help): (&str, &str, &str),
    value: impl Fn(&UnitStatus) -> Option<V>,
) {
    family(out, name, kind, help);
    for u in units {
        if let Some(v) = value(u) {
            sample(out, name, &[("unit", &u.name)], v);
        }
    }
}

fn render_units(out: &mut String, units: &[&UnitStatus]) {
    let up = (
        "bosun_unit_up",
        "gauge",
        "1 when the unit has a running process.",
    );
    per_unit(out, units, up, |u| Some(u.pid.is_some() as u8));
    let ready = (
        "bosun_unit_ready",
        "gauge",
        "1 when the unit is ready (service) or done (task).",
    );
    per_unit(out, units, ready, |u| Some(u.ready as u8));
    let restarts = (
        "bosun_unit_restarts_total",
        "counter",
        "Restarts since bosun started.",
    );
    per_unit(out, units, restarts, |u| Some(u.restarts));
    let exit = (
        "bosun_unit_last_exit_code",
        "gauge",
        "Exit code of the unit's last exit (128+n for signal n); absent before the first exit.",
    );
    per_unit(out, units, exit, |u| u.last_exit.map(|e| e.code));
    let holder = (
        "bosun_unit_singleton_holder",
        "gauge",
        "Singleton units: 1 when this container holds its lease (and runs it), 0 elsewhere.",
    );
    per_unit(out, units, holder, |u| {
        u.singleton.then_some(u.lease_term.is_some() as u8)
    });
    render_schedules(out, units);
    let started = (
        "bosun_unit_start_time_seconds",
        "gauge",
        "When the unit's current process started, Unix time; absent when not running.",
    );
    per_unit(out, units, started, |u| {
        u.pid.and(u.started_at_ms).map(Seconds)
    });
    family(
        out,
        "bosun_unit_state",
        "gauge",
        "The unit's state, one-hot over every state.",
    );
    for u in units {
        for s in STATES {
            let v = (u.state == s) as u8;
            sample(
                out,
                "bosun_unit_state",
                &[("unit", &u.name), ("state", s.as_str())],
                v,
            );
        }
    }
}

/// Scheduled tasks' timers (families without samples when there are none).
fn render_schedules(out: &mut String, units: &[&UnitStatus]) {
    let next = (
        "bosun_unit_schedule_next_run_timestamp_seconds",
        "gauge",
        "Scheduled tasks: when the next run is due, Unix time.",
    );
    per_unit(out, units, next, |u| {
        u.schedule.as_ref()?.next_run_ms.map(Seconds)
    });
    let last = (
        "bosun_unit_schedule_last_run_timestamp_seconds",
        "gauge",
        "Scheduled tasks: when the schedule last started a run, Unix time.",
    );
    per_unit(out, units, last, |u| {
        u.schedule.as_ref()?.last_run_ms.map(Seconds)
    });
    let code = (
        "bosun_unit_schedule_last_exit_code",
        "gauge",
        "Scheduled tasks: exit code of the last scheduled run that ended.",
    );
    per_unit(out, units, code, |u| u.schedule.as_ref()?.last_exit_code);
    let skipped = (
        "bosun_unit_schedule_skipped_total",
        "counter",
        "Scheduled tasks: runs skipped because the previous run was still going.",
    );
    per_unit(out, units, skipped, |u| {
        u.schedule.as_ref().map(|s| s.skipped)
    });
}

fn render_daemon(out: &mut String, st: &DaemonStatus) {
    family(out, "bosun_phase", "gauge", "bosun's phase, one-hot.");
    for (p, name) in [
        (Phase::Booting, "booting"),
        (Phase::Running, "running"),
        (Phase::Stopping, "stopping"),
    ] {
        sample(
            out,
            "bosun_phase",
            &[("phase", name)],
            (st.phase == p) as u8,
        );
    }
    let one = |out: &mut String, name: &str, kind: &str, help: &str, v: &dyn std::fmt::Display| {
        family(out, name, kind, help);
        sample(out, name, &[], v);
    };
    one(
        out,
        "bosun_start_time_seconds",
        "gauge",
        "When bosun started, Unix time.",
        &Seconds(st.started_at_ms),
    );
    one(
        out,
        "bosun_reaped_orphans_total",
        "counter",
        "Orphaned processes bosun reaped.",
        &st.reaped_orphans,
    );
    if let Some(rss) = resident_memory_bytes() {
        let help = "bosun's resident memory.";
        one(
            out,
            "bosun_process_resident_memory_bytes",
            "gauge",
            help,
            &rss,
        );
    }
    if let Some(fds) = open_fds() {
        let help = "File descriptors bosun holds open.";
        one(out, "bosun_process_open_fds", "gauge", help, &fds);
    }
    family(
        out,
        "bosun_build_info",
        "gauge",
        "Always 1; the labels say which bosun this is.",
    );
    sample(out, "bosun_build_info", &[("version", &st.version)], 1);
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Unix milliseconds shown as seconds with three decimals, without going
/// through float formatting (a scrape of 1000 units writes 13,000 samples).
struct Seconds(u64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape `\`, `"` and newlines.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Resident set size from /proc/self/statm (pages) times the page size.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * bosun_core::pid1::page_size())
}

/// Entries of /proc/self/fd, less the one the listing itself opens.
fn open_fds() -> Option<usize> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some(n.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ExitInfo, UnitStatus};

    fn unit(name: &str, active: bool) -> UnitStatus {
        UnitStatus {
            name: name.into(),
            kind: "service".into(),
            roles: vec![],
            active,
            state: State::Ready,
            ready: true,
            pid: Some(42),
            started_at_ms: Some(1_700_000_000_500),
            restarts: 3,
            own_restarts: 0,
            last_exit: Some(ExitInfo {
                code: 137,
                signal: Some(9),
                at_ms: 1,
            }),
            detail: String::new(),
            essential: false,
            last_backup: None,
            on_demand: false,
            runs: 1,
            singleton: false,
            schedule: None,
            lease_term: None,
            instance: None,
            usage: Default::default(),
            timeline: Default::default(),
            restart_times_ms: Vec::new(),
        }
    }

    #[test]
    fn renders_units_and_escapes_labels() {
        let st = DaemonStatus {
            version: "0.1.0".into(),
            pid: 1,
            roles_expr: "all".into(),
            roles: vec![],
            phase: Phase::Running,
            started_at_ms: 1_700_000_000_000,
            reaped_orphans: 7,
            units: vec![unit("we\"b", true), unit("other", false)],
            last_snapshot: None,
            boot_step: None,
            instances: [("worker".to_string(), 2)].into(),
            transfers: Vec::new(),
            next_daily_at_ms: None,
        };
        let m = render(&st);
        assert!(m.contains("bosun_unit_up{unit=\"we\\\"b\"} 1\n"), "{m}");
        assert!(m.contains("bosun_unit_restarts_total{unit=\"we\\\"b\"} 3\n"));
        assert!(m.contains("bosun_unit_last_exit_code{unit=\"we\\\"b\"} 137\n"));
        assert!(m.contains("bosun_unit_start_time_seconds{unit=\"we\\\"b\"} 1700000000.500\n"));
        assert!(m.contains("bosun_unit_state{unit=\"we\\\"b\",state=\"ready\"} 1\n"));
        assert!(m.contains("bosun_unit_state{unit=\"we\\\"b\",state=\"fatal\"} 0\n"));
        assert!(m.contains("bosun_reaped_orphans_total 7\n"));
        assert!(m.contains("bosun_build_info{version=\"0.1.0\"} 1\n"));
        assert!(!m.contains("other"), "inactive units are left out");
        assert!(
            m.contains("bosun_service_instances{service=\"worker\"} 2\n"),
            "{m}"
        );
    }
}
