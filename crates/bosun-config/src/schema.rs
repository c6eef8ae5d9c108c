//! The schema walk: from the spanned TOML tree to the model, one table at a time.
//!
//! Every table is opened with the list of keys it knows, so that an unknown key is
//! reported with its table and the nearest known key; every value is type-checked,
//! interpolated and parsed where it stands, so that its error carries its line and
//! column. Errors are collected (not returned at the first one); the caller fails
//! when there is any. Cross-table checks (unknown `after`, cycles, role aliases)
//! live in `validate.rs` and use the positions recorded here in [`Located`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use crate::error::{did_you_mean, line_col, ConfigError};
use crate::interp::{self, Vars};
use crate::model::*;
use crate::redact::Redactor;
use crate::tree::{Entry, Node, Val};
use crate::value::{parse_duration, parse_size, parse_time_of_day, parse_umask};

/// Collects errors and warnings while walking one file.
///
/// Errors and warnings are stored as written; [`Ctx::finish`] redacts them all
/// (the one place that does, so that no message can forget), and [`Ctx::quote`]
/// quotes a value redacted before cutting it short.
pub(crate) struct Ctx<'a> {
    pub file: String,
    pub text: &'a str,
    pub env: &'a dyn Vars,
    /// Directory relative paths are resolved against (the config file's).
    pub base: PathBuf,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
    /// The secrets of `env`, and of secret-named `env` entries as they are read.
    pub redactor: Redactor,
    warned_vars: HashSet<String>,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &Path, text: &'a str, env: &'a dyn Vars) -> Self {
        Ctx {
            file: file.display().to_string(),
            text,
            env,
            base: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            errors: Vec::new(),
            warnings: Vec::new(),
            redactor: Redactor::from_vars(env),
            warned_vars: HashSet::new(),
        }
    }

    /// A value for a message: redacted, quoted, cut short.
    pub fn quote(&self, s: &str) -> String {
        self.redactor.quote(s)
    }

    /// The end of the walk: a warning for every variable of the environment that is
    /// not valid UTF-8 and that no `${…}` named (those got a located one), then
    /// every message redacted. Returns the errors (sorted by position, duplicates
    /// dropped) and the warnings.
    pub fn finish(mut self) -> (Vec<ConfigError>, Vec<String>, Redactor) {
        for name in self.env.not_unicode_names() {
            if !self.warned_vars.contains(&name) {
                self.warnings.push(crate::env::not_unicode_warning(&name));
            }
        }
        let r = &self.redactor;
        for e in &mut self.errors {
            e.message = r.redact(&e.message);
        }
        for w in &mut self.warnings {
            *w = r.redact(w);
        }
        self.errors.sort_by_key(|e| (e.line == 0, e.line, e.column));
        self.errors.dedup();
        (self.errors, self.warnings, self.redactor)
    }

    /// Records an error at byte offset `pos`.
    pub fn error(&mut self, pos: usize, message: impl Into<String>) {
        let (line, column) = line_col(self.text, pos);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Records an error with no single place (line 0).
    pub fn error_nowhere(&mut self, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: 0,
            column: 0,
            message: message.into(),
        });
    }

    /// Records a warning at byte offset `pos`.
    pub fn warn(&mut self, pos: usize, message: impl AsRef<str>) {
        let (line, column) = line_col(self.text, pos);
        self.warnings.push(format!(
            "{}:{}:{}: {}",
            self.file,
            line,
            column,
            message.as_ref()
        ));
    }

    /// Records a warning with no single place.
    pub fn warn_nowhere(&mut self, message: impl AsRef<str>) {
        self.warnings
            .push(format!("{}: {}", self.file, message.as_ref()));
    }
}

/// Positions (byte offsets) of what cross-table checks need to point at.
#[derive(Debug, Default)]
pub(crate) struct Located {
    /// Per unit name: where it is defined and its `after` / `roles` entries.
    pub units: IndexMap<String, UnitLoc>,
    /// Per `[roles]` alias: where it is defined and its members.
    pub aliases: IndexMap<String, (usize, Vec<(String, usize)>)>,
    /// `[bosun] roles_default`, when written.
    pub roles_default: Option<usize>,
    /// The `[snapshot]` table's paths, by item name.
    pub snapshot_paths: IndexMap<String, usize>,
}

/// Where one unit's parts are.
#[derive(Debug)]
pub(crate) struct UnitLoc {
    pub kind: UnitKind,
    pub pos: usize,
    pub after: Vec<(String, usize)>,
    pub roles: Vec<(String, usize)>,
    pub backup: Option<usize>,
}

/// `[path]` for messages; the top level is "the top level".
fn table_name(path: &str) -> String {
    if path.is_empty() {
        "the top level".into()
    } else {
        format!("[{path}]")
    }
}

/// `` `key` in [path] `` for messages.
fn key_desc(path: &str, key: &str) -> String {
    if path.is_empty() {
        format!("`{key}`")
    } else {
        format!("`{key}` in [{path}]")
    }
}

/// A TOML key as written in a dotted path (quoted when not bare).
pub(crate) fn path_seg(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// Whether `s` matches `[A-Za-z0-9_.-]+`: unit, role and item names.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// An opened table: its entries, its path for messages, its position.
struct Tbl<'n> {
    path: String,
    entries: &'n [Entry],
}

impl<'n> Tbl<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.node)
    }

    fn desc(&self, key: &str) -> String {
        key_desc(&self.path, key)
    }
}

