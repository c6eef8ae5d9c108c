//! A service's instances seen from the control plane: the group a name like
//! `worker` stands for, and the rolling restart (`bosun ctl restart worker`):
//! one instance at a time, each ready again before the next is touched, so a
//! tier of N keeps N-1 serving. An instance that does not come back stops the
//! rollout: the ones after it are left running as they were.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bosun_config::instance;

use super::handle::{ActError, Action, Handle};
use super::Units;
use crate::status::State;

/// The instances of the service `group`, in order (`None`: not a service with
/// instances).
pub(super) fn instances_of(units: &Units, group: &str) -> Option<Vec<String>> {
    let names: Vec<String> = units
        .list
        .iter()
        .filter(|u| instance::split(&u.config.name).is_some_and(|(g, _)| g == group))
        .map(|u| u.config.name.clone())
        .collect();
    (!names.is_empty()).then_some(names)
}

/// How many instances each service runs.
pub(super) fn counts(units: &Units) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for u in &units.list {
        if let Some((g, _)) = instance::split(&u.config.name) {
            *out.entry(g.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// Runs `step` on each of `names` in order until one fails; the ones after it
/// are reported as not restarted. One result per name, in order.
pub(super) async fn roll<F, Fut>(
    names: &[String],
    mut step: F,
) -> Vec<(String, Result<String, ActError>)>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<String, ActError>>,
{
    let mut out = Vec::with_capacity(names.len());
    let mut stopped_at: Option<String> = None;
    for name in names {
        let r = match &stopped_at {
            Some(at) => Err(ActError::RollingStopped {
                unit: name.clone(),
                at: at.clone(),
            }),
            None => step(name.clone()).await,
        };
        if r.is_err() && stopped_at.is_none() {
            stopped_at = Some(name.clone());
        }
        out.push((name.clone(), r));
    }
    out
}

impl Handle {
    /// The instances of `target` when it names a service with instances.
    pub fn instances_of(&self, target: &str) -> Option<Vec<String>> {
        instances_of(&self.units(), target)
    }

    /// The error for a one-unit command given the service `group` with instances
    /// (`None` when `group` is no such service).
    pub fn one_instance_error(&self, group: &str) -> Option<ActError> {
        let names = self.instances_of(group)?;
        Some(ActError::OneInstance {
            group: group.to_string(),
            count: names.len(),
            first: names.first()?.clone(),
            last: names.last()?.clone(),
        })
    }

    /// Restarts `names` one at a time, each ready again before the next
    /// (a rolling restart); one result per name, in order. With
    /// `restart_dependents`, the dependents restart once, after the last
    /// instance is ready again (not once per instance).
    pub async fn rolling_restart(
        &self,
        names: &[String],
    ) -> Vec<(String, Result<String, ActError>)> {
        let out = roll(names, |name| async move {
            let msg = self.act_with(&name, Action::Restart, false).await?;
            self.wait_ready_again(&name).await?;
            tracing::info!(unit = %name, "ready again (rolling restart)");
            Ok(format!("{msg}, ready"))
        })
        .await;
        let units = self.units();
        let last = names.last().and_then(|n| units.get(n));
        if let (true, Some(u)) = (out.iter().all(|(_, r)| r.is_ok()), last) {
            if u.config.restart_dependents {
                let mut deps: Vec<String> = Vec::new();
                for p in names.iter().filter_map(|n| units.plan.unit(n)) {
                    for d in &p.dependents {
                        if !deps.contains(d) {
                            deps.push(d.clone());
                        }
                    }
                }
                self.restart_when_ready(u, deps);
            }
        }
        out
    }

    /// After a restart was answered (the old process is gone, `ready` is false):
    /// waits until the unit is ready, or down for good, within a generous bound
    /// (its ready timeout or `start_secs`, its stop timeout, and a minute).
    async fn wait_ready_again(&self, name: &str) -> Result<(), ActError> {
        let u = self
            .unit(name)
            .ok_or_else(|| ActError::Gone(name.to_string()))?;
        let c = &u.config;
        let bound = c.ready.timeout.max(c.start_secs) + c.stop_timeout + Duration::from_secs(60);
        let mut st = u.status.subscribe();
        let waited = tokio::time::timeout(
            bound,
            st.wait_for(|s| {
                s.ready
                    || matches!(
                        s.state,
                        State::Fatal | State::Exited | State::Stopped | State::Inactive
                    )
            }),
        )
        .await;
        let not_ready = |why: String| ActError::NotReady {
            unit: name.to_string(),
            why,
        };
        match waited {
            Err(_) => Err(not_ready(format!("not ready within {bound:?}"))),
            Ok(Err(_)) => Err(ActError::Gone(name.to_string())),
            Ok(Ok(s)) if s.ready => Ok(()),
            Ok(Ok(s)) => Err(not_ready(match s.detail.is_empty() {
                true => s.state.to_string(),
                false => format!("{}: {}", s.state, s.detail),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::RefCell;

    fn names(n: usize) -> Vec<String> {
        (1..=n as u32)
            .map(|i| instance::unit_name("w", i))
            .collect()
    }

    proptest! {
        /// Steps run in order, one at a time, up to and including the first
        /// failure; every name gets one result, in order; those after the
        /// failure were not touched.
        #[test]
        fn a_rolling_restart_goes_in_order_and_stops_at_the_first_failure(n in 1usize..20, fail in proptest::option::of(0usize..20)) {
            let names = names(n);
            let called = RefCell::new(Vec::new());
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
            let out = rt.block_on(roll(&names, |name| {
                called.borrow_mut().push(name.clone());
                let i = called.borrow().len() - 1;
                async move {
                    match Some(i) == fail {
                        true => Err(ActError::NotReady { unit: name, why: "fatal".into() }),
                        false => Ok(format!("{name} restarted")),
                    }
                }
            }));
            let last = fail.filter(|&f| f < n).map_or(n, |f| f + 1);
            prop_assert_eq!(&*called.borrow(), &names[..last]);
            prop_assert_eq!(out.len(), n);
            for (i, (name, r)) in out.iter().enumerate() {
                prop_assert_eq!(name, &names[i]);
                prop_assert_eq!(r.is_ok(), i + 1 < last || (i + 1 == last && fail != Some(i)));
                if i >= last {
                    let stopped = matches!(r, Err(ActError::RollingStopped { .. }));
                    prop_assert!(stopped);
                }
            }
        }
    }
}
