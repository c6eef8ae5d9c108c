//! The API's paths: [`route`] maps a request to its handler, one handler per
//! path. Handlers only read status, call [`bosun_core::Handle`] and the
//! [`Snapshots`] seam; none runs a command. A failure is a typed error whose
//! HTTP status [`ApiError::status`] decides.
//!
//! Unit targets (`/v1/units/{target}/…`: a name, `all`, `role:NAME`) are
//! expanded on the server by [`bosun_core::Handle::expand`], so that
//! `bosun ctl`, curl and the status page all mean the same by them and one
//! request acts on a consistent set. The units of a target are acted on
//! concurrently: each unit's start waits for its own dependencies anyway, and
//! a stop of several units should take the longest of their stop timeouts,
//! not the sum.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_core::status::now_ms;
use bosun_core::supervisor::RunOutcome;
use bosun_core::{ActError, Action};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::body::Body;
use super::error::{act_status, ApiError};
use super::snapshots::{SnapshotError, Snapshots};
use super::{logs, metrics, text, Ctx};
use crate::protocol::{
    parse_signal, paths, percent_decode, signal_name, ActionReply, BackupReply, ErrorReply,
    FleetCommandRequest, LogLine, MessageReply, RunEvent, ScaleRequest, SignalRequest, UnitResult,
    UnitStatus,
};

/// The status page, embedded: no build step, no files to install.
const STATUS_PAGE: &str = include_str!("../status_page.html");

/// Largest request body read (`signal` and `scale` take one, a few bytes).
const MAX_BODY: usize = 4096;

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
        ["metrics"] if get => metrics(ctx).await,
        ["v1", "status"] if get => answer(status(ctx, &query).await),
        ["v1", "units", target, "start"] if post => unit_start(ctx, target).await,
        ["v1", "units", target, "stop"] if post => unit_stop(ctx, target).await,
        ["v1", "units", target, "restart"] if post => unit_restart(ctx, target).await,
        ["v1", "units", target, "signal"] if post => {
            let target = target.to_string();
            unit_signal(ctx, &target, &query, req).await
        }
        ["v1", "units", target, "logs"] if get => answer(logs::unit_logs(ctx, target, &query)),
        ["v1", "logs"] if get => answer(logs::logs(ctx, &query)),
        ["v1", "units", task, "run"] if post => answer(unit_run(ctx, task).await),
        ["v1", "units", service, "scale"] if post => {
            let service = service.to_string();
            answer(unit_scale(ctx, &service, req).await)
        }
        ["v1", "shutdown"] if post => shutdown(ctx),
        ["v1", "reload"] if post => answer(reload(ctx).await),
        ["v1", "snapshots"] if get => answer(snapshots(ctx).await),
        ["v1", "backup"] if post => answer(backup(ctx).await),
        ["v1", "fleet"] if get => answer(fleet_status(ctx).await),
        ["v1", "fleet", "commands"] if post => answer(fleet_command(ctx, req).await),
        ["v1", "fleet", "commands", id] if get => {
            let id = id.to_string();
            answer(fleet_report(ctx, &id).await)
        }
        // Known paths with the wrong method.
        []
        | ["health"]
        | ["metrics"]
        | ["v1", "status"]
        | ["v1", "units", _, "logs"]
        | ["v1", "logs"]
        | ["v1", "snapshots"]
        | ["v1", "fleet"]
        | ["v1", "fleet", "commands", _] => ApiError::MethodNotAllowed("GET, HEAD").response(),
        ["v1", "units", _, "start" | "stop" | "restart" | "signal" | "run" | "scale"]
        | ["v1", "shutdown" | "reload" | "backup"]
        | ["v1", "fleet", "commands"] => ApiError::MethodNotAllowed("POST").response(),
        _ => ApiError::NoSuchPath(path).response(),
    }
}

/// `GET /v1/fleet`: peers and singletons.
async fn fleet_status(ctx: &Arc<Ctx>) -> Result<Response<Body>, ApiError> {
    let fleet = ctx.fleet.as_ref().ok_or(ApiError::NoFleet)?;
    Ok(json(StatusCode::OK, &crate::fleet::status(fleet).await))
}

