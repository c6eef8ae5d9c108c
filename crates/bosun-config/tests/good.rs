//! Configs that must parse, and what they must mean.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bosun_config::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ok(text: &str, env: &HashMap<String, String>) -> Config {
    match parse(text, Path::new("/etc/bosun/bosun.toml"), env) {
        Ok(c) => c,
        Err(errors) => panic!(
            "unexpected errors:\n{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn errs(text: &str) -> Vec<ConfigError> {
    parse(text, Path::new("t.toml"), &HashMap::new()).expect_err("should fail")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const S: Duration = Duration::from_secs(1);

#[test]
fn defaults_are_filled_in() {
    let c = ok(
        "[service.web]\nrun = \"python3 -m http.server\"\n\n[task.t]\nrun = [\"true\"]\n",
        &HashMap::new(),
    );
    assert_eq!(c.bosun, Settings::default());
    assert_eq!(c.bosun.roles_env, "CONTAINERROLE");
    assert_eq!(c.bosun.roles_default, "all");
    assert_eq!(c.bosun.stop_budget, 570 * S);
    assert_eq!(c.bosun.control_socket, PathBuf::from("/run/bosun/ctl.sock"));
    assert_eq!(c.bosun.state_dir, PathBuf::from("/var/lib/bosun"));
    assert_eq!(c.bosun.log_buffer, 1 << 20);
    assert_eq!(c.bosun.sweep_timeout, 5 * S);
    assert!(c.snapshot.is_none());
    assert!(c.roles.is_empty());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let web = &c.units["web"];
    assert_eq!(
        web,
        &Unit::new(
            "web",
            UnitKind::Service,
            Command::Shell("python3 -m http.server".into())
        )
    );
    assert_eq!(web.run.argv(), ["/bin/sh", "-c", "python3 -m http.server"]);
    assert_eq!(web.restart, Restart::Always);
    assert_eq!(
        web.ready,
        Ready {
            probe: None,
            timeout: 60 * S,
            interval: Duration::from_millis(100)
        }
    );
    assert_eq!(web.start_secs, S);
    assert_eq!(web.wait_for_timeout, 120 * S);
    assert_eq!(
        web.backoff,
        Backoff {
            initial: Duration::from_millis(100),
            max: 30 * S,
            reset_after: 60 * S
        }
    );
    assert_eq!(
        web.start_limit,
        StartLimit {
            burst: 5,
            interval: 60 * S
        }
    );
    assert_eq!(
        web.stop_signal,
        Signal {
            number: 15,
            name: "SIGTERM"
        }
    );
    assert_eq!(web.stop_timeout, 10 * S);
    assert_eq!(web.output, Output::Prefix);
    assert!(!web.essential && !web.restart_dependents);
    assert!(web.health.is_none() && web.backup.is_none() && web.log_file.is_none());

    let t = &c.units["t"];
    assert_eq!(t.kind, UnitKind::Task);
    assert_eq!(t.restart, Restart::Never);
    assert_eq!(t.timeout, 3600 * S);
    assert_eq!(t.run, Command::Argv(vec!["true".into()]));
}

#[test]
fn sub_table_defaults() {
    let text = r#"
[service.db]
run = "db"
health = { tcp = "127.0.0.1:5432" }
log_file = { path = "/var/log/db.log" }

[service.db.backup]
dump = "pg_dumpall"

[snapshot]
store = "s3://bucket/prefix"
"#;
    let c = ok(text, &HashMap::new());
    let db = &c.units["db"];
    let h = db.health.as_ref().unwrap();
    assert_eq!((h.interval, h.timeout, h.failures), (10 * S, 5 * S, 3));
    assert_eq!(db.log_file.as_ref().unwrap().max_bytes, 50_000_000);
    assert_eq!(db.log_file.as_ref().unwrap().backups, 5);
    let b = db.backup.as_ref().unwrap();
    assert_eq!(b.timeout, 300 * S);
    assert!(b.load.is_none());
    let s = c.snapshot.as_ref().unwrap();
    assert_eq!(s.s3_region, "us-east-1");
    assert_eq!(s.keep_daily, 14);
    assert_eq!(s.daily_at, None);
    assert_eq!(s.s3_endpoint, None);
}

#[test]
fn every_key_is_read() {
    let text = r#"
[bosun]
roles_env = "ROLE"
roles_default = "web"
stop_budget = "1m30s"
control_socket = "/tmp/b/ctl.sock"
control_group = "admins"
state_dir = "/tmp/b/state"
http_listen = "127.0.0.1:9001"
http_token_file = "/tmp/b/token"
log_buffer = "512KiB"
log_file = "/tmp/b/bosun.log"
sweep_timeout = "2s"

[service.web]
run = ["srv", "--port", "80"]
roles = ["web"]
wait_for = ["tcp://db:5432", "http://api/health", "postgresql://u@db/x", "file:///run/ok"]
wait_for_timeout = "5m"
ready = { exec = "curl -sf localhost", timeout = "90s", interval = "250ms" }
start_secs = "3s"
restart = "on-failure"
backoff = { initial = "1s", max = "1m", reset_after = "10m" }
start_limit = { burst = 3, interval = "2m" }
essential = true
stop_signal = 3
stop_timeout = "0"
user = "www-data"
group = "www-data"
cwd = "/srv"
umask = "027"
env = { A = "1", N = 2, B = true }
env_file = "/etc/web.env"
output = "inherit"
log_file = { path = "/var/log/web.log", max_bytes = 1024, backups = 0 }
health = { exec = ["check"], interval = "1s", timeout = "500ms", failures = 1 }
restart_dependents = true
"#;
    let c = ok(text, &HashMap::new());
    let b = &c.bosun;
    assert_eq!(b.roles_env, "ROLE");
    assert_eq!(b.roles_default, "web");
    assert_eq!(b.stop_budget, 90 * S);
    assert_eq!(b.control_group.as_deref(), Some("admins"));
    assert_eq!(b.http_listen.as_deref(), Some("127.0.0.1:9001"));
    assert_eq!(b.http_token_file, Some(PathBuf::from("/tmp/b/token")));
    assert_eq!(b.log_buffer, 512 * 1024);
    assert_eq!(b.log_file, Some(PathBuf::from("/tmp/b/bosun.log")));
    assert_eq!(b.sweep_timeout, 2 * S);
    let u = &c.units["web"];
    assert_eq!(
        u.wait_for,
        vec![
            WaitFor::Tcp("db:5432".into()),
            WaitFor::Http("http://api/health".into()),
            WaitFor::Postgres("postgresql://u@db/x".into()),
            WaitFor::File("/run/ok".into()),
        ]
    );
    assert_eq!(u.wait_for_timeout, 300 * S);
    assert_eq!(
        u.ready.probe,
        Some(Probe::Exec(Command::Shell("curl -sf localhost".into())))
    );
    assert_eq!(
        (u.ready.timeout, u.ready.interval),
        (90 * S, Duration::from_millis(250))
    );
    assert_eq!(u.start_secs, 3 * S);
    assert_eq!(u.restart, Restart::OnFailure);
    assert_eq!(
        u.backoff,
        Backoff {
            initial: S,
            max: 60 * S,
            reset_after: 600 * S
        }
    );
    assert_eq!(
        u.start_limit,
        StartLimit {
            burst: 3,
            interval: 120 * S
        }
    );
    assert!(u.essential && u.restart_dependents);
    assert_eq!(u.stop_signal, Signal::QUIT);
    assert_eq!(u.stop_timeout, Duration::ZERO);
    assert_eq!(u.user.as_deref(), Some("www-data"));
    assert_eq!(u.group.as_deref(), Some("www-data"));
    assert_eq!(u.cwd, Some(PathBuf::from("/srv")));
    assert_eq!(u.umask, Some(0o027));
    assert_eq!(
        u.env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["A=1", "N=2", "B=true"]
    );
    assert_eq!(u.env_file, Some(PathBuf::from("/etc/web.env")));
    assert_eq!(u.output, Output::Inherit);
    assert_eq!(
        u.log_file,
        Some(LogFile {
            path: "/var/log/web.log".into(),
            max_bytes: 1024,
            backups: 0
        })
    );
    let h = u.health.as_ref().unwrap();
    assert_eq!(h.probe, Probe::Exec(Command::Argv(vec!["check".into()])));
    assert_eq!(
        (h.interval, h.timeout, h.failures),
        (S, Duration::from_millis(500), 1)
    );
}

#[test]
fn the_design_example_parses() {
    let path = root().join("tests/configs/good/design.toml");
    let c = load(&path, &HashMap::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let pg = &c.units["postgres"];
    assert_eq!(pg.wait_for, vec![WaitFor::Tcp("localhost:5432".into())]);
    assert_eq!(
        pg.ready.probe,
        Some(Probe::Postgres("host=/run/postgresql user=postgres".into()))
    );
    assert_eq!(pg.stop_signal, Signal::INT);
    assert_eq!(
        pg.backup.as_ref().unwrap().dump,
        Command::Argv(vec!["pg_dumpall".into(), "-U".into(), "postgres".into()])
    );
    let s = c.snapshot.as_ref().unwrap();
    assert_eq!(s.store, "file:///var/lib/bosun/backup");
    assert_eq!(s.s3_endpoint, None);
    assert_eq!(s.daily_at, Some((6, 0)));
    assert_eq!(s.paths.keys().collect::<Vec<_>>(), ["files", "config"]);
    assert_eq!(c.roles["backend"], ["sql", "redis"]);
    let c = load(
        &path,
        &env(&[
            ("DBHOST", "db.internal"),
            ("BACKUP_URL", "s3://b/p"),
            ("S3ENDPOINTURL", "http://garage:3900"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.units["postgres"].wait_for,
        vec![WaitFor::Tcp("db.internal:5432".into())]
    );
    let s = c.snapshot.as_ref().unwrap();
    assert_eq!(s.store, "s3://b/p");
    assert_eq!(s.s3_endpoint.as_deref(), Some("http://garage:3900"));
}

#[test]
fn interpolation_forms() {
    let text = r#"
[service.web]
run = ["srv", "${PORT:-8080}", "${EMPTY:-fallback}", "${EMPTY-kept-empty}", "${UNSET-unset-default}", "$${LITERAL}", "cost: $$5", "${NAME}"]
user = "${APP_USER:?APP_USER must be set}"
env = { GREETING = "hello ${NAME}, home ${HOME:-/root}", NESTED = "${A:-${B:-deep}}", ALT = "${NAME:+named}" }
ready = { log = '^ready on \d+$' }
stop_timeout = "${STOP:-15s}"
stop_signal = "${SIG:-SIGINT}"
"#;
    let e = env(&[
        ("PORT", "9000"),
        ("EMPTY", ""),
        ("NAME", "bosun"),
        ("APP_USER", "app"),
    ]);
    let c = ok(text, &e);
    let u = &c.units["web"];
    assert_eq!(
        u.run.argv(),
        [
            "srv",
            "9000",
            "fallback",
            "",
            "unset-default",
            "${LITERAL}",
            "cost: $5",
            "bosun"
        ]
    );
    assert_eq!(u.user.as_deref(), Some("app"));
    assert_eq!(u.env["GREETING"], "hello bosun, home /root");
    assert_eq!(u.env["NESTED"], "deep");
    assert_eq!(u.env["ALT"], "named");
    assert_eq!(u.ready.probe, Some(Probe::Log("^ready on \\d+$".into())));
    assert_eq!(u.stop_timeout, 15 * S);
    assert_eq!(u.stop_signal, Signal::INT);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    // `${VAR:?}` unset: an error at that value.
    let errors = parse(text, Path::new("t.toml"), &env(&[("NAME", "x")])).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .message
            .contains("required variable `APP_USER` is not set: APP_USER must be set"),
        "{}",
        errors[0]
    );
    assert_eq!((errors[0].line, errors[0].column), (4, 8));

    // Durations are interpolated before they are parsed, and located when bad.
    let errors = parse(
        text,
        Path::new("t.toml"),
        &env(&[("APP_USER", "a"), ("STOP", "soon")]),
    )
    .unwrap_err();
    assert!(
        errors[0]
            .message
            .contains("found \"soon\" (from \"${STOP:-15s}\")"),
        "{}",
        errors[0]
    );
}

#[test]
fn unset_variable_is_a_warning() {
    let c = ok(
        "[service.web]\nrun = \"srv --name=${NAME}\"\n",
        &HashMap::new(),
    );
    assert_eq!(c.units["web"].run, Command::Shell("srv --name=".into()));
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].starts_with("/etc/bosun/bosun.toml:2:7: `${NAME}` is not set"),
        "{}",
        c.warnings[0]
    );
}

#[test]
fn empty_interpolated_gates_are_skipped() {
    let text = "[service.web]\nrun = \"x\"\nwait_for = [\"${DB_GATE:-}\", \"tcp://${CACHE:-cache}:6379\"]\n";
    let c = ok(text, &HashMap::new());
    assert_eq!(
        c.units["web"].wait_for,
        vec![WaitFor::Tcp("cache:6379".into())]
    );
    let c = ok(text, &env(&[("DB_GATE", "postgres://db/app")]));
    assert_eq!(
        c.units["web"].wait_for[0],
        WaitFor::Postgres("postgres://db/app".into())
    );
    // A literal empty entry is still an error.
    assert!(errs("[service.web]\nrun = \"x\"\nwait_for = [\"\"]\n")[0]
        .message
        .contains("empty entry"));
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let text = r#"
[service.web]
run = "x"
env_file = "env/web.env"
cwd = "${APP_DIR:-app}"
log_file = "logs/web.log"
"#;
    let c = parse(text, Path::new("/srv/conf/bosun.toml"), &HashMap::new()).unwrap();
    let u = &c.units["web"];
    assert_eq!(u.env_file, Some(PathBuf::from("/srv/conf/env/web.env")));
    assert_eq!(u.cwd, Some(PathBuf::from("/srv/conf/app")));
    assert_eq!(
        u.log_file.as_ref().unwrap().path,
        PathBuf::from("/srv/conf/logs/web.log")
    );
    let c = parse(
        text,
        Path::new("/srv/conf/bosun.toml"),
        &env(&[("APP_DIR", "/opt/app")]),
    )
    .unwrap();
    assert_eq!(c.units["web"].cwd, Some(PathBuf::from("/opt/app")));
    // Absolute paths stay as they are; so do paths when the config has no directory.
    let c = parse(
        "[service.web]\nrun = \"x\"\nenv_file = \"/etc/a.env\"\n",
        Path::new("bosun.toml"),
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(c.units["web"].env_file, Some(PathBuf::from("/etc/a.env")));
    let c = parse(
        "[service.web]\nrun = \"x\"\nenv_file = \"a.env\"\n",
        Path::new("bosun.toml"),
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(c.units["web"].env_file, Some(PathBuf::from("a.env")));
}

#[test]
fn units_keep_file_order_across_services_and_tasks() {
    let text = "[task.a]\nrun = \"a\"\n[service.b]\nrun = \"b\"\n[task.c]\nrun = \"c\"\n[service.d]\nrun = \"d\"\n";
    let c = ok(text, &HashMap::new());
    assert_eq!(c.units.keys().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    let kinds: Vec<UnitKind> = c.units.values().map(|u| u.kind).collect();
    assert_eq!(
        kinds,
        [
            UnitKind::Task,
            UnitKind::Service,
            UnitKind::Task,
            UnitKind::Service
        ]
    );
}

#[test]
fn umask_forms_and_signals() {
    let c = ok(
        "[service.a]\nrun = \"a\"\numask = 0o022\nstop_signal = \"sigusr1\"\n",
        &HashMap::new(),
    );
    assert_eq!(c.units["a"].umask, Some(0o022));
    assert_eq!(
        c.units["a"].stop_signal,
        Signal {
            number: 10,
            name: "SIGUSR1"
        }
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // A decimal integer is taken at its value, with a warning.
    let c = ok(
        "[service.a]\nrun = \"a\"\numask = 18\nstop_signal = \"HUP\"\n",
        &HashMap::new(),
    );
    assert_eq!(c.units["a"].umask, Some(0o022));
    assert_eq!(c.units["a"].stop_signal, Signal::HUP);
    assert!(c.warnings[0].contains("octal 022"), "{:?}", c.warnings);
}

#[test]
fn ready_without_probe_is_alive_for_start_secs() {
    let c = ok(
        "[service.a]\nrun = \"a\"\nstart_secs = \"3s\"\nready = { timeout = \"5s\" }\n",
        &HashMap::new(),
    );
    let u = &c.units["a"];
    assert_eq!(u.ready.probe, None);
    assert_eq!(u.ready.timeout, 5 * S);
    assert_eq!(u.start_secs, 3 * S);
}

#[test]
fn many_errors_are_reported_together_in_order() {
    let text = r#"
[service.a]
run = "a"
restrat = "always"
stop_timeout = "soon"

[service.b]
run = "b"
after = ["c", "a"]
output = "loud"

[bogus]
x = 1
"#;
    let errors = errs(text);
    let summary: Vec<String> = errors
        .iter()
        .map(|e| format!("{}:{} {}", e.line, e.column, e.message))
        .collect();
    assert_eq!(errors.len(), 5, "{summary:#?}");
    assert!(errors
        .windows(2)
        .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)));
    assert!(summary[0].starts_with("4:1 unknown key `restrat`"));
    assert!(summary[1].starts_with("5:16 `stop_timeout`"));
    assert!(summary[2].starts_with("9:10 `after` in [service.b] names unknown unit `c`"));
    assert!(summary[3].starts_with("10:10 `output`"));
    assert!(summary[4].starts_with("12:2 unknown key `bogus` at the top level"));
}

#[test]
fn display_is_file_line_col_message() {
    let e = &errs("[service.web]\nrun = \"x\"\nrestrat = 1\n")[0];
    assert_eq!(
        e.to_string(),
        "t.toml:3:1: unknown key `restrat` in [service.web]; did you mean `restart`?"
    );
    let e = load(Path::new("/nonexistent/bosun.toml"), &HashMap::new()).unwrap_err();
    assert_eq!(e[0].line, 0);
    assert!(e[0]
        .to_string()
        .starts_with("/nonexistent/bosun.toml: cannot read the config file"));
}

#[test]
fn example_configs_parse() {
    for name in ["config/demo.toml", "config/docassemble.toml"] {
        let c = load(&root().join(name), &HashMap::new()).unwrap_or_else(|e| {
            panic!(
                "{name}:\n{}",
                e.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert!(c.warnings.is_empty(), "{name}: {:?}", c.warnings);
    }
    let demo = load(&root().join("config/demo.toml"), &HashMap::new()).unwrap();
    assert_eq!(
        demo.bosun.control_socket,
        PathBuf::from("/tmp/bosun-demo/ctl.sock")
    );
    assert!(demo.bosun.state_dir.starts_with("/tmp/bosun-demo"));
    assert_eq!(
        demo.units["listener"].ready.probe,
        Some(Probe::Log("ready on port \\d+".into()))
    );
    assert_eq!(
        demo.units["db"].ready.probe,
        Some(Probe::Http("http://127.0.0.1:18080/".into()))
    );
    let demo = load(
        &root().join("config/demo.toml"),
        &env(&[("DEMO_PORT", "18181")]),
    )
    .unwrap();
    assert_eq!(
        demo.units["worker"].wait_for,
        vec![WaitFor::Tcp("127.0.0.1:18181".into())]
    );
}

fn secret_config() -> (String, HashMap<String, String>) {
    let text = r#"
[service.db]
run = ["postgres", "--password=${DBPASSWORD}"]
wait_for = ["postgres://app:${DBPASSWORD}@db:5432/app"]
ready = { postgres = "host=db user=app password=${DBPASSWORD} dbname=app" }
env = { DBPASSWORD = "${DBPASSWORD}", AWS_SECRET_ACCESS_KEY = "${AWS_SECRET}", api_token = "tok-${DBPASSWORD}", PLAIN = "visible" }
health = { http = "http://admin:${DBPASSWORD}@127.0.0.1:8080/health" }

[service.db.backup]
dump = ["sh", "-c", "PGPASSWORD=${DBPASSWORD} pg_dumpall"]

[snapshot]
store = "s3://bucket/prefix"
s3_endpoint = "https://key:${AWS_SECRET}@s3.example.com"
"#;
    let e = env(&[
        ("DBPASSWORD", "hunter2-pw"),
        ("AWS_SECRET", "wJalrXUtnFEMI-aws"),
    ]);
    (text.to_string(), e)
}

#[test]
fn redacted_toml_holds_no_secret() {
    let (text, e) = secret_config();
    let c = ok(&text, &e);
    assert_eq!(c.units["db"].env["DBPASSWORD"], "hunter2-pw");
    let out = c.to_redacted_toml();
    for secret in ["hunter2", "wJalrXUtnFEMI"] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
    assert!(out.contains("postgres://app:***@db:5432/app"), "{out}");
    assert!(out.contains("password=*** dbname=app"), "{out}");
    assert!(out.contains("https://key:***@s3.example.com"), "{out}");
    assert!(out.contains("PLAIN = \"visible\""), "{out}");
    assert!(out.contains("DBPASSWORD = \"***\""), "{out}");
}

#[test]
fn redacted_toml_reads_back_as_the_same_config() {
    for name in [
        "config/demo.toml",
        "config/docassemble.toml",
        "tests/configs/good/design.toml",
    ] {
        let c = load(&root().join(name), &HashMap::new()).unwrap();
        let out = c.to_redacted_toml();
        let back = parse(&out, &c.source, &HashMap::new())
            .unwrap_or_else(|e| panic!("{name}: {e:?}\n{out}"));
        let mut expected = c.units.clone();
        for u in expected.values_mut() {
            for (k, v) in u.env.iter_mut() {
                if bosun_config::redact::is_secret_key(k) {
                    *v = "***".into();
                }
            }
        }
        assert_eq!(back.units, expected, "{name}\n{out}");
        assert!(back.units.keys().eq(c.units.keys()), "{name}: order");
        assert_eq!(back.bosun, c.bosun, "{name}");
        assert_eq!(back.roles, c.roles, "{name}");
        assert_eq!(back.snapshot, c.snapshot, "{name}");
    }
    // With secrets: the same but for the masked values.
    let (text, e) = secret_config();
    let c = ok(&text, &e);
    let back = ok(&c.to_redacted_toml(), &HashMap::new());
    assert_eq!(back.units["db"].env["DBPASSWORD"], "***");
    assert_eq!(back.units["db"].env["PLAIN"], "visible");
    assert_eq!(back.units["db"].stop_timeout, c.units["db"].stop_timeout);
}
