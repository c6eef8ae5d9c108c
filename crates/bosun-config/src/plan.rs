//! Role resolution and the dependency plan: which units are active here, in which
//! waves they start and stop, and the worst-case stop time.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::diag::nearest;
use crate::interp::Lookup;
use crate::{Config, Unit};

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
    ///
    /// Roles are separated by `:` (or `,`); `all` stands for every role any unit
    /// names; `[roles]` aliases expand recursively. A unit without roles is always
    /// active; a unit with roles is active when any of them is. `after` edges to
    /// inactive units are dropped. A dependency cycle (possible only in a config
    /// built by hand, [`crate::parse`] rejects them) is an error.
    pub fn new(config: &Config, roles_expr: &str) -> Result<Plan, String> {
        let roles = config.resolve_roles(roles_expr)?;
        let (units, inactive) = activate(config, &roles);
        let graph = Graph::new(&units);
        let (level, order) = graph.start_levels().map_err(|stuck| {
            let stuck: Vec<&str> = stuck.iter().map(|&i| units[i].0.name.as_str()).collect();
            format!("dependency cycle among: {}", stuck.join(", "))
        })?;
        let (stop_level, worst_case_stop) = graph.stop_levels(&order, |i| units[i].0.stop_cost());
        let name = |i: usize| units[i].0.name.clone();
        let on_demand = |n: &str| units.iter().any(|(u, _)| u.name == n && u.on_request());
        let planned = units
            .iter()
            .enumerate()
            .map(|(i, (u, reason))| {
                let mut dependents = graph.dependents[i].clone();
                dependents.sort_unstable();
                PlannedUnit {
                    name: u.name.clone(),
                    reason: reason.clone(),
                    deps: graph.deps[i].iter().map(|&j| name(j)).collect(),
                    dependents: dependents.into_iter().map(name).collect(),
                }
            })
            .collect();
        Ok(Plan {
            roles_expr: roles_expr.to_string(),
            roles,
            units: planned,
            inactive,
            // On-demand and scheduled tasks do not start at boot (`ctl run` and the timer start them).
            start_waves: waves(&level, name)
                .into_iter()
                .map(|w| w.into_iter().filter(|n| !on_demand(n)).collect::<Vec<_>>())
                .filter(|w| !w.is_empty())
                .collect(),
            stop_waves: waves(&stop_level, name),
            worst_case_stop,
        })
    }

    /// The planned unit called `name`, if active.
    pub fn unit(&self, name: &str) -> Option<&PlannedUnit> {
        self.units.iter().find(|u| u.name == name)
    }

    /// Whether the unit called `name` is active in this plan.
    pub fn is_active(&self, name: &str) -> bool {
        self.unit(name).is_some()
    }
}

/// A role expression's token that names no role or alias.
struct UnknownRole(String);

/// Units with the reason they are active (or, by name, inactive).
type Active<'c> = Vec<(&'c Unit, String)>;
type Inactive = Vec<(String, String)>;

/// The active units of `config` for `roles`, in config order, each with why it is
/// active; and the inactive ones with why not.
fn activate<'c>(config: &'c Config, roles: &[String]) -> (Active<'c>, Inactive) {
    let role_set: HashSet<&str> = roles.iter().map(String::as_str).collect();
    let mut active = Vec::new();
    let mut inactive = Vec::new();
    for u in config.units.values() {
        if u.roles.is_empty() {
            active.push((u, "no roles: always active".to_string()));
            continue;
        }
        let hits: Vec<&str> = u
            .roles
            .iter()
            .map(String::as_str)
            .filter(|r| role_set.contains(r))
            .collect();
        match hits.len() {
            0 => inactive.push((
                u.name.clone(),
                format!("roles {} not active", u.roles.join(", ")),
            )),
            1 => active.push((u, format!("role {}", hits[0]))),
            _ => active.push((u, format!("roles {}", hits.join(", ")))),
        }
    }
    (active, inactive)
}

