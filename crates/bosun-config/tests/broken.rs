//! The corpus of broken configs in `tests/configs/broken/` (workspace root).
//!
//! Each file starts with `# expect: <part of the message>` and optionally
//! `# at: LINE:COL`, `# env: NAME=VALUE` (the environment to parse it with; it is
//! also parsed without, as `bosun check` in tests/pid1.rs does, and must fail the
//! same way) and `# never: TEXT` (a secret no error may show, with or without the
//! env). Every file must fail to parse, with an error containing the expected text,
//! at that position when one is given; nothing may panic.
//!
//! A case made of several files `include`s the others (kept in `parts/`, which
//! is not a case itself); `# in: parts/NAME.toml` says the error is in that file
//! (its `# at:` is a position there). Such a case is read from its real path, so
//! that its includes are found.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/configs/broken")
}

#[derive(Clone)]
struct Case {
    path: PathBuf,
    text: String,
    expect: String,
    at: Option<(usize, usize)>,
    env: HashMap<String, String>,
    never: Vec<String>,
    /// The file the error is in, relative to the corpus (`# in:`), when not the case.
    within: Option<String>,
}

fn cases() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable case");
            let mut expect = None;
            let mut at = None;
            let mut env = HashMap::new();
            let mut never = Vec::new();
            let mut within = None;
            for line in text.lines().take_while(|l| l.starts_with('#')) {
                if let Some(e) = line.strip_prefix("# env:") {
                    let (k, v) = e.trim().split_once('=').expect("# env: NAME=VALUE");
                    env.insert(k.to_string(), v.to_string());
                }
                if let Some(f) = line.strip_prefix("# in:") {
                    within = Some(f.trim().to_string());
                }
                if let Some(n) = line.strip_prefix("# never:") {
                    never.push(n.trim().to_string());
                }
                if let Some(e) = line.strip_prefix("# expect:") {
                    expect = Some(e.trim().to_string());
                } else if let Some(a) = line.strip_prefix("# at:") {
                    let (l, c) = a.trim().split_once(':').expect("# at: LINE:COL");
                    at = Some((l.parse().expect("a line"), c.parse().expect("a column")));
                }
            }
            let expect =
                expect.unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()));
            Case {
                path,
                text,
                expect,
                at,
                env,
                never,
                within,
            }
        })
        .collect()
}

#[test]
fn corpus_has_enough_cases() {
    let n = cases().len();
    assert!(n >= 35, "only {n} broken configs");
}

#[test]
fn every_broken_config_fails_where_and_how_it_should() {
    let mut failures = Vec::new();
    let no_env = HashMap::new();
    let runs = cases().into_iter().flat_map(|c| {
        let without = (!c.env.is_empty()).then(|| Case {
            env: no_env.clone(),
            ..c.clone()
        });
        std::iter::once(c).chain(without)
    });
    for case in runs {
        let env = &case.env;
        let name = case
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        // With includes: from where it is, so that they are found.
        let several = case.within.is_some() || case.text.lines().any(|l| l.starts_with("include"));
        let read_as = match several {
            true => case.path.clone(),
            false => PathBuf::from(&name),
        };
        let result = std::panic::catch_unwind(|| bosun_config::parse(&case.text, &read_as, env));
        let errors = match result {
            Err(_) => {
                failures.push(format!("{name}: PANICKED"));
                continue;
            }
            Ok(Ok(_)) => {
                failures.push(format!(
                    "{name}: parsed without error; expected {:?}",
                    case.expect
                ));
                continue;
            }
            Ok(Err(errors)) => errors,
        };
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        for secret in &case.never {
            if let Some(e) = shown.iter().find(|e| e.contains(secret.as_str())) {
                failures.push(format!("{name}: the secret {secret:?} is shown: {e}"));
            }
        }
        let hit = errors.iter().find(|e| e.message.contains(&case.expect));
        match (hit, case.at) {
            (None, _) => failures.push(format!(
                "{name}: no error contains {:?}; got {shown:#?}",
                case.expect
            )),
            (Some(e), Some((line, col))) if (e.line, e.column) != (line, col) => {
                failures.push(format!(
                    "{name}: error {:?} at {}:{}, expected at {line}:{col}",
                    e.message, e.line, e.column
                ))
            }
            (Some(e), _) => {
                let file = match &case.within {
                    Some(f) => corpus_dir().join(f).display().to_string(),
                    None => read_as.display().to_string(),
                };
                if e.file != file {
                    failures.push(format!(
                        "{name}: error {:?} in {}, expected in {file}",
                        e.message, e.file
                    ));
                }
                assert!(e.to_string().starts_with(&format!("{}:", e.file)), "{e}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
