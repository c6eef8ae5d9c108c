//! The validated config rendered back as TOML, secrets redacted (`bosun check`).

use std::path::Path;
use std::time::Duration;

use toml::map::Map;
use toml::Value;

use crate::model::*;
use crate::redact::{is_secret_key, Redactor, MASK};
use crate::value::{format_duration, format_size};

/// A string as it must be written for `parse` to read it back: secrets and
/// credentials redacted, and `$` doubled where it would otherwise start an
/// interpolation.
fn text(red: &Redactor, s: &str) -> Value {
    Value::String(escape_dollars(&red.redact(s)))
}

fn escape_dollars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && matches!(chars.peek(), Some('{') | Some('$')) {
            out.push('$');
        }
    }
    out
}

fn path(red: &Redactor, p: &Path) -> Value {
    text(red, &p.display().to_string())
}

fn dur(d: Duration) -> Value {
    Value::String(format_duration(d))
}

fn command(red: &Redactor, c: &Command) -> Value {
    match c {
        Command::Argv(v) => Value::Array(v.iter().map(|a| text(red, a)).collect()),
        Command::Shell(s) => text(red, s),
    }
}

fn strings(red: &Redactor, v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| text(red, s)).collect())
}

fn probe(red: &Redactor, m: &mut Map<String, Value>, p: &Probe) {
    let v = match p {
        Probe::Tcp(s) | Probe::Http(s) | Probe::Postgres(s) | Probe::Log(s) => text(red, s),
        Probe::Exec(c) => command(red, c),
        Probe::File(f) => path(red, f),
        Probe::Notify => Value::Boolean(true),
    };
    m.insert(p.kind().into(), v);
}

fn wait_for(red: &Redactor, w: &WaitFor) -> Value {
    match w {
        WaitFor::Tcp(a) => text(red, &format!("tcp://{a}")),
        WaitFor::Http(u) | WaitFor::Postgres(u) => text(red, u),
        WaitFor::File(p) => text(red, &format!("file://{}", p.display())),
    }
}

fn settings(red: &Redactor, s: &Settings) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("roles_env".into(), text(red, &s.roles_env));
    m.insert("roles_default".into(), text(red, &s.roles_default));
    m.insert("stop_budget".into(), dur(s.stop_budget));
    m.insert("control_socket".into(), path(red, &s.control_socket));
    if let Some(g) = &s.control_group {
        m.insert("control_group".into(), text(red, g));
    }
    m.insert("state_dir".into(), path(red, &s.state_dir));
    if let Some(h) = &s.http_listen {
        m.insert("http_listen".into(), text(red, h));
    }
    if let Some(f) = &s.http_token_file {
        m.insert("http_token_file".into(), path(red, f));
    }
    m.insert(
        "log_buffer".into(),
        Value::String(format_size(s.log_buffer)),
    );
    if let Some(f) = &s.log_file {
        m.insert("log_file".into(), path(red, f));
    }
    m.insert("sweep_timeout".into(), dur(s.sweep_timeout));
    m
}

/// A unit's table: `run`, `restart` and `stop_timeout` always, the rest only
/// where it differs from the default, so that `bosun check` stays readable.
fn unit(red: &Redactor, u: &Unit) -> Map<String, Value> {
    let d = Unit::new(u.name.clone(), u.kind, u.run.clone());
    let mut m = Map::new();
    m.insert("run".into(), command(red, &u.run));
    if !u.roles.is_empty() {
        m.insert("roles".into(), strings(red, &u.roles));
    }
    if !u.after.is_empty() {
        m.insert("after".into(), strings(red, &u.after));
    }
    if !u.wait_for.is_empty() {
        m.insert(
            "wait_for".into(),
            Value::Array(u.wait_for.iter().map(|w| wait_for(red, w)).collect()),
        );
        m.insert("wait_for_timeout".into(), dur(u.wait_for_timeout));
    }
    m.insert("restart".into(), Value::String(u.restart.as_str().into()));
    if u.essential != d.essential {
        m.insert("essential".into(), Value::Boolean(u.essential));
    }
    if u.stop_signal != d.stop_signal {
        m.insert(
            "stop_signal".into(),
            Value::String(u.stop_signal.name.into()),
        );
    }
    m.insert("stop_timeout".into(), dur(u.stop_timeout));
    if u.kind == UnitKind::Task || u.timeout != d.timeout {
        m.insert("timeout".into(), dur(u.timeout));
    }
    if u.start_secs != d.start_secs || (u.kind == UnitKind::Service && u.ready.probe.is_none()) {
        m.insert("start_secs".into(), dur(u.start_secs));
    }
    if let Some(x) = &u.user {
        m.insert("user".into(), text(red, x));
    }
    if let Some(x) = &u.group {
        m.insert("group".into(), text(red, x));
    }
    if let Some(x) = &u.cwd {
        m.insert("cwd".into(), path(red, x));
    }
    if let Some(x) = u.umask {
        m.insert("umask".into(), Value::String(format!("{x:03o}")));
    }
    if let Some(x) = &u.env_file {
        m.insert("env_file".into(), path(red, x));
    }
    if u.output != d.output {
        m.insert("output".into(), Value::String(u.output.as_str().into()));
    }
    if u.restart_dependents != d.restart_dependents {
        m.insert(
            "restart_dependents".into(),
            Value::Boolean(u.restart_dependents),
        );
    }
    if !u.env.is_empty() {
        let mut env = Map::new();
        for (k, v) in &u.env {
            let v = if is_secret_key(k) {
                Value::String(MASK.into())
            } else {
                text(red, v)
            };
            env.insert(k.clone(), v);
        }
        m.insert("env".into(), Value::Table(env));
    }
    if u.ready != d.ready {
        let mut r = Map::new();
        if let Some(p) = &u.ready.probe {
            probe(red, &mut r, p);
        }
        r.insert("timeout".into(), dur(u.ready.timeout));
        r.insert("interval".into(), dur(u.ready.interval));
        m.insert("ready".into(), Value::Table(r));
    }
    if u.backoff != d.backoff {
        let mut b = Map::new();
        b.insert("initial".into(), dur(u.backoff.initial));
        b.insert("max".into(), dur(u.backoff.max));
        b.insert("reset_after".into(), dur(u.backoff.reset_after));
        m.insert("backoff".into(), Value::Table(b));
    }
    if u.start_limit != d.start_limit {
        let mut sl = Map::new();
        sl.insert(
            "burst".into(),
            Value::Integer(i64::from(u.start_limit.burst)),
        );
        sl.insert("interval".into(), dur(u.start_limit.interval));
        m.insert("start_limit".into(), Value::Table(sl));
    }
    if let Some(lf) = &u.log_file {
        let mut t = Map::new();
        t.insert("path".into(), path(red, &lf.path));
        t.insert("max_bytes".into(), Value::String(format_size(lf.max_bytes)));
        t.insert("backups".into(), Value::Integer(i64::from(lf.backups)));
        m.insert("log_file".into(), Value::Table(t));
    }
    if let Some(h) = &u.health {
        let mut t = Map::new();
        probe(red, &mut t, &h.probe);
        t.insert("interval".into(), dur(h.interval));
        t.insert("timeout".into(), dur(h.timeout));
        t.insert("failures".into(), Value::Integer(i64::from(h.failures)));
        m.insert("health".into(), Value::Table(t));
    }
    if let Some(bk) = &u.backup {
        let mut t = Map::new();
        t.insert("dump".into(), command(red, &bk.dump));
        if let Some(l) = &bk.load {
            t.insert("load".into(), command(red, l));
        }
        t.insert("timeout".into(), dur(bk.timeout));
        m.insert("backup".into(), Value::Table(t));
    }
    m
}

