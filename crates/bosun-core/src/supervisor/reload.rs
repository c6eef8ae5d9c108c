//! Reload: apply a changed config file (SIGHUP, `ctl reload`) by its difference
//! from the running one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bosun_config::Plan;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::handle::stop_unit;
use super::Supervisor;
use crate::unit::UnitCmd;

impl Supervisor {
    /// Applies a changed config file (SIGHUP, `ctl reload`).
    pub(super) async fn reload(&mut self) -> Result<String, String> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let config = bosun_config::load(&self.config.source, &env).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            format!(
                "the new config has errors; nothing changed:\n{}",
                lines.join("\n")
            )
        })?;
        let old = self.handle.units();
        let plan = Plan::new(&config, &old.plan.roles_expr)
            .map_err(|e| format!("{}: {e}; nothing changed", config.source.display()))?;
        let mut added = Vec::new();
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        let mut keep = std::collections::HashSet::new();
        for p in &plan.units {
            let new_unit = &config.units[&p.name];
            match old.get(&p.name) {
                Some(u) if u.cmd.is_some() && *u.config == *new_unit => {
                    keep.insert(p.name.clone());
                }
                Some(u) if u.cmd.is_some() => changed.push(p.name.clone()),
                _ => added.push(p.name.clone()),
            }
        }
        for u in &old.list {
            if u.cmd.is_some() && plan.unit(&u.config.name).is_none() {
                removed.push(u.config.name.clone());
            }
        }
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
        let (units, runners) = self.build_units(&config, plan, Some(&old), &keep);
        let starts: Vec<_> = added
            .iter()
            .chain(&changed)
            .filter_map(|n| units.get(n).and_then(|u| u.cmd.clone()))
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
        if config.bosun.control_socket != self.config.bosun.control_socket
            || config.bosun.http_listen != self.config.bosun.http_listen
        {
            tracing::warn!(
                "reload: control_socket and http_listen changes apply at the next start"
            );
        }
        self.config = config;
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        let report = format!(
            "reloaded {}: started {}; stopped {}; restarted {}; unchanged {}",
            self.config.source.display(),
            list(&added),
            list(&removed),
            list(&changed),
            keep.len()
        );
        tracing::info!("{report}");
        Ok(report)
    }
}
