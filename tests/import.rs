//! `bosun import supervisord`: the corpus under tests/import/corpus (configs
//! modeled on public projects' supervisord.conf files, each naming its source)
//! is translated, every result passes `bosun check` as written, and what the
//! translation says about stop signals, timeouts, users, instances, tasks,
//! groups, includes and the FATAL listener is checked on several. Bad input exits
//! 2 with file:line and writes nothing; a password never shows.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/import")
}

/// The corpus entries: each `NN-name.conf`, or `NN-name/supervisord.conf`.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("corpus dir").flatten() {
        let p = e.path();
        if p.is_dir() && p.join("supervisord.conf").is_file() {
            out.push(p.join("supervisord.conf"));
        } else if p.extension().is_some_and(|x| x == "conf") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// What one import gave.
struct Imported {
    code: i32,
    stderr: String,
    text: String,
    out: PathBuf,
    _scratch: Scratch,
}

impl Imported {
    fn toml(&self) -> toml::Table {
        self.text
            .parse()
            .unwrap_or_else(|e| panic!("{}: not TOML: {e}\n{}", self.out.display(), self.text))
    }

    fn unit(&self, kind: &str, name: &str) -> toml::Table {
        let t = self.toml();
        t.get(kind)
            .and_then(|k| k.get(name))
            .and_then(|u| u.as_table())
            .cloned()
            .unwrap_or_else(|| panic!("no [{kind}.{name}] in\n{}", self.text))
    }

    /// The warning naming `line` and `key`, from stderr.
    fn warning(&self, file_end: &str, line: usize, key: &str) -> String {
        let needle = format!("{file_end}:{line}: ");
        self.stderr
            .lines()
            .find(|l| l.contains(&needle) && l.contains(&format!("] {key}: ")))
            .unwrap_or_else(|| panic!("no warning at {needle} for `{key}` in\n{}", self.stderr))
            .to_string()
    }
}

/// The line of the first `key` after `[section]` in the corpus file `name`.
fn line_of(name: &str, section: &str, key: &str) -> usize {
    let text = fs::read_to_string(corpus().join("corpus").join(name)).expect("corpus file");
    let start = text
        .lines()
        .position(|l| l.trim() == section)
        .unwrap_or_else(|| panic!("no {section} in {name}"));
    text.lines()
        .enumerate()
        .skip(start)
        .find(|(_, l)| l.starts_with(key))
        .map(|(n, _)| n + 1)
        .unwrap_or_else(|| panic!("no {key} after {section} in {name}"))
}

fn import(conf: &Path) -> Imported {
    let scratch = Scratch::new();
    let out = scratch.path("bosun.toml");
    let (code, stdout, stderr) = bosun(
        &[
            "import",
            "supervisord",
            &conf.display().to_string(),
            "-o",
            &out.display().to_string(),
        ],
        &[],
    );
    assert!(
        stdout.is_empty(),
        "with -o nothing goes to stdout: {stdout}"
    );
    Imported {
        code,
        stderr,
        text: slurp(&out),
        out,
        _scratch: scratch,
    }
}

fn entry(name: &str) -> Imported {
    let p = corpus().join("corpus").join(name);
    let p = if p.is_dir() {
        p.join("supervisord.conf")
    } else {
        p
    };
    let i = import(&p);
    assert_eq!(i.code, 0, "{name}: {}", i.stderr);
    i
}

/// `bosun check` on the output, as written: it must pass.
fn check_passes(i: &Imported, name: &str) {
    let out = i.out.display().to_string();
    let (code, plan, err) = bosun(&["check", "-c", &out, "--roles", "all"], &[]);
    assert_eq!(
        code, 0,
        "{name}: bosun check failed:\n{err}\n--- translation:\n{}",
        i.text
    );
    assert!(plan.contains("active units"), "{name}: {plan}");
}

#[test]
fn every_corpus_config_translates_and_passes_check() {
    let all = entries(&corpus().join("corpus"));
    assert!(all.len() >= 20, "the corpus has {} entries", all.len());
    for conf in &all {
        let name = conf.display().to_string();
        let i = import(conf);
        assert_eq!(i.code, 0, "{name}: {}", i.stderr);
        // Each warning is on stderr and in the output, as a comment.
        let warned = i
            .stderr
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .count();
        let commented = i.text.lines().filter(|l| l.contains("warning: ")).count();
        assert_eq!(warned, commented, "{name}:\n{}\n---\n{}", i.stderr, i.text);
        check_passes(&i, &name);
    }
}

