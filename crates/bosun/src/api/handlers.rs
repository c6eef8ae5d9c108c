//! The API's paths: [`route`] maps a request to its handler, one handler per
//! path. Handlers only read status and call [`bosun_core::Handle`]; none runs a
//! command.
//!
//! Unit targets (`/v1/units/{target}/…`) are expanded here, on the server, so
//! that `bosun ctl`, curl and the status page all mean the same by them and one
//! request acts on a consistent set:
//!
//! - a unit name: that unit (even when it is not active: the answer is 409);
//! - `all`: every unit active in this container;
//! - `role:NAME`: every active unit whose `roles` lists NAME.
//!
//! `all` and `role:` name services only, except for `stop`, which also stops a
//! task that is running: `restart all` must not run `initialize` again. A task
//! is started again only when named.
//!
//! The units of a target are acted on concurrently: each unit's start waits
//! for its own dependencies anyway, and a stop of several units should take
//! the longest of their stop timeouts, not the sum.

use std::collections::HashMap;
use std::sync::Arc;

use bosun_core::output::{LogLine, Stream};
use bosun_core::status::{now_ms, Phase};
use bosun_core::Action;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use super::body::Body;
use super::proto::{
    parse_signal, percent_decode, signal_name, ActionReply, ErrorReply, MessageReply,
    SignalRequest, UnitResult,
};
use super::{metrics, text, Ctx};

/// The status page, embedded: no build step, no files to install.
const STATUS_PAGE: &str = include_str!("../status_page.html");

/// Largest request body read (only `signal` takes one, a few bytes).
const MAX_BODY: usize = 4096;

/// Chunk size when sending a log backlog: big enough to be cheap, small
/// enough to start arriving at once.
const LOG_CHUNK: usize = 32 * 1024;

/// Paths served on TCP without the token: probes and scrapers have no token,
/// and the page shell holds no data (its script fetches `/v1/status` with one).
pub fn is_open_path(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && matches!(path, "/health" | "/metrics" | "/")
}

/// Maps a request to its handler.
pub async fn route(ctx: &Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    // HEAD is answered like GET; hyper leaves the body out.
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let post = req.method() == Method::POST;
    match segs.as_slice() {
        [] if get => status_page(),
        ["health"] if get => health(ctx),
        ["metrics"] if get => metrics(ctx),
        ["v1", "status"] if get => status(ctx, &query),
        ["v1", "units", target, "start"] if post => unit_start(ctx, target).await,
        ["v1", "units", target, "stop"] if post => unit_stop(ctx, target).await,
        ["v1", "units", target, "restart"] if post => unit_restart(ctx, target).await,
        ["v1", "units", target, "signal"] if post => {
            let target = target.to_string();
            unit_signal(ctx, &target, &query, req).await
        }
        ["v1", "units", name, "logs"] if get => unit_logs(ctx, name, &query),
        ["v1", "shutdown"] if post => shutdown(ctx),
        ["v1", "reload"] if post => reload(ctx).await,
        ["v1", "snapshots"] if get => snapshots(ctx).await,
        ["v1", "backup"] if post => backup(ctx).await,
        // Known paths with the wrong method.
        []
        | ["health"]
        | ["metrics"]
        | ["v1", "status"]
        | ["v1", "units", _, "logs"]
        | ["v1", "snapshots"] => not_allowed("GET, HEAD"),
        ["v1", "units", _, "start" | "stop" | "restart" | "signal"]
        | ["v1", "shutdown" | "reload" | "backup"] => not_allowed("POST"),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no such path: {path} (see GET /v1/status)"),
        ),
    }
}

// ---- handlers, one per path ------------------------------------------------

