//! Checks across tables, after the walk: `after` names real units, no dependency
//! cycles, role aliases resolve, backups have a store, `roles_default` resolves.

use std::collections::{HashMap, HashSet};

use crate::diag::{did_you_mean, Diag};
use crate::schema::{path_seg, Located};
use crate::{Config, Plan};

pub(crate) fn check(ctx: &mut Diag, config: &Config, located: &Located) {
    let roles_ok = check_roles(ctx, config, located);
    check_after(ctx, located);
    check_on_demand(ctx, config, located);
    check_cycles(ctx, located);
    check_backups(ctx, config, located);
    if roles_ok {
        if let Err(msg) = config.resolve_roles(&config.bosun.roles_default) {
            let msg = format!("`roles_default` in [bosun]: {msg}");
            match located.roles_default {
                Some(pos) => ctx.error(pos, msg),
                None => ctx.error_nowhere(msg),
            }
        }
    }
    if ctx.error_count() == 0 {
        if let Ok(plan) = Plan::new(config, "all") {
            if plan.worst_case_stop > config.bosun.stop_budget {
                ctx.warn_nowhere(format!(
                    "the worst-case stop with every role ({}) is longer than stop_budget ({}): the last units may be killed",
                    crate::value::format_duration(plan.worst_case_stop),
                    crate::value::format_duration(config.bosun.stop_budget)
                ));
            }
        }
    }
}

fn unit_table(located: &Located, name: &str) -> String {
    match located.units.get(name) {
        Some(u) => format!("[{}.{}]", u.kind.as_str(), path_seg(name)),
        None => format!("`{name}`"),
    }
}

/// Unit roles vs aliases, alias members, alias cycles. Returns whether all is well.
fn check_roles(ctx: &mut Diag, config: &Config, located: &Located) -> bool {
    let before = ctx.error_count();
    check_unit_roles(ctx, located);
    check_alias_members(ctx, config, located);
    check_alias_cycles(ctx, config, located);
    ctx.error_count() == before
}

/// A unit names concrete roles, not aliases.
fn check_unit_roles(ctx: &mut Diag, located: &Located) {
    for (name, u) in &located.units {
        for (r, pos) in &u.roles {
            if let Some((apos, _)) = located.aliases.get(r) {
                let line = ctx.place_of(*apos);
                ctx.error(
                    *pos,
                    format!(
                        "`roles` in {}: `{r}` is an alias in [roles] ({line}); a unit names concrete roles: list the roles the alias stands for, or rename the alias",
                        unit_table(located, name)
                    ),
                );
            }
        }
    }
}

/// An alias stands for known roles or aliases, never `all`.
fn check_alias_members(ctx: &mut Diag, config: &Config, located: &Located) {
    let role_set: HashSet<String> = config.role_names().into_iter().collect();
    for (alias, (_, members)) in &located.aliases {
        for (m, mpos) in members {
            if m == "all" {
                ctx.error(
                    *mpos,
                    format!(
                        "alias `{alias}` in [roles] names `all`; `all` already means every role"
                    ),
                );
            } else if !role_set.contains(m) && !config.roles.contains_key(m) {
                let known: Vec<&str> = role_set
                    .iter()
                    .map(String::as_str)
                    .chain(config.roles.keys().map(String::as_str))
                    .collect();
                let mut sorted = known.clone();
                sorted.sort_unstable();
                let hint = did_you_mean(m, known.iter().copied());
                let list = if sorted.is_empty() {
                    "(none)".to_string()
                } else {
                    sorted.join(", ")
                };
                ctx.error(*mpos, format!("alias `{alias}` in [roles] refers to unknown role `{m}`{hint} (roles and aliases: {list})"));
            }
        }
    }
}

