//! The API's paths as both sides spell them, their percent-encoding, and
//! signal names on the wire.

/// The status page (HTML shell, no data).
pub const PAGE: &str = "/";
/// `HealthReport`: 200 healthy, 503 not.
pub const HEALTH: &str = "/health";
/// Prometheus text format.
pub const METRICS: &str = "/metrics";
/// `DaemonStatus` (`?format=table`: the `ctl status` table as text).
pub const STATUS: &str = "/v1/status";
/// The `ctl status` table, rendered by bosun.
pub const STATUS_TABLE: &str = "/v1/status?format=table";
/// `GET /v1/status?units=a,b` (and `format=table`): the status of these units
/// only (names, or services with `instances` for all their instances); an unknown
/// name is a 404. Filtered by bosun, which marks the answer with [`UNITS_PICKED`].
pub fn status_of(units: &[String], table: bool) -> String {
    let list: Vec<String> = units.iter().map(|t| percent_encode(t)).collect();
    let format = if table { "format=table&" } else { "" };
    format!("{STATUS}?{format}units={}", list.join(","))
}

/// The header of a status answer that holds only the units `?units=` asked for
/// (a bosun older than the parameter sends them all, without it).
pub const UNITS_PICKED: &str = "x-bosun-units-picked";

/// `POST`: stop bosun, as SIGTERM does.
pub const SHUTDOWN: &str = "/v1/shutdown";
/// `POST`: re-read the config and apply the difference.
pub const RELOAD: &str = "/v1/reload";
/// `GET`: the store's snapshots, a list of `SnapshotEntry`.
pub const SNAPSHOTS: &str = "/v1/snapshots";
/// `POST`: take a snapshot now.
pub const BACKUP: &str = "/v1/backup";

/// `GET`: the fleet, a `FleetStatus`.
pub const FLEET: &str = "/v1/fleet";
/// `POST`: give the fleet a command (`FleetCommandRequest`), answered with a
/// `FleetCommandReply` once every live peer answered or the timeout passed.
pub const FLEET_COMMANDS: &str = "/v1/fleet/commands";
// `GET /v1/fleet/commands/{id}`: a command and its answers so far.

/// `POST /v1/units/{target}/{verb}` for a unit target (a name, an instance
/// `worker#2`, which goes as `worker%232`, `all`, `role:NAME`); `scale` takes
/// a service with `instances` and a `ScaleRequest`.
pub fn unit_action(target: &str, verb: &str) -> String {
    format!("/v1/units/{}/{verb}", percent_encode(target))
}

/// `GET /v1/logs?units=web,worker`: the logs of several targets at once.
pub const LOGS: &str = "/v1/logs";

/// What a logs request asks for besides its units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsQuery {
    /// Only the last `n` lines of the backlog (of all the units together).
    pub n: Option<usize>,
    /// Only lines read this long ago or later: a duration as the config writes
    /// them (`"10m"`).
    pub since: Option<String>,
    /// Keep sending new lines.
    pub follow: bool,
}

/// The path for the logs of `targets` (unit names, services with `instances`,
/// `all`, `role:NAME`): one target is `/v1/units/{target}/logs`, several are
/// `/v1/logs?units=a,b`.
pub fn logs(targets: &[String], q: &LogsQuery) -> String {
    let mut path = match targets {
        [one] => format!("/v1/units/{}/logs", percent_encode(one)),
        _ => {
            let list: Vec<String> = targets.iter().map(|t| percent_encode(t)).collect();
            format!("{LOGS}?units={}", list.join(","))
        }
    };
    let mut sep = if targets.len() == 1 { '?' } else { '&' };
    let mut add = |kv: String| {
        path.push(sep);
        path.push_str(&kv);
        sep = '&';
    };
    if let Some(n) = q.n {
        add(format!("n={n}"));
    }
    if let Some(s) = &q.since {
        add(format!("since={}", percent_encode(s)));
    }
    if q.follow {
        add("follow=1".to_string());
    }
    path
}

/// Parses a signal given as `HUP`, `SIGHUP`, `hup`, `IOT` or `1`: the config's own
/// table ([`bosun_config::Signal::parse`]), so `ctl signal` takes every name
/// `stop_signal` does. Only the standard signals 1..=31: real-time signals have no
/// portable names.
pub fn parse_signal(s: &str) -> Option<i32> {
    bosun_config::Signal::parse(s).map(|s| s.number)
}

/// The name of signal `n` (`"SIGHUP"`), for messages.
pub fn signal_name(n: i32) -> Option<String> {
    bosun_config::Signal::from_number(n).map(|s| s.name.to_string())
}

/// Percent-decodes a path segment or query value (`role%3Aweb` → `role:web`).
/// Invalid escapes are kept as they are; `+` stays `+` (paths, not forms).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a unit name or target for a path segment. Unit names are
/// plain (`[A-Za-z0-9_.-]`), but a target typed by a user may hold anything.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b':' | b'@') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("HUP"), Some(1));
        assert_eq!(parse_signal("sighup"), Some(1));
        assert_eq!(parse_signal("SIGUSR1"), Some(10));
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("IOT"), Some(6));
        assert_eq!(parse_signal("SIGALRM"), Some(14));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("64"), None);
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(signal_name(9).as_deref(), Some("SIGKILL"));
    }

    #[test]
    fn percent_round_trip() {
        assert_eq!(percent_decode("role%3Aweb"), "role:web");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode(&percent_encode("a b/c")), "a b/c");
    }

    #[test]
    fn unit_paths_are_encoded() {
        assert_eq!(
            unit_action("role:web", "restart"),
            "/v1/units/role:web/restart"
        );
        assert_eq!(unit_action("a b", "stop"), "/v1/units/a%20b/stop");
        assert_eq!(
            unit_action("worker#2", "restart"),
            "/v1/units/worker%232/restart"
        );
        assert_eq!(percent_decode("worker%232"), "worker#2");
        let unit_logs = |unit: &str, n, follow| {
            let q = LogsQuery {
                n,
                since: None,
                follow,
            };
            logs(&[unit.to_string()], &q)
        };
        assert_eq!(unit_logs("web", None, false), "/v1/units/web/logs");
        assert_eq!(unit_logs("web", Some(5), false), "/v1/units/web/logs?n=5");
        assert_eq!(unit_logs("web", None, true), "/v1/units/web/logs?follow=1");
        assert_eq!(
            unit_logs("web", Some(5), true),
            "/v1/units/web/logs?n=5&follow=1"
        );
        let q = LogsQuery {
            n: Some(3),
            since: Some("10m".into()),
            follow: true,
        };
        assert_eq!(
            logs(&["web".into(), "worker#2".into(), "role:db".into()], &q),
            "/v1/logs?units=web,worker%232,role:db&n=3&since=10m&follow=1"
        );
        assert_eq!(
            logs(&["all".into()], &q),
            "/v1/units/all/logs?n=3&since=10m&follow=1"
        );
    }
}
