//! Scalar value syntaxes of `bosun.toml`: durations, sizes, signals, umasks,
//! times of day, `host:port` addresses and store URLs. Each parser takes the
//! (already interpolated) text and returns `None` (or why not) when it does not
//! fit; the readers (`read.rs`) turn that into a located error.

use std::time::Duration;

use crate::Signal;

/// Parses a duration: `"100ms"`, `"30s"`, `"10m"`, `"1h"`, `"2d"`, compound `"1m30s"`,
/// decimals `"1.5s"`, and `"0"`. Whitespace between parts is allowed.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let s = text.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let num_start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let num = &s[num_start..i];
        let unit_start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[unit_start..i];
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        };
        total = total.checked_add(scaled(num, nanos_per)?)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    // Keep far-future values sane: more than ~100 years is surely a typo.
    if secs > 100 * 365 * 86_400 {
        return None;
    }
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `num` (digits with an optional fraction) times `unit`, exactly in integers.
fn scaled(num: &str, unit: u128) -> Option<u128> {
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if int.len() > 20 || frac.len() > 18 {
        return None;
    }
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut v = int_v.checked_mul(unit)?;
    if !frac.is_empty() {
        let f: u128 = frac.parse().ok()?;
        let div = 10u128.checked_pow(frac.len() as u32)?;
        v = v.checked_add(f.checked_mul(unit)? / div)?;
    }
    Some(v)
}

/// Renders a duration the way it would be written in the config (`"1m30s"`, `"100ms"`).
/// `parse_duration(&format_duration(d)) == Some(d)`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let mut out = String::new();
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let nanos = d.subsec_nanos();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    if nanos > 0 {
        if nanos % 1_000_000 == 0 {
            out.push_str(&format!("{}ms", nanos / 1_000_000));
        } else if nanos % 1_000 == 0 {
            out.push_str(&format!("{}us", nanos / 1_000));
        } else {
            out.push_str(&format!("{nanos}ns"));
        }
    }
    out
}

/// Parses a size in bytes: a plain number (`"1048576"`), or a number with a unit,
/// case-insensitive: `B`, `KB`/`K` (1000), `KiB` (1024), `MB`/`M`, `MiB`, `GB`/`G`,
/// `GiB`, `TB`/`T`, `TiB`. Decimals are allowed (`"1.5MB"`).
pub fn parse_size(text: &str) -> Option<u64> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let mult: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "ti" | "tib" => 1 << 40,
        _ => return None,
    };
    u64::try_from(scaled(num, mult)?).ok()
}

/// Renders a size with the largest exact unit (`"50MB"`, `"1MiB"`, `"12345"`).
pub fn format_size(n: u64) -> String {
    if n == 0 {
        return "0".into();
    }
    const UNITS: [(u64, &str); 6] = [
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1_000, "KB"),
    ];
    for (m, u) in UNITS {
        if n % m == 0 {
            return format!("{}{u}", n / m);
        }
    }
    n.to_string()
}

/// Linux signals bosun knows by name, with their numbers.
const SIGNALS: &[(i32, &str)] = &[
    (1, "SIGHUP"),
    (2, "SIGINT"),
    (3, "SIGQUIT"),
    (4, "SIGILL"),
    (5, "SIGTRAP"),
    (6, "SIGABRT"),
    (7, "SIGBUS"),
    (8, "SIGFPE"),
    (9, "SIGKILL"),
    (10, "SIGUSR1"),
    (11, "SIGSEGV"),
    (12, "SIGUSR2"),
    (13, "SIGPIPE"),
    (14, "SIGALRM"),
    (15, "SIGTERM"),
    (16, "SIGSTKFLT"),
    (17, "SIGCHLD"),
    (18, "SIGCONT"),
    (19, "SIGSTOP"),
    (20, "SIGTSTP"),
    (21, "SIGTTIN"),
    (22, "SIGTTOU"),
    (23, "SIGURG"),
    (24, "SIGXCPU"),
    (25, "SIGXFSZ"),
    (26, "SIGVTALRM"),
    (27, "SIGPROF"),
    (28, "SIGWINCH"),
    (29, "SIGIO"),
    (30, "SIGPWR"),
    (31, "SIGSYS"),
];

