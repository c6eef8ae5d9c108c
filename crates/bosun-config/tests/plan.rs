//! Role resolution and the start/stop plan.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bosun_config::*;

fn config(text: &str) -> Config {
    parse(text, Path::new("t.toml"), &HashMap::new()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn docassemble() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/docassemble.toml");
    load(&path, &HashMap::new()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn waves(w: &[Vec<String>]) -> Vec<Vec<&str>> {
    w.iter()
        .map(|w| w.iter().map(String::as_str).collect())
        .collect()
}

fn active(p: &Plan) -> Vec<&str> {
    p.units.iter().map(|u| u.name.as_str()).collect()
}

const S: Duration = Duration::from_secs(1);

#[test]
fn docassemble_all() {
    let c = docassemble();
    let p = Plan::new(&c, "all").unwrap();
    assert_eq!(
        p.roles,
        ["log", "mail", "web", "celery", "sql", "redis", "rabbitmq", "cron"]
    );
    assert!(p.inactive.is_empty());
    assert_eq!(
        waves(&p.start_waves),
        vec![
            vec!["initialize"],
            vec!["syslogng", "exim4", "postgres", "redis", "rabbitmq"],
            vec!["create_tables"],
            // Scheduled tasks (cron_*) wait for their timer, not the boot.
            vec!["uwsgi", "websockets", "celery"],
            vec!["nginx"],
        ]
    );
    assert_eq!(
        waves(&p.stop_waves),
        vec![
            // A running on-demand or scheduled task is stopped with the first wave.
            vec![
                "syslogng",
                "exim4",
                "reset",
                "update",
                "sync",
                "nginx",
                "celery",
                "cron_hourly",
                "cron_daily",
                "cron_weekly",
                "cron_monthly",
            ],
            vec!["uwsgi", "websockets"],
            vec!["rabbitmq", "create_tables"],
            vec!["postgres", "redis"],
            vec!["initialize"],
        ]
    );
    let pg = p.unit("postgres").unwrap();
    assert_eq!(pg.reason, "role sql");
    assert_eq!(pg.deps, ["initialize"]);
    assert_eq!(pg.dependents, ["create_tables"]);
    assert_eq!(
        p.unit("initialize").unwrap().reason,
        "no roles: always active"
    );
    assert_eq!(p.unit("create_tables").unwrap().reason, "roles web, celery");
    // nginx 60 → uwsgi 60 → create_tables 10 → postgres 120 + backup 240 → initialize 25
    assert_eq!(p.worst_case_stop, 515 * S);
    assert!(p.worst_case_stop <= c.bosun.stop_budget);
    // Same as the default expression.
    assert_eq!(c.roles_expr(&HashMap::new()), "all");
}

#[test]
fn docassemble_web_celery() {
    let c = docassemble();
    let p = Plan::new(&c, "web:celery").unwrap();
    assert_eq!(p.roles, ["web", "celery"]);
    assert_eq!(
        active(&p),
        [
            "initialize",
            "reset",
            "update",
            "sync",
            "create_tables",
            "uwsgi",
            "websockets",
            "nginx",
            "celery"
        ]
    );
    assert_eq!(
        waves(&p.start_waves),
        vec![
            vec!["initialize"],
            vec!["create_tables"],
            vec!["uwsgi", "websockets", "celery"],
            vec!["nginx"]
        ]
    );
    assert_eq!(
        waves(&p.stop_waves),
        vec![
            vec!["reset", "update", "sync", "nginx", "celery"],
            vec!["uwsgi", "websockets"],
            vec!["create_tables"],
            vec!["initialize"]
        ]
    );
    // `after` edges to units that are not here are dropped; `wait_for` stays.
    let ct = p.unit("create_tables").unwrap();
    assert_eq!(ct.deps, ["initialize"]);
    assert_eq!(c.units["create_tables"].wait_for.len(), 2);
    assert_eq!(p.unit("uwsgi").unwrap().deps, ["create_tables"]);
    let inactive: Vec<(&str, &str)> = p
        .inactive
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_str()))
        .collect();
    assert!(
        inactive.contains(&("postgres", "roles sql not active")),
        "{inactive:?}"
    );
    // postgres, redis, rabbitmq, syslogng, exim4 and the four cron_* tasks.
    assert_eq!(inactive.len(), 9);
    // nginx 60 → uwsgi 60 → create_tables 10 → initialize 25; celery 120 → 10 → 25
    assert_eq!(p.worst_case_stop, 155 * S);
    // `,` works as a separator too, and aliases expand.
    assert_eq!(Plan::new(&c, "web,celery").unwrap().units, p.units);
    assert_eq!(Plan::new(&c, "app").unwrap().units, p.units);
    let env: HashMap<String, String> =
        [("CONTAINERROLE".to_string(), " web:celery ".to_string())].into();
    assert_eq!(c.roles_expr(&env), "web:celery");
}

#[test]
fn docassemble_sql_redis() {
    let c = docassemble();
    let p = Plan::new(&c, "sql:redis").unwrap();
    assert_eq!(active(&p), ["initialize", "postgres", "redis"]);
    assert_eq!(
        waves(&p.start_waves),
        vec![vec!["initialize"], vec!["postgres", "redis"]]
    );
    assert_eq!(
        waves(&p.stop_waves),
        vec![vec!["postgres", "redis"], vec!["initialize"]]
    );
    assert_eq!(p.worst_case_stop, (120 + 240 + 25) * S);
    // The alias `backend` adds rabbitmq.
    let p = Plan::new(&c, "backend").unwrap();
    assert_eq!(active(&p), ["initialize", "postgres", "redis", "rabbitmq"]);
}

#[test]
fn unknown_role_lists_known_roles_and_aliases() {
    let c = docassemble();
    let e = Plan::new(&c, "web:celeri").unwrap_err();
    assert!(e.contains("unknown role `celeri`"), "{e}");
    assert!(e.contains("did you mean `celery`?"), "{e}");
    assert!(
        e.contains("known roles: all, log, mail, web, celery, sql, redis, rabbitmq, cron"),
        "{e}"
    );
    assert!(
        e.contains("aliases: backend (= sql:redis:rabbitmq), app (= web:celery)"),
        "{e}"
    );
    let e = Plan::new(&c, " : ").unwrap_err();
    assert!(e.contains("empty role expression"), "{e}");
}

#[test]
fn roles_aliases_and_always_active_units() {
    let c = config(
        r#"
[roles]
front = ["web", "edge"]
everything = ["front", "db"]

[task.init]
run = "init"

[service.db]
run = "db"
roles = ["db"]
after = ["init"]

[service.web]
run = "web"
roles = ["web"]
after = ["db", "init"]

[service.proxy]
run = "proxy"
roles = ["edge", "web"]
after = ["web"]
"#,
    );
    assert_eq!(c.role_names(), ["db", "web", "edge"]);
    let p = Plan::new(&c, "everything").unwrap();
    assert_eq!(p.roles, ["db", "web", "edge"]);
    assert_eq!(active(&p), ["init", "db", "web", "proxy"]);
    assert_eq!(p.unit("proxy").unwrap().reason, "roles edge, web");
    let p = Plan::new(&c, "edge").unwrap();
    assert_eq!(active(&p), ["init", "proxy"]);
    assert_eq!(p.unit("proxy").unwrap().deps, Vec::<String>::new());
    assert_eq!(waves(&p.start_waves), vec![vec!["init", "proxy"]]);
    assert_eq!(
        p.inactive,
        vec![
            ("db".to_string(), "roles db not active".to_string()),
            ("web".to_string(), "roles web not active".to_string())
        ]
    );
    assert!(p.is_active("init") && !p.is_active("db"));
    // A config without roles: every unit always, `all` fine, any role unknown.
    let c = config("[service.a]\nrun = \"a\"\n");
    assert_eq!(active(&Plan::new(&c, "all").unwrap()), ["a"]);
    let e = Plan::new(&c, "web").unwrap_err();
    assert!(e.contains("known roles: all, (none)"), "{e}");
}

#[test]
fn worst_case_stop_is_the_longest_path() {
    // a ← b ← d, a ← c ← d; c has a backup.
    let c = config(
        r#"
[service.a]
run = "a"
stop_timeout = "10s"

[service.b]
run = "b"
after = ["a"]
stop_timeout = "30s"

[service.c]
run = "c"
after = ["a"]
stop_timeout = "5s"

[service.c.backup]
dump = "dump"
timeout = "40s"

[service.d]
run = "d"
after = ["b", "c"]
stop_timeout = "1s"

[service.e]
run = "e"
stop_timeout = "100ms"

[snapshot]
store = "file:///var/backup"
"#,
    );
    let p = Plan::new(&c, "all").unwrap();
    // d 1 → c (5 + 40) → a 10 = 56 s; d → b 30 → a = 41 s.
    assert_eq!(p.worst_case_stop, 56 * S);
    assert_eq!(
        waves(&p.start_waves),
        vec![vec!["a", "e"], vec!["b", "c"], vec!["d"]]
    );
    assert_eq!(
        waves(&p.stop_waves),
        vec![vec!["d", "e"], vec!["b", "c"], vec!["a"]]
    );
    assert_eq!(p.unit("a").unwrap().dependents, ["b", "c"]);
    assert_eq!(p.unit("d").unwrap().deps, ["b", "c"]);
    assert_eq!(c.units["c"].stop_cost(), 45 * S);
}

#[test]
fn stop_waves_put_a_unit_after_all_its_dependents() {
    // a ← b ← c and a ← c: a must stop after c even though c is also one hop away.
    let c = config("[service.a]\nrun = \"a\"\n[service.b]\nrun = \"b\"\nafter = [\"a\"]\n[service.c]\nrun = \"c\"\nafter = [\"a\", \"b\"]\n");
    let p = Plan::new(&c, "all").unwrap();
    assert_eq!(waves(&p.start_waves), vec![vec!["a"], vec!["b"], vec!["c"]]);
    assert_eq!(waves(&p.stop_waves), vec![vec!["c"], vec!["b"], vec!["a"]]);
}

#[test]
fn a_hand_built_cycle_is_an_error_not_a_hang() {
    let mut c = Config::default();
    for (n, a) in [("x", "y"), ("y", "x")] {
        let mut u = Unit::new(n, UnitKind::Service, Command::Shell("true".into()));
        u.after = vec![a.into()];
        c.units.insert(n.into(), u);
    }
    let e = Plan::new(&c, "all").unwrap_err();
    assert!(e.contains("dependency cycle among: x, y"), "{e}");
}

#[test]
fn demo_plans() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo.toml");
    let c = load(&path, &HashMap::new()).unwrap();
    let p = Plan::new(&c, "all").unwrap();
    assert_eq!(
        waves(&p.start_waves),
        vec![
            vec!["prepare"],
            vec!["db", "listener"],
            vec!["worker"],
            vec!["ticker"]
        ]
    );
    assert!(p.worst_case_stop <= c.bosun.stop_budget);
    let p = Plan::new(&c, "base").unwrap();
    assert_eq!(active(&p), ["prepare", "db", "worker", "listener"]);
    assert_eq!(
        p.inactive,
        vec![("ticker".to_string(), "roles extra not active".to_string())]
    );
}