/// docassemble: one-shots become tasks (on demand when not started at boot),
/// long-running programs services with their signals, timeouts and users.
#[test]
fn docassemble_tasks_services_signals_timeouts_users() {
    let i = entry("01-docassemble.conf");
    let init = i.unit("task", "initialize");
    assert!(init.get("on_demand").is_none(), "initialize runs at boot");
    assert_eq!(init["user"].as_str(), Some("0"));
    for name in ["reset", "update", "sync"] {
        let t = i.unit("task", name);
        assert_eq!(t["on_demand"].as_bool(), Some(true), "{name}");
    }
    let pg = i.unit("service", "postgres");
    assert_eq!(pg["stop_signal"].as_str(), Some("SIGINT"));
    assert_eq!(pg["stop_timeout"].as_str(), Some("120s"));
    assert_eq!(pg["restart"].as_str(), Some("always"));
    assert_eq!(
        pg["start_limit"]["burst"].as_integer(),
        Some(2),
        "startretries=1: two starts"
    );
    let celery = i.unit("service", "celery");
    assert_eq!(celery["stop_timeout"].as_str(), Some("600s"));
    assert_eq!(
        (celery["user"].as_str(), celery["cwd"].as_str()),
        (Some("www-data"), Some("/tmp"))
    );
    assert_eq!(
        celery["log_file"]["path"].as_str(),
        Some("/srv/da/log/worker.log")
    );
    assert_eq!(celery["output"].as_str(), Some("null"));
    let cron = i.unit("service", "cron");
    assert_eq!(cron["restart"].as_str(), Some("never"));
    let line = line_of("01-docassemble.conf", "[program:cron]", "autostart=");
    assert!(i
        .warning("01-docassemble.conf", line, "autostart")
        .contains("bosun starts every active unit"));
    assert_eq!(
        i.toml()["bosun"]["http_listen"].as_str(),
        Some("0.0.0.0:9001")
    );
    // priority: the output is in start order, and each priority is a warning
    // with a suggested `after`.
    let order: Vec<&str> = i
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("[task.").or(l.strip_prefix("[service.")))
        .collect();
    assert_eq!(order.first().copied(), Some("reset]"), "{order:?}");
    assert_eq!(order.last().copied(), Some("initialize]"), "{order:?}");
    let line = line_of("01-docassemble.conf", "[program:postgres]", "priority=");
    let w = i.warning("01-docassemble.conf", line, "priority");
    assert!(
        w.contains("without waiting for them to be up") && w.contains("after = [\"rabbitmq\"]"),
        "{w}"
    );
    assert!(
        i.unit("service", "postgres").get("after").is_none(),
        "only suggested, as a comment"
    );
    assert!(i.text.contains("# after = [\"rabbitmq\"]"), "{}", i.text);
    check_passes(&i, "docassemble");
}

#[test]
fn stop_signals_output_and_environment() {
    let i = entry("04-mediawiki.conf");
    for name in ["php-fpm", "nginx"] {
        let u = i.unit("service", name);
        assert_eq!(u["stop_signal"].as_str(), Some("SIGQUIT"), "{name}");
        assert_eq!(
            u["output"].as_str(),
            Some("prefix"),
            "/dev/stdout with maxbytes=0"
        );
    }
    let ng = i.unit("service", "nginx");
    let run: Vec<&str> = ng["run"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        run,
        [
            "/usr/sbin/nginx",
            "-g",
            "daemon off; error_log /dev/stderr info;"
        ]
    );
    let i = entry("08-vnc-desktop.conf");
    let lx = i.unit("service", "lxsession");
    assert_eq!(lx["env"]["DISPLAY"].as_str(), Some(":1"));
    assert_eq!(lx["env"]["HOME"].as_str(), Some("/home/desk"));
    assert_eq!(
        (lx["user"].as_str(), lx["cwd"].as_str()),
        (Some("desk"), Some("/home/desk"))
    );
    assert_eq!(
        lx["log_file"]["path"].as_str(),
        Some("/var/log/lxsession.log")
    );
}

