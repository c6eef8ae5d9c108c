//! bosun's runtime: the single reaper, spawning units, the unit state machine,
//! restarts, probes, signals, and the boot and stop orchestration.
//!
//! The arrow points one way: this crate reads `bosun-config`'s validated model
//! and knows nothing of the CLI or the control API, which use [`Handle`].

pub mod hooks;
pub mod output;
pub mod probe;
pub mod reaper;
pub mod signals;
pub mod spawn;
pub mod status;
pub mod supervisor;
pub mod sweep;
pub mod tini;
pub mod unit;

pub use hooks::{DataHooks, HookFuture, StopContext};
pub use supervisor::{Action, Handle, StopCause, Supervisor};