/// `GET /`: the status page.
fn status_page() -> Response<Body> {
    let mut r = Response::new(Body::full(STATUS_PAGE));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Buttons that restart services must not be clickable from inside someone
    // else's frame; the page loads nothing from elsewhere.
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// `GET /health`: 200 when every active unit is ready (tasks: done), else 503;
/// the JSON `HealthReport` says why.
fn health(ctx: &Ctx) -> Response<Body> {
    let mut report = ctx.handle.status().health();
    for r in &mut report.reasons {
        *r = bosun_config::redact::redact_url(r);
    }
    let code = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(code, &report)
}

/// `GET /metrics`: Prometheus text format.
fn metrics(ctx: &Ctx) -> Response<Body> {
    let text = metrics::render(&ctx.handle.status());
    let mut r = Response::new(Body::full(text));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /v1/status`: the `DaemonStatus` JSON; with `?format=table`, the
/// `ctl status` table as text.
fn status(ctx: &Ctx, query: &HashMap<String, String>) -> Response<Body> {
    let mut st = ctx.handle.status();
    // Core already redacts what it writes into `detail`; this is the last
    // line of defence for anything that reaches the wire.
    for u in &mut st.units {
        if might_hold_credentials(&u.detail) {
            u.detail = bosun_config::redact::redact_url(&u.detail);
        }
    }
    match query.get("format").map(String::as_str) {
        None | Some("json") => json_sized(StatusCode::OK, &st, 512 + st.units.len() * 256),
        Some("table") => {
            let mut r = Response::new(Body::full(text::table(&st, now_ms())));
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Some(f) => error(
            StatusCode::BAD_REQUEST,
            format!("unknown format {f:?} (json or table)"),
        ),
    }
}

/// `POST /v1/units/{target}/start`.
async fn unit_start(ctx: &Arc<Ctx>, target: &str) -> Response<Body> {
    unit_action(ctx, target, Action::Start).await
}

/// `POST /v1/units/{target}/stop`: answers once the units have stopped.
async fn unit_stop(ctx: &Arc<Ctx>, target: &str) -> Response<Body> {
    unit_action(ctx, target, Action::Stop).await
}

/// `POST /v1/units/{target}/restart`.
async fn unit_restart(ctx: &Arc<Ctx>, target: &str) -> Response<Body> {
    unit_action(ctx, target, Action::Restart).await
}

/// `POST /v1/units/{target}/signal?sig=HUP`, or with `{"signal": "HUP"}`.
async fn unit_signal(
    ctx: &Arc<Ctx>,
    target: &str,
    query: &HashMap<String, String>,
    req: Request<Incoming>,
) -> Response<Body> {
    let given = match query.get("sig").or_else(|| query.get("signal")) {
        Some(s) => s.clone(),
        None => {
            let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("cannot read the request body: {e}"),
                    )
                }
            };
            match serde_json::from_slice::<SignalRequest>(&body) {
                Ok(r) => r.signal,
                Err(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "which signal? use ?sig=HUP or a body {\"signal\": \"HUP\"}".to_string(),
                    )
                }
            }
        }
    };
    match parse_signal(&given) {
        Some(sig) => unit_action(ctx, target, Action::Signal(sig)).await,
        None => error(
            StatusCode::BAD_REQUEST,
            format!("unknown signal {given:?} (use a name like HUP or a number 1-31)"),
        ),
    }
}

/// `GET /v1/units/{name}/logs?n=100&follow=1`: NDJSON `LogLine`s from the
/// unit's ring buffer (the last `n`, or all), then, with `follow`, each new
/// line as it comes until the client goes away or bosun stops.
fn unit_logs(ctx: &Arc<Ctx>, name: &str, query: &HashMap<String, String>) -> Response<Body> {
    let Some(unit) = ctx.handle.unit(name) else {
        return error(StatusCode::NOT_FOUND, format!("no unit named {name:?}"));
    };
    let n = match query.get("n").map(|n| n.parse::<usize>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "n must be a number of lines".to_string(),
            )
        }
    };
    let follow = query
        .get("follow")
        .is_some_and(|f| matches!(f.as_str(), "1" | "true" | "yes" | ""));
    let (lines, live) = unit.log.tail(n);
    let body = if follow {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(follow_logs(lines, live, tx, ctx.stopping.clone()));
        Body::Stream(rx)
    } else {
        drop(live);
        let mut buf = Vec::new();
        for l in &lines {
            push_ndjson(&mut buf, l);
        }
        Body::full(buf)
    };
    let mut r = Response::new(body);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /v1/shutdown`: the SIGTERM path.
fn shutdown(ctx: &Ctx) -> Response<Body> {
    tracing::info!("shutdown requested through the control API");
    ctx.handle.shutdown();
    json(
        StatusCode::ACCEPTED,
        &MessageReply {
            message: "bosun is stopping".to_string(),
        },
    )
}

/// `POST /v1/reload`: re-read the config and apply the difference (as
/// SIGHUP does); answers once the changed units were stopped and the new ones
/// started. A config with errors changes nothing: 409 with the errors.
async fn reload(ctx: &Ctx) -> Response<Body> {
    tracing::info!("reload requested through the control API");
    if *ctx.handle.phase().borrow() == Phase::Stopping {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "bosun is stopping".to_string(),
        );
    }
    match ctx.handle.reload().await {
        Ok(message) => json(StatusCode::OK, &MessageReply { message }),
        Err(e) => error(StatusCode::CONFLICT, bosun_config::redact::redact_url(&e)),
    }
}

/// One snapshot in `GET /v1/snapshots`.
#[derive(Serialize)]
struct SnapshotEntry {
    id: String,
    kind: &'static str,
    time_ms: u64,
    host: String,
    size: u64,
    complete: bool,
    latest: bool,
}

/// `GET /v1/snapshots`: the store's snapshots, oldest first.
async fn snapshots(ctx: &Ctx) -> Response<Body> {
    let Some(keeper) = &ctx.keeper else {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "snapshots are not configured: add a [snapshot] table".to_string(),
        );
    };
    match bosun_snapshot::list_snapshots(keeper.store().as_ref()).await {
        Ok(list) => {
            let entries: Vec<SnapshotEntry> = list
                .into_iter()
                .map(|s| SnapshotEntry {
                    id: s.id.to_string(),
                    kind: if s.kind == bosun_snapshot::SnapshotKind::Daily {
                        "daily"
                    } else {
                        "stop"
                    },
                    time_ms: s
                        .time
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0),
                    host: s.host,
                    size: s.size,
                    complete: s.complete,
                    latest: s.latest,
                })
                .collect();
            json(StatusCode::OK, &entries)
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("listing snapshots: {e}")),
    }
}

