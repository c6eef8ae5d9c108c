//! One `[service.NAME]` or `[task.NAME]`: its keys ([`KEYS`], one row each) and
//! the small sub-tables (`backoff`, `start_limit`, `log_file`, `backup`, `env`).
//! `ready` and `health` are in `probe.rs`.
//!
//! Adding a unit key takes four places: its field in `model.rs`, its default in
//! `Unit::new` (`defaults.rs`: the compiler asks for it), its row in [`KEYS`]
//! here (the name and the reader: the known-keys list is made from the rows),
//! and its line in `render.rs` `unit()` (for `bosun check`). The render test
//! `every_unit_key_is_rendered_and_reads_back` fails until the key is set in its
//! config and rendered; then the user docs (README.md).

use std::collections::HashSet;
use std::path::PathBuf;

use indexmap::IndexMap;

use super::probe::{health, ready};
use super::{is_name, key_desc, names, path_seg, set, Key, Slot, Tbl, UnitLoc};
use crate::instance::MAX_INSTANCES;
use crate::model::*;
use crate::read::Ctx;
use crate::schedule::{Schedule, ScheduleError};
use crate::tree::{Entry, Node, Val};

/// A unit as it is read: the model value and where its parts are.
struct Draft {
    unit: Unit,
    loc: UnitLoc,
    /// `schedule` and `timezone` as read, with their positions: they become one
    /// [`Schedule`] once both are known ([`schedule`]).
    schedule: Option<(String, usize)>,
    timezone: Option<(String, usize)>,
}

/// The keys of a unit table. Their order is the known-keys list of messages, the
/// tie-break of "did you mean", and the order values are read in (a variable's
/// "not set" warning points at its first use): append new keys, don't reorder.
const KEYS: &[Key<Draft>] = &[
    Key {
        name: "run",
        read: |c, k, d| set(&mut d.unit.run, c.command(k.node, &k.what)),
    },
    Key {
        name: "roles",
        read: roles,
    },
    Key {
        name: "after",
        read: |c, k, d| {
            d.loc.after = c.string_list(k.node, &k.what, "[\"postgres\"]");
            d.unit.after = dedup(d.loc.after.iter().map(|(r, _)| r.clone()));
        },
    },
    Key {
        name: "wait_for",
        read: |c, k, d| d.unit.wait_for = c.wait_for_list(k.node, &k.what),
    },
    Key {
        name: "wait_for_timeout",
        read: |c, k, d| set(&mut d.unit.wait_for_timeout, c.duration(k.node, &k.what)),
    },
    Key {
        name: "ready",
        read: |c, k, d| d.unit.ready = ready(c, k.node, &k.sub),
    },
    Key {
        name: "start_secs",
        read: |c, k, d| set(&mut d.unit.start_secs, c.duration(k.node, &k.what)),
    },
    Key {
        name: "timeout",
        read: |c, k, d| set(&mut d.unit.timeout, c.duration(k.node, &k.what)),
    },
    Key {
        name: "restart",
        read: restart,
    },
    Key {
        name: "backoff",
        read: |c, k, d| backoff(c, k, &mut d.unit.backoff),
    },
    Key {
        name: "start_limit",
        read: |c, k, d| start_limit(c, k, &mut d.unit.start_limit),
    },
    Key {
        name: "essential",
        read: |c, k, d| set(&mut d.unit.essential, c.boolean(k.node, &k.what)),
    },
    Key {
        name: "stop_signal",
        read: |c, k, d| set(&mut d.unit.stop_signal, c.signal(k.node, &k.what)),
    },
    Key {
        name: "stop_timeout",
        read: |c, k, d| set(&mut d.unit.stop_timeout, c.duration(k.node, &k.what)),
    },
    Key {
        name: "user",
        read: |c, k, d| d.unit.user = c.optional(k.node, &k.what, "a user name or numeric id"),
    },
    Key {
        name: "group",
        read: |c, k, d| d.unit.group = c.optional(k.node, &k.what, "a group name or numeric id"),
    },
    Key {
        name: "cwd",
        read: |c, k, d| d.unit.cwd = c.optional_path(k.node, &k.what),
    },
    Key {
        name: "umask",
        read: |c, k, d| d.unit.umask = c.umask(k.node, &k.what),
    },
    Key {
        name: "env",
        read: |c, k, d| d.unit.env = env_table(c, k),
    },
    Key {
        name: "env_file",
        read: |c, k, d| d.unit.env_file = c.optional_path(k.node, &k.what),
    },
    Key {
        name: "output",
        read: output,
    },
    Key {
        name: "log_file",
        read: |c, k, d| d.unit.log_file = log_file(c, k),
    },
    Key {
        name: "health",
        read: |c, k, d| d.unit.health = health(c, k.node, &k.sub),
    },
    Key {
        name: "restart_dependents",
        read: |c, k, d| set(&mut d.unit.restart_dependents, c.boolean(k.node, &k.what)),
    },
    Key {
        name: "backup",
        read: |c, k, d| {
            d.loc.backup = Some(k.node.pos());
            d.unit.backup = backup(c, k);
        },
    },
    Key {
        name: "on_demand",
        read: on_demand,
    },
    Key {
        name: "singleton",
        read: |c, k, d| set(&mut d.unit.singleton, c.boolean(k.node, &k.what)),
    },
    Key {
        name: "instances",
        read: instances,
    },
    Key {
        name: "max_memory",
        read: max_memory,
    },
    Key {
        name: "env_files",
        read: env_files,
    },
    Key {
        name: "schedule",
        read: |c, k, d| {
            let expected = "a cron expression like \"0 6 * * *\" or \"@daily\"";
            d.schedule = c
                .string(k.node, &k.what, expected)
                .map(|v| (v, k.node.pos()));
        },
    },
    Key {
        name: "timezone",
        read: |c, k, d| {
            let expected = "a time zone name like \"Europe/Berlin\"";
            d.timezone = c
                .string(k.node, &k.what, expected)
                .map(|v| (v, k.node.pos()));
        },
    },
];

