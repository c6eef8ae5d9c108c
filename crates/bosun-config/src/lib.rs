//! `bosun.toml`: schema, `${VAR:-default}` interpolation, role resolution,
//! validation with file:line:col errors, and the start/stop plan.
//!
//! Pure: no processes, no network. The runtime (`bosun-core`) and the CLI read
//! only the validated [`Config`] and [`Plan`] this crate produces.

mod model;
pub mod plan;

pub use model::*;
pub use plan::{Plan, PlannedUnit};

use std::collections::HashMap;
use std::path::Path;

/// One configuration problem, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when the problem has no single place, e.g. a cycle across tables).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what is expected.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads, interpolates (against `env`) and validates a config file.
pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read the config file: {e}"),
        }]
    })?;
    parse(&text, path, env)
}

/// Parses config text; `path` is only used in messages and as `Config::source`.
pub fn parse(text: &str, path: &Path, env: &HashMap<String, String>) -> Result<Config, Vec<ConfigError>> {
    todo!("bosun-config helper: parse {text:?} {path:?} {env:?}")
}
