//! Reload: apply a changed config file (SIGHUP, `ctl reload`) by its difference
//! from the running one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bosun_config::instance::Scale;
use bosun_config::{Config, ConfigError, Plan, Unit};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::handle::stop_unit;
use super::Supervisor;
use crate::unit::UnitCmd;

/// What a reload does to each unit, by comparing the running units' configs with
/// the new active ones: a unit whose config is equal keeps its process.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ReloadDiff {
    /// Active now, not running before: start.
    pub(super) added: Vec<String>,
    /// Running, and its config changed: stop, then start with the new config.
    pub(super) changed: Vec<String>,
    /// Running, and no longer active (gone from the file, or its roles): stop.
    pub(super) removed: Vec<String>,
    /// Running with the same config: left alone, same pid.
    pub(super) keep: HashSet<String>,
}

impl ReloadDiff {
    /// `running`: the units that have a runner now; `wanted`: the new plan's
    /// active units with their new config, in plan order.
    pub(super) fn new(running: &[(&str, &Unit)], wanted: &[(&str, &Unit)]) -> ReloadDiff {
        let mut d = ReloadDiff::default();
        for (name, new_unit) in wanted {
            match running.iter().find(|(n, _)| n == name) {
                Some((_, old)) if *old == *new_unit => {
                    d.keep.insert(name.to_string());
                }
                Some(_) => d.changed.push(name.to_string()),
                None => d.added.push(name.to_string()),
            }
        }
        for (name, _) in running {
            if !wanted.iter().any(|(n, _)| n == name) {
                d.removed.push(name.to_string());
            }
        }
        d
    }
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// bosun is stopping.
    #[error("bosun is stopping")]
    Stopping,
    /// bosun is still booting (restoring): there is nothing to reload yet.
    #[error("bosun is booting ({step}): reload once the units have started")]
    Booting {
        /// What the boot is doing.
        step: String,
    },
    /// The file has errors (every one, file:line:col, secrets redacted).
    #[error("the new config has errors; nothing changed:\n{}", lines(.0))]
    Invalid(Vec<ConfigError>),
    /// The file is valid but cannot be planned for the running roles.
    #[error("{}: {reason}; nothing changed", path.display())]
    Plan {
        /// The config file.
        path: std::path::PathBuf,
        /// Why not (an unknown role, a dependency cycle).
        reason: String,
    },
    /// The change is one the running fleet cannot take: `[fleet]` itself, or which
    /// units are singletons (the fleet contends for the set it started with).
    #[error("{}: {what} changed; the fleet applies it only at a start: restart the container (nothing changed)", path.display())]
    NeedsRestart {
        /// The config file.
        path: std::path::PathBuf,
        /// What changed, in words, naming the keys.
        what: String,
    },
}

/// What of the fleet's part of the config a reload from `old` to `new` would change:
/// `[fleet]` (compared whole; the message names no value, the database URL holds a
/// password) or the active singletons with their `stop_timeout`s (the lease timing
/// was checked against them). `None` when neither changed.
fn fleet_change(
    old: &bosun_config::Config,
    new: &bosun_config::Config,
    old_plan: &Plan,
    new_plan: &Plan,
) -> Option<String> {
    if old.fleet != new.fleet {
        return Some("[fleet]".to_string());
    }
    let singletons = |c: &bosun_config::Config, p: &Plan| -> Vec<(String, Duration)> {
        p.units
            .iter()
            .filter_map(|u| c.units.get(&u.name))
            .filter(|u| u.singleton)
            .map(|u| (u.name.clone(), u.stop_timeout))
            .collect()
    };
    let fleet_on = new.fleet.as_ref().is_some_and(|f| f.enabled());
    if fleet_on && singletons(old, old_plan) != singletons(new, new_plan) {
        return Some("the singleton units (singleton = true, or their stop_timeout)".to_string());
    }
    None
}

fn lines(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    lines.join("\n")
}

/// What applying a config changed (unit names).
pub(super) struct Applied {
    pub(super) added: Vec<String>,
    pub(super) changed: Vec<String>,
    pub(super) removed: Vec<String>,
    pub(super) unchanged: usize,
}

/// `a, b`, or `-` for none.
pub(super) fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(", ")
    }
}

impl Supervisor {
    /// Applies a changed config file (SIGHUP, `ctl reload`).
    pub(super) async fn reload(&mut self) -> Result<String, ReloadError> {
        // Not `std::env::vars`: it panics on a variable that is not UTF-8.
        let env = bosun_config::Env::current();
        // The whole set again: every `-c` file, their `include`s globbed anew.
        let config = match self.config.files.is_empty() {
            true => bosun_config::load(&self.config.source, &env),
            false => bosun_config::load_all(&self.config.files, &env),
        }
        .map_err(ReloadError::Invalid)?;
        let scale = super::scale::kept(&self.config, &config, &self.scale);
        let source = config.source.clone();
        if config.bosun.control_socket != self.config.bosun.control_socket
            || config.bosun.http_listen != self.config.bosun.http_listen
        {
            tracing::warn!(
                "reload: control_socket and http_listen changes apply at the next start"
            );
        }
        if config.hooks != self.config.hooks {
            tracing::warn!("reload: [hooks] changes apply at the next start");
        }
        // Refused before anything changes: the fleet contends for the singletons it
        // started with, under lease timing validated against them.
        let old = self.handle.units();
        if let Ok(plan) = Plan::new(&config.instantiated(&scale), &old.plan.roles_expr) {
            if let Some(what) = fleet_change(&self.config, &config, &old.plan, &plan) {
                return Err(ReloadError::NeedsRestart {
                    path: source.clone(),
                    what,
                });
            }
        }
        drop(old);
        let a = self
            .apply(config, scale)
            .await
            .map_err(|reason| ReloadError::Plan {
                path: source.clone(),
                reason,
            })?;
        let report = format!(
            "reloaded {}: started {}; stopped {}; restarted {}; unchanged {}",
            source.display(),
            list(&a.added),
            list(&a.removed),
            list(&a.changed),
            a.unchanged
        );
        tracing::info!("{report}");
        Ok(report)
    }