/// The smallest `max_memory`: below it no process tree runs at all, so the
/// unit would be restarted forever.
const MIN_MAX_MEMORY: u64 = 1 << 20;

/// `max_memory = "512MB"` (services only): a size of at least 1 MiB.
fn max_memory(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    if d.unit.kind == UnitKind::Task {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: only a service can have max_memory (it is checked while the service runs after it is ready; a task has its `timeout`); make it a [service.{}], or leave the key out",
                k.what,
                path_seg(&d.unit.name)
            ),
        );
        return;
    }
    let Some(n) = ctx.size(k.node, &k.what) else {
        return;
    };
    if n < MIN_MAX_MEMORY {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: {n} bytes is less than any process needs (at least \"1MiB\"); \
                 write a limit like \"512MB\", or leave the key out for no limit",
                k.what
            ),
        );
        return;
    }
    d.unit.max_memory = Some(n);
}

/// `schedule` (and its `timezone`): a task run by bosun's own timer. Only a task
/// can have one, `timezone` only with it, and `on_demand` is redundant beside it.
fn schedule(ctx: &mut Ctx, d: &mut Draft) {
    let table = format!("[{}.{}]", d.unit.kind.as_str(), path_seg(&d.unit.name));
    let Some((expr, pos)) = d.schedule.take() else {
        if let Some((_, pos)) = d.timezone {
            ctx.diag.error(pos, format!("`timezone` in {table}: only a scheduled task has a time zone; add schedule = \"0 6 * * *\" or drop timezone"));
        }
        return;
    };
    if d.unit.kind == UnitKind::Service {
        let fix = format!("make it a [task.{}]", path_seg(&d.unit.name));
        ctx.diag.error(pos, format!("`schedule` in {table}: only a task can run on a schedule (a service runs for good); {fix}"));
        return;
    }
    if d.unit.on_demand {
        ctx.diag.error(pos, format!("`schedule` in {table}: a scheduled task runs on its schedule and on `bosun ctl run` already; drop on_demand = true"));
        return;
    }
    let tz = d.timezone.as_ref().map(|(t, _)| t.as_str());
    match Schedule::new(&expr, tz) {
        Ok(s) => d.unit.schedule = Some(s),
        Err(e @ ScheduleError::TimeZone { .. }) => {
            let at = d.timezone.as_ref().map_or(pos, |(_, p)| *p);
            ctx.diag.error(at, format!("`timezone` in {table}: {e}"));
        }
        Err(e) => ctx.diag.error(pos, format!("`schedule` in {table}: {e}")),
    }
}

/// `instances = N`: a service run as N copies (1 ..= [`MAX_INSTANCES`]).
fn instances(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    if d.unit.kind == UnitKind::Task {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: only a service can have instances (a task runs once); make it a [service.{}], or write one task per copy",
                k.what,
                path_seg(&d.unit.name)
            ),
        );
        return;
    }
    let n = match &k.node.val {
        Val::Int(i) if (1..=i64::from(MAX_INSTANCES)).contains(i) => *i as u32,
        _ => {
            ctx.diag.error(
                k.node.pos(),
                format!(
                    "{}: expected an integer from 1 to {MAX_INSTANCES}, found {}",
                    k.what,
                    k.node.found()
                ),
            );
            return;
        }
    };
    d.loc.instances = Some(k.node.pos());
    d.unit.instances = Some(n);
}

