//! `bosun check`: validate a config and print the plan for a role expression —
//! active units and why, start and stop waves, the worst-case stop time against
//! `stop_budget`, and the interpolated config with secrets redacted.

use std::path::PathBuf;

use bosun_config::{Config, Env, Plan, PlannedUnit, Unit, UnitKind};

/// Runs the check; returns 0 when the config is valid, 2 when not. `origin`:
/// also list where each value was set.
pub fn check(paths: &[PathBuf], roles: Option<&str>, origin: bool) -> i32 {
    let env = Env::current();
    let Some(config) = crate::load_config(paths, &env) else {
        return 2;
    };
    let path = crate::shown(paths);
    let expr = match roles {
        Some(r) => r.to_string(),
        None => match config.roles_expr_checked(&env) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{path}: {e}");
                return 2;
            }
        },
    };
    // The plan of what runs: one unit per instance.
    let runtime = config.instantiated(&Default::default());
    let plan = match Plan::new(&runtime, &expr) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{path}: {e}");
            return 2;
        }
    };
    let fleet = crate::fleet::problems(&runtime, &plan);
    if !fleet.is_empty() {
        for e in &fleet {
            eprintln!("{path}: {e}");
        }
        return 2;
    }
    print!("{}", render(&config, &plan));
    if origin {
        print!("{}", origins(&config));
    }
    0
}

/// `bosun check --origin`: every value and the file:line:col that set it (values
/// are not repeated here: the rendered config above shows them, redacted).
fn origins(config: &Config) -> String {
    use std::fmt::Write;
    let mut out = String::from("\n# where each value was set\n");
    match bosun_config::origins(&config.files) {
        Ok(list) => {
            let width = list.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (key, at) in list {
                let _ = writeln!(out, "{key:<width$}  {at}");
            }
        }
        // The files changed since they were loaded a moment ago.
        Err(errors) => {
            for e in errors {
                let _ = writeln!(out, "# {e}");
            }
        }
    }
    out
}

/// The plan as text; `plan` is made for `config.instantiated` (one unit per
/// instance), the TOML at the end is the file's (`instances = N`).
pub fn render(file: &Config, plan: &Plan) -> String {
    use std::fmt::Write;
    let config = &file.instantiated(&Default::default());
    let mut out = String::new();
    render_header(&mut out, config, plan);
    render_units(&mut out, config, plan);
    render_waves(&mut out, config, plan);
    render_fleet(&mut out, config);
    if let Some(snap) = &config.snapshot {
        render_snapshot(&mut out, config, plan, snap);
    }
    render_totals(&mut out, config, plan);
    let _ = writeln!(
        out,
        "\n# interpolated config (secrets redacted)\n{}",
        file.to_redacted_toml()
    );
    out
}

/// The `config:` line (its files, overlays joined by ` + `) and the `roles:` line.
fn render_header(out: &mut String, config: &Config, plan: &Plan) {
    use std::fmt::Write;
    let files: Vec<String> = config
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    match files.len() {
        0 => {
            let _ = writeln!(out, "config: {}", config.source.display());
        }
        _ => {
            let _ = writeln!(out, "config: {}", files.join(" + "));
        }
    }
    let _ = writeln!(
        out,
        "roles: {} -> [{}]",
        plan.roles_expr,
        plan.roles.join(", ")
    );
}

/// The active units, one line each, then the inactive ones with why.
fn render_units(out: &mut String, config: &Config, plan: &Plan) {
    use std::fmt::Write;
    let _ = writeln!(out, "\nactive units ({}):", plan.units.len());
    for p in &plan.units {
        let Some(u) = config.units.get(&p.name) else {
            continue;
        };
        let _ = writeln!(out, "{}", unit_line(p, u));
    }
    if !plan.inactive.is_empty() {
        let _ = writeln!(out, "\ninactive units ({}):", plan.inactive.len());
        for (name, why) in &plan.inactive {
            let _ = writeln!(out, "  {name:<20} {why}");
        }
    }
}

/// One active unit: name, kind, why it is active, then its dependencies and
/// traits (essential, singleton, on demand, schedule with its next run).
fn unit_line(p: &PlannedUnit, u: &Unit) -> String {
    use std::fmt::Write;
    let mut line = format!("  {:<20} {:<8} {}", p.name, u.kind.as_str(), p.reason);
    if !p.deps.is_empty() {
        let _ = write!(line, "; after {}", p.deps.join(", "));
    }
    if u.essential {
        line.push_str("; essential");
    }
    if u.singleton {
        line.push_str("; singleton");
    }
    if u.on_demand {
        let _ = write!(line, "; on demand (bosun ctl run {})", p.name);
    }
    if let Some(s) = &u.schedule {
        let next = s
            .next_after(std::time::SystemTime::now())
            .map(|t| s.local_time(t))
            .unwrap_or_else(|| "never".into());
        let _ = write!(
            line,
            "; schedule {:?} ({}), next {next}",
            s.expr(),
            s.timezone()
        );
    }
    line
}