/// `POST /v1/fleet/commands`: gives the command to the fleet and waits for every
/// live peer's answer (at most `timeout`, default 60 s); the report as it stands.
async fn fleet_command(ctx: &Arc<Ctx>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let fleet = ctx.fleet.as_ref().ok_or(ApiError::NoFleet)?;
    let body = http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::Body(e.to_string()))?
        .to_bytes();
    let want: FleetCommandRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadFleetCommand(format!(
            "expected {{\"action\": \"restart\", \"target\": \"web\"}}: {e}"
        ))
    })?;
    let action = bosun_fleet::Action::parse(&want.action).ok_or_else(|| {
        ApiError::BadFleetCommand(format!(
            "unknown action {:?} (restart, start, stop or run)",
            want.action
        ))
    })?;
    let target = bosun_fleet::Target::parse(&want.target).map_err(ApiError::BadFleetCommand)?;
    let timeout = match &want.timeout {
        None => crate::fleet::DEFAULT_COMMAND_TIMEOUT,
        Some(t) => bosun_config::value::parse_duration(t).ok_or_else(|| {
            ApiError::BadFleetCommand(format!("timeout {t:?}: expected a duration like \"60s\""))
        })?,
    };
    let report = fleet.handle.send(action, &target, timeout).await?;
    Ok(json(StatusCode::OK, &crate::fleet::reply(&report)))
}

/// `GET /v1/fleet/commands/{id}`: a command and its answers so far.
async fn fleet_report(ctx: &Arc<Ctx>, id: &str) -> Result<Response<Body>, ApiError> {
    let fleet = ctx.fleet.as_ref().ok_or(ApiError::NoFleet)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadFleetCommand(format!("command id {id:?}: expected a number")))?;
    let report = fleet.handle.report(id).await?;
    Ok(json(StatusCode::OK, &crate::fleet::reply(&report)))
}