/// `on_demand = true`: a task that does not run at boot, only on `bosun ctl run`.
fn on_demand(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let Some(v) = ctx.boolean(k.node, &k.what) else {
        return;
    };
    if v && d.unit.kind == UnitKind::Service {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: only a task can be on demand (a service runs for good); make it a [task.{}]",
                k.what,
                path_seg(&d.unit.name)
            ),
        );
        return;
    }
    d.unit.on_demand = v;
}

/// The keys of a unit table (for tests that check every key is handled).
#[cfg(test)]
pub(crate) fn key_names() -> Vec<&'static str> {
    names(KEYS)
}

/// Reads the unit `e` (`web` in `[service.web]`) of `kind`.
pub(super) fn unit(ctx: &mut Ctx, kind: UnitKind, e: &Entry) -> (Unit, UnitLoc) {
    let (name, node) = (e.key.as_str(), &e.node);
    let mut d = Draft {
        unit: Unit::new(name, kind, Command::Argv(Vec::new())),
        loc: UnitLoc {
            kind,
            pos: e.key_pos(),
            after: Vec::new(),
            roles: Vec::new(),
            backup: None,
            instances: None,
        },
        schedule: None,
        timezone: None,
    };
    let path = format!("{}.{}", kind.as_str(), path_seg(name));
    let example = "{ run = [\"prog\"] }";
    let Some(t) = Tbl::open(
        ctx,
        node,
        &path,
        &names(KEYS),
        &format!("[{path}]"),
        example,
    ) else {
        return (d.unit, d.loc);
    };
    if t.get("run").is_none() {
        ctx.diag.error(node.pos(), format!("missing `run` in [{path}]: expected the command, e.g. run = [\"/usr/bin/prog\", \"--flag\"]"));
    }
    let refused = refuse_other_kind(ctx, &t, kind, name);
    // Known before any value is read: `${BOSUN_INSTANCE}` is kept for each instance.
    ctx.instance_var = kind == UnitKind::Service && t.get("instances").is_some();
    t.read(
        ctx,
        KEYS.iter().filter(|k| !refused.contains(&k.name)),
        &mut d,
    );
    ctx.instance_var = false;
    if d.unit.instances.is_some() {
        refuse_with_instances(ctx, &t, &d, &path);
    }
    schedule(ctx, &mut d);
    (d.unit, d.loc)
}

/// What a service with `instances` cannot have: a `backup` (each copy would
/// dump the same data), `singleton` (one per fleet, not N), one `log_file` for
/// all (each instance rotates its own file).
fn refuse_with_instances(ctx: &mut Ctx, t: &Tbl, d: &Draft, path: &str) {
    if let Some(at) = d.loc.backup {
        ctx.diag.error(at, format!("`backup` in [{path}]: a service with `instances` cannot have a backup (each copy would dump the same data); put the data in a service of its own"));
    }
    if let (true, Some(n)) = (d.unit.singleton, t.get("singleton")) {
        ctx.diag.error(n.pos(), format!("`singleton` in [{path}]: a service with `instances` cannot be a singleton (it runs N copies, a singleton one per fleet)"));
    }
    let shared_log = d.unit.log_file.as_ref().is_some_and(|l| {
        !l.path
            .to_string_lossy()
            .contains(crate::instance::PLACEHOLDER)
    });
    if let (true, Some(n)) = (shared_log, t.get("log_file")) {
        ctx.diag.error(n.pos(), format!("`log_file` in [{path}]: each instance needs a file of its own: put ${{BOSUN_INSTANCE}} in the path, e.g. \"/var/log/{}-${{BOSUN_INSTANCE}}.log\"", d.unit.name));
    }
}

/// The keys of the other kind are errors, and are not read: a task has no
/// `ready`, `health` or `backup`, a service no `timeout`. Returns them.
fn refuse_other_kind(
    ctx: &mut Ctx,
    t: &Tbl,
    kind: UnitKind,
    name: &str,
) -> &'static [&'static str] {
    let refused: &[&str] = match kind {
        UnitKind::Task => &["ready", "health", "backup"],
        UnitKind::Service => &["timeout"],
    };
    for key in refused {
        let Some(n) = t.get(key) else { continue };
        let why = match kind {
            UnitKind::Task => format!("not allowed in a task (a task is done when it exits 0); use a [service.{}] for this", path_seg(name)),
            UnitKind::Service => "`timeout` limits a task's run time; for a service use ready = { timeout = \"60s\" } or stop_timeout".to_string(),
        };
        ctx.diag.error(n.pos(), format!("{}: {why}", t.desc(key)));
    }
    refused
}

