//! `[snapshot]`: where snapshots are kept, the daily series, `[snapshot.paths]`.

use indexmap::IndexMap;

use super::{is_name, key_desc, names, set, Key, Located, Slot, Tbl};
use crate::model::SnapshotConfig;
use crate::read::Ctx;
use crate::tree::{Node, Val};
use crate::value::{check_store, parse_time_of_day};

/// `[snapshot]` as it is read.
struct Draft {
    s: SnapshotConfig,
    /// Where each `[snapshot.paths]` item is named.
    paths_at: IndexMap<String, usize>,
}

const STORE_HINT: &str =
    "expected a store like \"file:///var/lib/bosun/backup\" or \"s3://bucket/prefix\"";

/// The keys of `[snapshot]`, in the order they are read and listed in messages.
const KEYS: &[Key<Draft>] = &[
    Key {
        name: "store",
        read: store,
    },
    Key {
        name: "create_store",
        read: create_store,
    },
    Key {
        name: "s3_endpoint",
        read: s3_endpoint,
    },
    Key {
        name: "s3_region",
        read: |c, k, d| {
            let region = c.optional(k.node, &k.what, "a region like \"us-east-1\"");
            set(&mut d.s.s3_region, region);
        },
    },
    Key {
        name: "keep_last",
        read: |c, k, d| set(&mut d.s.keep_last, c.uint(k.node, &k.what, 1)),
    },
    Key {
        name: "keep_daily",
        read: |c, k, d| set(&mut d.s.keep_daily, c.uint(k.node, &k.what, 0)),
    },
    Key {
        name: "keep_weekly",
        read: |c, k, d| set(&mut d.s.keep_weekly, c.uint(k.node, &k.what, 0)),
    },
    Key {
        name: "keep_monthly",
        read: |c, k, d| set(&mut d.s.keep_monthly, c.uint(k.node, &k.what, 0)),
    },
    Key {
        name: "encrypt_to",
        read: encrypt_to,
    },
    Key {
        name: "identity_file",
        read: |c, k, d| d.s.identity_file = c.optional_path(k.node, &k.what),
    },
    Key {
        name: "verify_after_commit",
        read: |c, k, d| set(&mut d.s.verify_after_commit, c.boolean(k.node, &k.what)),
    },
    Key {
        name: "writer_stale_after",
        read: writer_stale_after,
    },
    Key {
        name: "daily_at",
        read: daily_at,
    },
    Key {
        name: "paths",
        read: paths,
    },
];

/// `[snapshot]`; `None` when it is not a table.
pub(super) fn snapshot(
    ctx: &mut Ctx,
    node: &Node,
    located: &mut Located,
) -> Option<SnapshotConfig> {
    let example = "{ store = \"file:///var/lib/bosun/backup\" }";
    let t = Tbl::open(ctx, node, "snapshot", &names(KEYS), "`snapshot`", example)?;
    let mut d = Draft {
        s: SnapshotConfig::unread(),
        paths_at: IndexMap::new(),
    };
    if t.get("store").is_none() {
        ctx.diag.error(
            node.pos(),
            format!("missing `store` in [snapshot]: {STORE_HINT}"),
        );
    }
    t.read(ctx, KEYS, &mut d);
    located.snapshot_paths = d.paths_at;
    Some(d.s)
}

fn store(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let Some(v) = ctx.nonempty(k.node, &k.what, STORE_HINT) else {
        return;
    };
    let v = v.trim().to_string();
    if let Err(why) = check_store(&v) {
        let found = ctx.found_interp(k.node, &v);
        ctx.diag.error(
            k.node.pos(),
            format!("{}: {STORE_HINT}, found {found}: {why}", k.what),
        );
    }
    d.s.store = v;
}

/// Only a `file://` store can be created (checked after `store`, read first).
fn create_store(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    set(&mut d.s.create_store, ctx.boolean(k.node, &k.what));
    let s = &d.s;
    if s.create_store && !s.store.starts_with("file://") && !s.store.is_empty() {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: only a file:// store can be created; an s3:// bucket must exist already (remove the key)",
                k.what
            ),
        );
    }
}

fn s3_endpoint(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let expected = "an endpoint URL like \"http://127.0.0.1:3900\"";
    let Some(v) = ctx.optional(k.node, &k.what, expected) else {
        return;
    };
    if v.starts_with("http://") || v.starts_with("https://") {
        d.s.s3_endpoint = Some(v);
    } else {
        let found = ctx.diag.quote(&v);
        ctx.diag.error(k.node.pos(), format!("{}: expected an endpoint URL like \"http://127.0.0.1:3900\" or \"https://s3.example.com\", found {found}", k.what));
    }
}

/// `encrypt_to`: `age1…` recipients (checked for shape here; a file's content and a
/// key's checksum when bosun starts) or paths of recipients files.
fn encrypt_to(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let example = "[\"age1…\", \"/run/secrets/backup.recipients\"]";
    let list = ctx.string_list(k.node, &k.what, example);
    if list.is_empty() && matches!(k.node.val, Val::Array(_)) {
        ctx.diag.error(
            k.node.pos(),
            format!("{}: the list is empty; remove the key for no encryption, or name a recipient like {example}", k.what),
        );
    }
    for (v, pos) in list {
        let v = v.trim().to_string();
        if let Some(rest) = v.strip_prefix("age1") {
            let ok = rest.len() > 6
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                let found = ctx.diag.quote(&v);
                ctx.diag.error(pos, format!("{}: {found} is not an age X25519 recipient (expected \"age1\" and lowercase bech32, as `age-keygen -y` prints)", k.what));
                continue;
            }
            d.s.encrypt_to.push(v);
        } else if v.starts_with("AGE-SECRET-KEY-") {
            ctx.diag.error(pos, format!("{}: this is a secret key (an identity), not a recipient: put the identity in identity_file and its public key (`age-keygen -y FILE`) here", k.what));
        } else if v.is_empty() {
            ctx.diag.error(
                pos,
                format!("{}: an empty recipient; expected {example}", k.what),
            );
        } else {
            d.s.encrypt_to.push(ctx.path_str(pos, &v));
        }
    }
}

fn writer_stale_after(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let Some(v) = ctx.duration(k.node, &k.what) else {
        return;
    };
    if v < std::time::Duration::from_secs(10) {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: at least 10s (the marker is refreshed every third of it), found {v:?}",
                k.what
            ),
        );
        return;
    }
    d.s.writer_stale_after = v;
}

fn daily_at(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let Some(v) = ctx.optional(k.node, &k.what, "a time \"HH:MM\"") else {
        return;
    };
    d.s.daily_at = parse_time_of_day(&v);
    if d.s.daily_at.is_none() {
        let found = ctx.diag.quote(&v);
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: expected a UTC time of day \"HH:MM\" like \"06:00\", found {found}",
                k.what
            ),
        );
    }
}

/// `[snapshot.paths]`: item name → file or directory.
fn paths(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let Val::Table(entries) = &k.node.val else {
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: expected a table like {{ files = \"/srv/files\" }}, found {}",
                k.what,
                k.node.found()
            ),
        );
        return;
    };
    for e in entries {
        let pos = e.key_pos();
        if !is_name(&e.key) {
            ctx.diag.error(
                pos,
                format!(
                    "bad item name {:?} in [snapshot.paths]: use letters, digits, `_`, `.` and `-`",
                    e.key
                ),
            );
        }
        if let Some(p) = ctx.path(&e.node, &key_desc("snapshot.paths", &e.key)) {
            d.s.paths.insert(e.key.clone(), p);
            d.paths_at.insert(e.key.clone(), pos);
        }
    }
}
