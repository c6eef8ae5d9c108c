//! The `database` string: libpq's URL (`postgres://u:pw@host:5432/db?sslmode=verify-full&
//! sslrootcert=/ca.pem`) or `key=value` form, split into what tokio-postgres parses
//! and the TLS options it does not know (`sslmode=verify-ca|verify-full`,
//! `sslrootcert`), plus the redaction that keeps the password out of every message.

use std::path::PathBuf;

/// libpq's `sslmode`, all of it (tokio-postgres itself knows only the first three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, without verifying it (libpq's default). `allow`
    /// is read as this.
    Prefer,
    /// TLS or nothing, without verifying the certificate (libpq without a root cert).
    Require,
    /// TLS, certificate chain verified against the root certificates.
    VerifyCa,
    /// TLS, chain and host name verified.
    VerifyFull,
}

/// Where the root certificates for `verify-ca`/`verify-full` come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The system's store (`sslrootcert=system`, or no `sslrootcert`).
    System,
    /// A PEM file.
    File(PathBuf),
}

/// A parsed `database`. Its `Debug` leaves the connection config (and password) out.
#[derive(Clone)]
pub(crate) struct Target {
    pub config: tokio_postgres::Config,
    pub ssl: SslMode,
    pub roots: Roots,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("ssl", &self.ssl)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Replaces the password wherever it appears in `message` (belt and braces: the
    /// driver's own messages do not quote it, but nothing here may).
    pub fn scrub(&self, message: &str) -> String {
        match self.config.get_password() {
            Some(pw) if !pw.is_empty() => {
                let pw = String::from_utf8_lossy(pw);
                message.replace(pw.as_ref(), "***")
            }
            _ => message.to_owned(),
        }
    }
}

/// Parses `database`. Errors say what is wrong without quoting the string.
pub(crate) fn parse(database: &str) -> Result<Target, String> {
    let s = database.trim();
    let (rest, options) = if is_url(s) {
        split_url(s)?
    } else {
        split_keywords(s)?
    };
    let mut ssl = SslMode::Prefer;
    let mut roots = Roots::System;
    let mut sessions_given = false;
    let mut kept = Vec::new();
    for (key, value) in options {
        match key.as_str() {
            "sslmode" => {
                ssl = match value.as_str() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "unknown sslmode {other:?}: use disable, prefer, require, verify-ca or verify-full"
                        ))
                    }
                }
            }
            "sslrootcert" => {
                roots = if value == "system" {
                    Roots::System
                } else {
                    Roots::File(PathBuf::from(value))
                }
            }
            _ => {
                sessions_given |= key == "target_session_attrs";
                kept.push((key, value));
            }
        }
    }
    let mode = match ssl {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
    };
    kept.push(("sslmode".into(), mode.into()));
    let rebuilt = if is_url(s) {
        join_url(&rest, &kept)
    } else {
        join_keywords(&kept)
    };
    let mut config: tokio_postgres::Config = rebuilt
        .parse()
        .map_err(|e: tokio_postgres::Error| format!("does not parse ({e})"))?;
    if config.get_application_name().is_none() {
        config.application_name("bosun-fleet");
    }
    // After a failover, stay off a read-only standby (River #1225): its LISTEN and
    // writes fail, and the peer would look down while a writable primary exists.
    if !sessions_given {
        config.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
    }
    if config.get_hosts().is_empty() {
        return Err("names no host: add one (postgres://user@host:5432/db)".into());
    }
    let target = Target { config, ssl, roots };
    Ok(target)
}

/// `database` with its password (in the user info, or a `password` option) replaced by
/// `***`.
pub(crate) fn redact(database: &str) -> String {
    let s = database.trim();
    if is_url(s) {
        let (head, query) = match s.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (s, None),
        };
        let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
        let mut out = String::from(&head[..scheme_end]);
        let after = &head[scheme_end..];
        match after.rfind('@') {
            Some(at) => {
                let userinfo = &after[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:***")),
                    None => out.push_str(userinfo),
                }
                out.push_str(&after[at..]);
            }
            None => out.push_str(after),
        }
        if let Some(q) = query {
            let pairs: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if decode(k) == "password" => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
        out
    } else {
        match split_keywords(s) {
            Ok((_, pairs)) => {
                let shown: Vec<(String, String)> = pairs
                    .into_iter()
                    .map(|(k, v)| {
                        if k == "password" {
                            (k, "***".into())
                        } else {
                            (k, v)
                        }
                    })
                    .collect();
                join_keywords(&shown)
            }
            // Unparseable: show nothing of it rather than risk the password.
            Err(_) => "(unparseable connection string)".into(),
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

type Options = Vec<(String, String)>;

/// The URL without its query, and the query's options, decoded.
fn split_url(s: &str) -> Result<(String, Options), String> {
    let (head, query) = match s.split_once('?') {
        Some((h, q)) => (h, q),
        None => (s, ""),
    };
    let mut options = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| "has a query option without `=`".to_owned())?;
        options.push((decode(k), decode(v)));
    }
    Ok((head.to_owned(), options))
}

fn join_url(head: &str, options: &Options) -> String {
    let query: Vec<String> = options
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{head}?{}", query.join("&"))
}

/// libpq's `key = value` pairs; values may be single-quoted with `\'` and `\\`.
fn split_keywords(s: &str) -> Result<(String, Options), String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("option {key:?} has no `=`"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or("ends inside a quoted value")?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("ends inside a quoted value".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
    Ok((String::new(), out))
}

fn join_keywords(options: &Options) -> String {
    let parts: Vec<String> = options
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    parts.join(" ")
}

/// Percent-decoding (invalid escapes are kept as they are).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_verify_full_and_root_cert() {
        let t = parse("postgres://bosun:pw@db.example:6432/fleet?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&connect_timeout=3").unwrap();
        assert_eq!(t.ssl, SslMode::VerifyFull);
        assert_eq!(t.roots, Roots::File("/etc/ca x.pem".into()));
        assert_eq!(t.config.get_ports(), &[6432]);
        assert_eq!(t.config.get_dbname(), Some("fleet"));
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        assert_eq!(t.config.get_application_name(), Some("bosun-fleet"));
    }

    #[test]
    fn keyword_form() {
        let t =
            parse("host=/run/postgresql port=5433 user=postgres password='it''s' sslmode=disable")
                .unwrap_err();
        assert!(t.contains("has no"), "{t}");
        let t =
            parse(r"host=127.0.0.1 port=5433 user=postgres password='it\'s me' sslmode=verify-ca")
                .unwrap();
        assert_eq!(t.ssl, SslMode::VerifyCa);
        assert_eq!(t.roots, Roots::System);
        assert_eq!(t.config.get_password(), Some(&b"it's me"[..]));
        assert_eq!(t.scrub("auth failed for it's me"), "auth failed for ***");
    }

    #[test]
    fn default_is_prefer_and_bad_modes_are_named() {
        assert_eq!(parse("postgres://h/db").unwrap().ssl, SslMode::Prefer);
        let e = parse("postgres://h/db?sslmode=verify").unwrap_err();
        assert!(e.contains("sslmode") && e.contains("verify-full"), "{e}");
        assert!(parse("postgres://h/db?bogus=1")
            .unwrap_err()
            .contains("does not parse"));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("postgres://u:p%40ss@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://u@h/db?password=x&a=b"),
            "postgresql://u@h/db?password=***&a=b"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact("host=h password='se cret' user=u"),
            "host='h' password='***' user='u'"
        );
        assert!(!redact("host=h password='unterminated").contains("unterminated"));
    }
}