fn roles(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    d.loc.roles = ctx.string_list(k.node, &k.what, "[\"web\"]");
    for (r, pos) in &d.loc.roles {
        if !is_name(r) || r == "all" {
            ctx.diag.error(*pos, format!("{}: bad role name {r:?}: use letters, digits, `_`, `.` and `-` (`all` is reserved)", k.what));
        }
    }
    d.unit.roles = dedup(d.loc.roles.iter().map(|(r, _)| r.clone()));
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.filter(|s| seen.insert(s.clone())).collect()
}

fn restart(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let expected = "\"always\", \"on-failure\" or \"never\"";
    let Some(v) = ctx.string(k.node, &k.what, expected) else {
        return;
    };
    let choices: &[Restart] = match d.unit.kind {
        UnitKind::Service => &[Restart::Always, Restart::OnFailure, Restart::Never],
        UnitKind::Task => &[Restart::OnFailure, Restart::Never],
    };
    if d.unit.kind == UnitKind::Task && v == "always" {
        ctx.diag.error(
            k.node.pos(),
            format!("{}: a task cannot use restart = \"always\" (it runs once); use \"on-failure\" or \"never\", or make it a [service.{}]", k.what, path_seg(&d.unit.name)),
        );
        return;
    }
    set(
        &mut d.unit.restart,
        ctx.one_of(k.node, &k.what, &v, choices, Restart::as_str),
    );
}

fn output(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let Some(v) = ctx.string(k.node, &k.what, "\"prefix\", \"inherit\" or \"null\"") else {
        return;
    };
    let choices = [Output::Prefix, Output::Inherit, Output::Null];
    set(
        &mut d.unit.output,
        ctx.one_of(k.node, &k.what, &v, &choices, Output::as_str),
    );
}

fn backoff(ctx: &mut Ctx, k: &Slot, b: &mut Backoff) {
    const KEYS: &[&str] = &["initial", "max", "reset_after"];
    let example = "{ initial = \"100ms\", max = \"30s\" }";
    let Some(t) = Tbl::open(ctx, k.node, &k.sub, KEYS, &k.what, example) else {
        return;
    };
    b.initial = t.duration_or(ctx, "initial", b.initial);
    b.max = t.duration_or(ctx, "max", b.max);
    b.reset_after = t.duration_or(ctx, "reset_after", b.reset_after);
    if b.initial > b.max {
        ctx.diag.error(
            k.node.pos(),
            format!("{}: `initial` is longer than `max`", k.what),
        );
    }
}

fn start_limit(ctx: &mut Ctx, k: &Slot, s: &mut StartLimit) {
    const KEYS: &[&str] = &["burst", "interval"];
    let example = "{ burst = 5, interval = \"60s\" }";
    let Some(t) = Tbl::open(ctx, k.node, &k.sub, KEYS, &k.what, example) else {
        return;
    };
    if let Some(v) = t.get("burst") {
        set(&mut s.burst, ctx.uint(v, &t.desc("burst"), 1));
    }
    s.interval = t.duration_or(ctx, "interval", s.interval);
}

/// `env = { KEY = "value" }`; values under secret-looking names are masked in
/// every message from here on.
fn env_table(ctx: &mut Ctx, k: &Slot) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    let Val::Table(entries) = &k.node.val else {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: expected a table like {{ KEY = \"value\" }}, found {}",
                k.what,
                k.node.found()
            ),
        );
        return out;
    };
    for e in entries {
        if e.key.is_empty() || e.key.contains('=') || e.key.contains('\0') {
            ctx.diag.error(
                e.key_pos(),
                format!("bad environment variable name {:?} in [{}]", e.key, k.sub),
            );
            continue;
        }
        if let Some(v) = env_value(ctx, &e.node, &key_desc(&k.sub, &e.key)) {
            // `env = { DB_PASS = "…" }`: masked everywhere, like a secret variable.
            ctx.diag.add_secret(&e.key, &v);
            if v.contains('\0') {
                let what = key_desc(&k.sub, &e.key);
                ctx.diag.error(
                    e.node.pos(),
                    format!("{what}: a value cannot hold a NUL byte"),
                );
            }
            out.insert(e.key.clone(), v);
        }
    }
    out
}