fn snapshot(red: &Redactor, s: &SnapshotConfig) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("store".into(), text(red, &s.store));
    if let Some(e) = &s.s3_endpoint {
        m.insert("s3_endpoint".into(), text(red, e));
    }
    if s.create_store {
        m.insert("create_store".into(), Value::Boolean(true));
    }
    m.insert("s3_region".into(), text(red, &s.s3_region));
    m.insert("keep_daily".into(), Value::Integer(i64::from(s.keep_daily)));
    if let Some((h, mi)) = s.daily_at {
        m.insert("daily_at".into(), Value::String(format!("{h:02}:{mi:02}")));
    }
    if !s.paths.is_empty() {
        let mut p = Map::new();
        for (k, v) in &s.paths {
            p.insert(k.clone(), path(red, v));
        }
        m.insert("paths".into(), Value::Table(p));
    }
    m
}

impl Config {
    /// The config as bosun understands it (interpolated, relative paths resolved;
    /// unit settings left at their default are omitted), as TOML, for `bosun check`.
    /// Secrets are masked as `"***"`: env values under secret-looking keys
    /// ([`crate::redact::is_secret_key`]), the values of secret-named environment
    /// variables wherever they were interpolated, and credentials in URLs,
    /// conninfo strings and `KEY=value` pairs anywhere ([`Config::redact`]).
    /// Reading it back with [`crate::parse`] gives the same config (secrets aside).
    pub fn to_redacted_toml(&self) -> String {
        let red = &self.secrets;
        // Rendered piece by piece so that units keep their file order across
        // `[service.*]` and `[task.*]` (one map would group them by kind).
        let mut pieces = Vec::new();
        let mut head = Map::new();
        head.insert("bosun".into(), Value::Table(settings(red, &self.bosun)));
        if !self.roles.is_empty() {
            let mut r = Map::new();
            for (a, ms) in &self.roles {
                r.insert(a.clone(), strings(red, ms));
            }
            head.insert("roles".into(), Value::Table(r));
        }
        pieces.push(head);
        for u in self.units.values() {
            let mut named = Map::new();
            named.insert(u.name.clone(), Value::Table(unit(red, u)));
            let mut piece = Map::new();
            piece.insert(u.kind.as_str().into(), Value::Table(named));
            pieces.push(piece);
        }
        if let Some(s) = &self.snapshot {
            let mut piece = Map::new();
            piece.insert("snapshot".into(), Value::Table(snapshot(red, s)));
            pieces.push(piece);
        }
        let mut out = String::new();
        for piece in pieces {
            match toml::to_string(&Value::Table(piece)) {
                Ok(s) => {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(&s);
                }
                Err(e) => out.push_str(&format!("# cannot render this part of the config: {e}\n")),
            }
        }
        out
    }
}

impl Config {
    /// `s` (a command, a URL, a message about this config) with the secrets of the
    /// environment the config was read with, and any credentials, masked.
    pub fn redact(&self, s: &str) -> String {
        self.secrets.redact(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars() {
        let env = std::collections::HashMap::new();
        for s in ["a${B}$$c$d$", "^ready$", "$", "$$$", "x${", "${A:-b}"] {
            let back = crate::interp::expand(&escape_dollars(s), &env).unwrap();
            assert_eq!(back.value, s);
            assert!(back.unset.is_empty());
        }
    }
}
