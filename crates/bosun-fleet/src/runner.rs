//! The fleet task: one per peer, one database connection.
//!
//! The loop never waits on the database itself: each statement runs in a job that sends
//! an [`Event`] back, so the deadlines of the singletons' trust windows fire on time
//! even while a statement hangs on a paused or partitioned server. State lives here
//! only; [`crate::Handle`] reads what is published on watch channels.
//!
//! The connection (gen) is replaced on any failure: a statement that timed out leaves
//! the session in an unknown state, and events of an old gen are ignored. The same
//! connection carries LISTEN: notifications are only sent while it is up, and each
//! (re)connect starts with a pull, so nothing sent while it was down is missed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tokio_postgres::Client;
use tracing::{debug, info, warn};

use crate::commands::{Command, CommandRequest, Outcome};
use crate::conninfo::Target;
use crate::db::{self, Me, Prepared, RoundReply, Sql};
use crate::link::{bounded, connect, pull};
use crate::schema;
use crate::settings::Settings;
use crate::tls::MakeRustls;
use crate::trust::{Decision, Slot};

/// How often dead peers and old commands are deleted (by each peer; it is cheap).
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How long after a holder's expiry a standby tries (the database clock and ours).
const EXPIRY_SLACK: Duration = Duration::from_millis(20);
/// The first reconnect delay; it doubles up to `renew_every` (at most 5 s).
const BACKOFF_START: Duration = Duration::from_millis(100);

/// What every part of the fleet shares: fixed at start.
pub(crate) struct Ctx {
    pub settings: Settings,
    pub target: Target,
    pub tls: MakeRustls,
    pub sql: Sql,
    pub me: Me,
}

impl Ctx {
    /// A driver error as one line (the server's message, SQLSTATE and hint for a
    /// database error; the cause chain otherwise), password scrubbed.
    pub fn scrub(&self, e: &tokio_postgres::Error) -> String {
        self.target.scrub(&describe(e))
    }
}

/// What the runner publishes, for [`crate::Handle`].
pub(crate) struct Outputs {
    pub client: watch::Sender<Option<Arc<Client>>>,
    pub database_up: watch::Sender<bool>,
    pub last_error: watch::Sender<Option<String>>,
    pub acks: watch::Sender<u64>,
}

/// Requests from [`crate::Handle`].
pub(crate) enum Control {
    SetWanted { unit: String, wanted: bool },
    Shutdown(oneshot::Sender<()>),
}

/// Results of jobs and messages from the connection, back to the loop.
pub(crate) enum Event {
    Connected {
        gen: u64,
        live: Live,
        ensured: schema::Ensured,
    },
    ConnectFailed {
        gen: u64,
        error: String,
    },
    Closed {
        gen: u64,
        error: Option<String>,
    },
    Notify {
        gen: u64,
        payload: String,
    },
    Round {
        gen: u64,
        attempt: Instant,
        result: Result<RoundReply, String>,
    },
    Pulled {
        gen: u64,
        result: Result<(Vec<Command>, bool), String>,
    },
    Done {
        id: i64,
        outcome: Outcome,
    },
    Acked {
        gen: u64,
        id: i64,
        result: Result<(), String>,
    },
    Chore {
        gen: u64,
        what: &'static str,
        result: Result<String, String>,
    },
}

/// A task whose handle aborts it when dropped (the connection's driver).
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An open connection.
pub(crate) struct Live {
    pub(crate) client: Arc<Client>,
    pub(crate) prepared: Arc<Prepared>,
    pub(crate) _driver: AbortOnDrop,
}

enum Link {
    Down { retry_at: Instant },
    Connecting,
    Up(Live),
}

/// The round in flight: which leases it renews and which it tries to acquire.
struct Inflight {
    renew: Vec<(String, i64)>,
    acquire: Vec<String>,
}

pub(crate) struct Runner {
    ctx: Arc<Ctx>,
    slots: BTreeMap<String, (Slot, watch::Sender<Decision>)>,
    link: Link,
    /// Connection generation: bumped whenever the link is given up.
    gen: u64,
    backoff: Duration,
    failures: u32,
    /// The heartbeat of this connection went through (this boot owns the name).
    registered: bool,
    name_conflict_logged: bool,
    round: Option<Inflight>,
    next_round: Instant,
    pulling: bool,
    pull_again: bool,
    next_poll: Instant,
    /// The gen whose first pull (which also marks interrupted claims) ran.
    pulled_gen: Option<u64>,
    next_housekeeping: Instant,
    /// Units released while the link was down: released on the next connection.
    to_release: BTreeSet<String>,
    /// Commands handed to the caller, not yet answered.
    running: BTreeSet<i64>,
    /// Answered, the ack not yet written.
    unacked: BTreeMap<i64, Outcome>,
    acking: BTreeSet<i64>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    control: mpsc::UnboundedReceiver<Control>,
    commands: mpsc::Sender<CommandRequest>,
    out: Outputs,
    jobs: JoinSet<()>,
}