/// The `after` edges among the active units, by index (edges to inactive units
/// dropped).
struct Graph {
    /// `deps[i]`: the units unit `i` is after, in its `after` order.
    deps: Vec<Vec<usize>>,
    /// `dependents[i]`: the units that are after unit `i`.
    dependents: Vec<Vec<usize>>,
}

impl Graph {
    fn new(units: &[(&Unit, String)]) -> Graph {
        let index: HashMap<&str, usize> = units
            .iter()
            .enumerate()
            .map(|(i, (u, _))| (u.name.as_str(), i))
            .collect();
        // `after = ["worker"]` with worker's instances running: all of them.
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, (u, _)) in units.iter().enumerate() {
            if let Some((g, _)) = crate::instance::split(&u.name) {
                groups.entry(g).or_default().push(i);
            }
        }
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
        for (i, (u, _)) in units.iter().enumerate() {
            for a in &u.after {
                let one = index.get(a.as_str()).map(std::slice::from_ref);
                for &j in one
                    .or(groups.get(a.as_str()).map(Vec::as_slice))
                    .unwrap_or(&[])
                {
                    if j != i && !deps[i].contains(&j) {
                        deps[i].push(j);
                    }
                }
            }
        }
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
        for (i, ds) in deps.iter().enumerate() {
            for &j in ds {
                dependents[j].push(i);
            }
        }
        Graph { deps, dependents }
    }

    /// Start levels (Kahn, by rounds: a unit's level is one more than its deps'
    /// highest) and the order units were levelled in. `Err`: the units that never
    /// got a level (on or behind a cycle).
    fn start_levels(&self) -> Result<(Vec<usize>, Vec<usize>), Vec<usize>> {
        let n = self.deps.len();
        let mut level = vec![usize::MAX; n];
        let mut order = Vec::with_capacity(n);
        let mut remaining: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut current: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
        let mut depth = 0;
        while !current.is_empty() {
            let mut next = Vec::new();
            for &i in &current {
                level[i] = depth;
                order.push(i);
                for &d in &self.dependents[i] {
                    remaining[d] -= 1;
                    if remaining[d] == 0 {
                        next.push(d);
                    }
                }
            }
            next.sort_unstable();
            current = next;
            depth += 1;
        }
        if order.len() < n {
            return Err((0..n).filter(|&i| level[i] == usize::MAX).collect());
        }
        Ok((level, order))
    }

    /// Stop levels (dependents first) and the worst-case stop: the longest path
    /// of `cost` through the stop graph. `order` is a start order.
    fn stop_levels(
        &self,
        order: &[usize],
        cost: impl Fn(usize) -> Duration,
    ) -> (Vec<usize>, Duration) {
        let n = self.deps.len();
        let mut stop_level = vec![0usize; n];
        let mut finish = vec![Duration::ZERO; n];
        for &i in order.iter().rev() {
            let mut lvl = 0;
            let mut after_dependents = Duration::ZERO;
            for &d in &self.dependents[i] {
                lvl = lvl.max(stop_level[d] + 1);
                after_dependents = after_dependents.max(finish[d]);
            }
            stop_level[i] = lvl;
            finish[i] = after_dependents + cost(i);
        }
        (stop_level, finish.iter().copied().max().unwrap_or_default())
    }
}

/// Units grouped by level: wave `n` holds the units of level `n`, in index order.
fn waves(levels: &[usize], name: impl Fn(usize) -> String) -> Vec<Vec<String>> {
    let count = levels.iter().map(|l| l + 1).max().unwrap_or(0);
    let mut w = vec![Vec::new(); count];
    for (i, &l) in levels.iter().enumerate() {
        w[l].push(name(i));
    }
    w
}

impl Config {
    /// The role expression this container uses: `$roles_env`, else `roles_default`
    /// (also when the variable is not valid UTF-8: see [`Config::roles_expr_checked`]).
    pub fn roles_expr(&self, env: &dyn crate::Vars) -> String {
        self.roles_expr_checked(env)
            .unwrap_or_else(|_| self.bosun.roles_default.clone())
    }