const TOP_KEYS: &[&str] = &["bosun", "roles", "service", "task", "snapshot"];
const BOSUN_KEYS: &[&str] = &[
    "roles_env",
    "roles_default",
    "stop_budget",
    "control_socket",
    "control_group",
    "state_dir",
    "http_listen",
    "http_token_file",
    "log_buffer",
    "log_file",
    "sweep_timeout",
];
const UNIT_KEYS: &[&str] = &[
    "run",
    "roles",
    "after",
    "wait_for",
    "wait_for_timeout",
    "ready",
    "start_secs",
    "timeout",
    "restart",
    "backoff",
    "start_limit",
    "essential",
    "stop_signal",
    "stop_timeout",
    "user",
    "group",
    "cwd",
    "umask",
    "env",
    "env_file",
    "output",
    "log_file",
    "health",
    "restart_dependents",
    "backup",
];
const PROBE_KEYS: &[&str] = &["tcp", "http", "exec", "postgres", "file", "log", "notify"];
const READY_KEYS: &[&str] = &[
    "tcp", "http", "exec", "postgres", "file", "log", "notify", "timeout", "interval",
];
const HEALTH_KEYS: &[&str] = &[
    "tcp", "http", "exec", "postgres", "file", "log", "notify", "interval", "timeout", "failures",
];
const BACKOFF_KEYS: &[&str] = &["initial", "max", "reset_after"];
const START_LIMIT_KEYS: &[&str] = &["burst", "interval"];
const LOG_FILE_KEYS: &[&str] = &["path", "max_bytes", "backups"];
const BACKUP_KEYS: &[&str] = &["dump", "load", "timeout"];
const SNAPSHOT_KEYS: &[&str] = &[
    "store",
    "create_store",
    "s3_endpoint",
    "s3_region",
    "keep_daily",
    "daily_at",
    "paths",
];

const DURATION_HINT: &str = "expected a duration like \"30s\" or \"100ms\"";