impl Runner {
    pub fn new(
        ctx: Arc<Ctx>,
        slots: BTreeMap<String, (Slot, watch::Sender<Decision>)>,
        control: mpsc::UnboundedReceiver<Control>,
        commands: mpsc::Sender<CommandRequest>,
        out: Outputs,
    ) -> Runner {
        let (tx, rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        Runner {
            ctx,
            slots,
            link: Link::Down { retry_at: now },
            gen: 0,
            backoff: BACKOFF_START,
            failures: 0,
            registered: false,
            name_conflict_logged: false,
            round: None,
            next_round: now,
            pulling: false,
            pull_again: false,
            next_poll: now,
            pulled_gen: None,
            next_housekeeping: now + Duration::from_secs(60),
            to_release: BTreeSet::new(),
            running: BTreeSet::new(),
            unacked: BTreeMap::new(),
            acking: BTreeSet::new(),
            tx,
            rx,
            control,
            commands,
            out,
            jobs: JoinSet::new(),
        }
    }

    /// Runs until [`Control::Shutdown`], or until every handle is dropped (then like a
    /// crash: leases and the heartbeat simply expire).
    pub async fn run(mut self) {
        loop {
            let now = Instant::now();
            self.step(now);
            while let Some(done) = self.jobs.try_join_next() {
                if let Err(e) = done {
                    if e.is_panic() {
                        warn!(target: "bosun_fleet", "a fleet job panicked: {e}");
                    }
                }
            }
            let wake = self.next_wake(now);
            tokio::select! {
                biased;
                ctl = self.control.recv() => match ctl {
                    Some(Control::SetWanted { unit, wanted }) => self.set_wanted(&unit, wanted),
                    Some(Control::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    None => return,
                },
                Some(ev) = self.rx.recv() => self.on_event(ev),
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Applies time, then starts whatever job is due.
    fn step(&mut self, now: Instant) {
        for (slot, tx) in self.slots.values_mut() {
            slot.tick(now);
            publish(tx, slot);
        }
        let up = match &self.link {
            Link::Down { retry_at } => {
                if now >= *retry_at {
                    self.start_connect();
                }
                return;
            }
            Link::Connecting => return,
            Link::Up(live) => (live.client.clone(), live.prepared.clone()),
        };
        let (client, prepared) = up;
        if self.round.is_none() && now >= self.next_round {
            self.start_round(client.clone(), prepared.clone());
        }
        if self.registered && !self.pulling && (self.pull_again || now >= self.next_poll) {
            self.start_pull(client.clone(), prepared);
        }
        let due: Vec<i64> = self
            .unacked
            .keys()
            .filter(|id| !self.acking.contains(id))
            .copied()
            .collect();
        for id in due {
            self.start_ack(client.clone(), id);
        }
        if !self.to_release.is_empty() {
            let units: Vec<String> = std::mem::take(&mut self.to_release).into_iter().collect();
            self.start_release(client.clone(), units);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_EVERY;
            self.start_housekeeping(client);
        }
    }

    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = now + Duration::from_secs(60);
        let mut at = |t: Instant| wake = wake.min(t);
        for (slot, _) in self.slots.values() {
            if let Some(d) = slot.next_deadline() {
                at(d);
            }
        }
        match &self.link {
            Link::Down { retry_at } => at(*retry_at),
            Link::Connecting => {}
            Link::Up(_) => {
                if self.round.is_none() {
                    at(self.next_round);
                }
                if self.registered && !self.pulling {
                    at(self.next_poll);
                }
                at(self.next_housekeeping);
            }
        }
        wake.max(now)
    }

    fn on_event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Connected { gen, live, ensured } if gen == self.gen => {
                self.on_connected(now, live, ensured)
            }
            Event::ConnectFailed { gen, error } if gen == self.gen => {
                self.go_down(now, "connect", error)
            }
            Event::Closed { gen, error } if gen == self.gen => {
                let error = error.unwrap_or_else(|| "connection closed".into());
                self.go_down(now, "connection", error);
            }
            Event::Notify { gen, payload } if gen == self.gen => self.on_notify(now, &payload),
            Event::Round {
                gen,
                attempt,
                result,
            } if gen == self.gen => {
                let inflight = self.round.take();
                match result {
                    Ok(reply) => {
                        self.next_round = attempt + self.ctx.settings.renew_every;
                        self.link_good();
                        self.on_round(now, attempt, inflight, reply);
                    }
                    Err(e) => self.go_down(now, "heartbeat", e),
                }
            }
            Event::Pulled { gen, result } if gen == self.gen => {
                self.pulling = false;
                match result {
                    Ok((commands, more)) => self.on_pulled(now, commands, more),
                    Err(e) => self.go_down(now, "command pull", e),
                }
            }
            Event::Done { id, outcome } => {
                self.running.remove(&id);
                self.unacked.insert(id, outcome);
            }
            Event::Acked { gen, id, result } => {
                self.acking.remove(&id);
                match result {
                    Ok(()) => {
                        self.unacked.remove(&id);
                    }
                    Err(e) if gen == self.gen => self.go_down(now, "command ack", e),
                    Err(_) => {}
                }
            }
            Event::Chore { gen, what, result } => match result {
                Ok(note) if !note.is_empty() => {
                    info!(target: "bosun_fleet", "fleet {what}: {note}")
                }
                Ok(_) => {}
                Err(e) if gen == self.gen => self.go_down(now, what, e),
                Err(_) => {}
            },
            // Events of a connection that was given up.
            _ => {}
        }
    }

    fn on_connected(&mut self, now: Instant, live: Live, ensured: schema::Ensured) {
        let name = &self.ctx.settings.schema;
        if ensured.migrated {
            info!(target: "bosun_fleet", "fleet schema {name} brought from version {} to {}", ensured.found, schema::SCHEMA_VERSION);
        } else if ensured.found > schema::SCHEMA_VERSION {
            info!(target: "bosun_fleet", "fleet schema {name} is at version {}, newer than this bosun's {}: carrying on", ensured.found, schema::SCHEMA_VERSION);
        }
        // database_up and the backoff wait for the first good round: a link whose
        // statements fail (no rights on the tables) must not flap "up" nor reconnect
        // in a tight loop.
        self.out.client.send_replace(Some(live.client.clone()));
        self.link = Link::Up(live);
        self.registered = false;
        self.next_round = now;
    }

    fn on_pulled(&mut self, now: Instant, commands: Vec<Command>, more: bool) {
        self.pull_again |= more;
        self.next_poll = now + self.ctx.settings.command_poll;
        for c in commands {
            if !self.running.contains(&c.id) && !self.unacked.contains_key(&c.id) {
                self.hand_over(c);
            }
        }
    }

    fn on_round(
        &mut self,
        now: Instant,
        attempt: Instant,
        inflight: Option<Inflight>,
        reply: RoundReply,
    ) {
        if reply.registered && !self.registered {
            self.pull_again = true;
            if self.name_conflict_logged {
                self.name_conflict_logged = false;
                self.out.last_error.send_replace(None);
            }
        }
        self.registered = reply.registered;
        if !reply.registered {
            let why = format!(
                "fleet name {:?} is in use by another live peer: waiting for its heartbeat to expire (is [fleet] name unique?)",
                self.ctx.me.name
            );
            if !self.name_conflict_logged {
                self.name_conflict_logged = true;
                warn!(target: "bosun_fleet", "{why}");
            }
            self.out.last_error.send_replace(Some(why));
        }
        let Some(inflight) = inflight else { return };
        let held: BTreeMap<&str, i64> = reply.held.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        let others: BTreeMap<&str, &str> = reply
            .others
            .iter()
            .map(|(n, h, _)| (n.as_str(), h.as_str()))
            .collect();
        // A standby tries again just after the holder's lease expires (if the holder
        // does not renew it first), not up to renew_every later: failover is the
        // expiry, not the expiry plus a poll.
        for (name, _, left) in &reply.others {
            if self.slots.get(name).is_some_and(|(s, _)| s.wants_acquire()) {
                let retry = now + *left + EXPIRY_SLACK;
                self.next_round = self.next_round.min(retry);
            }
        }
        let asked = inflight
            .renew
            .iter()
            .map(|(n, _)| n)
            .chain(inflight.acquire.iter());
        for name in asked {
            let Some((slot, tx)) = self.slots.get_mut(name) else {
                continue;
            };
            if !slot.wanted {
                // Released while the round was in flight: a grant it got is released
                // on the next step.
                if held.contains_key(name.as_str()) {
                    self.to_release.insert(name.clone());
                }
                continue;
            }
            match held.get(name.as_str()) {
                Some(term) => slot.granted(*term, attempt, now),
                None => slot.refused(others.get(name.as_str()).map(|h| (*h).to_owned()), now),
            }
            publish(tx, slot);
        }
    }

    fn on_notify(&mut self, now: Instant, payload: &str) {
        let (kind, arg) = payload.split_once(' ').unwrap_or((payload, ""));
        match kind {
            "command" => self.pull_again = true,
            "ack" => {
                self.out.acks.send_modify(|n| *n += 1);
            }
            "lease" => {
                if self.slots.get(arg).is_some_and(|(s, _)| s.wants_acquire())
                    && self.round.is_none()
                {
                    self.next_round = now;
                }
            }
            _ => debug!(target: "bosun_fleet", "ignoring fleet notification {payload:?}"),
        }
    }

    /// A round went through: the link is up.
    fn link_good(&mut self) {
        if !*self.out.database_up.borrow() {
            let url = self.ctx.settings.database_redacted();
            match self.failures {
                0 => {
                    info!(target: "bosun_fleet", "fleet database {url} connected (schema {})", self.ctx.settings.schema)
                }
                n => {
                    info!(target: "bosun_fleet", "fleet database {url} reachable again after {n} failed attempt(s)")
                }
            }
            self.out.database_up.send_replace(true);
            self.out.last_error.send_replace(None);
        }
        self.failures = 0;
        self.backoff = BACKOFF_START;
    }

    /// Gives the connection up; reconnects after the backoff.
    fn go_down(&mut self, now: Instant, what: &str, error: String) {
        self.failures += 1;
        let url = self.ctx.settings.database_redacted();
        // Once at the start of an outage, then every 30 attempts (a few minutes).
        if self.failures % 30 == 1 {
            warn!(target: "bosun_fleet", "fleet database {url}, {what}: {error}; reconnecting (singletons stop when their leases can no longer be trusted)");
        } else {
            debug!(target: "bosun_fleet", "fleet database {url}, {what} (attempt {}): {error}", self.failures);
        }
        self.gen += 1;
        let jitter = 0.8 + fastrand::f64() * 0.4;
        self.link = Link::Down {
            retry_at: now + self.backoff.mul_f64(jitter),
        };
        let cap = self
            .ctx
            .settings
            .renew_every
            .min(Duration::from_secs(5))
            .max(BACKOFF_START);
        self.backoff = (self.backoff * 2).min(cap);
        self.out.client.send_replace(None);
        self.out.database_up.send_replace(false);
        self.out
            .last_error
            .send_replace(Some(format!("{what}: {error}")));
        self.round = None;
        self.pulling = false;
        self.acking.clear();
        self.registered = false;
        for (slot, tx) in self.slots.values_mut() {
            slot.disconnected();
            publish(tx, slot);
        }
    }

    fn set_wanted(&mut self, unit: &str, wanted: bool) {
        let Some((slot, tx)) = self.slots.get_mut(unit) else {
            return;
        };
        if wanted {
            slot.wanted = true;
            if self.round.is_none() {
                self.next_round = Instant::now();
            }
        } else {
            if slot.held_term().is_some() {
                self.to_release.insert(unit.to_owned());
            }
            slot.release();
        }
        publish(tx, slot);
    }

    async fn shutdown(&mut self) {
        let mut units: Vec<String> = std::mem::take(&mut self.to_release).into_iter().collect();
        for (name, (slot, tx)) in self.slots.iter_mut() {
            if slot.held_term().is_some() {
                units.push(name.clone());
            }
            slot.release();
            publish(tx, slot);
        }
        if let Link::Up(live) = &self.link {
            let ctx = &self.ctx;
            let work = async {
                db::release(&live.client, &ctx.sql, &ctx.me, &units).await?;
                db::deregister(&live.client, &ctx.sql, &ctx.me).await
            };
            match timeout(ctx.settings.statement_timeout, work).await {
                Ok(Ok(_)) => {
                    info!(target: "bosun_fleet", "left the fleet (released {} lease(s))", units.len())
                }
                Ok(Err(e)) => {
                    warn!(target: "bosun_fleet", "leaving the fleet: {}; its leases and heartbeat expire by themselves", ctx.scrub(&e))
                }
                Err(_) => {
                    warn!(target: "bosun_fleet", "leaving the fleet: no answer; its leases and heartbeat expire by themselves")
                }
            }
        }
        self.out.client.send_replace(None);
        self.out.database_up.send_replace(false);
    }

    fn start_connect(&mut self) {
        self.link = Link::Connecting;
        let (ctx, gen, tx) = (self.ctx.clone(), self.gen, self.tx.clone());
        self.jobs.spawn(async move {
            let budget = ctx.settings.statement_timeout * 4;
            let ev = match timeout(budget, connect(&ctx, gen, &tx)).await {
                Ok(Ok((live, ensured))) => Event::Connected { gen, live, ensured },
                Ok(Err(e)) => Event::ConnectFailed {
                    gen,
                    error: ctx.scrub(&e),
                },
                Err(_) => Event::ConnectFailed {
                    gen,
                    error: format!("no answer within {budget:?}"),
                },
            };
            let _ = tx.send(ev);
        });
    }

    fn start_round(&mut self, client: Arc<Client>, prepared: Arc<Prepared>) {
        let mut renew = Vec::new();
        let mut acquire = Vec::new();
        for (name, (slot, _)) in &self.slots {
            if let Some(term) = slot.held_term() {
                renew.push((name.clone(), term));
            } else if slot.wants_acquire() {
                acquire.push(name.clone());
            }
        }
        self.round = Some(Inflight {
            renew: renew.clone(),
            acquire: acquire.clone(),
        });
        let (ctx, gen, tx) = (self.ctx.clone(), self.gen, self.tx.clone());
        self.jobs.spawn(async move {
            // Taken before the statement is sent: the database runs it later, so the
            // lease it grants expires later than attempt + ttl, never earlier.
            let attempt = Instant::now();
            let work = db::round(&client, &prepared, &ctx.me, &renew, &acquire);
            let result = bounded(&ctx, work).await;
            let _ = tx.send(Event::Round {
                gen,
                attempt,
                result,
            });
        });
    }

    fn start_pull(&mut self, client: Arc<Client>, prepared: Arc<Prepared>) {
        self.pulling = true;
        self.pull_again = false;
        let first = self.pulled_gen != Some(self.gen);
        self.pulled_gen = Some(self.gen);
        let (ctx, gen, tx) = (self.ctx.clone(), self.gen, self.tx.clone());
        self.jobs.spawn(async move {
            let result = bounded(&ctx, pull(&client, &prepared, &ctx, first)).await;
            let _ = tx.send(Event::Pulled { gen, result });
        });
    }

    fn hand_over(&mut self, command: Command) {
        let id = command.id;
        self.running.insert(id);
        let (commands, tx) = (self.commands.clone(), self.tx.clone());
        self.jobs.spawn(async move {
            let (request, reply) = CommandRequest::new(command);
            let outcome = match commands.send(request).await {
                Ok(()) => reply.await.unwrap_or_else(|_| {
                    Outcome::failed("the peer dropped the command without an answer")
                }),
                Err(_) => Outcome::failed("this peer takes no fleet commands"),
            };
            let _ = tx.send(Event::Done { id, outcome });
        });
    }

    fn start_ack(&mut self, client: Arc<Client>, id: i64) {
        let Some(outcome) = self.unacked.get(&id).cloned() else {
            return;
        };
        self.acking.insert(id);
        let (ctx, gen, tx) = (self.ctx.clone(), self.gen, self.tx.clone());
        self.jobs.spawn(async move {
            let result = bounded(&ctx, db::ack(&client, &ctx.sql, &ctx.me, id, &outcome)).await;
            let _ = tx.send(Event::Acked { gen, id, result });
        });
    }

    fn start_release(&mut self, client: Arc<Client>, units: Vec<String>) {
        let (ctx, gen, tx) = (self.ctx.clone(), self.gen, self.tx.clone());
        self.jobs.spawn(async move {
            let result = bounded(&ctx, db::release(&client, &ctx.sql, &ctx.me, &units))
                .await
                .map(|n| format!("released {n} lease(s): {}", units.join(", ")));
            let _ = tx.send(Event::Chore {
                gen,
                what: "release",
                result,
            });
        });
    }

    fn start_housekeeping(&mut self, client: Arc<Client>) {
        let (ctx, gen, tx) = (self.ctx.clone(), self.gen, self.tx.clone());
        self.jobs.spawn(async move {
            let result = bounded(&ctx, db::housekeeping(&client, &ctx.sql))
                .await
                .map(|(peers, commands)| match (peers, commands) {
                    (0, 0) => String::new(),
                    (p, c) => format!("deleted {p} long-dead peer(s) and {c} old command(s)"),
                });
            let _ = tx.send(Event::Chore {
                gen,
                what: "housekeeping",
                result,
            });
        });
    }
}

/// tokio-postgres shows a server error as just "db error": say what the server said.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(hint) = db.hint() {
            s.push_str(&format!("; hint: {hint}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

fn publish(tx: &watch::Sender<Decision>, slot: &Slot) {
    tx.send_if_modified(|d| {
        if d != slot.decision() {
            *d = slot.decision().clone();
            true
        } else {
            false
        }
    });
}
