//! `[fleet]`: several containers coordinated through PostgreSQL (contract v2). The
//! timing rules that involve the units (a singleton's `stop_timeout` against
//! `lease_ttl`) are `bosun_fleet::validate`'s, called by `bosun check` and `bosun run`.

use super::{names, set, Key, Slot, Tbl};
use crate::model::FleetConfig;
use crate::read::Ctx;
use crate::tree::Node;

/// The keys of `[fleet]`, in the order they are read and listed in messages.
const KEYS: &[Key<FleetConfig>] = &[
    Key {
        name: "database",
        read: database,
    },
    Key {
        name: "name",
        read: |c, k, d| {
            let v = c.string(k.node, &k.what, "a peer name like \"web-1\"");
            set(&mut d.name, v.map(|s| s.trim().to_string()));
        },
    },
    Key {
        name: "url",
        read: |c, k, d| {
            let v = c.string(k.node, &k.what, "a URL like \"http://10.0.0.5:9001\"");
            set(&mut d.url, v.map(|s| s.trim().to_string()));
        },
    },
    Key {
        name: "lease_ttl",
        read: |c, k, d| set(&mut d.lease_ttl, nonzero(c, k)),
    },
    Key {
        name: "renew_every",
        read: |c, k, d| set(&mut d.renew_every, nonzero(c, k)),
    },
    Key {
        name: "schema",
        read: |c, k, d| {
            let v = c.nonempty(k.node, &k.what, "a schema name like \"bosun\"");
            set(&mut d.schema, v.map(|s| s.trim().to_string()));
        },
    },
];

/// `[fleet]`; `None` when it is not a table.
pub(super) fn fleet(ctx: &mut Ctx, node: &Node) -> Option<FleetConfig> {
    let example = "{ database = \"${FLEET_DATABASE_URL:-}\" }";
    let t = Tbl::open(ctx, node, "fleet", &names(KEYS), "`fleet`", example)?;
    let mut f = FleetConfig::default();
    t.read(ctx, KEYS, &mut f);
    Some(f)
}

/// `database`: empty means no fleet; else a `postgres://` URL or a libpq conninfo
/// (parsed fully by `bosun_fleet::validate`).
fn database(ctx: &mut Ctx, k: &Slot, d: &mut FleetConfig) {
    let hint = "a URL like \"postgres://bosun@db:5432/app\", or empty for no fleet";
    if let Some(v) = ctx.string(k.node, &k.what, hint) {
        d.database = v.trim().to_string();
    }
}

/// A duration that must not be zero.
fn nonzero(ctx: &mut Ctx, k: &Slot) -> Option<std::time::Duration> {
    let d = ctx.duration(k.node, &k.what)?;
    if d.is_zero() {
        ctx.diag.error(
            k.node.pos(),
            format!("{}: must be more than 0, like \"5s\"", k.what),
        );
        return None;
    }
    Some(d)
}
