//! Where keeping data plugs into a container's life. Core decides *when*
//! (ordering, budget); the implementation (the `bosun` binary, with
//! `bosun-snapshot`) decides *what*. Keeping it a trait keeps the dependency
//! arrow one way: core knows nothing of stores and snapshots.

use std::future::Future;
use std::pin::Pin;

use bosun_config::Unit;
use tokio::time::Instant;

/// A boxed future, so the trait stays object-safe without extra crates.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send + 'a>>;

/// Why a data hook failed, in the implementation's words (core only logs it and
/// decides what it does to the boot or the exit code).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

impl HookError {
    /// Wraps any error's message.
    pub fn from_error(e: impl std::fmt::Display) -> HookError {
        HookError(e.to_string())
    }
}

impl From<&str> for HookError {
    fn from(s: &str) -> HookError {
        HookError(s.to_string())
    }
}

/// How the life of the container went, when the stop hooks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopContext {
    /// Every active unit was ready at least once (the boot completed).
    pub booted: bool,
    /// Latest moment the hook may still work; the rest of the stop needs the time after it.
    pub deadline: Instant,
}

/// Data hooks, called by the orchestrator at fixed points of the lifecycle.
/// An `Err` is logged with its message; what it does to the exit code is
/// documented per method.
pub trait DataHooks: Send + Sync + 'static {
    /// Before any unit starts (restore files and directories). `Err` fails the boot (exit 1).
    fn before_boot(&self) -> HookFuture<'_>;

    /// `unit` passed its ready probe for the first time in this bosun's life;
    /// its dependents have not started yet (load its data). `Err` makes the
    /// unit `fatal`, which fails the boot.
    fn after_ready<'a>(&'a self, unit: &'a Unit) -> HookFuture<'a>;

    /// Stop: every unit depending on `unit` is down, `unit` is still up and
    /// ready (dump its data). `Err` makes bosun exit 1 after the stop.
    fn before_stop<'a>(&'a self, unit: &'a Unit, ctx: StopContext) -> HookFuture<'a>;

    /// Stop: every unit is down (save paths, commit the snapshot). `Err` makes bosun exit 1.
    fn after_stop(&self, ctx: StopContext) -> HookFuture<'_>;
}