/// `POST /v1/backup`: take a snapshot now, against the running units.
async fn backup(ctx: &Ctx) -> Response<Body> {
    let Some(keeper) = &ctx.keeper else {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "snapshots are not configured: add a [snapshot] table".to_string(),
        );
    };
    tracing::info!("snapshot requested through the control API");
    match keeper
        .backup_now(bosun_snapshot::SnapshotKind::Regular)
        .await
    {
        Ok(id) => json(
            StatusCode::OK,
            &MessageReply {
                message: format!("snapshot {id} committed"),
            },
        ),
        Err(e) => error(
            StatusCode::CONFLICT,
            format!("snapshot failed, LATEST is unchanged: {e}"),
        ),
    }
}

// ---- helpers ---------------------------------------------------------------

/// Whether [`bosun_config::redact::redact_url`] could change `s`: a URL with
/// user info or a `password=`. Checked first because redacting allocates,
/// and `/v1/status` with 1000 units should not allocate 1000 times for nothing.
fn might_hold_credentials(s: &str) -> bool {
    s.contains("://") || s.bytes().any(|b| b == b'=')
}

/// A JSON answer.
pub fn json<T: Serialize>(code: StatusCode, value: &T) -> Response<Body> {
    json_sized(code, value, 256)
}

/// A JSON answer, with a guess of its size (a 1000-unit status is ~200 KB:
/// growing the buffer by doubling would copy it several times).
fn json_sized<T: Serialize>(code: StatusCode, value: &T, guess: usize) -> Response<Body> {
    let mut v = Vec::with_capacity(guess);
    match serde_json::to_writer(&mut v, value) {
        Ok(()) => {
            v.push(b'\n');
            let mut r = Response::new(Body::full(v));
            *r.status_mut() = code;
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!("control API: cannot serialise an answer: {e}");
            let mut r = Response::new(Body::full(&b"{\"error\":\"internal error\"}\n"[..]));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// An error answer: `{"error": "..."}`.
pub fn error(code: StatusCode, message: String) -> Response<Body> {
    json(
        code,
        &ErrorReply {
            error: message,
            results: Vec::new(),
        },
    )
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed here; use {allow}"),
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(kv), String::new()),
        })
        .collect()
}

/// The units a target names (see the module doc), or why none (a 404).
fn expand(ctx: &Ctx, target: &str, action: Action) -> Result<Vec<String>, String> {
    if ctx.handle.unit(target).is_some() {
        return Ok(vec![target.to_string()]);
    }
    let role = target.strip_prefix("role:");
    if target != "all" && role.is_none() {
        return Err(format!("no unit named {target:?}"));
    }
    let names: Vec<String> = ctx
        .handle
        .unit_names()
        .into_iter()
        .filter(|n| {
            ctx.handle.unit(n).is_some_and(|u| {
                u.cmd.is_some()
                    && (action == Action::Stop || u.config.kind == bosun_config::UnitKind::Service)
                    && match role {
                        Some(r) => u.config.roles.iter().any(|x| x == r),
                        None => true,
                    }
            })
        })
        .collect();
    if names.is_empty() {
        let what = match role {
            Some(r) => format!("no active unit has role {r:?}"),
            None => "no unit is active in this container".to_string(),
        };
        return Err(what);
    }
    Ok(names)
}