impl Signal {
    /// SIGHUP (1).
    pub const HUP: Signal = Signal {
        number: 1,
        name: "SIGHUP",
    };
    /// SIGINT (2).
    pub const INT: Signal = Signal {
        number: 2,
        name: "SIGINT",
    };
    /// SIGQUIT (3).
    pub const QUIT: Signal = Signal {
        number: 3,
        name: "SIGQUIT",
    };
    /// SIGKILL (9).
    pub const KILL: Signal = Signal {
        number: 9,
        name: "SIGKILL",
    };
    /// SIGTERM (15), the default `stop_signal`.
    pub const TERM: Signal = Signal {
        number: 15,
        name: "SIGTERM",
    };

    /// The signal with this Linux number (1–31).
    pub fn from_number(n: i32) -> Option<Signal> {
        SIGNALS
            .iter()
            .find(|(num, _)| *num == n)
            .map(|&(number, name)| Signal { number, name })
    }

    /// Parses `"SIGINT"`, `"INT"`, `"sigint"`, `"2"` (also `SIGIOT`, `SIGPOLL`, `SIGCLD` aliases).
    pub fn parse(text: &str) -> Option<Signal> {
        let s = text.trim();
        if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
            return s.parse().ok().and_then(Signal::from_number);
        }
        let up = s.to_ascii_uppercase();
        let bare = up.strip_prefix("SIG").unwrap_or(&up);
        let bare = match bare {
            "IOT" => "ABRT",
            "POLL" => "IO",
            "CLD" => "CHLD",
            b => b,
        };
        SIGNALS
            .iter()
            .find(|(_, name)| &name[3..] == bare)
            .map(|&(number, name)| Signal { number, name })
    }
}

