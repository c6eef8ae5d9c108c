//! The validated config rendered back as TOML, secrets redacted (`bosun check`).

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use toml::map::Map;
use toml::Value;

use crate::model::*;
use crate::redact::{is_secret_key, Redactor, MASK};
use crate::value::{format_duration, format_size};

/// A string as it must be written for `parse` to read it back: secrets and
/// credentials redacted, and `$` doubled where it would otherwise start an
/// interpolation.
fn text(red: &Redactor, s: &str) -> Value {
    let s = escape_dollars(&red.redact(s));
    Value::String(crate::instance::unfill(&s).into_owned())
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

/// A table being rendered: keys in the order they are put.
struct Out<'r> {
    red: &'r Redactor,
    m: Map<String, Value>,
}

impl<'r> Out<'r> {
    fn new(red: &'r Redactor) -> Self {
        Out { red, m: Map::new() }
    }

    fn put(&mut self, key: &str, v: Value) {
        self.m.insert(key.into(), v);
    }

    /// Puts `key` only when `cond` holds (`v` is made only then).
    fn put_if(&mut self, cond: bool, key: &str, v: impl FnOnce(&Redactor) -> Value) {
        if cond {
            let v = v(self.red);
            self.put(key, v);
        }
    }

    fn put_some<T>(&mut self, key: &str, x: &Option<T>, v: impl FnOnce(&Redactor, &T) -> Value) {
        if let Some(x) = x {
            let v = v(self.red, x);
            self.put(key, v);
        }
    }
}

/// A unit's table: `run`, `restart` and `stop_timeout` always, the rest only
/// where it differs from the default, so that `bosun check` stays readable.
/// Plain values come out before sub-tables (TOML puts them so), each group in
/// the order written here. (A new unit key that is missing here fails the test
/// `every_unit_key_is_rendered_and_reads_back`.)
fn unit(red: &Redactor, u: &Unit) -> Map<String, Value> {
    let d = Unit::new(u.name.clone(), u.kind, u.run.clone());
    let service = u.kind == UnitKind::Service;
    let mut o = Out::new(red);
    o.put("run", command(red, &u.run));
    o.put_if(!u.roles.is_empty(), "roles", |r| strings(r, &u.roles));
    o.put_if(!u.after.is_empty(), "after", |r| strings(r, &u.after));
    o.put_if(!u.wait_for.is_empty(), "wait_for", |r| {
        Value::Array(u.wait_for.iter().map(|w| wait_for(r, w)).collect())
    });
    o.put_if(!u.wait_for.is_empty(), "wait_for_timeout", |_| {
        dur(u.wait_for_timeout)
    });
    o.put("restart", Value::String(u.restart.as_str().into()));
    o.put_if(u.essential != d.essential, "essential", |_| {
        Value::Boolean(u.essential)
    });
    o.put_if(u.on_demand, "on_demand", |_| Value::Boolean(true));
    o.put_if(u.singleton, "singleton", |_| Value::Boolean(true));
    o.put_some("instances", &u.instances, |_, n| {
        Value::Integer(i64::from(*n))
    });
    o.put_some("schedule", &u.schedule, |_, s| {
        Value::String(s.expr().into())
    });
    o.put_some("timezone", &u.schedule, |_, s| {
        Value::String(s.timezone().into())
    });
    o.put_if(u.stop_signal != d.stop_signal, "stop_signal", |_| {
        Value::String(u.stop_signal.name.into())
    });
    o.put("stop_timeout", dur(u.stop_timeout));
    o.put_if(!service || u.timeout != d.timeout, "timeout", |_| {
        dur(u.timeout)
    });
    let bare = service && u.ready.probe.is_none();
    o.put_if(u.start_secs != d.start_secs || bare, "start_secs", |_| {
        dur(u.start_secs)
    });
    o.put_some("user", &u.user, |r, x| text(r, x));
    o.put_some("group", &u.group, |r, x| text(r, x));
    o.put_some("cwd", &u.cwd, |r, x| path(r, x));
    o.put_some("umask", &u.umask, |_, x| Value::String(format!("{x:03o}")));
    o.put_some("env_file", &u.env_file, |r, x| path(r, x));
    o.put_if(u.output != d.output, "output", |_| {
        Value::String(u.output.as_str().into())
    });
    o.put_if(
        u.restart_dependents != d.restart_dependents,
        "restart_dependents",
        |_| Value::Boolean(u.restart_dependents),
    );
    o.put_some("max_memory", &u.max_memory, |_, n| {
        Value::String(format_size(*n))
    });
    o.put_if(!u.env.is_empty(), "env", |r| env_table(r, &u.env));
    o.put_if(!u.env_files.is_empty(), "env_files", |r| {
        let mut t = Out::new(r);
        for (k, p) in &u.env_files {
            // The path is shown, never the file's content.
            t.put(k, path(r, p));
        }
        Value::Table(t.m)
    });
    o.put_if(u.ready != d.ready, "ready", |r| ready_table(r, &u.ready));
    o.put_if(u.backoff != d.backoff, "backoff", |_| {
        backoff_table(&u.backoff)
    });
    o.put_if(u.start_limit != d.start_limit, "start_limit", |_| {
        start_limit_table(&u.start_limit)
    });
    o.put_some("log_file", &u.log_file, log_file_table);
    o.put_some("health", &u.health, health_table);
    o.put_some("backup", &u.backup, backup_table);
    o.m
}

