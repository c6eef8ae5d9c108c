//! `GET /v1/units/{target}/logs` and `GET /v1/logs?units=a,b`: the ring buffers
//! of one unit or of several, merged in the order bosun read the lines
//! ([`bosun_core::output::merged`]), as NDJSON [`UnitLogLine`]s; with `follow`,
//! each new line as it comes.
//!
//! Bounded on every side: the backlog is pointers into the rings (bounded by
//! `log_buffer` per unit) and goes out in chunks as fast as the client reads
//! them, never as one buffer; live lines come through bounded broadcast
//! channels, so a slow client is told how many lines it missed and bosun never
//! waits for it (a TCP client that stops reading is ended by `stall.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use bosun_core::output::{merged, Live, Merged, Missed, Tagged, MAX_BACKLOG};
use bosun_core::status::now_ms;
use bosun_core::unit::UnitHandle;
use bosun_core::ActError;
use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;
use tokio::sync::mpsc;

use super::body::Body;
use super::error::ApiError;
use super::Ctx;
use crate::protocol::{LogLine, Stream, UnitLogLineRef};

/// Chunk size when sending a log backlog: big enough to be cheap, small
/// enough to start arriving at once.
const LOG_CHUNK: usize = 32 * 1024;

/// The unit name on the lines bosun writes into a stream of several units.
const BOSUN: &str = "bosun";

/// `GET /v1/units/{target}/logs?n=100&since=10m&follow=1`: a unit, a service with
/// `instances` (all of them), `all` or `role:NAME`.
pub(super) fn unit_logs(
    ctx: &Arc<Ctx>,
    target: &str,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let units = units_of(ctx, target)?;
    respond(ctx, &units, query)
}

/// `GET /v1/logs?units=web,worker,role:db&n=&since=&follow=`: several targets at once.
pub(super) fn logs(
    ctx: &Arc<Ctx>,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let targets = query.get("units").map(String::as_str).unwrap_or("");
    let mut units: Vec<UnitHandle> = Vec::new();
    for t in targets.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        for u in units_of(ctx, t)? {
            if !units.iter().any(|x| x.config.name == u.config.name) {
                units.push(u);
            }
        }
    }
    if units.is_empty() {
        return Err(ApiError::NoLogUnits);
    }
    respond(ctx, &units, query)
}

/// The units whose logs `target` names: the unit itself (active or not: its
/// ring may hold lines from before a reload), every instance of a service with
/// `instances`, or, for `all` and `role:NAME`, the active units (tasks too: their
/// output is often what is looked for).
fn units_of(ctx: &Ctx, target: &str) -> Result<Vec<UnitHandle>, ActError> {
    if let Some(u) = ctx.handle.unit(target) {
        return Ok(vec![u]);
    }
    if let Some(names) = ctx.handle.instances_of(target) {
        return Ok(names.iter().filter_map(|n| ctx.handle.unit(n)).collect());
    }
    let role = target.strip_prefix("role:");
    if target != "all" && role.is_none() {
        return Err(ActError::NoSuchUnit(target.to_string()));
    }
    let units: Vec<UnitHandle> = ctx
        .handle
        .unit_names()
        .iter()
        .filter_map(|n| ctx.handle.unit(n))
        .filter(|u| u.is_active() && role.is_none_or(|r| u.config.roles.iter().any(|x| x == r)))
        .collect();
    if units.is_empty() {
        return Err(match role {
            Some(r) => ActError::NoUnitWithRole(r.to_string()),
            None => ActError::NoActiveUnit,
        });
    }
    Ok(units)
}

fn respond(
    ctx: &Arc<Ctx>,
    units: &[UnitHandle],
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let n = match query.get("n").map(|n| n.parse::<usize>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err(ApiError::BadLineCount),
    };
    let since_ms = match query.get("since") {
        None => None,
        Some(s) => {
            let d = bosun_config::value::parse_duration(s)
                .ok_or_else(|| ApiError::BadSince(s.clone()))?;
            Some(now_ms().saturating_sub(d.as_millis() as u64))
        }
    };
    let follow = query
        .get("follow")
        .is_some_and(|f| matches!(f.as_str(), "1" | "true" | "yes" | ""));
    let logs: Vec<_> = units.iter().map(|u| u.log.clone()).collect();
    let m = merged(&logs, n, since_ms, follow);
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(stream(m, tx, ctx.stopping.clone()));
    let mut r = Response::new(Body::Stream(rx));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Appends one line as NDJSON.
fn push(buf: &mut Vec<u8>, unit: &str, line: &LogLine) {
    if serde_json::to_writer(&mut *buf, &UnitLogLineRef { unit, line }).is_ok() {
        buf.push(b'\n');
    }
}

/// Sends the backlog in chunks, then (following) live lines, until the client
/// hangs up (the body, and so `tx`, is dropped) or bosun stops.
async fn stream(m: Merged, tx: mpsc::Sender<Bytes>, stopping: tokio_util::sync::CancellationToken) {
    let Merged {
        backlog,
        mut live,
        left_out,
    } = m;
    // Where "lines skipped" goes: one unit's stream, under its name (as it always
    // did); several, under bosun's.
    let note_unit: Arc<str> = match &live {
        Live::One(u, _) => u.clone(),
        _ => Arc::from(BOSUN),
    };
    let mut buf = Vec::new();
    if left_out > 0 {
        let note = LogLine {
            at_ms: now_ms(),
            seq: 0,
            stream: Stream::Stderr,
            text: format!(
                "bosun: {left_out} earlier lines not shown (at most {MAX_BACKLOG} at once); use -n or --since"
            ),
        };
        push(&mut buf, BOSUN, &note);
    }
    for t in &backlog {
        push(&mut buf, &t.unit, &t.line);
        if buf.len() >= LOG_CHUNK
            && tx
                .send(Bytes::from(std::mem::take(&mut buf)))
                .await
                .is_err()
        {
            return;
        }
    }
    // The rings may drop these lines meanwhile: the follower should not keep them.
    drop(backlog);
    if !buf.is_empty() && tx.send(Bytes::from(buf)).await.is_err() {
        return;
    }
    loop {
        let got = tokio::select! {
            r = live.recv() => r,
            _ = tx.closed() => return,
            _ = stopping.cancelled() => return,
        };
        let (unit, line) = match got {
            Ok(Tagged { unit, line }) => (unit, line),
            Err(Missed::Lagged(n)) => {
                let note = LogLine {
                    at_ms: now_ms(),
                    seq: 0,
                    stream: Stream::Stderr,
                    text: format!("bosun: {n} lines skipped here: this reader was too slow"),
                };
                (note_unit.clone(), Arc::new(note))
            }
            Err(Missed::Closed) => return,
        };
        let mut one_line = Vec::with_capacity(line.text.len() + 96);
        push(&mut one_line, &unit, &line);
        if tx.send(Bytes::from(one_line)).await.is_err() {
            return;
        }
    }
}