    /// [`Config::roles_expr`], but a roles variable that is set and not valid UTF-8
    /// is an error (falling back to `roles_default` would start the wrong units).
    pub fn roles_expr_checked(&self, env: &dyn crate::Vars) -> Result<String, String> {
        let name = &self.bosun.roles_env;
        match env.lookup(name) {
            Lookup::Set(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            Lookup::Set(_) | Lookup::Unset => Ok(self.bosun.roles_default.clone()),
            Lookup::NotUnicode => Err(format!(
                "the role variable {name} ([bosun] roles_env) is not valid UTF-8: set it to a role expression like \"web:celery\", or unset it to use roles_default ({:?})",
                self.bosun.roles_default
            )),
        }
    }

    /// Every concrete role some unit names, in file order (what `all` means).
    pub fn role_names(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for u in self.units.values() {
            for r in &u.roles {
                if seen.insert(r.as_str()) {
                    out.push(r.clone());
                }
            }
        }
        out
    }

    /// Expands a role expression (`all`, `web:celery`, `web,celery`, aliases) to the
    /// concrete roles it activates, in [`Config::role_names`] order. An unknown role
    /// is an error listing the known roles and aliases, with the nearest one.
    pub fn resolve_roles(&self, roles_expr: &str) -> Result<Vec<String>, String> {
        let known = self.role_names();
        let tokens: Vec<&str> = roles_expr
            .split([':', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if tokens.is_empty() {
            return Err(format!(
                "empty role expression {roles_expr:?}: expected `all` or roles separated by `:` like `web:celery`; {}",
                self.describe_roles(&known)
            ));
        }
        let mut active: HashSet<String> = HashSet::new();
        for t in tokens {
            self.expand_role(t, &known, &mut active, &mut Vec::new())
                .map_err(|UnknownRole(bad)| {
                    let candidates = known
                        .iter()
                        .map(String::as_str)
                        .chain(self.roles.keys().map(String::as_str))
                        .chain(["all"]);
                    let hint = match nearest(&bad, candidates) {
                        Some(s) => format!("did you mean `{s}`? "),
                        None => String::new(),
                    };
                    format!(
                        "unknown role `{bad}` in {roles_expr:?}: {hint}{}",
                        self.describe_roles(&known)
                    )
                })?;
        }
        Ok(known.into_iter().filter(|r| active.contains(r)).collect())
    }

    fn describe_roles(&self, known: &[String]) -> String {
        let roles = if known.is_empty() {
            "(none)".to_string()
        } else {
            known.join(", ")
        };
        let mut s = format!("known roles: all, {roles}");
        if !self.roles.is_empty() {
            let aliases: Vec<String> = self
                .roles
                .iter()
                .map(|(a, m)| format!("{a} (= {})", m.join(":")))
                .collect();
            s.push_str(&format!("; aliases: {}", aliases.join(", ")));
        }
        s
    }

    /// Adds the roles `token` stands for; an error when it names nothing (the
    /// token itself, or the member of an alias that names nothing).
    fn expand_role(
        &self,
        token: &str,
        known: &[String],
        active: &mut HashSet<String>,
        stack: &mut Vec<String>,
    ) -> Result<(), UnknownRole> {
        if token == "all" {
            active.extend(known.iter().cloned());
            return Ok(());
        }
        if let Some(members) = self.roles.get(token) {
            if stack.iter().any(|s| s == token) {
                return Ok(()); // alias cycle: rejected by parse; harmless here
            }
            stack.push(token.to_string());
            for m in members {
                self.expand_role(m, known, active, stack)?;
            }
            stack.pop();
            return Ok(());
        }
        if known.iter().any(|k| k == token) {
            active.insert(token.to_string());
            return Ok(());
        }
        Err(UnknownRole(token.to_string()))
    }
}
