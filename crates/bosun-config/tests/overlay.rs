//! Configs made of several files (`-c base.toml -c site.toml`, `include`), and
//! `env_files`, through the public API on real files in a temp directory.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use bosun_config::{load_all, origins, Command};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&p, text).expect("write");
    p
}

fn env() -> HashMap<String, String> {
    HashMap::new()
}

const BASE: &str = r#"
[bosun]
stop_budget = "20s"

[service.web]
run = ["web", "--port", "8080"]
after = ["db"]
env = { MODE = "prod", LEVEL = "info" }
ready = { tcp = "127.0.0.1:8080", timeout = "30s" }
cwd = "srv"

[service.db]
run = "db"
"#;

const SITE: &str = r#"
[service.web]
run = ["web", "--port", "9090"]
after = []
env = { LEVEL = "debug" }
ready = { timeout = "5s" }
cwd = "site-srv"
"#;

#[test]
fn later_files_win_tables_merge_arrays_replace() {
    let t = tempfile::tempdir().expect("tempdir");
    let base = write(t.path(), "base.toml", BASE);
    let site = write(t.path(), "site/site.toml", SITE);
    let c = load_all(&[base.clone(), site.clone()], &env()).expect("valid");
    let web = &c.units["web"];
    assert_eq!(
        web.run,
        Command::Argv(vec!["web".into(), "--port".into(), "9090".into()])
    );
    assert!(
        web.after.is_empty(),
        "an array is replaced whole: {:?}",
        web.after
    );
    assert_eq!(
        web.env["MODE"], "prod",
        "a table merges: the base's key stays"
    );
    assert_eq!(web.env["LEVEL"], "debug", "… and the overlay's wins");
    assert_eq!(web.ready.timeout, std::time::Duration::from_secs(5));
    assert!(web.ready.probe.is_some(), "the base's probe stays");
    // Relative paths are relative to the file they are written in.
    assert_eq!(
        web.cwd.as_deref(),
        Some(t.path().join("site/site-srv").as_path())
    );
    assert_eq!(c.units["db"].run, Command::Shell("db".into()));
    assert_eq!(c.bosun.stop_budget, std::time::Duration::from_secs(20));
    assert_eq!(c.source, base);
    assert_eq!(c.files, vec![base.clone(), site.clone()]);
    assert_eq!(c.sources, vec![base, site]);
}

#[test]
fn an_error_names_the_file_and_place_it_is_in() {
    let t = tempfile::tempdir().expect("tempdir");
    let base = write(t.path(), "base.toml", BASE);
    let site = write(
        t.path(),
        "site.toml",
        "[service.web]\nstop_timeout = \"soon\"\n\n[service.extra]\nrun = \"x\"\nrestrat = \"always\"\n",
    );
    let errors = load_all(&[base.clone(), site.clone()], &env()).expect_err("invalid");
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let site_s = site.display().to_string();
    assert_eq!(errors.len(), 2, "{shown:#?}");
    assert!(
        shown[0].starts_with(&format!("{site_s}:2:16: `stop_timeout`")),
        "{shown:#?}"
    );
    assert!(
        shown[1].starts_with(&format!("{site_s}:6:1: unknown key `restrat`")),
        "{shown:#?}"
    );
    // A syntax error in the overlay: that file, that place.
    let bad = write(t.path(), "bad.toml", "[service.web]\nrun = [\"a\"\n");
    let errors = load_all(&[base.clone(), bad.clone()], &env()).expect_err("invalid");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, bad.display().to_string());
    assert!(
        errors[0].message.contains("TOML syntax error"),
        "{}",
        errors[0]
    );
    // A missing -c file is named.
    let missing = t.path().join("nope.toml");
    let errors = load_all(&[base, missing.clone()], &env()).expect_err("invalid");
    assert_eq!(errors[0].file, missing.display().to_string());
    assert!(errors[0].message.contains("cannot read the config file"));
}

