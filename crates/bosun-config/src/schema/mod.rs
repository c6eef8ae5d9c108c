//! The schema walk: from the spanned TOML tree to the model, one table at a time.
//!
//! Every table is opened with the list of keys it knows ([`Tbl::open`]), so that
//! an unknown key is reported with its table and the nearest known key; every
//! value is type-checked, interpolated and parsed where it stands (`read.rs`), so
//! that its error carries its line and column. Errors are collected, not returned
//! at the first one; the caller fails when there is any. Cross-table checks
//! (unknown `after`, cycles, role aliases) live in `validate.rs` and use the
//! positions recorded here in [`Located`].
//!
//! A table with many keys is a list of [`Key`] rows (`bosun.rs`, `unit.rs`,
//! `snapshot.rs`, `fleet.rs`, `hooks.rs`): the row names the key (for the unknown-key check and its
//! suggestions) and reads its value, so that a key is known and read in one place.

mod bosun;
mod fleet;
mod hooks;
mod probe;
mod snapshot;
mod unit;

#[cfg(test)]
pub(crate) use unit::key_names as unit_key_names;

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;

use crate::diag::did_you_mean;
use crate::model::*;
use crate::read::Ctx;
use crate::tree::{Entry, Node, Val};

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
    /// Where `instances` is, when written.
    pub instances: Option<usize>,
}

/// The result of the walk.
pub(crate) struct Walked {
    pub config: Config,
    pub located: Located,
}

const TOP_KEYS: &[&str] = &[
    "bosun", "roles", "service", "task", "snapshot", "fleet", "hooks",
];

/// Walks the whole document.
/// `env = { DB_PASSWORD = "…" }` literals of every unit, learned before the walk:
/// a message about a key read earlier (`stop_signal`, `restart`) that quotes the
/// secret, cut short to 60 characters, could no longer be masked at the end.
fn learn_literal_secrets(ctx: &mut Ctx, root: &Node) {
    let Val::Table(top) = &root.val else { return };
    for kind in top.iter().filter(|e| e.key == "service" || e.key == "task") {
        let Val::Table(units) = &kind.node.val else {
            continue;
        };
        for unit in units {
            let Val::Table(keys) = &unit.node.val else {
                continue;
            };
            for env in keys.iter().filter(|e| e.key == "env") {
                let Val::Table(vars) = &env.node.val else {
                    continue;
                };
                for v in vars {
                    if let Val::Str(value) = &v.node.val {
                        ctx.diag.add_secret(&v.key, value);
                    }
                }
            }
        }
    }
}

pub(crate) fn walk(ctx: &mut Ctx, root: &Node, source: &Path) -> Walked {
    learn_literal_secrets(ctx, root);
    let mut w = Walked {
        config: Config {
            source: source.to_path_buf(),
            ..Config::default()
        },
        located: Located::default(),
    };
    let Some(top) = Tbl::open(ctx, root, "", TOP_KEYS, "the document", "[service.NAME]") else {
        return w;
    };
    if let Some(n) = top.get("bosun") {
        w.config.bosun = bosun::settings(ctx, n, &mut w.located);
    }
    if let Some(n) = top.get("roles") {
        w.config.roles = bosun::roles(ctx, n, &mut w.located);
    }
    for e in top.entries {
        units(ctx, e, &mut w);
    }
    // `[task.a]`, `[service.b]`, `[task.c]` come out of TOML grouped by kind:
    // restore file order.
    let located = &mut w.located;
    let pos_of = |name: &str| located.units.get(name).map(|u| u.pos).unwrap_or(usize::MAX);
    w.config
        .units
        .sort_by(|a, _, b, _| pos_of(a).cmp(&pos_of(b)));
    located.units.sort_by(|_, a, _, b| a.pos.cmp(&b.pos));
    if let Some(n) = top.get("snapshot") {
        w.config.snapshot = snapshot::snapshot(ctx, n, &mut w.located);
    }
    if let Some(n) = top.get("fleet") {
        w.config.fleet = fleet::fleet(ctx, n);
    }
    if let Some(n) = top.get("hooks") {
        w.config.hooks = hooks::hooks(ctx, n);
    }
    w
}

/// The units of the top-level entry `e` when it is `service` or `task`.
fn units(ctx: &mut Ctx, e: &Entry, w: &mut Walked) {
    let kind = match e.key.as_str() {
        "service" => UnitKind::Service,
        "task" => UnitKind::Task,
        _ => return,
    };
    let Val::Table(units) = &e.node.val else {
        ctx.diag.error(
            e.node.pos(),
            format!(
                "`{}`: expected a table of units like [{}.NAME], found {}",
                e.key,
                e.key,
                e.node.found()
            ),
        );
        return;
    };
    for u in units {
        if !new_unit_name(ctx, kind, u, &w.located) {
            continue;
        }
        let (unit, loc) = unit::unit(ctx, kind, u);
        w.located.units.insert(u.key.clone(), loc);
        w.config.units.insert(u.key.clone(), unit);
    }
}

