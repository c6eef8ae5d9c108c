//! Events an operator may want to hear about (`[hooks]`): a unit going `fatal`, a
//! backup failing, a boot failing, a stop running over its budget. Core only
//! *emits* them through an [`EventSink`]; the binary's hook runner decides what
//! runs. Emitting never blocks and never fails: supervision does not wait for
//! anybody's pager.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use tokio::time::Instant;

/// What happened. The names are the event names of `[hooks]` (`on_fatal`,
/// `events = ["fatal"]`) and the value of `BOSUN_EVENT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A unit gave up (crash loop, readiness timeout, failed task or gate).
    Fatal,
    /// A unit's dump, or a whole snapshot (paths, commit), failed.
    BackupFailed,
    /// The boot failed (a restore, a unit, a gate); bosun is stopping.
    BootFailed,
    /// The stop is running out of its `stop_budget`.
    StopOverBudget,
}

impl EventKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [EventKind; 4] = [
        EventKind::Fatal,
        EventKind::BackupFailed,
        EventKind::BootFailed,
        EventKind::StopOverBudget,
    ];

    /// The event's name (`fatal`, `backup_failed`, `boot_failed`, `stop_over_budget`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fatal => "fatal",
            EventKind::BackupFailed => "backup_failed",
            EventKind::BootFailed => "boot_failed",
            EventKind::StopOverBudget => "stop_over_budget",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event: what, which unit (if one), why in words, when. Never holds env
/// values or other secrets: only names and bosun's own messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// What happened.
    pub event: EventKind,
    /// The unit it is about, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Why, in bosun's words (the same line the log has).
    pub reason: String,
    /// When, Unix time in milliseconds.
    pub at_ms: u64,
}

impl Event {
    /// An event of `kind` now.
    pub fn new(kind: EventKind, unit: Option<&str>, reason: impl Into<String>) -> Event {
        Event {
            event: kind,
            unit: unit.map(str::to_string),
            reason: reason.into(),
            at_ms: crate::status::now_ms(),
        }
    }
}

/// Where events go. Implemented by the binary's hook runner.
pub trait EventSink: Send + Sync {
    /// Hands `event` over without waiting (a full queue drops it, counted).
    fn emit(&self, event: Event);

    /// Waits for the hooks still running or queued, until `until` at the latest
    /// (bosun is about to exit; what still runs then is killed).
    fn flush(&self, until: Instant) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// How long before the end of the stop budget `stop_over_budget` fires, so that
    /// its hooks run within the budget (the stop never waits past it for a hook).
    fn stop_warning(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config's `[hooks]` keys and `events` names are these kinds' names.
    #[test]
    fn event_names_are_the_configs() {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, bosun_config::HOOK_EVENTS);
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
    }

    /// The JSON a webhook gets: no unit key when there is none.
    #[test]
    fn an_event_serialises_without_an_empty_unit() {
        let e = Event {
            event: EventKind::BootFailed,
            unit: None,
            reason: "boot failed: x".into(),
            at_ms: 5,
        };
        let j = serde_json::to_string(&e).expect("json");
        assert_eq!(
            j,
            r#"{"event":"boot_failed","reason":"boot failed: x","at_ms":5}"#
        );
    }
}