/// `env`, values under secret-looking keys masked.
fn env_table(red: &Redactor, env: &IndexMap<String, String>) -> Value {
    let mut o = Out::new(red);
    for (k, v) in env {
        let v = if is_secret_key(k) {
            Value::String(MASK.into())
        } else {
            text(red, v)
        };
        o.put(k, v);
    }
    Value::Table(o.m)
}

fn ready_table(red: &Redactor, r: &Ready) -> Value {
    let mut o = Out::new(red);
    if let Some(p) = &r.probe {
        probe(red, &mut o.m, p);
    }
    o.put("timeout", dur(r.timeout));
    o.put("interval", dur(r.interval));
    Value::Table(o.m)
}

fn backoff_table(b: &Backoff) -> Value {
    let mut m = Map::new();
    m.insert("initial".into(), dur(b.initial));
    m.insert("max".into(), dur(b.max));
    m.insert("reset_after".into(), dur(b.reset_after));
    Value::Table(m)
}

fn start_limit_table(s: &StartLimit) -> Value {
    let mut m = Map::new();
    m.insert("burst".into(), Value::Integer(i64::from(s.burst)));
    m.insert("interval".into(), dur(s.interval));
    Value::Table(m)
}

fn log_file_table(red: &Redactor, lf: &LogFile) -> Value {
    let mut o = Out::new(red);
    o.put("path", path(red, &lf.path));
    o.put("max_bytes", Value::String(format_size(lf.max_bytes)));
    o.put("backups", Value::Integer(i64::from(lf.backups)));
    Value::Table(o.m)
}

fn health_table(red: &Redactor, h: &Health) -> Value {
    let mut o = Out::new(red);
    probe(red, &mut o.m, &h.probe);
    o.put("interval", dur(h.interval));
    o.put("timeout", dur(h.timeout));
    o.put("failures", Value::Integer(i64::from(h.failures)));
    Value::Table(o.m)
}

fn backup_table(red: &Redactor, b: &UnitBackup) -> Value {
    let mut o = Out::new(red);
    o.put("dump", command(red, &b.dump));
    o.put_some("load", &b.load, command);
    o.put("timeout", dur(b.timeout));
    Value::Table(o.m)
}

fn fleet(red: &Redactor, f: &FleetConfig) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("database".into(), text(red, &f.database));
    m.insert("name".into(), text(red, &f.name));
    m.insert("url".into(), text(red, &f.url));
    m.insert("lease_ttl".into(), dur(f.lease_ttl));
    m.insert("renew_every".into(), dur(f.renew_every));
    m.insert("schema".into(), text(red, &f.schema));
    m
}

