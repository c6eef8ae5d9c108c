//! The control API's own reply types, shared by the server ([`super`]) and the
//! client (`bosun ctl`), next to the status types that `bosun-core` defines
//! (`DaemonStatus`, `HealthReport`, `LogLine`). One type per answer, used on
//! both sides, so the two can never disagree about a field name.

use serde::{Deserialize, Serialize};

/// Every error answer: `{"error": "..."}` with a 4xx/5xx status. Action
/// answers that failed carry their per-unit results as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, in words meant for the admin.
    pub error: String,
    /// Per-unit results of a start/stop/restart/signal that failed for some unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<UnitResult>,
}

/// A plain success: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReply {
    /// What happened.
    pub message: String,
}

/// The answer of `POST /v1/units/{target}/{start|stop|restart|signal}`: one
/// result per unit the target expanded to (`all`, `role:web`, or one name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReply {
    /// In config order.
    pub results: Vec<UnitResult>,
}

/// What one action did to one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitResult {
    /// The unit.
    pub unit: String,
    /// Whether the action was accepted.
    pub ok: bool,
    /// What happened, or why not.
    pub message: String,
}

/// The body `POST /v1/units/{target}/signal` accepts when `?sig=` is absent:
/// `{"signal": "HUP"}` (a name with or without `SIG`, or a number as a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRequest {
    /// The signal.
    pub signal: String,
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
}
