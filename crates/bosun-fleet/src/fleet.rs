//! Starting a peer's fleet task, and the [`Handle`] the rest of bosun talks to it with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::Client;

use crate::commands::{Action, CommandReport, CommandRequest, Target};
use crate::conninfo;
use crate::db::{self, Lease, Me, Peer, Sql};
use crate::error::FleetError;
use crate::runner::{Control, Ctx, Outputs, Runner};
use crate::settings::{validate, Settings, SettingsError};
use crate::tls;
use crate::trust::{Decision, Slot, TrustWindow};

/// How many commands may wait for the caller before the fleet task waits too.
const COMMAND_QUEUE: usize = 64;

/// This peer, as the others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The roles active in this container.
    pub roles: Vec<String>,
    /// bosun's version.
    pub version: String,
}

/// A singleton unit active on this peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Singleton {
    /// The unit's name (the lease's name across the fleet).
    pub unit: String,
    /// Its `stop_timeout` (then SIGKILL to its process group): the holder says
    /// "stop it now" this long before it must be dead.
    pub stop_timeout: Duration,
}

/// Starts this peer's fleet task on the current tokio runtime (it must be called
/// inside one). Checks `settings` with [`validate`] and reads `sslrootcert`; returns
/// at once without waiting for the database (a fleet whose database is down stops
/// nothing: singletons stay `Standby` until it is reachable).
///
/// Every singleton is contended for from the start ([`Handle::set_wanted`] changes
/// that). Fleet commands arrive on the returned receiver; each must be answered with
/// [`CommandRequest::reply`].
pub fn start(
    settings: &Settings,
    me: PeerInfo,
    singletons: &[Singleton],
) -> Result<(Handle, mpsc::Receiver<CommandRequest>), Vec<SettingsError>> {
    let stops: Vec<(&str, Duration)> = singletons
        .iter()
        .map(|s| (s.unit.as_str(), s.stop_timeout))
        .collect();
    validate(settings, &stops)?;
    let mut target = conninfo::parse(&settings.database).map_err(|reason| {
        vec![SettingsError::Database {
            url: settings.database_redacted(),
            reason,
        }]
    })?;
    if target.config.get_connect_timeout().is_none() {
        target
            .config
            .connect_timeout(settings.statement_timeout * 2);
    }
    let tls = tls::connector(&target).map_err(|e| vec![e])?;
    let ctx = Arc::new(Ctx {
        settings: settings.clone(),
        tls,
        sql: Sql::new(&settings.schema),
        me: Me {
            name: settings.name.clone(),
            boot_id: boot_id(),
            roles: me.roles,
            url: settings.url.clone(),
            version: me.version,
            ttl: settings.lease_ttl,
        },
        target,
    });
    let mut slots = BTreeMap::new();
    let mut decisions = BTreeMap::new();
    for s in singletons {
        let window = TrustWindow::new(settings.lease_ttl, settings.margin(), s.stop_timeout);
        let slot = Slot::new(window);
        let (tx, rx) = watch::channel(slot.decision().clone());
        decisions.insert(s.unit.clone(), rx);
        slots.insert(s.unit.clone(), (slot, tx));
    }
    let (client_tx, client) = watch::channel(None);
    let (up_tx, database_up) = watch::channel(false);
    let (error_tx, last_error) = watch::channel(None);
    let (acks_tx, acks) = watch::channel(0);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let outputs = Outputs {
        client: client_tx,
        database_up: up_tx,
        last_error: error_tx,
        acks: acks_tx,
    };
    let runner = Runner::new(ctx.clone(), slots, control_rx, commands_tx, outputs);
    let task = tokio::spawn(runner.run());
    let shared = Shared {
        ctx,
        client,
        database_up,
        last_error,
        acks,
        decisions,
        control: control_tx,
        task: std::sync::Mutex::new(Some(task)),
    };
    Ok((
        Handle {
            inner: Arc::new(shared),
        },
        commands_rx,
    ))
}

/// A fresh id for this start of bosun: 128 random bits, hex.
fn boot_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

struct Shared {
    ctx: Arc<Ctx>,
    client: watch::Receiver<Option<Arc<Client>>>,
    database_up: watch::Receiver<bool>,
    last_error: watch::Receiver<Option<String>>,
    acks: watch::Receiver<u64>,
    decisions: BTreeMap<String, watch::Receiver<Decision>>,
    control: mpsc::UnboundedSender<Control>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Talks to this peer's fleet task. Cheap to clone. When the last clone is dropped the
/// task ends as if bosun had crashed (leases and the heartbeat expire by themselves);
/// [`Handle::shutdown`] is the clean way out.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.inner.ctx.me.name)
            .field("boot_id", &self.inner.ctx.me.boot_id)
            .finish()
    }
}

impl Handle {
    /// This peer's `[fleet] name`.
    pub fn name(&self) -> &str {
        &self.inner.ctx.me.name
    }