fn hooks(red: &Redactor, h: &HooksConfig) -> Map<String, Value> {
    let mut m = Map::new();
    for (event, cmd) in &h.commands {
        m.insert(format!("on_{event}"), command(red, cmd));
    }
    m.insert("timeout".into(), dur(h.timeout));
    if let Some(w) = &h.webhook {
        let mut t = Map::new();
        t.insert("url".into(), text(red, &w.url));
        t.insert("events".into(), strings(red, &w.events));
        if let Some(p) = &w.token_file {
            t.insert("token_file".into(), path(red, p));
        }
        t.insert("retries".into(), Value::Integer(i64::from(w.retries)));
        t.insert("timeout".into(), dur(w.timeout));
        m.insert("webhook".into(), Value::Table(t));
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
    for (k, v) in [
        ("keep_last", s.keep_last),
        ("keep_daily", s.keep_daily),
        ("keep_weekly", s.keep_weekly),
        ("keep_monthly", s.keep_monthly),
    ] {
        m.insert(k.into(), Value::Integer(i64::from(v)));
    }
    if !s.encrypt_to.is_empty() {
        let to = s.encrypt_to.iter().map(|r| text(red, r)).collect();
        m.insert("encrypt_to".into(), Value::Array(to));
    }
    if let Some(p) = &s.identity_file {
        m.insert("identity_file".into(), path(red, p));
    }
    if s.verify_after_commit {
        m.insert("verify_after_commit".into(), Value::Boolean(true));
    }
    m.insert("writer_stale_after".into(), dur(s.writer_stale_after));
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
        if let Some(f) = &self.fleet {
            let mut piece = Map::new();
            piece.insert("fleet".into(), Value::Table(fleet(red, f)));
            pieces.push(piece);
        }
        if let Some(h) = &self.hooks {
            let mut piece = Map::new();
            piece.insert("hooks".into(), Value::Table(hooks(red, h)));
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

    /// Every unit key, set away from its default, shows in `bosun check` and
    /// reads back as the same unit: a key added to the schema but not to
    /// `unit()` above (or the other way round) fails here.
    #[test]
    fn every_unit_key_is_rendered_and_reads_back() {
        let text = r#"
[task.db]
run = "init-db"
timeout = "5m"
restart = "on-failure"

[task.update]
run = "update"
on_demand = true

[service.worker]
run = "work --port 900${BOSUN_INSTANCE}"
instances = 3

[task.nightly]
run = "nightly"
schedule = "30 2 * * mon-fri"
timezone = "Europe/Berlin"

[service.web]
run = ["prog", "--flag"]
roles = ["web"]
after = ["db"]
wait_for = ["tcp://db:5432"]
wait_for_timeout = "30s"
ready = { http = "http://127.0.0.1:8080/", timeout = "20s", interval = "1s" }
start_secs = "2s"
restart = "on-failure"
backoff = { initial = "1s", max = "10s", reset_after = "2m" }
start_limit = { burst = 3, interval = "30s" }
essential = true
stop_signal = "SIGINT"
stop_timeout = "20s"
user = "app"
group = "app"
cwd = "/srv"
umask = "027"
env = { MODE = "prod" }
env_file = "/etc/app.env"
env_files = { DB_PASSWORD = "/run/secrets/db_password" }
output = "inherit"
log_file = { path = "/var/log/web.log", max_bytes = "1MB", backups = 2 }
health = { tcp = "127.0.0.1:8080", interval = "5s", timeout = "1s", failures = 2 }
restart_dependents = true
max_memory = "512MB"
singleton = true
backup = { dump = "dump", load = "load", timeout = "1m" }

[snapshot]
store = "file:///var/backup"
"#;
        let env = std::collections::HashMap::new();
        let path = Path::new("/etc/bosun/bosun.toml");
        let c = crate::parse(text, path, &env).expect("the test config is valid");
        let out = c.to_redacted_toml();
        let rendered: toml::Table = toml::from_str(&out).expect("rendered TOML");
        let keys_of = |kind: &str, name: &str| -> Vec<String> {
            rendered[kind][name]
                .as_table()
                .expect("a unit table")
                .keys()
                .cloned()
                .collect()
        };
        let (web, db) = (keys_of("service", "web"), keys_of("task", "db"));
        for key in crate::schema::unit_key_names() {
            let shown = if key == "timeout" {
                db.iter().any(|k| k == key)
            } else if key == "on_demand" {
                keys_of("task", "update").iter().any(|k| k == key)
            } else if key == "instances" {
                keys_of("service", "worker").iter().any(|k| k == key)
            } else if key == "schedule" || key == "timezone" {
                keys_of("task", "nightly").iter().any(|k| k == key)
            } else {
                web.iter().any(|k| k == key)
            };
            assert!(
                shown,
                "unit key `{key}` is not rendered (or not set in this test):\n{out}"
            );
        }
        let back = crate::parse(&out, path, &env).expect("the rendered config reads back");
        assert_eq!(back.units, c.units, "{out}");
    }

    /// `[hooks]` shows in `bosun check` and reads back the same.
    #[test]
    fn hooks_are_rendered_and_read_back() {
        let text = r#"
[service.web]
run = "web"

[hooks]
on_fatal = ["/bin/page", "fatal"]
on_boot_failed = "echo boot | logger"
timeout = "3s"
webhook = { url = "http://127.0.0.1:9/hook", events = ["fatal"], token_file = "/run/secrets/t", retries = 2 }
"#;
        let env = std::collections::HashMap::new();
        let c = crate::parse(text, Path::new("/etc/bosun.toml"), &env).expect("valid");
        let out = c.to_redacted_toml();
        assert!(
            out.contains("[hooks]") && out.contains("on_boot_failed"),
            "{out}"
        );
        let back = crate::parse(&out, Path::new("/etc/bosun.toml"), &env)
            .unwrap_or_else(|e| panic!("{e:?}\n{out}"));
        assert_eq!(back.hooks, c.hooks);
        let w = c.hooks.and_then(|h| h.webhook).expect("a webhook");
        assert_eq!((w.retries, w.events), (2, vec!["fatal".to_string()]));
    }

    /// `[fleet]` shows in `bosun check` with its password masked, and reads back.
    #[test]
    fn fleet_is_rendered_without_its_password() {
        let text = r#"
[fleet]
database = "postgres://bosun:s3cretpw@db:5432/app"
name = "web-1"
lease_ttl = "20s"
renew_every = "4s"
schema = "fleet"

[service.cron]
run = "cron"
singleton = true
"#;
        let env = std::collections::HashMap::new();
        let path = Path::new("/etc/bosun/bosun.toml");
        let c = crate::parse(text, path, &env).expect("the test config is valid");
        let f = c.fleet.as_ref().expect("[fleet] is read");
        assert_eq!(f.lease_ttl, Duration::from_secs(20));
        assert_eq!(f.renew_every, Duration::from_secs(4));
        assert!(f.enabled());
        let out = c.to_redacted_toml();
        assert!(!out.contains("s3cretpw"), "{out}");
        assert!(out.contains("[fleet]") && out.contains("web-1"), "{out}");
        let back = crate::parse(&out, path, &env).expect("the rendered config reads back");
        assert_eq!(back.fleet.map(|f| f.schema), Some("fleet".into()));
        assert!(back.units["cron"].singleton);
    }
}
