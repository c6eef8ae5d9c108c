//! `bosun.toml`: schema, `${VAR:-default}` interpolation, role resolution,
//! validation with file:line:col errors, and the start/stop plan.
//!
//! Pure: no processes, no network. The runtime (`bosun-core`) and the CLI read
//! only the validated [`Config`] and [`Plan`] this crate produces.
//!
//! # What the file may say
//!
//! - Tables: `[bosun]`, `[roles]`, `[service.NAME]`, `[task.NAME]` (and their
//!   `ready`, `health`, `backoff`, `start_limit`, `log_file`, `env`, `backup`
//!   sub-tables), `[snapshot]`, `[snapshot.paths]`. Any other key is an error naming
//!   the key, its table and the nearest known key.
//! - Every string value is interpolated first ([`interp`]: `${VAR}`,
//!   `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `$$`), then parsed.
//! - Durations: `"100ms"`, `"30s"`, `"10m"`, `"1h"`, `"2d"`, `"1m30s"`, `"1.5s"`,
//!   `"0"` (and the integer `0`). Sizes: bytes as an integer or `"50MB"` (SI,
//!   1000²), `"1MiB"` (1024²), `"512KB"`, `"2GiB"`… ([`value`]).
//! - Signals: `"SIGINT"`, `"INT"`, `"sigint"`, or a number 1–31.
//! - `umask`: an octal string (`"022"`) or an integer (`0o022`; a decimal integer
//!   is taken at its value, with a warning).
//! - Relative paths (`cwd`, `env_file`, `env_files`, `log_file`, `file` probes,
//!   `[bosun]` paths, `[snapshot.paths]`) are relative to the directory of the
//!   config file they are written in.
//! - A config may be several files ([`load_all`]: `-c base.toml -c site.toml`) and
//!   a file may `include = ["conf.d/*.toml"]` (top level): later files win, tables
//!   merge, anything else is replaced; every error names its file (`overlay`).
//! - Optional strings that are empty after interpolation count as not set
//!   (`http_listen = "${HTTP:-}"`, `s3_endpoint = "${S3ENDPOINTURL:-}"`), and a
//!   `wait_for` entry that interpolates to nothing is dropped (a gate that exists
//!   only when its variable is set).
//! - Tasks may not have `ready`, `health` or `backup`, nor `restart = "always"`;
//!   services may not have `timeout` (a task's run time limit).
//!
//! ```
//! use std::collections::HashMap;
//! use std::path::{Path, PathBuf};
//!
//! let text = r#"
//! [service.web]
//! run = ["python3", "-m", "http.server", "${PORT:-8080}"]
//! roles = ["web"]
//! ready = { tcp = "127.0.0.1:${PORT:-8080}" }
//! "#;
//! let config = bosun_config::parse(text, Path::new("bosun.toml"), &HashMap::new()).unwrap();
//! let plan = bosun_config::Plan::new(&config, "web").unwrap();
//! assert_eq!(plan.start_waves, vec![vec!["web".to_string()]]);
//! ```
//!
//! # Layout
//!
//! [`parse`] is the recipe: `overlay` (the files, each parsed by `tree` into a
//! tree of values that keep their byte spans, from `toml_edit`, then merged) → `schema` (the walk, table by table, into
//! the model; values read by `read`, with the syntaxes of [`value`] and the
//! `${…}` of [`interp`]) → `validate` (checks across tables) → `diag` (every
//! error and warning collected, located as line:column, redacted with
//! [`redact`]). The model is `model` (types) and `defaults` (their defaults);
//! [`plan`] resolves roles and orders the units; `render` writes the config back
//! as TOML for `bosun check`; [`env`](mod@env) is the process environment.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod defaults;
mod diag;
pub mod env;
mod error;
pub mod instance;
pub mod interp;
mod model;
mod overlay;
pub mod plan;
mod read;
pub mod redact;
mod render;
pub mod schedule;
mod schema;
mod tree;
mod validate;
pub mod value;

pub use defaults::DEFAULT_CONTROL_SOCKET;
pub use env::Env;
pub use error::ConfigError;
pub use interp::Vars;
pub use model::*;
pub use plan::{Plan, PlannedUnit};
pub use schedule::{Schedule, ScheduleError};