/// A handler's result as an answer.
fn answer(r: Result<Response<Body>, ApiError>) -> Response<Body> {
    r.unwrap_or_else(|e| e.response())
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
async fn metrics(ctx: &Ctx) -> Response<Body> {
    let mut st = ctx.handle.status();
    ctx.meter.sample(&mut st.units).await;
    let mut text = metrics::render(&st);
    if let Some(f) = &ctx.fleet {
        let up = *f.handle.database_up().borrow();
        let live = match f.handle.peers().await {
            Ok(peers) => Some(
                peers
                    .iter()
                    .filter(|p| p.state == bosun_fleet::PeerState::Live)
                    .count(),
            ),
            Err(_) => None,
        };
        metrics::render_fleet(&mut text, live, up);
    }
    let mut r = Response::new(Body::full(text));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /v1/status`: the `DaemonStatus` JSON; with `?format=table`, the
/// `ctl status` table as text.
async fn status(ctx: &Ctx, query: &HashMap<String, String>) -> Result<Response<Body>, ApiError> {
    let table = query.get("format").map(String::as_str) == Some("table");
    let (mut st, picked) = match query.get("units") {
        Some(list) => (picked_units(ctx, list)?, true),
        // The table of all units reads them where they are kept (below).
        None if table => (ctx.handle.status_where(|_| false), false),
        None => (ctx.handle.status(), false),
    };
    // Core already redacts what it writes into `detail`; this is the last
    // line of defence for anything that reaches the wire.
    for u in &mut st.units {
        if might_hold_credentials(&u.detail) {
            u.detail = bosun_config::redact::redact_url(&u.detail);
        }
    }
    match query.get("format").map(String::as_str) {
        None | Some("json") => {
            // Sampled here, when asked: bosun reads /proc for no one else.
            ctx.meter.sample(&mut st.units).await;
            let mut r = json_sized(StatusCode::OK, &st, 512 + st.units.len() * 320);
            mark_picked(&mut r, picked);
            Ok(r)
        }
        Some("table") => {
            let text = if picked {
                text::table(&st, now_ms())
            } else {
                all_units_table(ctx, &st)
            };
            let mut r = Response::new(Body::full(text));
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            mark_picked(&mut r, picked);
            Ok(r)
        }
        Some(f) => Err(ApiError::UnknownFormat(f.to_string())),
    }
}

/// The status with only the units `list` (`a,b`) names; a name that picks none
/// is a [`ActError::NoSuchUnit`].
fn picked_units(ctx: &Ctx, list: &str) -> Result<bosun_core::status::DaemonStatus, ApiError> {
    let names: Vec<&str> = list.split(',').filter(|n| !n.is_empty()).collect();
    let st = ctx
        .handle
        .status_where(|u| names.iter().any(|n| u.is_named(n)));
    if let Some(missing) = names
        .iter()
        .find(|n| !st.units.iter().any(|u| u.is_named(n)))
    {
        return Err(ActError::NoSuchUnit(missing.to_string()).into());
    }
    Ok(st)
}

/// The table of every unit, rendered from the statuses where the units keep
/// them: 1000 copies cost more than the table itself. (`st` has the header.)
fn all_units_table(ctx: &Ctx, st: &bosun_core::status::DaemonStatus) -> String {
    let each = |f: &mut dyn FnMut(&UnitStatus)| {
        ctx.handle.each_unit_status(&mut |u| {
            if might_hold_credentials(&u.detail) {
                let mut u = u.clone();
                u.detail = bosun_config::redact::redact_url(&u.detail);
                f(&u);
            } else {
                f(u);
            }
        });
    };
    text::table_of(st, &each, now_ms())
}

fn mark_picked(r: &mut Response<Body>, picked: bool) {
    if picked {
        r.headers_mut()
            .insert(paths::UNITS_PICKED, HeaderValue::from_static("1"));
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
                Err(e) => return ApiError::Body(e.to_string()).response(),
            };
            match serde_json::from_slice::<SignalRequest>(&body) {
                Ok(r) => r.signal,
                Err(_) => return ApiError::NoSignal.response(),
            }
        }
    };
    match parse_signal(&given) {
        Some(sig) => unit_action(ctx, target, Action::Signal(sig)).await,
        None => ApiError::UnknownSignal(given).response(),
    }
}

/// `POST /v1/units/{task}/run`: runs an on-demand task once. Refusals (not on
/// demand, already running, booting) are answered at once with their status;
/// otherwise NDJSON: the task's output lines as they come, then a `RunEvent::Done`.
async fn unit_run(ctx: &Arc<Ctx>, task: &str) -> Result<Response<Body>, ApiError> {
    let unit = ctx
        .handle
        .unit(task)
        .ok_or_else(|| ActError::NoSuchUnit(task.to_string()))?;
    if !unit.config.on_request() {
        return Err(ActError::NotOnDemand(task.to_string()).into());
    }
    // Subscribed before the start, so no line of this run is missed.
    let (_, live) = unit.log.tail(Some(0));
    let run = ctx.handle.start_run(task).await?;
    let run = tokio::spawn(run.wait());
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(stream_run(run, live, tx, ctx.stopping.clone()));
    let mut r = Response::new(Body::Stream(rx));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The body of a `run` answer, into `tx`: the output lines of `run` as they
/// come (`live`), then, once its output is quiet, its `RunEvent::Done`. Ends
/// early when the client leaves (the task goes on) or bosun stops.
async fn stream_run(
    mut run: tokio::task::JoinHandle<Result<RunOutcome, ActError>>,
    mut live: broadcast::Receiver<Arc<LogLine>>,
    tx: mpsc::Sender<Bytes>,
    stopping: CancellationToken,
) {
    let outcome = loop {
        tokio::select! {
            // Lines first: a line already queued goes out before the end.
            biased;
            l = live.recv() => match l {
                Ok(line) => {
                    if tx.send(run_line(&line)).await.is_err() {
                        // The client left; the task goes on to its end.
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {}
            },
            r = &mut run => break r,
            _ = stopping.cancelled() => return,
        }
    };
    // The exit can be reaped before the output pump has read the pipe to its end:
    // lines still come for a moment after it. Pass them on until the output is
    // quiet for 200 ms (at most 2 s).
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Ok(line)) = tokio::time::timeout(
        Duration::from_millis(200)
            .min(until.saturating_duration_since(tokio::time::Instant::now())),
        live.recv(),
    )
    .await
    {
        if tx.send(run_line(&line)).await.is_err() {
            return;
        }
    }
    let mut one = Vec::new();
    push_json_line(&mut one, &run_done(outcome));
    let _ = tx.send(Bytes::from(one)).await;
}

/// One output line of a run, as its NDJSON line.
fn run_line(line: &LogLine) -> Bytes {
    let mut one = Vec::new();
    push_json_line(&mut one, &RunEvent::Line(line.clone()));
    Bytes::from(one)
}

/// The `RunEvent::Done` for how a run ended (or was lost).
fn run_done(outcome: Result<Result<RunOutcome, ActError>, tokio::task::JoinError>) -> RunEvent {
    match outcome {
        Ok(Ok(o)) => RunEvent::Done {
            exit_code: o.exit_code,
            detail: o.detail,
        },
        Ok(Err(e)) => RunEvent::Done {
            exit_code: 1,
            detail: e.to_string(),
        },
        Err(e) => RunEvent::Done {
            exit_code: 1,
            detail: format!("the run was lost: {e}"),
        },
    }
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
/// started. A config with errors changes nothing: 409 with the errors; 503
/// while bosun stops.
async fn reload(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    tracing::info!("reload requested through the control API");
    let message = ctx.handle.reload().await?;
    Ok(json(StatusCode::OK, &MessageReply { message }))
}

/// The snapshot seam, or 501 when the config has no `[snapshot]` table.
fn keeper(ctx: &Ctx) -> Result<&dyn Snapshots, SnapshotError> {
    ctx.keeper.as_deref().ok_or(SnapshotError::NotConfigured)
}

/// `GET /v1/snapshots`: the store's snapshots (`SnapshotEntry`), oldest first.
async fn snapshots(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let entries = keeper(ctx)?.list().await?;
    Ok(json(StatusCode::OK, &entries))
}

/// `POST /v1/backup`: take a snapshot now, against the running units.
async fn backup(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let keeper = keeper(ctx)?;
    tracing::info!("snapshot requested through the control API");
    let id = keeper.backup_now().await?;
    Ok(json(
        StatusCode::OK,
        &BackupReply {
            message: format!("snapshot {id} committed"),
            id,
        },
    ))
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

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(kv), String::new()),
        })
        .collect()
}

/// `POST /v1/units/{service}/scale` with `{"instances": N}`: run N instances
/// of a service with `instances` (new ones start, the highest numbers stop,
/// the others are left alone).
async fn unit_scale(
    ctx: &Arc<Ctx>,
    service: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::Body(e.to_string()))?
        .to_bytes();
    let want: ScaleRequest = serde_json::from_slice(&body).map_err(|_| ApiError::NoCount)?;
    tracing::info!("control API: scale {service} to {}", want.instances);
    let message = ctx.handle.scale(service, want.instances).await?;
    Ok(json(StatusCode::OK, &MessageReply { message }))
}

/// Applies `action` to every unit of `target`; 200 when all accepted, else the
/// first failure's status with every result. A restart of a service with
/// `instances` is a rolling one: one instance at a time, each ready first.
async fn unit_action(ctx: &Arc<Ctx>, target: &str, action: Action) -> Response<Body> {
    let names = match ctx.handle.expand(target, action) {
        Ok(n) => n,
        Err(e) => return ApiError::from(e).response(),
    };
    if let Action::Signal(sig) = action {
        let s = signal_name(sig).unwrap_or_else(|| sig.to_string());
        tracing::info!("control API: {s} to {target}");
    } else {
        tracing::info!("control API: {action:?} {target}");
    }
    let rolling = action == Action::Restart && ctx.handle.instances_of(target).is_some();
    let outcomes = if rolling {
        rolling_restart(ctx, &names).await
    } else if names.len() == 1 {
        vec![act_one(ctx, &names[0], action).await]
    } else {
        act_all(ctx, &names, action).await
    };
    action_reply(outcomes)
}

/// A rolling restart of `names` (the instances of one service), one result each.
async fn rolling_restart(ctx: &Ctx, names: &[String]) -> Vec<(StatusCode, UnitResult)> {
    let results = ctx.handle.rolling_restart(names).await;
    results
        .into_iter()
        .map(|(unit, r)| match r {
            Ok(message) => (
                StatusCode::OK,
                UnitResult {
                    unit,
                    ok: true,
                    message,
                },
            ),
            Err(e) => {
                let message = e.to_string();
                (
                    act_status(&e),
                    UnitResult {
                        unit,
                        ok: false,
                        message,
                    },
                )
            }
        })
        .collect()
}

/// `action` on every unit of `names` at once; the results in the order of `names`.
async fn act_all(
    ctx: &Arc<Ctx>,
    names: &[String],
    action: Action,
) -> Vec<(StatusCode, UnitResult)> {
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
        .zip(names)
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
}

/// The answer to an action: 200 with every result, or the first failure's
/// status with the failures' messages joined and every result.
fn action_reply(mut outcomes: Vec<(StatusCode, UnitResult)>) -> Response<Body> {
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
    match crate::fleet::act(ctx.fleet.as_ref(), &ctx.handle, name, action).await {
        Ok(m) => (StatusCode::OK, result(true, m)),
        Err(e) => (act_status(&e), result(false, e.to_string())),
    }
}

/// Appends `value` as one NDJSON line.
fn push_json_line(buf: &mut Vec<u8>, line: &impl Serialize) {
    if serde_json::to_writer(&mut *buf, line).is_ok() {
        buf.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded() {
        let q = parse_query("n=10&follow&sig=SIG%48UP");
        assert_eq!(q.get("n").map(String::as_str), Some("10"));
        assert_eq!(q.get("follow").map(String::as_str), Some(""));
        assert_eq!(q.get("sig").map(String::as_str), Some("SIGHUP"));
    }
}
