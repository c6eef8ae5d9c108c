//! The fleet's wiring: `[fleet]` (bosun-config's model) into `bosun_fleet::Settings`,
//! and the check `bosun check` and `bosun run` share.

use std::time::Duration;

use bosun_config::{Config, Plan};

/// The `[fleet]` settings when a fleet is configured (a non-empty `database`); an
/// empty `name` is the hostname.
pub fn settings(config: &Config) -> Option<bosun_fleet::Settings> {
    let f = config.fleet.as_ref().filter(|f| f.enabled())?;
    let name = if f.name.is_empty() {
        hostname()
    } else {
        f.name.clone()
    };
    let mut s = bosun_fleet::Settings::new(f.database.clone(), name);
    s.url = f.url.clone();
    s.lease_ttl = f.lease_ttl;
    s.renew_every = f.renew_every;
    s.schema = f.schema.clone();
    Some(s)
}

/// The active singletons of `plan`, with their stop timeouts.
pub fn singletons<'c>(config: &'c Config, plan: &Plan) -> Vec<(&'c str, Duration)> {
    plan.units
        .iter()
        .filter_map(|p| config.units.get(&p.name))
        .filter(|u| u.singleton)
        .map(|u| (u.name.as_str(), u.stop_timeout))
        .collect()
}

/// Every problem with `[fleet]` for this plan, as messages naming the keys (URLs
/// redacted). Singletons without a fleet are no error: they simply run.
pub fn problems(config: &Config, plan: &Plan) -> Vec<String> {
    let Some(s) = settings(config) else {
        return Vec::new();
    };
    match bosun_fleet::validate(&s, &singletons(config, plan)) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| config.redact(&e.to_string()))
            .collect(),
    }
}

/// This machine's hostname (`/proc/sys/kernel/hostname`, then `$HOSTNAME`), or
/// `"bosun"` when neither says.
fn hostname() -> String {
    let from_proc = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string());
    from_proc
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "bosun".into())
}