/// The start and stop waves, and the worst-case stop against `stop_budget`
/// (with a warning when it does not fit).
fn render_waves(out: &mut String, config: &Config, plan: &Plan) {
    use std::fmt::Write;
    let _ = writeln!(out, "\nstart waves:");
    for (i, w) in plan.start_waves.iter().enumerate() {
        let _ = writeln!(out, "  {}: {}", i + 1, w.join(", "));
    }
    let _ = writeln!(out, "\nstop waves:");
    for (i, w) in plan.stop_waves.iter().enumerate() {
        let _ = writeln!(out, "  {}: {}", i + 1, w.join(", "));
    }
    let budget = config.bosun.stop_budget;
    let _ = writeln!(
        out,
        "\nworst-case stop: {:?} of stop_budget {:?}",
        plan.worst_case_stop, budget
    );
    if plan.worst_case_stop > budget {
        let _ = writeln!(
            out,
            "warning: the stop plan needs up to {:?} but stop_budget is {:?}: units on the critical path will be SIGKILLed early; lower their stop_timeout or raise stop_budget (and docker stop -t)",
            plan.worst_case_stop, budget
        );
    }
}

/// The `fleet:` line (database with its password masked), when there is a `[fleet]`.
fn render_fleet(out: &mut String, config: &Config) {
    use std::fmt::Write;
    if let Some(f) = crate::fleet::settings(config) {
        let _ = writeln!(
            out,
            "\nfleet: {} as {:?} (schema {}, lease_ttl {:?}, renew_every {:?})",
            f.database_redacted(),
            f.name,
            f.schema,
            f.lease_ttl,
            f.renew_every
        );
    }
}

/// How many services and tasks are active, then the config's warnings.
fn render_totals(out: &mut String, config: &Config, plan: &Plan) {
    use std::fmt::Write;
    let tasks = plan
        .units
        .iter()
        .filter(|p| {
            config
                .units
                .get(&p.name)
                .is_some_and(|u| u.kind == UnitKind::Task)
        })
        .count();
    let _ = writeln!(
        out,
        "({} services, {} tasks)",
        plan.units.len() - tasks,
        tasks
    );
    for w in &config.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
}

/// What a snapshot will hold, and whether the last measured backup fits the budget.
fn render_snapshot(
    out: &mut String,
    config: &Config,
    plan: &Plan,
    snap: &bosun_config::SnapshotConfig,
) {
    use std::fmt::Write;
    let _ = writeln!(out, "\nsnapshot: {}", config.redact(&snap.store));
    for p in &plan.units {
        if let Some(b) = config.units.get(&p.name).and_then(|u| u.backup.as_ref()) {
            let load = b.load.as_ref().map_or("none".to_string(), |l| {
                format!("`{}`", config.redact(&l.display()))
            });
            let _ = writeln!(
                out,
                "  {:<20} dump `{}` (timeout {:?}); load {load}",
                p.name,
                config.redact(&b.dump.display()),
                b.timeout
            );
        }
    }
    for (name, path) in &snap.paths {
        let _ = writeln!(
            out,
            "  {:<20} path {} (saved after every unit stopped)",
            name,
            config.redact(&path.display().to_string())
        );
    }
    let retention = crate::keeper::retention(snap);
    match (retention.daily_off(), snap.daily_at) {
        (true, _) => {}
        (false, Some((h, m))) => {
            let _ = writeln!(out, "  daily snapshot at {h:02}:{m:02} UTC");
        }
        (false, None) => {
            let _ = writeln!(
                out,
                "  no daily snapshots: keep_daily is set but daily_at is not"
            );
        }
    }
    render_encryption(out, snap);
    if snap.verify_after_commit {
        let _ = writeln!(
            out,
            "  every snapshot is read back and verified after its commit"
        );
    }
    let _ = writeln!(out, "  retention (after every commit):");
    for line in retention.describe() {
        let _ = writeln!(out, "    {line}");
    }
    render_last_backup(out, config);
}

/// Whom new snapshots are encrypted to and what restores decrypt with; a warning
/// when the keys asked for cannot be read.
fn render_encryption(out: &mut String, snap: &bosun_config::SnapshotConfig) {
    use std::fmt::Write;
    match crate::keeper::keys(snap) {
        Ok((Some(r), ids)) => {
            let _ = writeln!(
                out,
                "  encryption: age to {}; restores decrypt with {}",
                r.names().join(", "),
                ids.map_or("no identity_file (restoring needs one)".into(), |i| {
                    format!("the identities in {}", i.file().display())
                })
            );
        }
        Ok((None, Some(i))) => {
            let _ = writeln!(out, "  encryption: none for new snapshots; encrypted ones restore with the identities in {}", i.file().display());
        }
        Ok((None, None)) => {
            let _ = writeln!(
                out,
                "  encryption: none (set encrypt_to to encrypt at rest)"
            );
        }
        // A warning, not an error: keys are often mounted only at run time, after an
        // image build ran `bosun check`; `bosun run` refuses to start without them.
        Err(e) => {
            let _ = writeln!(
                out,
                "warning: [snapshot]: {e} (bosun run refuses to start like this)"
            );
        }
    }
}

/// How long the last stop's backup took (from `state_dir`), with a warning when
/// it takes more than 80 % of `stop_budget`.
fn render_last_backup(out: &mut String, config: &Config) {
    use std::fmt::Write;
    let budget = config.bosun.stop_budget;
    if let Some(took) = crate::keeper::last_stop_backup(&config.bosun.state_dir) {
        let _ = writeln!(out, "  last stop backup took {took:.1?}");
        if took > budget.mul_f64(0.8) {
            let _ = writeln!(
                out,
                "warning: the last stop backup took {took:.1?}, {} stop_budget {budget:?}: raise stop_budget (and docker stop -t) before the data outgrows it",
                if took > budget { "more than" } else { "over 80 % of" }
            );
        }
    }
}