/// No alias reaches itself through aliases.
fn check_alias_cycles(ctx: &mut Diag, config: &Config, located: &Located) {
    let graph: Vec<(String, Vec<(String, usize)>)> = located
        .aliases
        .iter()
        .map(|(a, (_, ms))| {
            (
                a.clone(),
                ms.iter()
                    .filter(|(m, _)| config.roles.contains_key(m))
                    .cloned()
                    .collect(),
            )
        })
        .collect();
    for cycle in find_cycles(&graph) {
        let (first, pos) = (&cycle[0].0, cycle[0].1);
        let mut path: Vec<&str> = cycle.iter().map(|(n, _)| n.as_str()).collect();
        path.push(first);
        let msg = if cycle.len() == 1 {
            format!("alias `{first}` in [roles] refers to itself")
        } else {
            format!("alias cycle in [roles]: {}", path.join(" → "))
        };
        ctx.error(pos, msg);
    }
}

fn check_after(ctx: &mut Diag, located: &Located) {
    for (name, u) in &located.units {
        for (a, pos) in &u.after {
            if a == name {
                ctx.error(
                    *pos,
                    format!(
                        "`after` in {}: a unit cannot be after itself",
                        unit_table(located, name)
                    ),
                );
            } else if !located.units.contains_key(a) {
                let hint = did_you_mean(
                    a,
                    located
                        .units
                        .keys()
                        .map(String::as_str)
                        .filter(|n| n != name),
                );
                ctx.error(
                    *pos,
                    format!(
                        "`after` in {} names unknown unit `{a}`{hint}",
                        unit_table(located, name)
                    ),
                );
            }
        }
    }
}

/// Nothing can be `after` an on-demand or scheduled task: it does not run at
/// boot, so its dependents would never start.
fn check_on_demand(ctx: &mut Diag, config: &Config, located: &Located) {
    for (name, u) in &located.units {
        for (a, pos) in &u.after {
            let Some(t) = config.units.get(a) else {
                continue;
            };
            if let Some(s) = &t.schedule {
                ctx.error(
                    *pos,
                    format!(
                        "`after` in {} names `{a}`, a scheduled task ({:?}) that does not run at boot: \
                         {name} would never start; drop it from `after` (a scheduled task can be `after` \
                         others, not the other way round)",
                        unit_table(located, name),
                        s.expr()
                    ),
                );
            } else if t.on_demand {
                ctx.error(
                    *pos,
                    format!(
                        "`after` in {} names `{a}`, an on-demand task that does not run at boot: \
                         {name} would never start; drop it from `after` (run it with `bosun ctl run {a}`)",
                        unit_table(located, name)
                    ),
                );
            }
        }
    }
}

fn check_cycles(ctx: &mut Diag, located: &Located) {
    let graph: Vec<(String, Vec<(String, usize)>)> = located
        .units
        .iter()
        .map(|(n, u)| {
            let edges = u
                .after
                .iter()
                .filter(|(a, _)| a != n && located.units.contains_key(a))
                .cloned()
                .collect();
            (n.clone(), edges)
        })
        .collect();
    for cycle in find_cycles(&graph) {
        let mut path: Vec<&str> = cycle.iter().map(|(n, _)| n.as_str()).collect();
        path.push(&cycle[0].0);
        ctx.error(
            cycle[0].1,
            format!(
                "dependency cycle: {} (each unit is `after` the next)",
                path.join(" → ")
            ),
        );
    }
}

