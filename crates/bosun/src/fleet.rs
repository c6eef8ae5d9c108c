//! The fleet's wiring: `[fleet]` (bosun-config's model) into `bosun_fleet::Settings`,
//! the check `bosun check` and `bosun run` share, and what `bosun run` does with the
//! fleet: permits for core's singletons, fleet commands answered with core's `Handle`,
//! and the API's views.

use std::time::Duration;

use bosun_config::{Config, Plan};
use bosun_core::lease::{Permit, Permits};
use tokio::sync::watch;

use crate::protocol::{FleetCommandReply, FleetCommandRow, FleetPeer, FleetSingleton, FleetStatus};

/// The `[fleet]` settings when a fleet is configured (a non-empty `database`); an
/// empty `name` is the hostname.
pub fn settings(config: &Config) -> Option<bosun_fleet::Settings> {
    let f = config.fleet.as_ref().filter(|f| f.enabled())?;
    let name = if f.name.is_empty() {
        bosun_core::pid1::hostname()
    } else {
        f.name.clone()
    };
    let mut s = bosun_fleet::Settings::new(f.database.clone(), name);
    s.url = f.url.clone();
    s.lease_ttl = f.lease_ttl;
    s.renew_every = f.renew_every;
    s.schema = f.schema.clone();
    Some(s)
}

/// The active singletons of `plan`, with their stop timeouts.
pub fn singletons<'c>(config: &'c Config, plan: &Plan) -> Vec<(&'c str, Duration)> {
    plan.units
        .iter()
        .filter_map(|p| config.units.get(&p.name))
        .filter(|u| u.singleton)
        .map(|u| (u.name.as_str(), u.stop_timeout))
        .collect()
}

/// Every problem with `[fleet]` for this plan, as messages naming the keys (URLs
/// redacted). Singletons without a fleet are no error: they simply run.
pub fn problems(config: &Config, plan: &Plan) -> Vec<String> {
    let Some(s) = settings(config) else {
        return Vec::new();
    };
    match bosun_fleet::validate(&s, &singletons(config, plan)) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| config.redact(&e.to_string()))
            .collect(),
    }
}

/// How long `POST /v1/fleet/commands` waits for the peers when not told.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts this peer's fleet when `[fleet]` has a database: registers it, contends for
/// the active singletons, feeds their decisions to core as permits, and answers
/// fleet commands through the core `Handle`. `Err` holds the messages of a `[fleet]`
/// that cannot be used (bosun then exits 2).
pub fn start(
    config: &Config,
    plan: &Plan,
) -> Result<Option<(Fleet, Commands, Permits)>, Vec<String>> {
    let Some(settings) = settings(config) else {
        return Ok(None);
    };
    let singletons: Vec<bosun_fleet::Singleton> = singletons(config, plan)
        .into_iter()
        .map(|(unit, stop_timeout)| bosun_fleet::Singleton {
            unit: unit.to_string(),
            stop_timeout,
        })
        .collect();
    let me = bosun_fleet::PeerInfo {
        roles: plan.roles.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let (handle, commands) = bosun_fleet::start(&settings, me, &singletons).map_err(|errs| {
        errs.iter()
            .map(|e| config.redact(&e.to_string()))
            .collect::<Vec<_>>()
    })?;
    tracing::info!(
        name = %settings.name,
        database = %settings.database_redacted(),
        "fleet: joining ({} singletons here)",
        singletons.len()
    );
    let mut permits = Permits::new();
    for s in &singletons {
        if let Some(rx) = handle.decision(&s.unit) {
            permits.insert(s.unit.clone(), bridge(rx));
        }
    }
    let fleet = Fleet {
        handle,
        database: settings.database_redacted(),
    };
    Ok(Some((fleet, Commands(commands), permits)))
}

/// This peer's fleet, as the binary holds it.
#[derive(Clone)]
pub struct Fleet {
    /// The fleet task's handle.
    pub handle: bosun_fleet::Handle,
    /// `[fleet] database`, its password masked.
    pub database: String,
}

/// The fleet's command queue, answered once the core `Handle` exists.
pub struct Commands(tokio::sync::mpsc::Receiver<bosun_fleet::CommandRequest>);

impl Commands {
    /// Answers every fleet command with `core` until the fleet ends. Each command
    /// runs in a task of its own (a `run` of a long task must not hold up a restart).
    pub fn serve(self, core: bosun_core::Handle, fleet: Fleet) {
        let mut rx = self.0;
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let core = core.clone();
                let fleet = Some(fleet.clone());
                tokio::spawn(async move {
                    let c = &req.command;
                    tracing::info!(id = c.id, by = %c.created_by, "fleet command: {} {}", c.action, c.target);
                    let outcome = answer(&fleet, &core, c.action, &c.target).await;
                    req.reply(outcome);
                });
            }
        });
    }
}

/// Applies `action` to unit `name` with core's `Handle`; for an active singleton,
/// tells the fleet too: a stopped singleton gives its lease up (another container
/// takes it over, unless it was stopped there as well), a started one contends again.
pub async fn act(
    fleet: Option<&Fleet>,
    core: &bosun_core::Handle,
    name: &str,
    action: bosun_core::Action,
) -> Result<String, bosun_core::ActError> {
    use bosun_core::Action as A;
    let singleton = fleet.filter(|f| {
        f.handle.decision(name).is_some() && core.unit(name).is_some_and(|u| u.config.singleton)
    });
    if let (Some(f), A::Start | A::Restart) = (singleton, action) {
        f.handle.set_wanted(name, true);
    }
    let r = core.act(name, action).await;
    if let (Some(f), A::Stop, Ok(_)) = (singleton, action, &r) {
        f.handle.set_wanted(name, false);
    }
    r
}