impl Default for Signal {
    fn default() -> Self {
        Signal::TERM
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Parses an octal umask string (`"022"`, `"0o027"`, `"0077"`); at most `0o777`.
pub fn parse_umask(text: &str) -> Option<u32> {
    let s = text.trim();
    let s = s.strip_prefix("0o").unwrap_or(s);
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
        return None;
    }
    u32::from_str_radix(s, 8).ok().filter(|v| *v <= 0o777)
}

/// Parses `"HH:MM"` (24-hour clock, `"06:00"`, `"23:59"`; `"6:00"` is accepted).
pub fn parse_time_of_day(text: &str) -> Option<(u8, u8)> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

/// Whether `s` is `host:port` (`[v6]:port` too) with a port in 1..=65535.
pub(crate) fn is_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.ends_with(']') && inner.len() > 1
    } else {
        !host.is_empty() && !host.contains(':')
    };
    let host_ok = host_ok
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@');
    host_ok
        && !port.is_empty()
        && port.bytes().all(|c| c.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Checks a snapshot store URL: `file:///abs/path` or `s3://bucket[/prefix]`.
/// The error says what is wrong with it.
pub(crate) fn check_store(v: &str) -> Result<(), &'static str> {
    if let Some(p) = v.strip_prefix("file://") {
        if !p.starts_with('/') {
            return Err("a file store needs an absolute path (file:///…, three slashes)");
        }
        if p.trim_matches('/').is_empty() {
            return Err("the file store cannot be the root directory");
        }
        return Ok(());
    }
    if let Some(rest) = v.strip_prefix("s3://") {
        let bucket = rest.split('/').next().unwrap_or("");
        if bucket.is_empty() {
            return Err("no bucket name");
        }
        if !bucket
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        {
            return Err("a bucket name holds only letters, digits, `.`, `-` and `_`");
        }
        if rest.contains('@') || rest.contains("//") {
            return Err("put credentials in the AWS environment, not in the URL");
        }
        return Ok(());
    }
    Err("unknown scheme")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("100ms"), Some(ms(100)));
        assert_eq!(parse_duration("30s"), Some(ms(30_000)));
        assert_eq!(parse_duration("10m"), Some(ms(600_000)));
        assert_eq!(parse_duration("1h"), Some(ms(3_600_000)));
        assert_eq!(parse_duration("1m30s"), Some(ms(90_000)));
        assert_eq!(parse_duration("1m 30s"), Some(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Some(ms(1500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration(" 2d "), Some(ms(2 * 86_400_000)));
        for bad in [
            "",
            "30",
            "30 secs",
            "s",
            "1x",
            "-1s",
            "1..5s",
            ".s",
            "99999999999999999999999h",
            "1e3s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        for d in [
            ms(0),
            ms(100),
            ms(90_000),
            ms(3_723_004),
            Duration::new(5, 7),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
        assert_eq!(format_duration(ms(90_000)), "1m30s");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50MB"), Some(50_000_000));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("512KB"), Some(512_000));
        assert_eq!(parse_size("512 kib"), Some(512 * 1024));
        assert_eq!(parse_size("1234"), Some(1234));
        assert_eq!(parse_size("1.5MB"), Some(1_500_000));
        for bad in ["", "MB", "12 parsecs", "-1", "99999999999TiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        for n in [0, 1, 1000, 1 << 20, 50_000_000, 12345] {
            assert_eq!(parse_size(&format_size(n)), Some(n));
        }
    }

    #[test]
    fn signals() {
        assert_eq!(Signal::parse("SIGINT"), Some(Signal::INT));
        assert_eq!(Signal::parse("INT"), Some(Signal::INT));
        assert_eq!(Signal::parse("sigint"), Some(Signal::INT));
        assert_eq!(Signal::parse("15"), Some(Signal::TERM));
        assert_eq!(Signal::parse("SIGIOT").map(|s| s.number), Some(6));
        assert_eq!(Signal::parse("poll").map(|s| s.number), Some(29));
        assert_eq!(Signal::parse("CLD").map(|s| s.number), Some(17));
        // Every standard signal has a name, and the name parses back to it
        // (`bosun ctl signal` and the API use this same table).
        for n in 1..=31 {
            let s = Signal::from_number(n).expect("a name for every signal 1-31");
            assert_eq!(Signal::parse(s.name), Some(s));
            assert_eq!(Signal::parse(&s.name[3..]), Some(s));
        }
        assert_eq!(Signal::parse("SIGFOO"), None);
        assert_eq!(Signal::parse("0"), None);
        assert_eq!(Signal::parse("64"), None);
        assert_eq!(Signal::parse(""), None);
    }

    #[test]
    fn umask_and_time() {
        assert_eq!(parse_umask("022"), Some(0o22));
        assert_eq!(parse_umask("0o027"), Some(0o27));
        assert_eq!(parse_umask("0077"), Some(0o77));
        assert_eq!(parse_umask("089"), None);
        assert_eq!(parse_umask("1777"), None);
        assert_eq!(parse_time_of_day("06:00"), Some((6, 0)));
        assert_eq!(parse_time_of_day("6:05"), Some((6, 5)));
        for bad in ["24:00", "12:60", "1200", "12:5", "ab:cd", ""] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_port() {
        for ok in ["127.0.0.1:80", "db:5432", "[::1]:8080", "localhost:65535"] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "", "db", ":80", "db:", "db:0", "db:65536", "db:x", "::1:80", "a b:1", "[]:1",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn stores() {
        assert!(check_store("file:///var/lib/bosun/backup").is_ok());
        assert!(check_store("s3://bucket").is_ok());
        assert!(check_store("s3://bucket/pre/fix").is_ok());
        for bad in [
            "file://rel",
            "file:///",
            "s3://",
            "s3:///x",
            "gs://b",
            "/var/backup",
            "s3://a:b@bucket/x",
        ] {
            assert!(check_store(bad).is_err(), "{bad}");
        }
    }
}
