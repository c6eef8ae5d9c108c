//! `[hooks]`: commands run on events (`on_fatal = "…"`, one key per event), their
//! `timeout`, and `[hooks.webhook]`, the event's JSON posted to an http URL.

use std::time::Duration;

use indexmap::IndexMap;

use super::{names, set, Key, Slot, Tbl};
use crate::diag::did_you_mean;
use crate::model::{HooksConfig, Webhook, HOOK_EVENTS};
use crate::read::Ctx;
use crate::tree::Node;

/// Most attempts after the first a webhook may make: a pager that is down must
/// not keep bosun busy for long.
const MAX_RETRIES: u32 = 10;

/// The keys of `[hooks]`, in the order they are read and listed in messages.
const KEYS: &[Key<HooksConfig>] = &[
    Key {
        name: "on_fatal",
        read: |c, k, d| on_event(c, k, d, "fatal"),
    },
    Key {
        name: "on_backup_failed",
        read: |c, k, d| on_event(c, k, d, "backup_failed"),
    },
    Key {
        name: "on_boot_failed",
        read: |c, k, d| on_event(c, k, d, "boot_failed"),
    },
    Key {
        name: "on_stop_over_budget",
        read: |c, k, d| on_event(c, k, d, "stop_over_budget"),
    },
    Key {
        name: "timeout",
        read: |c, k, d| set(&mut d.timeout, nonzero(c, k)),
    },
    Key {
        name: "webhook",
        read: |c, k, d| d.webhook = webhook(c, k.node),
    },
];

/// The keys of `[hooks.webhook]`.
const WEBHOOK_KEYS: &[Key<Webhook>] = &[
    Key {
        name: "url",
        read: url,
    },
    Key {
        name: "events",
        read: events,
    },
    Key {
        name: "token_file",
        read: |c, k, d| d.token_file = c.optional_path(k.node, &k.what),
    },
    Key {
        name: "retries",
        read: retries,
    },
    Key {
        name: "timeout",
        read: |c, k, d| set(&mut d.timeout, nonzero(c, k)),
    },
];

/// `[hooks]`; `None` when it is not a table.
pub(super) fn hooks(ctx: &mut Ctx, node: &Node) -> Option<HooksConfig> {
    let example = "{ on_fatal = \"/usr/local/bin/page-oncall\" }";
    let t = Tbl::open(ctx, node, "hooks", &names(KEYS), "`hooks`", example)?;
    let mut h = HooksConfig {
        commands: IndexMap::new(),
        webhook: None,
        timeout: Duration::from_secs(10),
    };
    t.read(ctx, KEYS, &mut h);
    Some(h)
}

fn on_event(ctx: &mut Ctx, k: &Slot, d: &mut HooksConfig, event: &str) {
    if let Some(cmd) = ctx.command(k.node, &k.what) {
        d.commands.insert(event.to_string(), cmd);
    }
}

fn webhook(ctx: &mut Ctx, node: &Node) -> Option<Webhook> {
    let example = "{ url = \"http://alerts:9000/bosun\" }";
    let t = Tbl::open(
        ctx,
        node,
        "hooks.webhook",
        &names(WEBHOOK_KEYS),
        "`webhook` in [hooks]",
        example,
    )?;
    if t.get("url").is_none() {
        ctx.diag.error(
            node.pos(),
            "missing `url` in [hooks.webhook]: expected an http:// URL like \"http://alerts:9000/bosun\"",
        );
    }
    let mut w = Webhook {
        url: String::new(),
        events: HOOK_EVENTS.iter().map(|e| e.to_string()).collect(),
        token_file: None,
        retries: 3,
        timeout: Duration::from_secs(5),
    };
    t.read(ctx, WEBHOOK_KEYS, &mut w);
    (!w.url.is_empty()).then_some(w)
}

/// `url`: plain `http://` with a host (bosun speaks no TLS).
fn url(ctx: &mut Ctx, k: &Slot, d: &mut Webhook) {
    let hint = "an http:// URL like \"http://alerts:9000/bosun\"";
    let Some(v) = ctx.nonempty(k.node, &k.what, hint) else {
        return;
    };
    let v = v.trim().to_string();
    let host = v
        .strip_prefix("http://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let msg = match host {
        Some("") => format!("{}: the URL {} has no host", k.what, ctx.diag.quote(&v)),
        Some(_) => {
            d.url = v;
            return;
        }
        None if v.starts_with("https://") => format!(
            "{}: https is not supported (bosun speaks plain http, no TLS): use an http:// URL, for example to a local relay; found {}",
            k.what,
            ctx.diag.quote(&v)
        ),
        None => format!("{}: expected {hint}, found {}", k.what, ctx.diag.quote(&v)),
    };
    ctx.diag.error(k.node.pos(), msg);
}

/// `events`: names from [`HOOK_EVENTS`]; an empty list is an error (drop the
/// webhook instead).
fn events(ctx: &mut Ctx, k: &Slot, d: &mut Webhook) {
    let list = ctx.string_list(k.node, &k.what, "[\"fatal\", \"boot_failed\"]");
    let mut out = Vec::new();
    for (name, pos) in list {
        if HOOK_EVENTS.contains(&name.as_str()) {
            out.push(name);
            continue;
        }
        let hint = did_you_mean(&name, HOOK_EVENTS.iter().copied());
        let msg = format!(
            "{}: unknown event {}{hint} (the events are {})",
            k.what,
            ctx.diag.quote(&name),
            HOOK_EVENTS.join(", ")
        );
        ctx.diag.error(pos, msg);
    }
    if out.is_empty() && matches!(&k.node.val, crate::tree::Val::Array(a) if a.is_empty()) {
        let msg = format!(
            "{}: the list is empty, so the webhook would never be called; name events like [\"fatal\"], or remove the webhook",
            k.what
        );
        ctx.diag.error(k.node.pos(), msg);
    }
    d.events = out;
}

fn retries(ctx: &mut Ctx, k: &Slot, d: &mut Webhook) {
    let Some(n) = ctx.uint(k.node, &k.what, 0) else {
        return;
    };
    if n > MAX_RETRIES {
        let msg = format!(
            "{}: {n} retries is too many (at most {MAX_RETRIES}: hooks must not keep bosun busy)",
            k.what
        );
        ctx.diag.error(k.node.pos(), msg);
        return;
    }
    d.retries = n;
}

/// A duration that must not be zero.
fn nonzero(ctx: &mut Ctx, k: &Slot) -> Option<Duration> {
    let d = ctx.duration(k.node, &k.what)?;
    if d.is_zero() {
        ctx.diag.error(
            k.node.pos(),
            format!("{}: must be more than 0, like \"10s\"", k.what),
        );
        return None;
    }
    Some(d)
}