/// `env_files = { DB_PASSWORD = "/run/secrets/db_password" }`: each variable's
/// value is a file's content, read at each start (`bosun-core` `spawn::unit_env`).
/// Only the paths are read here: a file missing now is a warning, not an error
/// (at build time, or in `bosun check` on a laptop, the secret is not mounted yet).
fn env_files(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let Val::Table(entries) = &k.node.val else {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: expected a table like {{ DB_PASSWORD = \"/run/secrets/db_password\" }}, found {}",
                k.what,
                k.node.found()
            ),
        );
        return;
    };
    for e in entries {
        let what = key_desc(&k.sub, &e.key);
        if e.key.is_empty() || e.key.contains('=') || e.key.contains('\0') {
            ctx.diag.error(
                e.key_pos(),
                format!("bad environment variable name {:?} in [{}]", e.key, k.sub),
            );
            continue;
        }
        if d.unit.env.contains_key(&e.key) {
            ctx.diag.error(
                e.key_pos(),
                format!("{what}: `{}` is also set in `env`; set it in one of them (env_files reads the value from a file)", e.key),
            );
            continue;
        }
        let Some(path) = ctx.path(&e.node, &what) else {
            continue;
        };
        if !ctx.instance_var && std::fs::symlink_metadata(&path).is_err() {
            ctx.diag.warn(
                e.node.pos(),
                format!(
                    "{what}: {} does not exist now; {} will not start unless it exists then",
                    path.display(),
                    path_seg(&d.unit.name)
                ),
            );
        }
        d.unit.env_files.insert(e.key.clone(), path);
    }
}

/// An `env` value: a string, or a number or boolean taken as its text.
fn env_value(ctx: &mut Ctx, node: &Node, what: &str) -> Option<String> {
    match &node.val {
        Val::Str(_) => ctx.string(node, what, "a string"),
        Val::Int(i) => Some(i.to_string()),
        Val::Float(f) => Some(f.to_string()),
        Val::Bool(b) => Some(b.to_string()),
        _ => {
            ctx.diag.error(
                node.pos(),
                format!("{what}: expected a string, found {}", node.found()),
            );
            None
        }
    }
}

/// `log_file = "/path"` or `{ path, max_bytes, backups }`.
fn log_file(ctx: &mut Ctx, k: &Slot) -> Option<LogFile> {
    const KEYS: &[&str] = &["path", "max_bytes", "backups"];
    let mut lf = LogFile::at(PathBuf::new());
    if let Val::Str(_) = k.node.val {
        lf.path = ctx.path(k.node, &k.what)?;
        return Some(lf);
    }
    let example = "{ path = \"/var/log/app.log\", max_bytes = \"50MB\", backups = 5 }";
    let t = Tbl::open(ctx, k.node, &k.sub, KEYS, &k.what, example)?;
    match t.get("path") {
        Some(n) => lf.path = ctx.path(n, &t.desc("path"))?,
        None => {
            ctx.diag.error(
                k.node.pos(),
                format!(
                    "{}: missing `path`, e.g. {{ path = \"/var/log/app.log\" }}",
                    k.what
                ),
            );
            return None;
        }
    }
    if let Some(n) = t.get("max_bytes") {
        lf.max_bytes = ctx.size(n, &t.desc("max_bytes"))?;
        if lf.max_bytes == 0 {
            let what = t.desc("max_bytes");
            ctx.diag
                .error(n.pos(), format!("{what}: must be more than 0"));
        }
    }
    if let Some(n) = t.get("backups") {
        lf.backups = ctx.uint(n, &t.desc("backups"), 0)?;
    }
    Some(lf)
}

/// `[service.NAME.backup]`: the dump (required), the load, the time they may take.
fn backup(ctx: &mut Ctx, k: &Slot) -> Option<UnitBackup> {
    const KEYS: &[&str] = &["dump", "load", "timeout"];
    let path = &k.sub;
    let example = "{ dump = [\"pg_dumpall\"], load = [\"psql\"] }";
    let t = Tbl::open(ctx, k.node, path, KEYS, &format!("[{path}]"), example)?;
    let dump = match t.get("dump") {
        Some(n) => ctx.command(n, &t.desc("dump")),
        None => {
            ctx.diag.error(k.node.pos(), format!("missing `dump` in [{path}]: expected the command that writes the data to stdout"));
            None
        }
    };
    let load = t.get("load").and_then(|n| ctx.command(n, &t.desc("load")));
    let timeout = t.duration_or(ctx, "timeout", UnitBackup::DEFAULT_TIMEOUT);
    Some(UnitBackup {
        dump: dump?,
        load,
        timeout,
    })
}
