//! bosun's fleet: several containers coordinated through PostgreSQL, and nothing
//! home-made beside it. This crate knows nothing of processes: bosun asks it "may I run
//! this singleton?" and hears "stop it now".
//!
//! - **Peers** register (name, roles, url, version, boot id) and heartbeat every
//!   `renew_every`; a peer is live while `now() < expires_at` on the database clock,
//!   never by comparing container clocks ([`Handle::peers`]).
//! - **Singletons**: one lease row per unit with a fencing term that only grows
//!   (acquire = `INSERT … ON CONFLICT DO UPDATE … WHERE expired, term = term + 1`).
//!   Each peer publishes a [`Decision`] per singleton on a watch channel
//!   ([`Handle::decision`]): `Hold { term }`, `Standby { holder }` or `StopNow`. The
//!   holder trusts its lease only within its [`TrustWindow`], by its own monotonic
//!   clock, so its unit is dead before the lease can expire, even when the database
//!   is cut off; another peer takes over after the expiry.
//! - **Fleet commands**: [`Action`] × [`Target`] rows (never a command line), pulled by
//!   every peer (NOTIFY only wakes it; a pull on every (re)connect and a poll catch up),
//!   handed to the caller as [`CommandRequest`]s, and acknowledged with an
//!   [`Outcome`]; [`Handle::send`] fans out and waits for every live peer.
//! - **The database down** stops nothing but the singletons (after their trust runs
//!   out); the task reconnects with backoff and reports [`Handle::database_up`].
//!
//! What the caller (bosun's core, through the binary) does with it:
//!
//! - `bosun check`: [`validate`] with each active singleton's `stop_timeout`.
//! - At boot: [`start`] with the active roles and singletons (no waiting: a fleet whose
//!   database is down stops nothing; singletons stay `Standby`).
//! - Per singleton, watch [`Handle::decision`]: run it only while `Hold { term }`, with
//!   `$BOSUN_LEASE_TERM = term`, restarting it when the term changes; on `StopNow`
//!   stop it at once (stop signal, then SIGKILL to its group at `stop_timeout`); on
//!   `Standby` or a closed channel keep it stopped and show it as `standby`.
//! - Answer every [`CommandRequest`] with an [`Outcome`] (`no_such_unit` when the
//!   target is not active here).
//! - On the way out: stop the singletons, then [`Handle::shutdown`] (releases the
//!   leases, so another peer takes over at once, and marks this peer dead).
//!
//! Layout: `settings` (the `[fleet]` keys, [`validate`]), `conninfo` (URL, sslmode,
//! redaction), `tls` (rustls), `schema` (idempotent DDL), `db` (every statement),
//! `trust` (the pure lease logic), `commands` (the command types), `runner` (the
//! task's event loop), `fleet` ([`start`], [`Handle`]).
//!
//! One connection per peer carries everything (the rounds, LISTEN, and the handle's
//! queries): size `max_connections` at one per container. It must be a session
//! (direct, or a session-mode pooler): LISTEN does not work through a transaction-mode
//! pooler.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod commands;
mod conninfo;
mod db;
mod error;
mod fleet;
mod link;
mod runner;
mod schema;
mod settings;
mod tls;
mod trust;

pub use commands::{
    AckState, Action, Command, CommandReport, CommandRequest, Outcome, ReportRow, RowState, Target,
};
pub use db::{Lease, Peer, PeerState};
pub use error::FleetError;
pub use fleet::{start, Handle, PeerInfo, Singleton};
pub use schema::SCHEMA_VERSION;
pub use settings::{
    validate, Settings, SettingsError, DEFAULT_CATCH_UP, DEFAULT_COMMAND_POLL, DEFAULT_LEASE_TTL,
    DEFAULT_RENEW_EVERY, DEFAULT_SCHEMA, DEFAULT_STATEMENT_TIMEOUT, MAX_NAME, MIN_RENEW_EVERY,
};
pub use trust::{Decision, TrustWindow};
