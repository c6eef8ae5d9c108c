//! A service's `ready` and `health` tables and the one probe each may hold.

use super::Tbl;
use crate::model::{Health, Probe, Ready};
use crate::read::{regex_error, Ctx};
use crate::tree::{Entry, Node};
use crate::value::is_host_port;

const PROBE_KEYS: &[&str] = &["tcp", "http", "exec", "postgres", "file", "log", "notify"];

/// `[service.NAME.ready]` (`path`): a probe, its timeout and interval.
pub(super) fn ready(ctx: &mut Ctx, node: &Node, path: &str) -> Ready {
    const KEYS: &[&str] = &[
        "tcp", "http", "exec", "postgres", "file", "log", "notify", "timeout", "interval",
    ];
    let mut r = Ready::default();
    let example = "{ tcp = \"127.0.0.1:6379\", timeout = \"60s\" }";
    let Some(t) = Tbl::open(ctx, node, path, KEYS, &format!("[{path}]"), example) else {
        return r;
    };
    r.probe = probe(ctx, &t, path, true);
    r.timeout = t.duration_or(ctx, "timeout", r.timeout);
    r.interval = t.duration_or(ctx, "interval", r.interval);
    if r.interval.is_zero() {
        if let Some(n) = t.get("interval") {
            ctx.diag.error(
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

/// `[service.NAME.health]` (`path`): a probe (not `log` nor `notify`), its
/// interval, timeout and the failures that restart the unit.
pub(super) fn health(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Health> {
    const KEYS: &[&str] = &[
        "tcp", "http", "exec", "postgres", "file", "log", "notify", "interval", "timeout",
        "failures",
    ];
    let example = "{ http = \"http://127.0.0.1:8080/health\", interval = \"10s\" }";
    let t = Tbl::open(ctx, node, path, KEYS, &format!("[{path}]"), example)?;
    for key in ["log", "notify"] {
        if let Some(n) = t.get(key) {
            ctx.diag.error(
                n.pos(),
                format!("{}: a `{key}` probe can only tell readiness, not health; health probes are tcp, http, exec, postgres or file", t.desc(key)),
            );
            return None;
        }
    }
    let Some(probe) = probe(ctx, &t, path, false) else {
        if !t
            .entries()
            .iter()
            .any(|e| PROBE_KEYS.contains(&e.key.as_str()))
        {
            ctx.diag.error(
                node.pos(),
                format!("[{path}] has no probe: give one of tcp, http, exec, postgres or file"),
            );
        }
        return None;
    };
    let mut h = Health::of(probe);
    h.interval = t.duration_or(ctx, "interval", h.interval);
    h.timeout = t.duration_or(ctx, "timeout", h.timeout);
    if let Some(n) = t.get("failures") {
        h.failures = ctx.uint(n, &t.desc("failures"), 1).unwrap_or(h.failures);
    }
    if h.interval.is_zero() {
        ctx.diag.error(
            t.get("interval").map(Node::pos).unwrap_or(node.pos()),
            format!("`interval` in [{path}] must be more than 0"),
        );
    }
    Some(h)
}

/// The one probe of a `ready` or `health` table (`None`: none given, or an error).
fn probe(ctx: &mut Ctx, t: &Tbl, path: &str, for_ready: bool) -> Option<Probe> {
    let given: Vec<&Entry> = t
        .entries()
        .iter()
        .filter(|e| PROBE_KEYS.contains(&e.key.as_str()))
        .collect();
    if given.len() > 1 {
        let names: Vec<String> = given.iter().map(|e| format!("`{}`", e.key)).collect();
        ctx.diag.error(
            given[1].key_pos(),
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
        "tcp" => tcp(ctx, n, &what),
        "http" => {
            let s = ctx.nonempty(n, &what, "an http:// URL")?;
            ctx.http_url(n, &what, &s).then_some(Probe::Http(s))
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
        "log" if for_ready => log(ctx, n, &what),
        "notify" if for_ready => match ctx.boolean(n, &what)? {
            true => Some(Probe::Notify),
            false => {
                ctx.diag.error(n.pos(), format!("{what}: only `notify = true` makes sense; leave the probe out to use start_secs"));
                None
            }
        },
        _ => None,
    }
}

fn tcp(ctx: &mut Ctx, n: &Node, what: &str) -> Option<Probe> {
    let s = ctx.nonempty(n, what, "an address like \"127.0.0.1:6379\"")?;
    if !is_host_port(&crate::instance::sample(&s)) {
        let found = ctx.diag.quote(&s);
        ctx.diag.error(
            n.pos(),
            format!(
                "{what}: expected an address like \"127.0.0.1:6379\" (host:port), found {found}"
            ),
        );
        return None;
    }
    Some(Probe::Tcp(s))
}

fn log(ctx: &mut Ctx, n: &Node, what: &str) -> Option<Probe> {
    let s = ctx.nonempty(n, what, "a regular expression")?;
    match regex::Regex::new(&s) {
        Ok(_) => Some(Probe::Log(s)),
        Err(err) => {
            let detail = regex_error(&err);
            let found = ctx.diag.quote(&s);
            ctx.diag.error(
                n.pos(),
                format!("{what}: invalid regular expression {found}: {detail}"),
            );
            None
        }
    }
}