/// Distinct cycles of a graph given as (node, [(successor, position of the edge)]),
/// in file order. Each cycle is a list of (node, position of its edge to the next
/// node), rotated to start at the node that comes first in the file.
fn find_cycles(graph: &[(String, Vec<(String, usize)>)]) -> Vec<Vec<(String, usize)>> {
    let index: HashMap<&str, usize> = graph
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let succ: Vec<Vec<(usize, usize)>> = graph
        .iter()
        .map(|(_, es)| {
            es.iter()
                .filter_map(|(m, pos)| index.get(m.as_str()).map(|&j| (j, *pos)))
                .collect()
        })
        .collect();
    let alive = on_or_before_cycles(&succ);
    // Every node left has a successor left: walking from it must close a cycle.
    let mut reported = vec![false; graph.len()];
    let mut cycles = Vec::new();
    for start in (0..graph.len()).filter(|&i| alive[i]) {
        if reported[start] {
            continue;
        }
        let Some(mut cycle) = cycle_from(start, &succ, &alive) else {
            continue;
        };
        if cycle.is_empty() || cycle.iter().any(|&(i, _)| reported[i]) {
            continue;
        }
        for &(i, _) in &cycle {
            reported[i] = true;
        }
        let first = cycle
            .iter()
            .enumerate()
            .min_by_key(|(_, (i, _))| *i)
            .map(|(k, _)| k)
            .unwrap_or(0);
        cycle.rotate_left(first);
        cycles.push(
            cycle
                .into_iter()
                .map(|(i, pos)| (graph[i].0.clone(), pos))
                .collect(),
        );
    }
    cycles
}

/// The nodes that can reach a cycle: peels off nodes with no successor left,
/// repeatedly.
fn on_or_before_cycles(succ: &[Vec<(usize, usize)>]) -> Vec<bool> {
    let n = succ.len();
    let mut alive = vec![true; n];
    loop {
        let mut changed = false;
        for i in 0..n {
            if alive[i] && !succ[i].iter().any(|&(j, _)| alive[j]) {
                alive[i] = false;
                changed = true;
            }
        }
        if !changed {
            return alive;
        }
    }
}

/// Walks from `start` along the first live successor until a node repeats; the
/// cycle it closes, as (node, position of its edge to the next node).
fn cycle_from(
    start: usize,
    succ: &[Vec<(usize, usize)>],
    alive: &[bool],
) -> Option<Vec<(usize, usize)>> {
    let mut seen_at: HashMap<usize, usize> = HashMap::new();
    let mut walk: Vec<(usize, usize)> = Vec::new();
    let mut cur = start;
    while let std::collections::hash_map::Entry::Vacant(e) = seen_at.entry(cur) {
        e.insert(walk.len());
        let Some(&(next, pos)) = succ[cur].iter().find(|&&(j, _)| alive[j]) else {
            break;
        };
        walk.push((cur, pos));
        cur = next;
    }
    let &from = seen_at.get(&cur)?;
    Some(walk[from..].to_vec())
}

fn check_backups(ctx: &mut Diag, config: &Config, located: &Located) {
    for (name, u) in &located.units {
        let Some(pos) = u.backup else { continue };
        if config.snapshot.is_none() {
            ctx.error(
                pos,
                format!(
                    "{} has a backup but there is no [snapshot] table with a `store` to keep it in",
                    unit_table(located, name)
                ),
            );
        }
        if let Some(ppos) = located.snapshot_paths.get(name) {
            ctx.error(
                *ppos,
                format!("item `{name}` in [snapshot.paths] has the name of the backup of {}; snapshot items need distinct names", unit_table(located, name)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &[&str])]) -> Vec<(String, Vec<(String, usize)>)> {
        edges
            .iter()
            .enumerate()
            .map(|(i, (n, es))| {
                (
                    n.to_string(),
                    es.iter().map(|e| (e.to_string(), i)).collect(),
                )
            })
            .collect()
    }

    fn names(c: &[(String, usize)]) -> Vec<&str> {
        c.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn cycles() {
        assert!(find_cycles(&g(&[("a", &["b"]), ("b", &[]), ("c", &["a", "b"])])).is_empty());
        let c = find_cycles(&g(&[
            ("x", &["a"]),
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
        ]));
        assert_eq!(c.len(), 1);
        assert_eq!(names(&c[0]), ["a", "b", "c"]);
        let c = find_cycles(&g(&[
            ("a", &["b"]),
            ("b", &["a"]),
            ("c", &["d"]),
            ("d", &["c"]),
        ]));
        assert_eq!(c.len(), 2);
        let c = find_cycles(&g(&[("a", &["a"])]));
        assert_eq!(names(&c[0]), ["a"]);
    }
}
