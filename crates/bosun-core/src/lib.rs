//! bosun's runtime: the single reaper, spawning units, the unit state machine,
//! restarts, probes, signals, and the boot and stop orchestration.
//!
//! The arrow points one way: this crate reads `bosun-config`'s validated model
//! and knows nothing of the CLI or the control API, which use [`Handle`].

pub mod events;
pub mod hooks;
pub mod lease;
pub mod output;
pub mod pid1;
pub mod piped;
pub mod probe;
pub mod spawn;
pub mod status;
pub mod supervisor;
pub mod tini;
pub mod unit;
pub mod usage;

pub use events::{Event, EventKind, EventSink};
pub use hooks::{DataHooks, HookError, HookFuture, StopContext};
// The PID-1 modules keep their old paths (`bosun_core::reaper`, …).
pub use pid1::{reaper, signals, sweep};
pub use supervisor::{ActError, Action, Handle, ReloadError, ScaleError, StopCause, Supervisor};
