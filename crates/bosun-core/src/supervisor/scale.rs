//! Scale: `bosun ctl scale worker 6` changes how many instances of a service
//! with `instances` run, as a reload does: the config is made again with the
//! new count ([`bosun_config::Config::instantiated`]) and the difference is
//! applied, so the instances that stay keep their processes, new ones start,
//! and the highest numbers stop (by their normal stop) on a scale-down.
//!
//! A scale lasts until bosun restarts; a reload keeps it unless the file
//! changed that service's `instances` (then the file wins).

use bosun_config::instance::{self, Scale, MAX_INSTANCES};
use bosun_config::Config;

use super::Supervisor;

/// Why a scale changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// No unit of that name in the config.
    #[error("no service named {0:?}")]
    NoSuchUnit(String),
    /// A unit without `instances` (or one instance of a service).
    #[error("{0} has no instances: only a service with `instances = N` scales (by its name: `bosun ctl scale worker 6`, not worker#2)")]
    NotInstanced(String),
    /// A count out of range.
    #[error("cannot scale {unit} to {count}: expected 1 to {MAX_INSTANCES} instances")]
    Count {
        /// The service.
        unit: String,
        /// The count asked for.
        count: u32,
    },
    /// The service is not active for this container's roles.
    #[error("{unit} is not active in this container (roles {roles})")]
    NotActive {
        /// The service.
        unit: String,
        /// The container's role expression.
        roles: String,
    },
    /// bosun is stopping.
    #[error("bosun is stopping")]
    Stopping,
    /// bosun is booting (restoring): no unit runs yet.
    #[error("bosun is booting ({step}): scale once the units have started")]
    Booting {
        /// What the boot is doing.
        step: String,
    },
    /// The new config cannot be planned (cannot happen for a count alone).
    #[error("{0}")]
    Plan(String),
}

/// The counts of `scale` that a reload from `old` to `new` keeps: those of the
/// services whose `instances` the file did not change.
pub(super) fn kept(old: &Config, new: &Config, scale: &Scale) -> Scale {
    let same = |g: &str| {
        let n = |c: &Config| c.units.get(g).and_then(|u| u.instances);
        n(new).is_some() && n(old) == n(new)
    };
    scale
        .iter()
        .filter(|(g, _)| same(g))
        .map(|(g, n)| (g.clone(), *n))
        .collect()
}

impl Supervisor {
    /// Runs `group` with `count` instances; the answer says what started and stopped.
    pub(super) async fn scale(&mut self, group: &str, count: u32) -> Result<String, ScaleError> {
        let Some(t) = self.config.units.get(group) else {
            return Err(match instance::split(group) {
                Some(_) => ScaleError::NotInstanced(group.to_string()),
                None => ScaleError::NoSuchUnit(group.to_string()),
            });
        };
        let Some(file_count) = t.instances else {
            return Err(ScaleError::NotInstanced(group.to_string()));
        };
        if !(1..=MAX_INSTANCES).contains(&count) {
            return Err(ScaleError::Count {
                unit: group.to_string(),
                count,
            });
        }
        let plan = self.handle.units().plan.clone();
        if !plan.is_active(&instance::unit_name(group, 1)) {
            return Err(ScaleError::NotActive {
                unit: group.to_string(),
                roles: plan.roles_expr.clone(),
            });
        }
        let before = self.scale.get(group).copied().unwrap_or(file_count);
        let mut scale = self.scale.clone();
        scale.insert(group.to_string(), count);
        let config = self.config.clone();
        let applied = self.apply(config, scale).await.map_err(ScaleError::Plan)?;
        let report = format!(
            "scaled {group} from {before} to {count} instances: started {}; stopped {}",
            super::reload::list(&applied.added),
            super::reload::list(&applied.removed),
        );
        tracing::info!("{report}");
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reload::ReloadDiff;
    use super::*;
    use bosun_config::Unit;
    use proptest::prelude::*;

    fn parse(toml: &str) -> Config {
        bosun_config::parse(
            toml,
            std::path::Path::new("/x/bosun.toml"),
            &std::collections::HashMap::new(),
        )
        .expect("valid config")
    }

    fn pairs(c: &Config) -> Vec<(&str, &Unit)> {
        c.units.iter().map(|(n, u)| (n.as_str(), u)).collect()
    }

    const FILE: &str = "[service.w]\nrun = \"work ${BOSUN_INSTANCE}\"\ninstances = 4\n[service.web]\nrun = \"web\"\nafter = [\"w\"]\n";

    proptest! {
        /// From m to n instances: the first min(m, n) and every other unit are
        /// left alone, m+1..=n start, n+1..=m (the highest numbers) stop.
        #[test]
        fn a_scale_touches_only_the_instances_it_adds_or_removes(m in 1u32..30, n in 1u32..30) {
            let c = parse(FILE);
            let at = |k: u32| c.instantiated(&Scale::from([("w".to_string(), k)]));
            let (old, new) = (at(m), at(n));
            let d = ReloadDiff::new(&pairs(&old), &pairs(&new));
            let names = |r: std::ops::RangeInclusive<u32>| -> Vec<String> {
                r.map(|i| instance::unit_name("w", i)).collect()
            };
            prop_assert_eq!(d.added, names(m + 1..=n));
            prop_assert_eq!(d.removed, names(n + 1..=m));
            prop_assert!(d.changed.is_empty());
            prop_assert_eq!(d.keep.len() as u32, m.min(n) + 1);
            prop_assert!(d.keep.contains("web"));
        }
    }

    #[test]
    fn a_reload_keeps_a_scale_unless_the_file_changed_the_count() {
        let scale = Scale::from([("w".to_string(), 6)]);
        let old = parse(FILE);
        let same = parse(&FILE.replace("\"web\"\n", "\"web --new\"\n"));
        assert_eq!(kept(&old, &same, &scale), scale);
        let changed = parse(&FILE.replace("instances = 4", "instances = 2"));
        assert!(kept(&old, &changed, &scale).is_empty());
        let gone = parse(&FILE.replace("instances = 4\n", ""));
        assert!(kept(&old, &gone, &scale).is_empty());
    }
}
