//! `bosun ctl fleet …`: the fleet's peers and singletons, and fleet-wide commands
//! (one row per peer).

use std::time::Duration;

use bosun_core::status::now_ms;

use super::http::{Client, Unreachable};
use super::{api_error, get_json, out};
use crate::protocol::paths;
use crate::protocol::{FleetCommandReply, FleetCommandRequest, FleetStatus};

/// `ctl fleet [status]`.
pub(super) fn status(client: &Client, json: bool) -> Result<i32, Unreachable> {
    let st: FleetStatus = match get_json(client, paths::FLEET)? {
        Ok(s) => s,
        Err((_, e)) => {
            eprintln!("bosun ctl: {e}");
            return Ok(1);
        }
    };
    if json {
        let _ = out(format!(
            "{}\n",
            serde_json::to_string_pretty(&st).unwrap_or_default()
        )
        .as_bytes());
        return Ok(0);
    }
    let _ = out(text(&st).as_bytes());
    Ok(0)
}

/// The `ctl fleet` tables.
fn text(st: &FleetStatus) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let db = if st.database_up { "up" } else { "DOWN" };
    let _ = writeln!(s, "fleet: {} as {} (database {db})", st.database, st.name);
    if let Some(e) = &st.last_error {
        let _ = writeln!(s, "last error: {e}");
    }
    let _ = writeln!(
        s,
        "\n{:<24} {:<16} {:<28} {:<8} {:<5} LAST SEEN",
        "PEER", "ROLES", "URL", "VERSION", "STATE"
    );
    for p in &st.peers {
        let name = if p.me {
            format!("{} *", p.name)
        } else {
            p.name.clone()
        };
        let _ = writeln!(
            s,
            "{:<24} {:<16} {:<28} {:<8} {:<5} {:.1}s ago",
            name,
            p.roles.join(":"),
            if p.url.is_empty() { "-" } else { &p.url },
            p.version,
            p.state,
            p.last_seen_ago_ms as f64 / 1000.0
        );
    }
    let _ = writeln!(
        s,
        "\n{:<24} {:<24} {:<8} SINCE",
        "SINGLETON", "HOLDER", "TERM"
    );
    let now = now_ms();
    for l in &st.singletons {
        let holder = if l.held {
            l.holder.clone()
        } else {
            format!("({} expired)", l.holder)
        };
        let _ = writeln!(
            s,
            "{:<24} {:<24} {:<8} {}s ago",
            l.unit,
            holder,
            l.term,
            now.saturating_sub(l.since_ms) / 1000
        );
    }
    s
}

/// `ctl fleet restart|start|stop|run`: one row per peer.
pub(super) fn command(
    client: &Client,
    action: &str,
    target: &str,
    wait: Option<Duration>,
    json: bool,
) -> Result<i32, Unreachable> {
    let req = FleetCommandRequest {
        action: action.to_string(),
        target: target.to_string(),
        timeout: wait.map(|d| format!("{}ms", d.as_millis())),
    };
    let body = serde_json::to_vec(&req).unwrap_or_default();
    let resp = client.request("POST", paths::FLEET_COMMANDS, Some(&body))?;
    let status = resp.status;
    let bytes = resp.bytes()?;
    if status != 200 {
        eprintln!("bosun ctl: {}", api_error(status, &bytes));
        return Ok(1);
    }
    let report: FleetCommandReply = serde_json::from_slice(&bytes)
        .map_err(|e| Unreachable(format!("cannot read bosun's answer: {e}")))?;
    if json {
        let _ = out(&bytes);
    } else {
        let _ = out(rows(&report).as_bytes());
    }
    let someone_has_it = report
        .rows
        .iter()
        .any(|r| r.expected && r.state != "no-such-unit");
    if !someone_has_it {
        eprintln!("bosun ctl: no live peer has {target}");
        return Ok(1);
    }
    Ok(if report.succeeded { 0 } else { 1 })
}

/// One row per peer of a fleet command's report.
fn rows(r: &FleetCommandReply) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "fleet command {}: {} {}", r.id, r.action, r.target);
    let _ = writeln!(s, "{:<24} RESULT", "PEER");
    for row in &r.rows {
        let mut result = match (row.state.as_str(), row.exit_code) {
            ("ok", Some(c)) => format!("ok (exit {c})"),
            ("ok", None) => "ok".to_string(),
            ("failed", Some(c)) => format!("failed (exit {c})"),
            ("no-such-unit", _) => "no such unit here".to_string(),
            ("pending", _) if !row.live => "unreachable (runs it when it is back)".to_string(),
            ("pending", _) => "pending (no answer yet; it still runs it)".to_string(),
            (other, _) => other.to_string(),
        };
        if !row.detail.is_empty() && row.state != "ok" {
            let _ = write!(result, ": {}", row.detail);
        }
        let _ = writeln!(s, "{:<24} {result}", row.peer);
    }
    s
}