#[test]
fn a_unit_duplicated_across_files_as_service_and_task_points_at_both() {
    let t = tempfile::tempdir().expect("tempdir");
    let base = write(t.path(), "base.toml", "[service.job]\nrun = \"x\"\n");
    let site = write(t.path(), "site.toml", "[task.job]\nrun = \"y\"\n");
    let errors = load_all(&[base.clone(), site.clone()], &env()).expect_err("invalid");
    let e = errors
        .iter()
        .find(|e| e.message.contains("duplicate unit name"))
        .expect("the duplicate");
    assert_eq!(e.file, site.display().to_string());
    assert!(
        e.message.contains(&format!("({} line 1)", base.display())),
        "{e}"
    );
}

#[test]
fn includes_are_globbed_sorted_and_override_the_including_file() {
    let t = tempfile::tempdir().expect("tempdir");
    let base = write(
        t.path(),
        "bosun.toml",
        "include = [\"conf.d/*.toml\", \"empty.d/*.toml\"]\n\n[service.web]\nrun = \"base\"\nstop_timeout = \"3s\"\n",
    );
    write(
        t.path(),
        "conf.d/20-late.toml",
        "[service.web]\nrun = \"late\"\n",
    );
    write(
        t.path(),
        "conf.d/10-early.toml",
        "[service.web]\nrun = \"early\"\nstop_signal = \"SIGINT\"\n",
    );
    write(t.path(), "conf.d/README", "not toml = [");
    write(t.path(), "conf.d/.hidden.toml", "not toml = [");
    let c = bosun_config::load(&base, &env()).expect("valid");
    let web = &c.units["web"];
    assert_eq!(
        web.run,
        Command::Shell("late".into()),
        "sorted: 20 after 10"
    );
    assert_eq!(web.stop_signal.name, "SIGINT");
    assert_eq!(web.stop_timeout, std::time::Duration::from_secs(3));
    let names: Vec<String> = c
        .sources
        .iter()
        .map(|p| p.strip_prefix(t.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        ["bosun.toml", "conf.d/10-early.toml", "conf.d/20-late.toml"]
    );

    // A later -c file overrides the includes of an earlier one.
    let site = write(t.path(), "site.toml", "[service.web]\nrun = \"site\"\n");
    let c = load_all(&[base.clone(), site.clone()], &env()).expect("valid");
    assert_eq!(c.units["web"].run, Command::Shell("site".into()));

    // Where each value came from.
    let o: HashMap<String, String> = origins(&[base, site.clone()])
        .expect("origins")
        .into_iter()
        .collect();
    assert_eq!(o["service.web.run"], format!("{}:2:7", site.display()));
    let early = t.path().join("conf.d/10-early.toml");
    assert_eq!(
        o["service.web.stop_signal"],
        format!("{}:3:15", early.display())
    );
    assert!(o["service.web.stop_timeout"]
        .starts_with(&t.path().join("bosun.toml").display().to_string()));
    assert!(!o.contains_key("include"), "{o:?}");
}

#[test]
fn env_files_are_paths_and_their_content_is_not_read_by_the_config() {
    let t = tempfile::tempdir().expect("tempdir");
    let secret = write(t.path(), "secrets/db_password", "hunter2-from-a-file\n");
    let base = write(
        t.path(),
        "bosun.toml",
        "[service.app]\nrun = \"app\"\nenv = { MODE = \"x\" }\nenv_files = { DB_PASSWORD = \"secrets/db_password\", API_TOKEN = \"/nonexistent/api_token\" }\n",
    );
    let c = bosun_config::load(&base, &env()).expect("valid");
    let app = &c.units["app"];
    assert_eq!(app.env_files["DB_PASSWORD"], secret);
    assert_eq!(
        app.env_files["API_TOKEN"],
        PathBuf::from("/nonexistent/api_token")
    );
    // A file missing now is a warning (it may be mounted at run time), naming the path.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("/nonexistent/api_token does not exist now"),
        "{:?}",
        c.warnings
    );
    assert!(c.warnings[0].contains(":4:"), "located: {:?}", c.warnings);
    let shown = c.to_redacted_toml();
    assert!(shown.contains("env_files"), "{shown}");
    assert!(shown.contains("secrets/db_password"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