impl<'a> Ctx<'a> {
    /// Opens `node` as a table whose keys must be in `known`; unknown keys are errors.
    fn table<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&str],
        what: &str,
        example: &str,
    ) -> Option<Tbl<'n>> {
        let Val::Table(entries) = &node.val else {
            self.error(
                node.pos(),
                format!(
                    "{what}: expected a table like {example}, found {}",
                    node.found()
                ),
            );
            return None;
        };
        for e in entries {
            if known.contains(&e.key.as_str()) {
                continue;
            }
            let pos = e.key_span.as_ref().map(|r| r.start).unwrap_or(node.pos());
            let hint = match did_you_mean(&e.key, known.iter().copied()) {
                h if !h.is_empty() => h,
                _ => format!("; known keys: {}", known.join(", ")),
            };
            let place = if path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in {}", table_name(path))
            };
            self.error(pos, format!("unknown key `{}` {place}{hint}", e.key));
        }
        Some(Tbl {
            path: path.to_string(),
            entries,
        })
    }

    /// Interpolates a string value; errors (a `${X:?}`) are reported at `node`.
    fn interp(&mut self, node: &Node, raw: &str, what: &str) -> Option<interp::Expanded> {
        match interp::expand(raw, self.env) {
            Ok(x) => {
                for var in &x.unset {
                    if self.warned_vars.insert(var.clone()) {
                        self.warn(
                            node.pos(),
                            format!("`${{{var}}}` is not set; {what} uses an empty string there"),
                        );
                    }
                }
                for var in &x.not_unicode {
                    if self.warned_vars.insert(var.clone()) {
                        self.warn(
                            node.pos(),
                            format!("environment variable `{var}` is not valid UTF-8, so {what} reads it as unset (units still inherit it unchanged)"),
                        );
                    }
                }
                Some(x)
            }
            Err(msg) => {
                self.error(node.pos(), format!("{what}: {msg}"));
                None
            }
        }
    }

    /// A string value, interpolated. `expected` completes "expected …" on a type error.
    fn string(&mut self, node: &Node, what: &str, expected: &str) -> Option<String> {
        self.string_x(node, what, expected).map(|x| x.value)
    }

    fn string_x(&mut self, node: &Node, what: &str, expected: &str) -> Option<interp::Expanded> {
        match &node.val {
            Val::Str(s) => self.interp(node, s, what),
            _ => {
                self.error(
                    node.pos(),
                    format!("{what}: expected {expected}, found {}", node.found()),
                );
                None
            }
        }
    }

    /// A non-empty string (after interpolation).
    fn nonempty(&mut self, node: &Node, what: &str, expected: &str) -> Option<String> {
        let s = self.string(node, what, expected)?;
        if s.trim().is_empty() {
            self.error(
                node.pos(),
                format!("{what}: expected {expected}, found an empty string"),
            );
            return None;
        }
        Some(s)
    }

    /// An optional string: an empty string (after interpolation) means "not set".
    fn optional(&mut self, node: Option<&Node>, what: &str, expected: &str) -> Option<String> {
        let s = self.string(node?, what, expected)?;
        (!s.trim().is_empty()).then_some(s)
    }

    /// How an error shows a value: quoted and redacted, with the string it was
    /// interpolated from when that differs (`"x" (from "${VAR}")`).
    fn found_interp(&self, raw: &Node, value: &str) -> String {
        match &raw.val {
            Val::Str(s) if s != value => {
                format!("{} (from {})", self.quote(value), self.quote(s))
            }
            Val::Str(_) => self.quote(value),
            _ => raw.found(),
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        match &node.val {
            Val::Int(0) => Some(Duration::ZERO),
            Val::Str(_) => {
                let s = self.string(node, what, DURATION_HINT)?;
                let d = parse_duration(&s);
                if d.is_none() {
                    let found = self.found_interp(node, &s);
                    self.error(
                        node.pos(),
                        format!("{what}: {DURATION_HINT}, found {found}"),
                    );
                }
                d
            }
            Val::Int(i) => {
                self.error(node.pos(), format!("{what}: {DURATION_HINT}, found the integer {i} (write \"{i}s\" for seconds)"));
                None
            }
            _ => {
                self.error(
                    node.pos(),
                    format!("{what}: {DURATION_HINT}, found {}", node.found()),
                );
                None
            }
        }
    }

    fn duration_or(&mut self, t: &Tbl, key: &str, default: Duration) -> Duration {
        match t.get(key) {
            Some(n) => self.duration(n, &t.desc(key)).unwrap_or(default),
            None => default,
        }
    }

    fn size(&mut self, node: &Node, what: &str) -> Option<u64> {
        const HINT: &str = "expected a size like \"50MB\", \"1MiB\" or a number of bytes";
        match &node.val {
            Val::Int(i) => match u64::try_from(*i) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.error(node.pos(), format!("{what}: {HINT}, found the integer {i}"));
                    None
                }
            },
            Val::Str(_) => {
                let s = self.string(node, what, HINT)?;
                let v = parse_size(&s);
                if v.is_none() {
                    let found = self.found_interp(node, &s);
                    self.error(node.pos(), format!("{what}: {HINT}, found {found}"));
                }
                v
            }
            _ => {
                self.error(
                    node.pos(),
                    format!("{what}: {HINT}, found {}", node.found()),
                );
                None
            }
        }
    }

    fn uint(&mut self, node: &Node, what: &str, min: u32) -> Option<u32> {
        match &node.val {
            Val::Int(i) if *i >= i64::from(min) && *i <= i64::from(u32::MAX) => {
                u32::try_from(*i).ok()
            }
            _ => {
                self.error(
                    node.pos(),
                    format!(
                        "{what}: expected an integer of at least {min}, found {}",
                        node.found()
                    ),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.val {
            Val::Bool(b) => Some(*b),
            _ => {
                self.error(
                    node.pos(),
                    format!("{what}: expected true or false, found {}", node.found()),
                );
                None
            }
        }
    }

    fn bool_or(&mut self, t: &Tbl, key: &str, default: bool) -> bool {
        match t.get(key) {
            Some(n) => self.boolean(n, &t.desc(key)).unwrap_or(default),
            None => default,
        }
    }

    /// A path; relative paths are resolved against the config file's directory.
    fn path(&mut self, node: &Node, what: &str) -> Option<PathBuf> {
        let s = self.nonempty(node, what, "a path")?;
        Some(self.resolve(&s))
    }

    fn resolve(&self, s: &str) -> PathBuf {
        let p = PathBuf::from(s);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn optional_path(&mut self, node: Option<&Node>, what: &str) -> Option<PathBuf> {
        self.optional(node, what, "a path")
            .map(|s| self.resolve(&s))
    }

    /// An argv array or a shell string; empty is an error.
    fn command(&mut self, node: &Node, what: &str) -> Option<Command> {
        const EXPECTED: &str =
            "a command: an argv array like [\"prog\", \"arg\"] or a shell string";
        match &node.val {
            Val::Str(_) => {
                let s = self.string(node, what, EXPECTED)?;
                if s.trim().is_empty() {
                    self.error(
                        node.pos(),
                        format!("{what}: the command is empty; expected {EXPECTED}"),
                    );
                    return None;
                }
                Some(Command::Shell(s))
            }
            Val::Array(items) => {
                if items.is_empty() {
                    self.error(
                        node.pos(),
                        format!("{what}: the command is empty; expected {EXPECTED}"),
                    );
                    return None;
                }
                let mut argv = Vec::with_capacity(items.len());
                for item in items {
                    argv.push(self.string(item, what, "a string (each argv element)")?);
                }
                if argv[0].trim().is_empty() {
                    self.error(
                        items[0].pos(),
                        format!("{what}: the program (first element) is empty"),
                    );
                    return None;
                }
                Some(Command::Argv(argv))
            }
            _ => {
                self.error(
                    node.pos(),
                    format!("{what}: expected {EXPECTED}, found {}", node.found()),
                );
                None
            }
        }
    }

    /// An array of strings with the position of each.
    fn string_list(&mut self, node: &Node, what: &str, example: &str) -> Vec<(String, usize)> {
        let Val::Array(items) = &node.val else {
            self.error(
                node.pos(),
                format!(
                    "{what}: expected an array like {example}, found {}",
                    node.found()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            if let Some(s) = self.string(item, what, "a string") {
                out.push((s, item.pos()));
            }
        }
        out
    }
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

/// The result of the walk.
pub(crate) struct Walked {
    pub config: Config,
    pub located: Located,
}

/// Walks the whole document.
pub(crate) fn walk(ctx: &mut Ctx, root: &Node, source: &Path) -> Walked {
    let mut located = Located::default();
    let mut config = Config {
        source: source.to_path_buf(),
        bosun: Settings::default(),
        roles: IndexMap::new(),
        units: IndexMap::new(),
        snapshot: None,
        warnings: Vec::new(),
        secrets: Default::default(),
    };
    let Some(top) = ctx.table(root, "", TOP_KEYS, "the document", "[service.NAME]") else {
        return Walked { config, located };
    };
    if let Some(n) = top.get("bosun") {
        config.bosun = settings(ctx, n, &mut located);
    }
    if let Some(n) = top.get("roles") {
        config.roles = roles(ctx, n, &mut located);
    }
    // Units, in file order across `service` and `task`.
    for e in top.entries {
        let kind = match e.key.as_str() {
            "service" => UnitKind::Service,
            "task" => UnitKind::Task,
            _ => continue,
        };
        let Val::Table(units) = &e.node.val else {
            ctx.error(
                e.node.pos(),
                format!(
                    "`{}`: expected a table of units like [{}.NAME], found {}",
                    e.key,
                    e.key,
                    e.node.found()
                ),
            );
            continue;
        };
        for u in units {
            let pos = u.key_span.as_ref().map(|r| r.start).unwrap_or(u.node.pos());
            if !is_name(&u.key) {
                ctx.error(
                    pos,
                    format!(
                        "bad unit name {:?} in [{}.{}]: a name may only hold letters, digits, `_`, `.` and `-`",
                        u.key,
                        kind.as_str(),
                        path_seg(&u.key)
                    ),
                );
            }
            if let Some(prev) = located.units.get(&u.key) {
                let (line, _) = line_col(ctx.text, prev.pos);
                ctx.error(
                    pos,
                    format!(
                        "duplicate unit name `{}`: [{}.{}] and [{}.{}] (line {line}); names are unique across services and tasks",
                        u.key,
                        kind.as_str(),
                        path_seg(&u.key),
                        prev.kind.as_str(),
                        path_seg(&u.key)
                    ),
                );
                continue;
            }
            let mut loc = UnitLoc {
                kind,
                pos,
                after: Vec::new(),
                roles: Vec::new(),
                backup: None,
            };
            let unit = unit(ctx, kind, &u.key, &u.node, &mut loc);
            located.units.insert(u.key.clone(), loc);
            config.units.insert(u.key.clone(), unit);
        }
    }
    // `[task.a]`, `[service.b]`, `[task.c]` come out of TOML grouped by kind:
    // restore file order.
    let pos_of = |name: &str| located.units.get(name).map(|u| u.pos).unwrap_or(usize::MAX);
    config.units.sort_by(|a, _, b, _| pos_of(a).cmp(&pos_of(b)));
    located.units.sort_by(|_, a, _, b| a.pos.cmp(&b.pos));
    if let Some(n) = top.get("snapshot") {
        config.snapshot = snapshot(ctx, n, &mut located);
    }
    Walked { config, located }
}

fn settings(ctx: &mut Ctx, node: &Node, located: &mut Located) -> Settings {
    let mut s = Settings::default();
    let Some(t) = ctx.table(
        node,
        "bosun",
        BOSUN_KEYS,
        "`bosun`",
        "{ stop_budget = \"570s\" }",
    ) else {
        return s;
    };
    if let Some(n) = t.get("roles_env") {
        if let Some(v) = ctx.nonempty(n, &t.desc("roles_env"), "an environment variable name") {
            let ok = v
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
                && v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
            if ok {
                s.roles_env = v;
            } else {
                ctx.error(
                    n.pos(),
                    format!("{}: expected an environment variable name like \"CONTAINERROLE\", found {}", t.desc("roles_env"), ctx.quote(&v)),
                );
            }
        }
    }
    if let Some(n) = t.get("roles_default") {
        if let Some(v) = ctx.nonempty(
            n,
            &t.desc("roles_default"),
            "a role expression like \"all\" or \"web:celery\"",
        ) {
            s.roles_default = v.trim().to_string();
            located.roles_default = Some(n.pos());
        }
    }
    s.stop_budget = ctx.duration_or(&t, "stop_budget", s.stop_budget);
    if let Some(n) = t.get("control_socket") {
        s.control_socket = ctx
            .path(n, &t.desc("control_socket"))
            .unwrap_or(s.control_socket);
    }
    s.control_group = ctx.optional(
        t.get("control_group"),
        &t.desc("control_group"),
        "a group name",
    );
    if let Some(n) = t.get("state_dir") {
        s.state_dir = ctx.path(n, &t.desc("state_dir")).unwrap_or(s.state_dir);
    }
    if let Some(n) = t.get("http_listen") {
        let what = t.desc("http_listen");
        if let Some(v) = ctx.optional(Some(n), &what, "an address like \"0.0.0.0:9001\"") {
            if is_host_port(&v) {
                s.http_listen = Some(v);
            } else {
                let found = ctx.found_interp(n, &v);
                ctx.error(
                    n.pos(),
                    format!("{what}: expected an address like \"0.0.0.0:9001\", found {found}"),
                );
            }
        }
    }
    s.http_token_file = ctx.optional_path(t.get("http_token_file"), &t.desc("http_token_file"));
    if let Some(n) = t.get("log_buffer") {
        s.log_buffer = ctx.size(n, &t.desc("log_buffer")).unwrap_or(s.log_buffer);
    }
    s.log_file = ctx.optional_path(t.get("log_file"), &t.desc("log_file"));
    s.sweep_timeout = ctx.duration_or(&t, "sweep_timeout", s.sweep_timeout);
    if s.http_listen.is_some() && s.http_token_file.is_none() {
        ctx.warn(
            node.pos(),
            "[bosun] http_listen is set without http_token_file: the token must come from $BOSUN_HTTP_TOKEN, or bosun refuses to start",
        );
    }
    s
}

fn roles(ctx: &mut Ctx, node: &Node, located: &mut Located) -> IndexMap<String, Vec<String>> {
    let mut out = IndexMap::new();
    let Val::Table(entries) = &node.val else {
        ctx.error(node.pos(), format!("`roles`: expected a table of aliases like {{ backend = [\"sql\", \"redis\"] }}, found {}", node.found()));
        return out;
    };
    for e in entries {
        let pos = e.key_span.as_ref().map(|r| r.start).unwrap_or(e.node.pos());
        if !is_name(&e.key) || e.key == "all" {
            ctx.error(
                pos,
                format!("bad role alias name {:?} in [roles]: use letters, digits, `_`, `.` and `-` (and not `all`, which means every role)", e.key),
            );
        }
        let what = key_desc("roles", &e.key);
        let members = ctx.string_list(&e.node, &what, "[\"sql\", \"redis\"]");
        if matches!(&e.node.val, Val::Array(a) if a.is_empty()) {
            ctx.error(
                e.node.pos(),
                format!("{what}: an alias must name at least one role"),
            );
        }
        out.insert(
            e.key.clone(),
            members.iter().map(|(m, _)| m.trim().to_string()).collect(),
        );
        located.aliases.insert(e.key.clone(), (pos, members));
    }
    out
}

fn unit(ctx: &mut Ctx, kind: UnitKind, name: &str, node: &Node, loc: &mut UnitLoc) -> Unit {
    let path = format!("{}.{}", kind.as_str(), path_seg(name));
    let mut u = Unit::new(name, kind, Command::Argv(Vec::new()));
    let example = "{ run = [\"prog\"] }";
    let Some(t) = ctx.table(node, &path, UNIT_KEYS, &format!("[{path}]"), example) else {
        return u;
    };
    match t.get("run") {
        Some(n) => {
            if let Some(c) = ctx.command(n, &t.desc("run")) {
                u.run = c;
            }
        }
        None => ctx.error(node.pos(), format!("missing `run` in [{path}]: expected the command, e.g. run = [\"/usr/bin/prog\", \"--flag\"]")),
    }
    if kind == UnitKind::Task {
        for key in ["ready", "health", "backup"] {
            if let Some(n) = t.get(key) {
                ctx.error(
                    n.pos(),
                    format!("{}: not allowed in a task (a task is done when it exits 0); use a [service.{}] for this", t.desc(key), path_seg(name)),
                );
            }
        }
    } else if let Some(n) = t.get("timeout") {
        ctx.error(
            n.pos(),
            format!("{}: `timeout` limits a task's run time; for a service use ready = {{ timeout = \"60s\" }} or stop_timeout", t.desc("timeout")),
        );
    }
    if let Some(n) = t.get("roles") {
        let what = t.desc("roles");
        loc.roles = ctx.string_list(n, &what, "[\"web\"]");
        for (r, pos) in &loc.roles {
            if !is_name(r) || r == "all" {
                ctx.error(*pos, format!("{what}: bad role name {r:?}: use letters, digits, `_`, `.` and `-` (`all` is reserved)"));
            }
        }
        u.roles = dedup(loc.roles.iter().map(|(r, _)| r.clone()));
    }
    if let Some(n) = t.get("after") {
        loc.after = ctx.string_list(n, &t.desc("after"), "[\"postgres\"]");
        u.after = dedup(loc.after.iter().map(|(r, _)| r.clone()));
    }
    if let Some(n) = t.get("wait_for") {
        u.wait_for = wait_for_list(ctx, n, &t.desc("wait_for"));
    }
    u.wait_for_timeout = ctx.duration_or(&t, "wait_for_timeout", u.wait_for_timeout);
    if kind == UnitKind::Service {
        if let Some(n) = t.get("ready") {
            u.ready = ready(ctx, n, &format!("{path}.ready"));
        }
    }
    u.start_secs = ctx.duration_or(&t, "start_secs", u.start_secs);
    if kind == UnitKind::Task {
        u.timeout = ctx.duration_or(&t, "timeout", u.timeout);
    }
    if let Some(n) = t.get("restart") {
        let what = t.desc("restart");
        let choices: &[&str] = match kind {
            UnitKind::Service => &["always", "on-failure", "never"],
            UnitKind::Task => &["on-failure", "never"],
        };
        if let Some(v) = ctx.string(n, &what, "\"always\", \"on-failure\" or \"never\"") {
            match v.as_str() {
                "always" if kind == UnitKind::Task => ctx.error(
                    n.pos(),
                    format!("{what}: a task cannot use restart = \"always\" (it runs once); use \"on-failure\" or \"never\", or make it a [service.{}]", path_seg(name)),
                ),
                "always" => u.restart = Restart::Always,
                "on-failure" => u.restart = Restart::OnFailure,
                "never" => u.restart = Restart::Never,
                other => {
                    let hint = did_you_mean(other, choices.iter().copied());
                    let list = choices.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(" | ");
                    ctx.error(n.pos(), format!("{what}: expected {list}, found {}{hint}", ctx.quote(other)));
                }
            }
        }
    }
    if let Some(n) = t.get("backoff") {
        let p = format!("{path}.backoff");
        if let Some(b) = ctx.table(
            n,
            &p,
            BACKOFF_KEYS,
            &t.desc("backoff"),
            "{ initial = \"100ms\", max = \"30s\" }",
        ) {
            u.backoff.initial = ctx.duration_or(&b, "initial", u.backoff.initial);
            u.backoff.max = ctx.duration_or(&b, "max", u.backoff.max);
            u.backoff.reset_after = ctx.duration_or(&b, "reset_after", u.backoff.reset_after);
            if u.backoff.initial > u.backoff.max {
                ctx.error(
                    n.pos(),
                    format!("{}: `initial` is longer than `max`", t.desc("backoff")),
                );
            }
        }
    }
    if let Some(n) = t.get("start_limit") {
        let p = format!("{path}.start_limit");
        if let Some(b) = ctx.table(
            n,
            &p,
            START_LIMIT_KEYS,
            &t.desc("start_limit"),
            "{ burst = 5, interval = \"60s\" }",
        ) {
            if let Some(v) = b.get("burst") {
                u.start_limit.burst = ctx
                    .uint(v, &b.desc("burst"), 1)
                    .unwrap_or(u.start_limit.burst);
            }
            u.start_limit.interval = ctx.duration_or(&b, "interval", u.start_limit.interval);
        }
    }
    u.essential = ctx.bool_or(&t, "essential", false);
    if let Some(n) = t.get("stop_signal") {
        u.stop_signal = signal(ctx, n, &t.desc("stop_signal")).unwrap_or(u.stop_signal);
    }
    u.stop_timeout = ctx.duration_or(&t, "stop_timeout", u.stop_timeout);
    u.user = ctx.optional(t.get("user"), &t.desc("user"), "a user name or numeric id");
    u.group = ctx.optional(
        t.get("group"),
        &t.desc("group"),
        "a group name or numeric id",
    );
    u.cwd = ctx.optional_path(t.get("cwd"), &t.desc("cwd"));
    if let Some(n) = t.get("umask") {
        u.umask = umask(ctx, n, &t.desc("umask"));
    }
    if let Some(n) = t.get("env") {
        u.env = env_table(ctx, n, &format!("{path}.env"), &t.desc("env"));
    }
    u.env_file = ctx.optional_path(t.get("env_file"), &t.desc("env_file"));
    if let Some(n) = t.get("output") {
        let what = t.desc("output");
        if let Some(v) = ctx.string(n, &what, "\"prefix\", \"inherit\" or \"null\"") {
            match v.as_str() {
                "prefix" => u.output = Output::Prefix,
                "inherit" => u.output = Output::Inherit,
                "null" => u.output = Output::Null,
                other => {
                    let hint = did_you_mean(other, ["prefix", "inherit", "null"]);
                    ctx.error(
                        n.pos(),
                        format!(
                            "{what}: expected \"prefix\" | \"inherit\" | \"null\", found {}{hint}",
                            ctx.quote(other)
                        ),
                    );
                }
            }
        }
    }
    if let Some(n) = t.get("log_file") {
        u.log_file = log_file(ctx, n, &format!("{path}.log_file"), &t.desc("log_file"));
    }
    if kind == UnitKind::Service {
        if let Some(n) = t.get("health") {
            u.health = health(ctx, n, &format!("{path}.health"));
        }
        if let Some(n) = t.get("backup") {
            loc.backup = Some(n.pos());
            u.backup = backup(ctx, n, &format!("{path}.backup"));
        }
    }
    u.restart_dependents = ctx.bool_or(&t, "restart_dependents", false);
    u
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.filter(|s| seen.insert(s.clone())).collect()
}

fn signal(ctx: &mut Ctx, node: &Node, what: &str) -> Option<Signal> {
    const HINT: &str = "expected a signal like \"SIGTERM\", \"SIGINT\", \"SIGQUIT\", \"SIGHUP\", \"SIGUSR1\", \"INT\" or a number (1-31)";
    let text = match &node.val {
        Val::Int(i) => i.to_string(),
        Val::Str(_) => ctx.string(node, what, HINT)?,
        _ => {
            ctx.error(
                node.pos(),
                format!("{what}: {HINT}, found {}", node.found()),
            );
            return None;
        }
    };
    let sig = Signal::parse(&text);
    if sig.is_none() {
        ctx.error(
            node.pos(),
            format!("{what}: unknown signal {}; {HINT}", ctx.quote(&text)),
        );
    }
    sig
}

fn umask(ctx: &mut Ctx, node: &Node, what: &str) -> Option<u32> {
    const HINT: &str = "expected an octal mask like \"022\" or \"0027\" (at most 777)";
    match &node.val {
        Val::Int(i) => {
            let v = u32::try_from(*i).ok().filter(|v| *v <= 0o777);
            match v {
                Some(v) => {
                    let literal = node
                        .span
                        .as_ref()
                        .and_then(|r| ctx.text.get(r.clone()))
                        .unwrap_or("");
                    if v > 7 && !literal.trim_start_matches('+').starts_with("0o") {
                        ctx.warn(
                            node.pos(),
                            format!("{what} is the decimal integer {v} (octal {v:03o}); write it as a string (\"{v:03o}\") or an octal literal (0o{v:03o}) to be clear"),
                        );
                    }
                    Some(v)
                }
                None => {
                    ctx.error(
                        node.pos(),
                        format!("{what}: {HINT}, found {}", node.found()),
                    );
                    None
                }
            }
        }
        Val::Str(_) => {
            let s = ctx.string(node, what, HINT)?;
            let v = parse_umask(&s);
            if v.is_none() {
                ctx.error(
                    node.pos(),
                    format!("{what}: {HINT}, found {}", ctx.quote(&s)),
                );
            }
            v
        }
        _ => {
            ctx.error(
                node.pos(),
                format!("{what}: {HINT}, found {}", node.found()),
            );
            None
        }
    }
}

fn env_table(ctx: &mut Ctx, node: &Node, path: &str, what: &str) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    let Val::Table(entries) = &node.val else {
        ctx.error(
            node.pos(),
            format!(
                "{what}: expected a table like {{ KEY = \"value\" }}, found {}",
                node.found()
            ),
        );
        return out;
    };
    for e in entries {
        let kpos = e.key_span.as_ref().map(|r| r.start).unwrap_or(e.node.pos());
        if e.key.is_empty() || e.key.contains('=') || e.key.contains('\0') {
            ctx.error(
                kpos,
                format!("bad environment variable name {:?} in [{path}]", e.key),
            );
            continue;
        }
        let kd = key_desc(path, &e.key);
        let v = match &e.node.val {
            Val::Str(_) => ctx.string(&e.node, &kd, "a string"),
            Val::Int(i) => Some(i.to_string()),
            Val::Float(f) => Some(f.to_string()),
            Val::Bool(b) => Some(b.to_string()),
            _ => {
                ctx.error(
                    e.node.pos(),
                    format!("{kd}: expected a string, found {}", e.node.found()),
                );
                None
            }
        };
        if let Some(v) = v {
            // `env = { DB_PASS = "…" }`: masked everywhere, like a secret variable.
            ctx.redactor.add(&e.key, &v);
            if v.contains('\0') {
                ctx.error(
                    e.node.pos(),
                    format!("{kd}: a value cannot hold a NUL byte"),
                );
            }
            out.insert(e.key.clone(), v);
        }
    }
    out
}

fn log_file(ctx: &mut Ctx, node: &Node, path: &str, what: &str) -> Option<LogFile> {
    let mut lf = LogFile {
        path: PathBuf::new(),
        max_bytes: 50_000_000,
        backups: 5,
    };
    if let Val::Str(_) = node.val {
        lf.path = ctx.path(node, what)?;
        return Some(lf);
    }
    let t = ctx.table(
        node,
        path,
        LOG_FILE_KEYS,
        what,
        "{ path = \"/var/log/app.log\", max_bytes = \"50MB\", backups = 5 }",
    )?;
    match t.get("path") {
        Some(n) => lf.path = ctx.path(n, &t.desc("path"))?,
        None => {
            ctx.error(
                node.pos(),
                format!("{what}: missing `path`, e.g. {{ path = \"/var/log/app.log\" }}"),
            );
            return None;
        }
    }
    if let Some(n) = t.get("max_bytes") {
        lf.max_bytes = ctx.size(n, &t.desc("max_bytes"))?;
        if lf.max_bytes == 0 {
            ctx.error(
                n.pos(),
                format!("{}: must be more than 0", t.desc("max_bytes")),
            );
        }
    }
    if let Some(n) = t.get("backups") {
        lf.backups = ctx.uint(n, &t.desc("backups"), 0)?;
    }
    Some(lf)
}

fn backup(ctx: &mut Ctx, node: &Node, path: &str) -> Option<UnitBackup> {
    let t = ctx.table(
        node,
        path,
        BACKUP_KEYS,
        &format!("[{path}]"),
        "{ dump = [\"pg_dumpall\"], load = [\"psql\"] }",
    )?;
    let dump = match t.get("dump") {
        Some(n) => ctx.command(n, &t.desc("dump")),
        None => {
            ctx.error(node.pos(), format!("missing `dump` in [{path}]: expected the command that writes the data to stdout"));
            None
        }
    };
    let load = match t.get("load") {
        Some(n) => ctx.command(n, &t.desc("load")),
        None => None,
    };
    let timeout = ctx.duration_or(&t, "timeout", Duration::from_secs(300));
    Some(UnitBackup {
        dump: dump?,
        load,
        timeout,
    })
}

fn ready(ctx: &mut Ctx, node: &Node, path: &str) -> Ready {
    let mut r = Ready::default();
    let Some(t) = ctx.table(
        node,
        path,
        READY_KEYS,
        &format!("[{path}]"),
        "{ tcp = \"127.0.0.1:6379\", timeout = \"60s\" }",
    ) else {
        return r;
    };
    r.probe = probe(ctx, &t, path, true);
    r.timeout = ctx.duration_or(&t, "timeout", r.timeout);
    r.interval = ctx.duration_or(&t, "interval", r.interval);
    if r.interval.is_zero() {
        if let Some(n) = t.get("interval") {
            ctx.error(
                n.pos(),
                format!(
                    "{}: must be more than 0 (the delay between probe attempts)",
                    t.desc("interval")
                ),
            );
        }
    }
    r
}

fn health(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Health> {
    let t = ctx.table(
        node,
        path,
        HEALTH_KEYS,
        &format!("[{path}]"),
        "{ http = \"http://127.0.0.1:8080/health\", interval = \"10s\" }",
    )?;
    for key in ["log", "notify"] {
        if let Some(n) = t.get(key) {
            ctx.error(
                n.pos(),
                format!("{}: a `{key}` probe can only tell readiness, not health; health probes are tcp, http, exec, postgres or file", t.desc(key)),
            );
            return None;
        }
    }
    let Some(probe) = probe(ctx, &t, path, false) else {
        if !t
            .entries
            .iter()
            .any(|e| PROBE_KEYS.contains(&e.key.as_str()))
        {
            ctx.error(
                node.pos(),
                format!("[{path}] has no probe: give one of tcp, http, exec, postgres or file"),
            );
        }
        return None;
    };
    let mut h = Health {
        probe,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        failures: 3,
    };
    h.interval = ctx.duration_or(&t, "interval", h.interval);
    h.timeout = ctx.duration_or(&t, "timeout", h.timeout);
    if let Some(n) = t.get("failures") {
        h.failures = ctx.uint(n, &t.desc("failures"), 1).unwrap_or(h.failures);
    }
    if h.interval.is_zero() {
        ctx.error(
            t.get("interval").map(Node::pos).unwrap_or(node.pos()),
            format!("`interval` in [{path}] must be more than 0"),
        );
    }
    Some(h)
}

/// The one probe of a `ready` or `health` table (`None`: none given, or an error).
fn probe(ctx: &mut Ctx, t: &Tbl, path: &str, for_ready: bool) -> Option<Probe> {
    let given: Vec<&Entry> = t
        .entries
        .iter()
        .filter(|e| PROBE_KEYS.contains(&e.key.as_str()))
        .collect();
    if given.len() > 1 {
        let names: Vec<String> = given.iter().map(|e| format!("`{}`", e.key)).collect();
        let pos = given[1]
            .key_span
            .as_ref()
            .map(|r| r.start)
            .unwrap_or(given[1].node.pos());
        ctx.error(
            pos,
            format!(
                "[{path}] has {} probes ({}): give exactly one",
                given.len(),
                names.join(", ")
            ),
        );
        return None;
    }
    let e = given.first()?;
    let what = t.desc(&e.key);
    let n = &e.node;
    match e.key.as_str() {
        "tcp" => {
            let s = ctx.nonempty(n, &what, "an address like \"127.0.0.1:6379\"")?;
            if !is_host_port(&s) {
                ctx.error(
                    n.pos(),
                    format!(
                        "{what}: expected an address like \"127.0.0.1:6379\" (host:port), found {}",
                        ctx.quote(&s)
                    ),
                );
                return None;
            }
            Some(Probe::Tcp(s))
        }
        "http" => {
            let s = ctx.nonempty(n, &what, "an http:// URL")?;
            http_url(ctx, n, &what, &s).then_some(Probe::Http(s))
        }
        "exec" => ctx.command(n, &what).map(Probe::Exec),
        "postgres" => ctx
            .nonempty(
                n,
                &what,
                "a connection string like \"host=/run/postgresql user=postgres\"",
            )
            .map(Probe::Postgres),
        "file" => ctx.path(n, &what).map(Probe::File),
        "log" if for_ready => {
            let s = ctx.nonempty(n, &what, "a regular expression")?;
            match regex::Regex::new(&s) {
                Ok(_) => Some(Probe::Log(s)),
                Err(err) => {
                    let detail = regex_error(&err);
                    ctx.error(
                        n.pos(),
                        format!(
                            "{what}: invalid regular expression {}: {detail}",
                            ctx.quote(&s)
                        ),
                    );
                    None
                }
            }
        }
        "notify" if for_ready => match ctx.boolean(n, &what)? {
            true => Some(Probe::Notify),
            false => {
                ctx.error(n.pos(), format!("{what}: only `notify = true` makes sense; leave the probe out to use start_secs"));
                None
            }
        },
        _ => None,
    }
}

/// The last line of a regex error ("error: unclosed group"), without the drawing.
fn regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .map(|l| {
            l.trim_start()
                .trim_start_matches("error:")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_string())
}

/// Checks an `http://` URL for a probe or gate; reports at `node`.
fn http_url(ctx: &mut Ctx, node: &Node, what: &str, s: &str) -> bool {
    if let Some(rest) = s.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() {
            ctx.error(
                node.pos(),
                format!("{what}: the URL {} has no host", ctx.quote(s)),
            );
            return false;
        }
        return true;
    }
    if s.starts_with("https://") {
        ctx.error(
            node.pos(),
            format!("{what}: https is not supported (bosun's HTTP probes speak plain http, no TLS): use an http:// URL, or a tcp probe on port 443; found {}", ctx.quote(s)),
        );
    } else {
        ctx.error(
            node.pos(),
            format!(
                "{what}: expected an http:// URL like \"http://127.0.0.1:8080/health\", found {}",
                ctx.quote(s)
            ),
        );
    }
    false
}

fn wait_for_list(ctx: &mut Ctx, node: &Node, what: &str) -> Vec<WaitFor> {
    const EXPECTED: &str =
        "tcp://host:port, http://host/path, postgres://… (or postgresql://…) or file:///path";
    let Val::Array(items) = &node.val else {
        ctx.error(
            node.pos(),
            format!(
                "{what}: expected an array like [\"tcp://db:5432\"], found {}",
                node.found()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(x) = ctx.string_x(item, what, EXPECTED) else {
            continue;
        };
        let s = x.value.trim().to_string();
        if s.is_empty() {
            if x.interpolated {
                // `${GATE:-}` unset: no gate in this container.
                continue;
            }
            ctx.error(
                item.pos(),
                format!("{what}: empty entry; expected {EXPECTED}"),
            );
            continue;
        }
        let found = ctx.found_interp(item, &s);
        if let Some(addr) = s.strip_prefix("tcp://") {
            let addr = addr.strip_suffix('/').unwrap_or(addr);
            if is_host_port(addr) {
                out.push(WaitFor::Tcp(addr.to_string()));
            } else {
                ctx.error(
                    item.pos(),
                    format!("{what}: expected tcp://host:port, found {found}"),
                );
            }
        } else if s.starts_with("http://") || s.starts_with("https://") {
            if http_url(ctx, item, what, &s) {
                out.push(WaitFor::Http(s));
            }
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            out.push(WaitFor::Postgres(s));
        } else if let Some(p) = s.strip_prefix("file://") {
            if p.starts_with('/') {
                out.push(WaitFor::File(PathBuf::from(p)));
            } else {
                ctx.error(
                    item.pos(),
                    format!(
                        "{what}: expected file:///absolute/path (three slashes), found {found}"
                    ),
                );
            }
        } else {
            ctx.error(
                item.pos(),
                format!("{what}: unsupported gate {found}; expected {EXPECTED}"),
            );
        }
    }
    out
}

fn snapshot(ctx: &mut Ctx, node: &Node, located: &mut Located) -> Option<SnapshotConfig> {
    let t = ctx.table(
        node,
        "snapshot",
        SNAPSHOT_KEYS,
        "`snapshot`",
        "{ store = \"file:///var/lib/bosun/backup\" }",
    )?;
    let mut s = SnapshotConfig {
        store: String::new(),
        create_store: false,
        s3_endpoint: None,
        s3_region: "us-east-1".into(),
        keep_daily: 14,
        daily_at: None,
        paths: IndexMap::new(),
    };
    const STORE_HINT: &str =
        "expected a store like \"file:///var/lib/bosun/backup\" or \"s3://bucket/prefix\"";
    match t.get("store") {
        Some(n) => {
            if let Some(v) = ctx.nonempty(n, &t.desc("store"), STORE_HINT) {
                let v = v.trim().to_string();
                if let Err(why) = check_store(&v) {
                    let found = ctx.found_interp(n, &v);
                    ctx.error(
                        n.pos(),
                        format!("{}: {STORE_HINT}, found {found}: {why}", t.desc("store")),
                    );
                }
                s.store = v;
            }
        }
        None => ctx.error(
            node.pos(),
            format!("missing `store` in [snapshot]: {STORE_HINT}"),
        ),
    }
    s.create_store = ctx.bool_or(&t, "create_store", false);
    if s.create_store && !s.store.starts_with("file://") && !s.store.is_empty() {
        if let Some(n) = t.get("create_store") {
            ctx.error(
                n.pos(),
                format!(
                    "{}: only a file:// store can be created; an s3:// bucket must exist already (remove the key)",
                    t.desc("create_store")
                ),
            );
        }
    }
    if let Some(n) = t.get("s3_endpoint") {
        let what = t.desc("s3_endpoint");
        if let Some(v) = ctx.optional(
            Some(n),
            &what,
            "an endpoint URL like \"http://127.0.0.1:3900\"",
        ) {
            if v.starts_with("http://") || v.starts_with("https://") {
                s.s3_endpoint = Some(v);
            } else {
                ctx.error(n.pos(), format!("{what}: expected an endpoint URL like \"http://127.0.0.1:3900\" or \"https://s3.example.com\", found {}", ctx.quote(&v)));
            }
        }
    }
    if let Some(v) = ctx.optional(
        t.get("s3_region"),
        &t.desc("s3_region"),
        "a region like \"us-east-1\"",
    ) {
        s.s3_region = v;
    }
    if let Some(n) = t.get("keep_daily") {
        s.keep_daily = ctx
            .uint(n, &t.desc("keep_daily"), 0)
            .unwrap_or(s.keep_daily);
    }
    if let Some(n) = t.get("daily_at") {
        let what = t.desc("daily_at");
        if let Some(v) = ctx.optional(Some(n), &what, "a time \"HH:MM\"") {
            s.daily_at = parse_time_of_day(&v);
            if s.daily_at.is_none() {
                ctx.error(
                    n.pos(),
                    format!(
                        "{what}: expected a UTC time of day \"HH:MM\" like \"06:00\", found {}",
                        ctx.quote(&v)
                    ),
                );
            }
        }
    }
    if let Some(n) = t.get("paths") {
        if let Val::Table(entries) = &n.val {
            for e in entries {
                let kpos = e.key_span.as_ref().map(|r| r.start).unwrap_or(e.node.pos());
                if !is_name(&e.key) {
                    ctx.error(kpos, format!("bad item name {:?} in [snapshot.paths]: use letters, digits, `_`, `.` and `-`", e.key));
                }
                if let Some(p) = ctx.path(&e.node, &key_desc("snapshot.paths", &e.key)) {
                    s.paths.insert(e.key.clone(), p);
                    located.snapshot_paths.insert(e.key.clone(), kpos);
                }
            }
        } else {
            ctx.error(
                n.pos(),
                format!(
                    "{}: expected a table like {{ files = \"/srv/files\" }}, found {}",
                    t.desc("paths"),
                    n.found()
                ),
            );
        }
    }
    Some(s)
}

/// `file:///abs/path` or `s3://bucket[/prefix]`.
fn check_store(v: &str) -> Result<(), &'static str> {
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
