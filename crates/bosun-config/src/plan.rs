//! Role resolution and the dependency plan: which units are active here, in which
//! waves they start and stop, and the worst-case stop time.

use std::time::Duration;

use crate::Config;

/// One active unit with the reason it is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUnit {
    /// Unit name.
    pub name: String,
    /// Why it is active: `"no roles: always active"` or `"role web"`.
    pub reason: String,
    /// Active units it waits for (its `after`, minus inactive ones).
    pub deps: Vec<String>,
    /// Active units that wait for it.
    pub dependents: Vec<String>,
}

/// The resolved plan for one role expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The role expression it was made for, as given.
    pub roles_expr: String,
    /// The concrete roles active after alias expansion (`all` expanded).
    pub roles: Vec<String>,
    /// Active units, in config order.
    pub units: Vec<PlannedUnit>,
    /// Inactive units with the reason (`"roles sql not active"`).
    pub inactive: Vec<(String, String)>,
    /// Start waves: every unit of wave n depends only on units of earlier waves.
    pub start_waves: Vec<Vec<String>>,
    /// Stop waves: every unit of wave n is needed only by units of earlier waves.
    pub stop_waves: Vec<Vec<String>>,
    /// Longest path through the stop graph of stop_timeout (+ backup timeout).
    pub worst_case_stop: Duration,
}

impl Plan {
    /// Resolves `roles_expr` (`all`, `web:celery`, aliases) against `config`.
    /// An unknown role is an error that lists the known ones.
    pub fn new(config: &Config, roles_expr: &str) -> Result<Plan, String> {
        todo!("bosun-config helper: {config:?} {roles_expr}")
    }

    /// The planned unit called `name`, if active.
    pub fn unit(&self, name: &str) -> Option<&PlannedUnit> {
        self.units.iter().find(|u| u.name == name)
    }
}

impl Config {
    /// The role expression this container uses: `$roles_env`, else `roles_default`.
    pub fn roles_expr(&self, env: &std::collections::HashMap<String, String>) -> String {
        match env.get(&self.bosun.roles_env) {
            Some(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => self.bosun.roles_default.clone(),
        }
    }
}
