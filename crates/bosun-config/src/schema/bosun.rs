//! `[bosun]` (daemon-wide settings) and `[roles]` (role aliases).

use indexmap::IndexMap;

use super::{is_name, key_desc, names, set, Key, Located, Slot, Tbl};
use crate::model::Settings;
use crate::read::Ctx;
use crate::tree::{Node, Val};
use crate::value::is_host_port;

/// `[bosun]` as it is read.
struct Draft {
    s: Settings,
    /// Where `roles_default` is written (checked once every role is known).
    roles_default_at: Option<usize>,
}

/// The keys of `[bosun]`, in the order they are read and listed in messages.
const KEYS: &[Key<Draft>] = &[
    Key {
        name: "roles_env",
        read: roles_env,
    },
    Key {
        name: "roles_default",
        read: |c, k, d| {
            let expected = "a role expression like \"all\" or \"web:celery\"";
            if let Some(v) = c.nonempty(k.node, &k.what, expected) {
                d.s.roles_default = v.trim().to_string();
                d.roles_default_at = Some(k.node.pos());
            }
        },
    },
    Key {
        name: "stop_budget",
        read: |c, k, d| set(&mut d.s.stop_budget, c.duration(k.node, &k.what)),
    },
    Key {
        name: "control_socket",
        read: |c, k, d| set(&mut d.s.control_socket, c.path(k.node, &k.what)),
    },
    Key {
        name: "control_group",
        read: |c, k, d| d.s.control_group = c.optional(k.node, &k.what, "a group name"),
    },
    Key {
        name: "state_dir",
        read: |c, k, d| set(&mut d.s.state_dir, c.path(k.node, &k.what)),
    },
    Key {
        name: "http_listen",
        read: http_listen,
    },
    Key {
        name: "http_token_file",
        read: |c, k, d| d.s.http_token_file = c.optional_path(k.node, &k.what),
    },
    Key {
        name: "log_buffer",
        read: |c, k, d| set(&mut d.s.log_buffer, c.size(k.node, &k.what)),
    },
    Key {
        name: "log_file",
        read: |c, k, d| d.s.log_file = c.optional_path(k.node, &k.what),
    },
    Key {
        name: "sweep_timeout",
        read: |c, k, d| set(&mut d.s.sweep_timeout, c.duration(k.node, &k.what)),
    },
];

/// `[bosun]`.
pub(super) fn settings(ctx: &mut Ctx, node: &Node, located: &mut Located) -> Settings {
    let mut d = Draft {
        s: Settings::default(),
        roles_default_at: None,
    };
    let example = "{ stop_budget = \"570s\" }";
    let Some(t) = Tbl::open(ctx, node, "bosun", &names(KEYS), "`bosun`", example) else {
        return d.s;
    };
    t.read(ctx, KEYS, &mut d);
    located.roles_default = d.roles_default_at;
    if d.s.http_listen.is_some() && d.s.http_token_file.is_none() {
        ctx.diag.warn(
            node.pos(),
            "[bosun] http_listen is set without http_token_file: the token must come from $BOSUN_HTTP_TOKEN, or bosun refuses to start",
        );
    }
    d.s
}

fn roles_env(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let Some(v) = ctx.nonempty(k.node, &k.what, "an environment variable name") else {
        return;
    };
    let ok = v
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if ok {
        d.s.roles_env = v;
    } else {
        let found = ctx.diag.quote(&v);
        ctx.diag.error(
            k.node.pos(),
            format!(
                "{}: expected an environment variable name like \"CONTAINERROLE\", found {found}",
                k.what
            ),
        );
    }
}

fn http_listen(ctx: &mut Ctx, k: &Slot, d: &mut Draft) {
    let expected = "an address like \"0.0.0.0:9001\"";
    let Some(v) = ctx.optional(k.node, &k.what, expected) else {
        return;
    };
    if is_host_port(&v) {
        d.s.http_listen = Some(v);
    } else {
        let found = ctx.found_interp(k.node, &v);
        ctx.diag.error(
            k.node.pos(),
            format!("{}: expected {expected}, found {found}", k.what),
        );
    }
}

/// `[roles]`: alias name → the roles (or aliases) it stands for.
pub(super) fn roles(
    ctx: &mut Ctx,
    node: &Node,
    located: &mut Located,
) -> IndexMap<String, Vec<String>> {
    let mut out = IndexMap::new();
    let Val::Table(entries) = &node.val else {
        ctx.diag.error(node.pos(), format!("`roles`: expected a table of aliases like {{ backend = [\"sql\", \"redis\"] }}, found {}", node.found()));
        return out;
    };
    for e in entries {
        let pos = e.key_pos();
        if !is_name(&e.key) || e.key == "all" {
            ctx.diag.error(
                pos,
                format!("bad role alias name {:?} in [roles]: use letters, digits, `_`, `.` and `-` (and not `all`, which means every role)", e.key),
            );
        }
        let what = key_desc("roles", &e.key);
        let members = ctx.string_list(&e.node, &what, "[\"sql\", \"redis\"]");
        if matches!(&e.node.val, Val::Array(a) if a.is_empty()) {
            ctx.diag.error(
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