/// Reports a bad unit name, and a name already taken (then `false`: the unit is
/// not read).
fn new_unit_name(ctx: &mut Ctx, kind: UnitKind, u: &Entry, located: &Located) -> bool {
    let pos = u.key_pos();
    let seg = path_seg(&u.key);
    if !is_name(&u.key) {
        ctx.diag.error(
            pos,
            format!(
                "bad unit name {:?} in [{}.{seg}]: a name may only hold letters, digits, `_`, `.` and `-`",
                u.key,
                kind.as_str(),
            ),
        );
    }
    let Some(prev) = located.units.get(&u.key) else {
        return true;
    };
    let line = ctx.diag.place_of(prev.pos);
    ctx.diag.error(
        pos,
        format!(
            "duplicate unit name `{}`: [{}.{seg}] and [{}.{seg}] ({line}); names are unique across services and tasks",
            u.key,
            kind.as_str(),
            prev.kind.as_str(),
        ),
    );
    false
}

/// An opened table: its entries and its dotted path for messages.
pub(super) struct Tbl<'n> {
    path: String,
    entries: &'n [Entry],
}

impl<'n> Tbl<'n> {
    /// Opens `node` as a table whose keys must be in `known`; unknown keys are
    /// errors. `what` and `example` make the message when it is not a table.
    pub fn open(
        ctx: &mut Ctx,
        node: &'n Node,
        path: &str,
        known: &[&str],
        what: &str,
        example: &str,
    ) -> Option<Tbl<'n>> {
        let Val::Table(entries) = &node.val else {
            ctx.diag.error(
                node.pos(),
                format!(
                    "{what}: expected a table like {example}, found {}",
                    node.found()
                ),
            );
            return None;
        };
        for e in entries.iter().filter(|e| !known.contains(&e.key.as_str())) {
            let pos = e.key_span.as_ref().map(|r| r.start).unwrap_or(node.pos());
            let hint = match did_you_mean(&e.key, known.iter().copied()) {
                // `include` under the first `[table]`: TOML puts it in that table.
                _ if e.key == "include" && !path.is_empty() => {
                    "; `include` is a top-level key: write it before the first [table]".to_string()
                }
                h if !h.is_empty() => h,
                _ => format!("; known keys: {}", known.join(", ")),
            };
            let place = if path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in {}", table_name(path))
            };
            ctx.diag
                .error(pos, format!("unknown key `{}` {place}{hint}", e.key));
        }
        Some(Tbl {
            path: path.to_string(),
            entries,
        })
    }

    /// The value of `key`, when written.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.node)
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &'n [Entry] {
        self.entries
    }

    /// `` `key` in [path] `` for messages.
    pub fn desc(&self, key: &str) -> String {
        key_desc(&self.path, key)
    }

    /// The duration under `key`, or `default` when it is not written or wrong.
    pub fn duration_or(&self, ctx: &mut Ctx, key: &str, default: Duration) -> Duration {
        match self.get(key) {
            Some(n) => ctx.duration(n, &self.desc(key)).unwrap_or(default),
            None => default,
        }
    }

    /// Reads each of `keys` that this table has, in the order of `keys`, into `draft`.
    pub fn read<'k, D: 'k>(
        &self,
        ctx: &mut Ctx,
        keys: impl IntoIterator<Item = &'k Key<D>>,
        draft: &mut D,
    ) {
        for k in keys {
            if let Some(node) = self.get(k.name) {
                let slot = Slot {
                    node,
                    what: self.desc(k.name),
                    sub: format!("{}.{}", self.path, k.name),
                };
                (k.read)(ctx, &slot, draft);
            }
        }
    }
}

/// One key a table knows: its name, and how its value is read into the draft `D`
/// (the model value being filled in, with what the cross-table checks need).
pub(super) struct Key<D> {
    pub name: &'static str,
    pub read: fn(&mut Ctx, &Slot, &mut D),
}

/// What a [`Key`]'s reader gets.
pub(super) struct Slot<'n> {
    /// The value.
    pub node: &'n Node,
    /// The key for messages: "`stop_signal` in [service.web]".
    pub what: String,
    /// The dotted path of the value as a table ("service.web.ready").
    pub sub: String,
}

/// The names of `keys`, in order (the known keys of their table).
pub(super) fn names<D>(keys: &[Key<D>]) -> Vec<&'static str> {
    keys.iter().map(|k| k.name).collect()
}

/// Stores a value that was read; a value that was not (an error) leaves the default.
pub(super) fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
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