use std::path::{Path, PathBuf};

/// Reads, interpolates (against `env`: an [`Env`], e.g. [`Env::current`], or a
/// plain `HashMap<String, String>`) and validates a config file (and the files it
/// `include`s).
pub fn load(path: &Path, env: &dyn Vars) -> Result<Config, Vec<ConfigError>> {
    load_all(&[path.to_path_buf()], env)
}

/// [`load`] for a config made of several files (`-c base.toml -c site.toml`):
/// later files win, tables merge, anything else is replaced (`overlay`). Every
/// error names the file (and line:column) it is in.
pub fn load_all(paths: &[PathBuf], env: &dyn Vars) -> Result<Config, Vec<ConfigError>> {
    finish(overlay::read(paths, None), paths, env)
}

/// Parses config text; `path` is only used in messages, as `Config::source`, and
/// to resolve relative paths in the config (against its directory) and its
/// `include`s (read from disk).
///
/// Every problem found is returned, sorted by position, each with its file, line
/// and column; a TOML syntax error stops at that error. Non-fatal findings (an
/// unset `${VAR}` without a default, a variable of `env` that is not valid UTF-8,
/// …) go to [`Config::warnings`]. No error or warning shows a secret: each one is
/// redacted ([`redact::Redactor`]) against the secrets of `env` and of the
/// config's own secret-named `env` entries.
pub fn parse(text: &str, path: &Path, env: &dyn Vars) -> Result<Config, Vec<ConfigError>> {
    let paths = [path.to_path_buf()];
    finish(overlay::read(&paths, Some(text)), &paths, env)
}

/// Where each value of the config made of `paths` was set: (`service.web.run`,
/// `site.toml:3:7`), in the merged order. Values are not shown (they may be
/// secrets). For `bosun check --origin`.
pub fn origins(paths: &[PathBuf]) -> Result<Vec<(String, String)>, Vec<ConfigError>> {
    let set = overlay::read(paths, None);
    let env = std::collections::HashMap::<String, String>::new();
    let mut ctx = read::Ctx::new(&set.sources, &env);
    let Some(root) = set.root.as_ref().filter(|_| set.problems.is_empty()) else {
        report(&mut ctx, set.problems);
        return Err(ctx.finish().errors);
    };
    let located = overlay::leaves(root)
        .into_iter()
        .map(|(key, pos)| {
            let at = match set.sources.locate(pos) {
                Some((f, local)) => {
                    let (l, c) = diag::line_col(&f.text, local);
                    format!("{}:{l}:{c}", f.path.display())
                }
                None => String::new(),
            };
            (key, at)
        })
        .collect();
    Ok(located)
}

fn report(ctx: &mut read::Ctx, problems: Vec<overlay::Problem>) {
    for p in problems {
        match p {
            overlay::Problem::At(pos, msg) => ctx.diag.error(pos, msg),
            overlay::Problem::File(file, msg) => ctx.diag.error_in(&file, msg),
        }
    }
}

/// The walk over the merged files: the config, or every error. A file that
/// cannot be read or parsed stops before the walk.
fn finish(
    set: overlay::Set,
    paths: &[PathBuf],
    env: &dyn Vars,
) -> Result<Config, Vec<ConfigError>> {
    let mut ctx = read::Ctx::new(&set.sources, env);
    let Some(root) = set.root.as_ref().filter(|_| set.problems.is_empty()) else {
        report(&mut ctx, set.problems);
        if ctx.diag.error_count() == 0 {
            ctx.diag.error_nowhere("no config file could be read");
        }
        return Err(ctx.finish().errors);
    };
    let source = paths.first().cloned().unwrap_or_default();
    let walked = schema::walk(&mut ctx, root, &source);
    validate::check(&mut ctx.diag, &walked.config, &walked.located);
    let found = ctx.finish();
    if !found.errors.is_empty() {
        return Err(found.errors);
    }
    let mut config = walked.config;
    config.files = paths.to_vec();
    config.sources = set.sources.files.iter().map(|f| f.path.clone()).collect();
    config.warnings = found.warnings;
    config.secrets = found.redactor;
    Ok(config)
}

/// A multi-line message from `toml` on one line.
pub(crate) fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