#[test]
fn numprocs_become_instances() {
    let i = entry("12-laravel-queue-numprocs.conf");
    let w = i.unit("service", "laravel-worker");
    assert_eq!(w["instances"].as_integer(), Some(10));
    let run: Vec<&str> = w["run"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        run.contains(&"%QUEUE_CONNECTION%"),
        "%% is a literal %: {run:?}"
    );
    assert_eq!(w["start_limit"]["burst"].as_integer(), Some(11));
    let i = entry("13-laravel-worker-instances.conf");
    let w = i.unit("service", "laravel-worker");
    assert_eq!(w["instances"].as_integer(), Some(2));
    let run: Vec<&str> = w["run"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(run.contains(&"--name=w${BOSUN_INSTANCE}"), "{run:?}");
    assert!(i
        .warning("13-laravel-worker-instances.conf", 10, "process_num")
        .contains("counts from 1"));
    // Laravel's documented worker: eight processes sharing one log file; each
    // instance gets a file of its own.
    let i = entry("21-laravel-docs-worker.conf");
    let w = i.unit("service", "laravel-worker");
    assert_eq!(w["instances"].as_integer(), Some(8));
    assert_eq!(
        (w["user"].as_str(), w["stop_timeout"].as_str()),
        (Some("forge"), Some("3600s"))
    );
    assert_eq!(
        w["log_file"]["path"].as_str(),
        Some("/srv/app/worker-${BOSUN_INSTANCE}.log")
    );
    let line = line_of(
        "21-laravel-docs-worker.conf",
        "[program:laravel-worker]",
        "stdout_logfile=",
    );
    assert!(i
        .warning("21-laravel-docs-worker.conf", line, "stdout_logfile")
        .contains("a file of its own"));
}

#[test]
fn fatal_listeners_make_services_essential() {
    let i = entry("07-fatal-listener.conf");
    for name in ["node", "api", "nginx"] {
        assert_eq!(
            i.unit("service", name)["essential"].as_bool(),
            Some(true),
            "{name}"
        );
    }
    let api = i.unit("service", "api");
    assert_eq!(
        api["log_file"]["path"].as_str(),
        Some("/var/log/api_stdout.log"),
        "%(program_name)s"
    );
    assert_eq!(api["log_file"]["max_bytes"].as_str(), Some("10MiB"));
    assert!(
        !i.stderr.contains("[eventlistener:quit_on_failure]"),
        "recognised, not warned: {}",
        i.stderr
    );
    // A listener that stops supervisord on any exit: the programs that are not
    // restarted are services whose exit stops the container, not one-shots.
    let i = entry("10-uwsgi-nginx.conf");
    let t = i.toml();
    assert!(t.get("task").is_none(), "{}", i.text);
    for name in ["uwsgi", "nginx"] {
        let u = i.unit("service", name);
        assert_eq!(
            (u["essential"].as_bool(), u["restart"].as_str()),
            (Some(true), Some("never")),
            "{name}"
        );
    }
    // Not recognised: a warning at the listener's line.
    let i = entry("20-unrecognised-listener.conf");
    let line = line_of(
        "20-unrecognised-listener.conf",
        "[eventlistener:subprocess-stopped]",
        "[eventlistener",
    );
    assert!(i
        .warning("20-unrecognised-listener.conf", line, "eventlistener")
        .contains("not recognised"));
    assert!(!i.text.contains("\nessential = true"), "{}", i.text);
}

#[test]
fn groups_become_roles_and_includes_are_read() {
    let i = entry("11-tornado-group.conf");
    for name in ["hey-0", "hey-1"] {
        let roles = i.unit("service", name)["roles"].clone();
        assert_eq!(roles.as_array().map(|a| a.len()), Some(1));
        assert_eq!(roles[0].as_str(), Some("tornados"));
    }
    let i = entry("17-onlyoffice");
    for name in ["docservice", "converter", "metrics"] {
        let u = i.unit("service", name);
        assert_eq!(u["roles"][0].as_str(), Some("ds"), "{name}");
        assert_eq!(u["user"].as_str(), Some("ds"));
    }
    let conv = i.unit("service", "converter");
    assert_eq!(
        conv["env"]["LD_LIBRARY_PATH"].as_str(),
        Some("/srv/ds/server/FileConverter/bin")
    );
    // Relative globs from the including file; %(here)s is the included file's directory.
    let i = entry("03-include");
    let here = corpus().join("corpus/03-include/conf.d");
    let here = fs::canonicalize(&here).unwrap().display().to_string();
    let q = i.unit("service", "queue");
    assert_eq!(q["cwd"].as_str(), Some(here.as_str()));
    assert_eq!(
        q["run"][1].as_str().map(str::to_string),
        Some(format!("{here}/../artisan"))
    );
    let line = line_of("03-include/supervisord.conf", "[include]", "files");
    assert!(i
        .warning("supervisord.conf", line, "files")
        .contains("missing.d/*.conf"));
}

#[test]
fn the_http_password_never_shows() {
    let i = entry("18-supervisor-sample.conf");
    assert!(
        !i.text.contains("s3cr3t-Sample-Pw") && !i.stderr.contains("s3cr3t-Sample-Pw"),
        "{}\n{}",
        i.text,
        i.stderr
    );
    let b = &i.toml()["bosun"];
    assert_eq!(b["http_listen"].as_str(), Some("127.0.0.1:9001"));
    assert!(b["http_token_file"].as_str().is_some());
    assert!(i
        .warning("18-supervisor-sample.conf", 17, "password")
        .contains("bearer token"));
    // Neither in stdout when no -o is given.
    let conf = corpus().join("corpus/18-supervisor-sample.conf");
    let (code, out, err) = bosun(&["import", "supervisord", &conf.display().to_string()], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("[service.theprogramname]"));
    assert!(!out.contains("s3cr3t") && !err.contains("s3cr3t"));
}

#[test]
fn environment_expansions_and_quoting_reach_bosun() {
    let s = Scratch::new();
    let conf = s.path("supervisord.conf");
    fs::write(
        &conf,
        "[supervisord]\nenvironment=SHARED=\"a,b\"\n\n[program:app]\ncommand=sh -c 'echo ${NOT_BOSUN} $$ %%d'\n\
         environment=PATH=\"/opt/app/bin:%(ENV_PATH)s\",GREETING='hello, world',\n  HOME=%(here)s\nstopwaitsecs=%(ENV_GRACE)s\n",
    )
    .unwrap();
    let out = s.path("bosun.toml");
    let (code, _, err) = bosun(
        &[
            "import",
            "supervisord",
            &conf.display().to_string(),
            "-o",
            &out.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, plan, err) = bosun(
        &["check", "-c", &out.display().to_string()],
        &[("PATH", "/usr/bin:/bin"), ("GRACE", "42")],
    );
    assert_eq!(code, 0, "{err}\n{}", slurp(&out));
    let here = s.dir.path().display().to_string();
    for want in [
        "PATH = \"/opt/app/bin:/usr/bin:/bin\"".to_string(),
        "GREETING = \"hello, world\"".to_string(),
        "SHARED = \"a,b\"".to_string(),
        format!("HOME = \"{here}\""),
        "stop_timeout = \"42s\"".to_string(),
    ] {
        assert!(plan.contains(&want), "missing {want:?} in\n{plan}");
    }
    // supervisord hands `${NOT_BOSUN}` and `$$` to sh untouched; so does bosun.
    let env: std::collections::HashMap<String, String> =
        [("PATH".to_string(), "/bin".to_string())].into();
    let config = bosun_config::parse(&slurp(&out), &out, &env).expect("reads back");
    let run = &config.units["app"].run;
    let want = ["sh", "-c", "echo ${NOT_BOSUN} $$ %d"]
        .map(String::from)
        .to_vec();
    assert!(
        matches!(run, bosun_config::Command::Argv(a) if *a == want),
        "{run:?}"
    );
}

#[test]
fn unparseable_input_exits_2_with_file_and_line_and_writes_nothing() {
    for (file, line, what) in [
        (
            "no-equals.conf",
            5,
            "expected `key = value` in [program:web]",
        ),
        (
            "env-quoting.conf",
            4,
            "environment: expected KEY=value pairs",
        ),
        ("bare-percent.conf", 3, "must be written `%%`"),
    ] {
        let conf = corpus().join("broken").join(file);
        let s = Scratch::new();
        let out = s.path("bosun.toml");
        let (code, stdout, err) = bosun(
            &[
                "import",
                "supervisord",
                &conf.display().to_string(),
                "-o",
                &out.display().to_string(),
            ],
            &[],
        );
        assert_eq!(code, 2, "{file}: {err}");
        assert!(
            err.contains(&format!("{file}:{line}: ")) && err.contains(what),
            "{file}: {err}"
        );
        assert!(
            stdout.is_empty() && !out.exists(),
            "{file}: nothing is written"
        );
    }
    let (code, _, err) = bosun(
        &["import", "supervisord", "/nonexistent/supervisord.conf"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/supervisord.conf: cannot read"),
        "{err}"
    );
}

/// Real supervisord configs, kept outside the repository (third-party files):
/// `BOSUN_IMPORT_REAL_CORPUS=DIR` translates and checks every `*.conf` there.
#[test]
fn real_corpus_when_given() {
    let Some(dir) = std::env::var_os("BOSUN_IMPORT_REAL_CORPUS") else {
        eprintln!("BOSUN_IMPORT_REAL_CORPUS not set: skipped");
        return;
    };
    let dir = PathBuf::from(dir);
    let mut files = entries(&dir);
    for sub in fs::read_dir(&dir)
        .expect("real corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
    {
        files.extend(
            fs::read_dir(&sub)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf")),
        );
    }
    files.retain(|p| !p.components().any(|c| c.as_os_str() == "ds"));
    assert!(!files.is_empty());
    for f in files {
        let i = import(&f);
        assert_eq!(i.code, 0, "{}: {}", f.display(), i.stderr);
        check_passes(&i, &f.display().to_string());
    }
}