/// One fleet command carried out here.
async fn answer(
    core_fleet: &Option<Fleet>,
    core: &bosun_core::Handle,
    action: bosun_fleet::Action,
    target: &bosun_fleet::Target,
) -> bosun_fleet::Outcome {
    use bosun_core::{ActError, Action as Core};
    use bosun_fleet::{Action, Outcome, Target};
    let not_here = |e: &ActError| {
        matches!(
            e,
            ActError::NoSuchUnit(_)
                | ActError::NoUnitWithRole(_)
                | ActError::NoActiveUnit
                | ActError::NotActive { .. }
        )
    };
    let core_action = match action {
        Action::Run => {
            let Target::Unit(task) = target else {
                return Outcome::failed("run takes a task name, not a role");
            };
            let run = match core.start_run(task).await {
                Ok(r) => r,
                Err(e) if not_here(&e) => return Outcome::no_such_unit(),
                Err(e) => return Outcome::failed(e.to_string()),
            };
            return match run.wait().await {
                Ok(done) => {
                    let mut o = Outcome::exited(done.exit_code);
                    o.detail = done.detail;
                    o
                }
                Err(e) => Outcome::failed(e.to_string()),
            };
        }
        Action::Restart => Core::Restart,
        Action::Start => Core::Start,
        Action::Stop => Core::Stop,
    };
    let names = match core.expand(&target.to_string(), core_action) {
        Ok(n) => n,
        Err(e) if not_here(&e) => return Outcome::no_such_unit(),
        Err(e) => return Outcome::failed(e.to_string()),
    };
    let fleet = core_fleet.as_ref();
    let results = futures_join(
        names
            .iter()
            .map(|n| act(fleet, core, n, core_action))
            .collect(),
    )
    .await;
    let mut said = Vec::new();
    let mut failed = false;
    let mut missing = 0;
    for r in results {
        match r {
            Ok(m) => said.push(m),
            Err(e) if not_here(&e) => missing += 1,
            Err(e) => {
                failed = true;
                said.push(e.to_string());
            }
        }
    }
    if missing == names.len() {
        return Outcome::no_such_unit();
    }
    let mut o = if failed {
        Outcome::failed(String::new())
    } else {
        Outcome::ok()
    };
    o.detail = said.join("; ");
    o
}

/// Runs the futures concurrently; their results in order.
async fn futures_join<T>(futs: Vec<impl std::future::Future<Output = T>>) -> Vec<T> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = Vec::with_capacity(set.len());
    // Sequential awaits of already-created futures would not overlap: poll all.
    let mut done: Vec<Option<T>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().flatten());
    out
}

/// Core's permit channel, fed from one singleton's fleet decisions.
fn bridge(mut rx: watch::Receiver<bosun_fleet::Decision>) -> watch::Receiver<Permit> {
    let permit = |d: &bosun_fleet::Decision| match d {
        bosun_fleet::Decision::Hold { term } => Permit::Run { term: *term },
        bosun_fleet::Decision::Standby { holder } => Permit::Standby {
            holder: holder.clone(),
        },
        bosun_fleet::Decision::StopNow => Permit::StopNow,
    };
    let (tx, out) = watch::channel(permit(&rx.borrow_and_update()));
    tokio::spawn(async move {
        // Ends when the fleet ends (then core's channel closes: the unit stays
        // stopped) or when core no longer listens.
        while rx.changed().await.is_ok() {
            let p = permit(&rx.borrow_and_update());
            if tx.send(p).is_err() {
                break;
            }
        }
    });
    out
}

/// `GET /v1/fleet`: peers and leases (empty when the database is down).
pub async fn status(f: &Fleet) -> FleetStatus {
    let fleet = &f.handle;
    let mut last_error = fleet.last_error();
    let peers = match fleet.peers().await {
        Ok(p) => p,
        Err(e) => {
            last_error.get_or_insert(e.to_string());
            Vec::new()
        }
    };
    let leases = fleet.leases().await.unwrap_or_default();
    let database_up = *fleet.database_up().borrow();
    FleetStatus {
        name: fleet.name().to_string(),
        database: f.database.clone(),
        database_up,
        last_error: last_error.map(|e| bosun_config::redact::redact_url(&e)),
        peers: peers
            .into_iter()
            .map(|p| FleetPeer {
                me: p.name == fleet.name(),
                name: p.name,
                roles: p.roles,
                url: p.url,
                version: p.version,
                state: p.state.as_str().to_string(),
                last_seen_ago_ms: p.seen_ago.as_millis() as u64,
            })
            .collect(),
        singletons: leases
            .into_iter()
            .map(|l| FleetSingleton {
                unit: l.unit,
                holder: l.holder,
                term: l.term,
                since_ms: ms(l.since),
                held: l.held,
            })
            .collect(),
    }
}

/// A report on the wire.
pub fn reply(r: &bosun_fleet::CommandReport) -> FleetCommandReply {
    FleetCommandReply {
        id: r.id,
        action: r.action.as_str().to_string(),
        target: r.target.to_string(),
        created_by: r.created_by.clone(),
        complete: r.complete(),
        succeeded: r.succeeded(),
        rows: r
            .rows
            .iter()
            .map(|row| FleetCommandRow {
                peer: row.peer.clone(),
                state: row.state.as_str().to_string(),
                exit_code: row.exit_code,
                detail: row.detail.clone(),
                expected: row.expected,
                live: row.live,
            })
            .collect(),
    }
}

fn ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
