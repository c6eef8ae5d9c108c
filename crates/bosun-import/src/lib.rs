//! `bosun import`: other supervisors' configs translated into `bosun.toml`.
//!
//! Today one source, supervisord ([`supervisord`]). Pure: the files come
//! through [`Files`] (the binary gives the real file system, tests a map), and
//! what comes out is TOML text plus a list of [`Warning`]s, each of which is also
//! a comment in the text at the unit it concerns. Nothing is dropped silently:
//! every key is either translated or named in a warning.
//!
//! Layout: `ini.rs` (supervisord's INI dialect, with lines), `expand.rs`
//! (`%(name)s`), `lex.rs` (`command=` and `environment=` splitting), `load.rs`
//! (`[include]`), `program.rs` (`[program:x]` → a unit), `sections.rs` (every
//! other section), `emit.rs` (the TOML text).
#![forbid(unsafe_code)]

mod emit;
mod expand;
mod ini;
mod lex;
mod load;
mod program;
mod sections;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the files come from.
pub trait Files {
    /// The text of `path`.
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// The names in the directory `dir`.
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>>;
    /// Whether `path` is a readable file.
    fn is_file(&self, path: &Path) -> bool;
}

/// The real file system.
pub struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// A translation: the `bosun.toml` text and what could not be carried over.
#[derive(Debug)]
pub struct Import {
    pub toml: String,
    pub warnings: Vec<Warning>,
}

/// Something in the input with no bosun equivalent, or that bosun does differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    /// The section, as written: `program:web`.
    pub section: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: [{}] {}: {}",
            self.file, self.line, self.section, self.key, self.message
        )
    }
}

/// An input that cannot be read as supervisord would read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    /// 1-based; 0 when the file itself could not be read.
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(file: &str, line: usize, message: String) -> ParseError {
        ParseError {
            file: file.to_string(),
            line,
            message,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.message),
            n => write!(f, "{}:{n}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// The warnings collected while translating.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub warnings: Vec<Warning>,
}

impl Report {
    pub fn warn(&mut self, file: &str, line: usize, section: &str, key: &str, message: &str) {
        self.warnings.push(Warning {
            file: file.to_string(),
            line,
            section: section.to_string(),
            key: key.to_string(),
            message: message.to_string(),
        });
    }
}

/// Translates the supervisord config at `path` (and what it includes).
/// `path` should be absolute: it is what `%(here)s` is made of.
pub fn supervisord(path: &Path, files: &dyn Files) -> Result<Import, ParseError> {
    let mut report = Report::default();
    let loaded = load::load(path, files, &mut report)?;
    let doc = sections::translate(&loaded, &mut report)?;
    let toml = emit::document(&path.display().to_string(), &doc, &report.warnings);
    Ok(Import {
        toml,
        warnings: report.warnings,
    })
}

/// A map of path → text, for tests (and for callers that hold the files in memory).
#[derive(Debug, Default, Clone)]
pub struct MemFiles(pub Vec<(PathBuf, String)>);

impl Files for MemFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }

    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        Ok(self
            .0
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn is_file(&self, path: &Path) -> bool {
        self.0.iter().any(|(p, _)| p == path)
    }
}