    /// This start's boot id (as [`Peer::boot_id`] shows it).
    pub fn boot_id(&self) -> &str {
        &self.inner.ctx.me.boot_id
    }

    /// The decisions for a singleton given to [`start`]: run it only while
    /// [`Decision::Hold`]. A closed channel (the task ended) means "do not run".
    pub fn decision(&self, unit: &str) -> Option<watch::Receiver<Decision>> {
        self.inner.decisions.get(unit).cloned()
    }

    /// Whether the fleet database is reachable (`bosun_fleet_database_up`).
    pub fn database_up(&self) -> watch::Receiver<bool> {
        self.inner.database_up.clone()
    }

    /// The last database error while it is down (redacted), or why this peer cannot
    /// register (its name is held by another live peer).
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.borrow().clone()
    }

    /// Contend for `unit`'s lease (`true`, the default) or give it up (`false`). Give
    /// it up only once the unit is stopped here: the lease is released at once and
    /// another peer may start it.
    pub fn set_wanted(&self, unit: &str, wanted: bool) {
        let _ = self.inner.control.send(Control::SetWanted {
            unit: unit.to_owned(),
            wanted,
        });
    }

    /// Every peer that registered: live, left or dead (the last two are kept a day).
    pub async fn peers(&self) -> Result<Vec<Peer>, FleetError> {
        let client = self.client()?;
        self.bounded("listing peers", db::peers(&client, &self.inner.ctx.sql))
            .await
    }

    /// Every singleton's lease row.
    pub async fn leases(&self) -> Result<Vec<Lease>, FleetError> {
        let client = self.client()?;
        self.bounded("listing leases", db::leases(&client, &self.inner.ctx.sql))
            .await
    }

    /// Gives a command to the fleet (every peer live now is expected to answer, this
    /// one included) and returns its id at once.
    pub async fn submit(&self, action: Action, target: &Target) -> Result<i64, FleetError> {
        // Re-checked: a Target built by hand must not carry a bad name to the peers.
        Target::parse(&target.to_string()).map_err(FleetError::InvalidTarget)?;
        let client = self.client()?;
        let ctx = &self.inner.ctx;
        let work = db::submit(
            &client,
            &ctx.sql,
            &ctx.me.name,
            action,
            target,
            ctx.settings.catch_up,
        );
        self.bounded("giving a command", work).await
    }

    /// A command and every peer's answer so far.
    pub async fn report(&self, id: i64) -> Result<CommandReport, FleetError> {
        let client = self.client()?;
        self.bounded(
            "reading a command",
            db::report(&client, &self.inner.ctx.sql, id),
        )
        .await?
        .ok_or(FleetError::NoSuchCommand(id))
    }

    /// Waits up to `timeout` for every peer that was live when command `id` was given
    /// to finish it; returns the report as it stands then (peers still `pending` or
    /// `running` run it when they come back, within the catch-up window).
    pub async fn wait(&self, id: i64, timeout: Duration) -> Result<CommandReport, FleetError> {
        let deadline = Instant::now() + timeout;
        let mut acks = self.inner.acks.clone();
        let mut acks_open = true;
        loop {
            acks.borrow_and_update();
            let report = self.report(id).await?;
            if report.complete() || Instant::now() >= deadline {
                return Ok(report);
            }
            // Woken by each ack's NOTIFY; the poll is the fallback.
            let poll = tokio::time::sleep(Duration::from_millis(500));
            tokio::select! {
                changed = acks.changed(), if acks_open => acks_open = changed.is_ok(),
                _ = poll => {}
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    /// [`Handle::submit`] then [`Handle::wait`]: `ctl fleet restart web`.
    pub async fn send(
        &self,
        action: Action,
        target: &Target,
        timeout: Duration,
    ) -> Result<CommandReport, FleetError> {
        let id = self.submit(action, target).await?;
        self.wait(id, timeout).await
    }

    /// Leaves the fleet cleanly: releases every lease this peer holds and marks it dead
    /// at once, then ends the task. Call it once the singletons are stopped. Bounded by
    /// the statement timeout.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.control.send(Control::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        let task = self.inner.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn client(&self) -> Result<Arc<Client>, FleetError> {
        if self.inner.control.is_closed() {
            return Err(FleetError::Stopped);
        }
        self.inner
            .client
            .borrow()
            .clone()
            .ok_or_else(|| FleetError::DatabaseDown {
                url: self.inner.ctx.settings.database_redacted(),
                detail: self
                    .last_error()
                    .unwrap_or_else(|| "not connected yet".into()),
            })
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        work: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, FleetError> {
        let ctx = &self.inner.ctx;
        match tokio::time::timeout(ctx.settings.statement_timeout, work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(FleetError::Database {
                what,
                detail: ctx.scrub(&e),
            }),
            Err(_) => Err(FleetError::Timeout {
                what,
                timeout: ctx.settings.statement_timeout,
            }),
        }
    }
}