    /// Runs `config` (a file's, with the instance counts of `scale`) by its
    /// difference from what runs now; it becomes the supervisor's config.
    /// `Err`: it cannot be planned for the running roles (nothing changed).
    pub(super) async fn apply(&mut self, config: Config, scale: Scale) -> Result<Applied, String> {
        let runtime = config.instantiated(&scale);
        let old = self.handle.units();
        let plan = Plan::new(&runtime, &old.plan.roles_expr)?;
        let running: Vec<(&str, &Unit)> = old
            .list
            .iter()
            .filter(|u| u.is_active())
            .map(|u| (u.config.name.as_str(), &*u.config))
            .collect();
        let wanted: Vec<(&str, &Unit)> = plan
            .units
            .iter()
            .map(|p| (p.name.as_str(), &runtime.units[&p.name]))
            .collect();
        let ReloadDiff {
            added,
            changed,
            removed,
            keep,
        } = ReloadDiff::new(&running, &wanted);
        // Stop what goes away or changes, all at once; each within its stop_timeout.
        let mut stops = JoinSet::new();
        for name in removed.iter().chain(&changed) {
            if let Some(cmd) = old.get(name).and_then(|u| u.cmd.clone()) {
                let deadline = Instant::now()
                    + old
                        .get(name)
                        .map_or(Duration::from_secs(10), |u| u.config.stop_timeout);
                stops.spawn(async move { stop_unit(&cmd, deadline).await });
            }
        }
        while stops.join_next().await.is_some() {}
        let (units, runners) = self.build_units(&runtime, plan, Some(&old), &keep);
        // On-demand and scheduled tasks are not run by a reload: `ctl run` and
        // their timers do that.
        let starts: Vec<_> = added
            .iter()
            .chain(&changed)
            .filter_map(|n| units.get(n))
            .filter(|u| !u.config.on_request())
            .filter_map(|u| u.cmd.clone())
            .collect();
        *self
            .handle
            .shared
            .units
            .write()
            .expect("unit table poisoned") = Arc::new(units);
        drop(old); // the replaced runners see their queue close and end
        for runner in runners {
            tokio::spawn(runner.run());
        }
        for cmd in starts {
            let _ = cmd.send(UnitCmd::Start(None));
        }
        self.timers.sync(&self.handle, &self.permits);
        self.config = config;
        self.scale = scale;
        Ok(Applied {
            added,
            changed,
            removed,
            unchanged: keep.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(toml: &str) -> bosun_config::Config {
        bosun_config::parse(
            toml,
            std::path::Path::new("/x/bosun.toml"),
            &std::collections::HashMap::new(),
        )
        .expect("valid config")
    }

    fn pairs(c: &bosun_config::Config) -> Vec<(&str, &Unit)> {
        c.units.iter().map(|(n, u)| (n.as_str(), u)).collect()
    }

    #[test]
    fn equal_configs_keep_changed_restart_new_start_gone_stop() {
        let old = units(
            "[service.a]\nrun = \"sleep 1\"\n[service.b]\nrun = \"sleep 2\"\n[service.c]\nrun = \"sleep 3\"\n",
        );
        let new = units(
            "[service.a]\nrun = \"sleep 1\"\n[service.b]\nrun = \"sleep 20\"\n[service.d]\nrun = \"sleep 4\"\n",
        );
        let d = ReloadDiff::new(&pairs(&old), &pairs(&new));
        assert_eq!(d.added, vec!["d"]);
        assert_eq!(d.changed, vec!["b"]);
        assert_eq!(d.removed, vec!["c"]);
        assert_eq!(d.keep, HashSet::from(["a".to_string()]));
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let c = units("[service.a]\nrun = \"sleep 1\"\n[task.t]\nrun = \"true\"\n");
        let d = ReloadDiff::new(&pairs(&c), &pairs(&c));
        assert!(d.added.is_empty() && d.changed.is_empty() && d.removed.is_empty());
        assert_eq!(d.keep.len(), 2);
    }

    #[test]
    fn a_unit_that_was_not_running_is_added_even_if_unchanged() {
        let c = units("[service.a]\nrun = \"sleep 1\"\n");
        let d = ReloadDiff::new(&[], &pairs(&c));
        assert_eq!(d.added, vec!["a"]);
    }
}