/// Applies `action` to every unit of `target`; 200 when all accepted, else the
/// first failure's status with every result.
async fn unit_action(ctx: &Arc<Ctx>, target: &str, action: Action) -> Response<Body> {
    let names = match expand(ctx, target, action) {
        Ok(n) => n,
        Err(why) => return error(StatusCode::NOT_FOUND, why),
    };
    if let Action::Signal(sig) = action {
        let s = signal_name(sig).unwrap_or_else(|| sig.to_string());
        tracing::info!("control API: {s} to {target}");
    } else {
        tracing::info!("control API: {action:?} {target}");
    }
    let mut outcomes: Vec<(StatusCode, UnitResult)> = if names.len() == 1 {
        vec![act_one(ctx, &names[0], action).await]
    } else {
        let mut set = tokio::task::JoinSet::new();
        for (i, n) in names.iter().enumerate() {
            let (ctx, n) = (ctx.clone(), n.clone());
            set.spawn(async move { (i, act_one(&ctx, &n, action).await) });
        }
        let mut got: Vec<Option<(StatusCode, UnitResult)>> = vec![None; names.len()];
        while let Some(r) = set.join_next().await {
            if let Ok((i, o)) = r {
                got[i] = Some(o);
            }
        }
        got.into_iter()
            .zip(&names)
            .map(|(o, n)| {
                o.unwrap_or_else(|| {
                    let r = UnitResult {
                        unit: n.clone(),
                        ok: false,
                        message: "internal error".into(),
                    };
                    (StatusCode::INTERNAL_SERVER_ERROR, r)
                })
            })
            .collect()
    };
    let failed: Vec<&(StatusCode, UnitResult)> = outcomes.iter().filter(|(_, r)| !r.ok).collect();
    match failed.first() {
        None => json(
            StatusCode::OK,
            &ActionReply {
                results: outcomes.drain(..).map(|(_, r)| r).collect(),
            },
        ),
        Some(&&(code, _)) => {
            let error = failed
                .iter()
                .map(|(_, r)| r.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            json(
                code,
                &ErrorReply {
                    error,
                    results: outcomes.drain(..).map(|(_, r)| r).collect(),
                },
            )
        }
    }
}

/// One unit, one action: the HTTP status that goes with the outcome.
async fn act_one(ctx: &Ctx, name: &str, action: Action) -> (StatusCode, UnitResult) {
    let result = |ok, message: String| UnitResult {
        unit: name.to_string(),
        ok,
        message,
    };
    let Some(unit) = ctx.handle.unit(name) else {
        return (
            StatusCode::NOT_FOUND,
            result(false, format!("no unit named {name:?}")),
        );
    };
    if unit.cmd.is_none() {
        let m = format!("{name} is not active in this container");
        return (StatusCode::CONFLICT, result(false, m));
    }
    if *ctx.handle.phase().borrow() == Phase::Stopping {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            result(false, "bosun is stopping".to_string()),
        );
    }
    match ctx.handle.act(name, action).await {
        Ok(m) => (StatusCode::OK, result(true, m)),
        Err(m) => (StatusCode::CONFLICT, result(false, m)),
    }
}

fn push_ndjson(buf: &mut Vec<u8>, line: &LogLine) {
    if serde_json::to_writer(&mut *buf, line).is_ok() {
        buf.push(b'\n');
    }
}

/// Streams a follower: the backlog in chunks, then live lines, until the
/// client hangs up (the body, and so `tx`, is dropped) or bosun stops.
async fn follow_logs(
    backlog: Vec<Arc<LogLine>>,
    mut live: broadcast::Receiver<Arc<LogLine>>,
    tx: mpsc::Sender<Bytes>,
    stopping: tokio_util::sync::CancellationToken,
) {
    let mut buf = Vec::new();
    for l in &backlog {
        push_ndjson(&mut buf, l);
        if buf.len() >= LOG_CHUNK
            && tx
                .send(Bytes::from(std::mem::take(&mut buf)))
                .await
                .is_err()
        {
            return;
        }
    }
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
        let line = match got {
            Ok(l) => l,
            Err(broadcast::error::RecvError::Lagged(n)) => Arc::new(LogLine {
                at_ms: now_ms(),
                stream: Stream::Stderr,
                text: format!("bosun: {n} lines skipped here: this reader was too slow"),
            }),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let mut one = Vec::with_capacity(line.text.len() + 64);
        push_ndjson(&mut one, &line);
        if tx.send(Bytes::from(one)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_paths_are_only_probes_and_the_page() {
        assert!(is_open_path(&Method::GET, "/health"));
        assert!(is_open_path(&Method::HEAD, "/metrics"));
        assert!(is_open_path(&Method::GET, "/"));
        assert!(!is_open_path(&Method::POST, "/health"));
        assert!(!is_open_path(&Method::GET, "/v1/status"));
        assert!(!is_open_path(&Method::GET, "/health/"));
    }

    #[test]
    fn query_is_decoded() {
        let q = parse_query("n=10&follow&sig=SIG%48UP");
        assert_eq!(q.get("n").map(String::as_str), Some("10"));
        assert_eq!(q.get("follow").map(String::as_str), Some(""));
        assert_eq!(q.get("sig").map(String::as_str), Some("SIGHUP"));
    }
}
