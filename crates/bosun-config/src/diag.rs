//! The diagnostics of a config (one file, or a base and its overlays): errors and
//! warnings located by byte offset, turned into file:line:column here, redacted all
//! at once at the end, and the "did you mean" suggestions that go into them.
//!
//! Several files share one offset space ([`Sources`]): each file's spans are
//! shifted by its base, so that a value merged from an overlay still says which
//! file it came from.
//!
//! Every reader and check reports through [`Diag`]; nothing returns at the first
//! problem. [`Diag::finish`] is the one place that redacts messages, so no message
//! can forget to.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::redact::Redactor;

/// One config file's text, at `base` in the shared offset space.
#[derive(Debug)]
pub(crate) struct Source {
    pub path: PathBuf,
    pub text: String,
    pub base: usize,
}

/// The files of one config, in the order they are merged.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub files: Vec<Source>,
}

impl Sources {
    /// One file.
    #[cfg(test)]
    pub fn one(path: &Path, text: &str) -> Sources {
        let mut s = Sources::default();
        s.add(path, text.to_string());
        s
    }

    /// Adds a file; its offsets start at the returned base.
    pub fn add(&mut self, path: &Path, text: String) -> usize {
        // One byte of gap: the end of a file is not the start of the next.
        let base = self
            .files
            .last()
            .map(|f| f.base + f.text.len() + 1)
            .unwrap_or(0);
        self.files.push(Source {
            path: path.to_path_buf(),
            text,
            base,
        });
        base
    }

    /// The file holding offset `pos` and the offset within it.
    pub fn locate(&self, pos: usize) -> Option<(&Source, usize)> {
        let f = self.files.iter().rev().find(|f| f.base <= pos)?;
        Some((f, pos - f.base))
    }

    /// `file`, `line`, `column` of `pos` (the first file's name and 0:0 when none).
    fn place(&self, pos: usize) -> (String, usize, usize) {
        match self.locate(pos) {
            Some((f, local)) => {
                let (l, c) = line_col(&f.text, local);
                (f.path.display().to_string(), l, c)
            }
            None => (String::new(), 0, 0),
        }
    }
}

/// Collects the errors and warnings of a config.
///
/// Messages are stored as written; [`Diag::finish`] redacts them, and
/// [`Diag::quote`] quotes a value redacted before cutting it short (so that no
/// part of a secret survives the cut).
pub(crate) struct Diag<'a> {
    sources: &'a Sources,
    /// Each with the offset it was reported at (`usize::MAX`: nowhere), to sort by.
    errors: Vec<(usize, ConfigError)>,
    warnings: Vec<String>,
    /// The secrets of the environment, and of secret-named `env` entries as the
    /// walk reads them.
    redactor: Redactor,
    /// Variables already warned about (one warning per variable, at its first use).
    warned_vars: HashSet<String>,
}

/// What a finished walk found: errors sorted by position (duplicates dropped),
/// warnings in the order they were made, and the secrets that were masked.
pub(crate) struct Findings {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
    pub redactor: Redactor,
}

impl<'a> Diag<'a> {
    /// Diagnostics for the files of `sources` (each message names its file).
    pub fn new(sources: &'a Sources, redactor: Redactor) -> Self {
        Diag {
            sources,
            errors: Vec::new(),
            warnings: Vec::new(),
            redactor,
            warned_vars: HashSet::new(),
        }
    }

    /// The text at `range` (shared offsets), when it lies in one file.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Option<&'a str> {
        let (f, start) = self.sources.locate(range.start)?;
        f.text.get(start..start + range.len())
    }

    /// The directory of the file holding offset `pos` (what relative paths there
    /// are relative to).
    pub fn dir_of(&self, pos: usize) -> PathBuf {
        self.sources
            .locate(pos)
            .and_then(|(f, _)| f.path.parent().map(Path::to_path_buf))
            .unwrap_or_default()
    }

    /// Where `pos` is, for "… (line 3)" in messages: `line 3`, or `site.toml line 3`
    /// when the config has several files.
    pub fn place_of(&self, pos: usize) -> String {
        let (file, line, _) = self.sources.place(pos);
        match self.sources.files.len() {
            0 | 1 => format!("line {line}"),
            _ => format!("{file} line {line}"),
        }
    }

    fn first_file(&self) -> String {
        self.sources
            .files
            .first()
            .map(|f| f.path.display().to_string())
            .unwrap_or_default()
    }

    /// A value for a message: redacted, quoted, cut short.
    pub fn quote(&self, s: &str) -> String {
        // A service with `instances` holds `${BOSUN_INSTANCE}` as a placeholder.
        self.redactor.quote(&crate::instance::unfill(s))
    }

    /// Masks `value` from now on when `name` looks secret (an `env` entry).
    pub fn add_secret(&mut self, name: &str, value: &str) {
        self.redactor.add(name, value);
    }

    /// How many errors so far.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// Records an error at byte offset `pos`.
    pub fn error(&mut self, pos: usize, message: impl Into<String>) {
        let (file, line, column) = self.sources.place(pos);
        let e = ConfigError {
            file,
            line,
            column,
            message: message.into(),
        };
        self.errors.push((pos, e));
    }

    /// Records an error about a whole file (line 0), e.g. one that cannot be read.
    pub fn error_in(&mut self, file: &Path, message: impl Into<String>) {
        let e = ConfigError {
            file: file.display().to_string(),
            line: 0,
            column: 0,
            message: message.into(),
        };
        self.errors.push((usize::MAX, e));
    }

    /// Records an error with no single place (line 0).
    pub fn error_nowhere(&mut self, message: impl Into<String>) {
        let e = ConfigError {
            file: self.first_file(),
            line: 0,
            column: 0,
            message: message.into(),
        };
        self.errors.push((usize::MAX, e));
    }

    /// Records a warning at byte offset `pos`.
    pub fn warn(&mut self, pos: usize, message: impl AsRef<str>) {
        let (file, line, column) = self.sources.place(pos);
        self.warnings.push(format!(
            "{}:{}:{}: {}",
            file,
            line,
            column,
            message.as_ref()
        ));
    }

    /// Records a warning with no single place.
    pub fn warn_nowhere(&mut self, message: impl AsRef<str>) {
        let file = self.first_file();
        self.warnings.push(format!("{file}: {}", message.as_ref()));
    }

    /// Records a warning about variable `var` at `pos`, unless it already has one.
    pub fn warn_var(&mut self, var: &str, pos: usize, message: impl AsRef<str>) {
        if self.warned_vars.insert(var.to_string()) {
            self.warn(pos, message);
        }
    }

    /// The end of the walk: a warning for every variable of `not_unicode` (the
    /// environment's variables that are not valid UTF-8) that no `${…}` named
    /// (those got a located one), then every message redacted.
    pub fn finish(mut self, not_unicode: Vec<String>) -> Findings {
        for name in not_unicode {
            if !self.warned_vars.contains(&name) {
                self.warnings.push(crate::env::not_unicode_warning(&name));
            }
        }
        let r = &self.redactor;
        for (_, e) in &mut self.errors {
            e.message = r.redact(&e.message);
        }
        for w in &mut self.warnings {
            *w = r.redact(w);
        }
        // By place: file order, then position; what has no place last.
        self.errors.sort_by_key(|(pos, _)| *pos);
        let mut errors: Vec<ConfigError> = self.errors.into_iter().map(|(_, e)| e).collect();
        errors.dedup();
        Findings {
            errors,
            warnings: self.warnings,
            redactor: self.redactor,
        }
    }
}

/// 1-based (line, column) of byte offset `pos` in `text`; columns count characters.
/// Offsets past the end or inside a character are clamped, never a panic.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while pos > 0 && !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Optimal-string-alignment edit distance (a transposition costs 1), on characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

/// The candidate nearest to `word`, when it is near enough to be a likely typo.
/// On a tie the first candidate wins, so the order of `candidates` matters.
pub(crate) fn nearest<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let cl = c.to_ascii_lowercase();
        let mut d = edit_distance(&lower, &cl);
        if d > 0
            && (cl.starts_with(&lower) || lower.starts_with(&cl))
            && lower.len().min(cl.len()) >= 3
        {
            // `stop_time` for `stop_timeout`: a prefix is a strong hint.
            d = d.min(2);
        }
        let better = match best {
            None => true,
            Some((bd, _)) => d < bd,
        };
        if better {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = (word.chars().count().max(c.chars().count()) / 3).max(2);
    (d <= limit).then(|| c.to_string())
}

/// `; did you mean `x`?` or empty.
pub(crate) fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match nearest(word, candidates) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let t = "ab\ncdé\nf";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 5), (2, 3));
        assert_eq!(line_col(t, 6), (2, 3)); // inside é: clamped
        assert_eq!(line_col(t, 999), (3, 2));
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("restrat", "restart"), 1);
        assert_eq!(
            nearest("restrat", ["run", "restart", "roles"]).as_deref(),
            Some("restart")
        );
        assert_eq!(
            nearest("stop_time", ["stop_timeout", "stop_signal"]).as_deref(),
            Some("stop_timeout")
        );
        assert_eq!(nearest("zzzzzz", ["run", "restart"]), None);
    }

    #[test]
    fn finish_sorts_dedups_and_redacts() {
        let env: std::collections::HashMap<String, String> =
            [("DB_PASSWORD".to_string(), "hunter2-long".to_string())].into();
        let text = "a = 1\nb = 2\n";
        let sources = Sources::one(Path::new("x.toml"), text);
        let mut d = Diag::new(&sources, Redactor::from_vars(&env));
        d.error_nowhere("a cycle");
        d.error(6, "second line, says hunter2-long");
        d.error(0, "first line");
        d.error(0, "first line");
        d.warn_var("V", 6, "V is not set");
        d.warn_var("V", 0, "V again");
        let f = d.finish(vec!["V".into(), "W".into()]);
        let shown: Vec<String> = f.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "x.toml:1:1: first line",
                "x.toml:2:1: second line, says ***",
                "x.toml: a cycle"
            ]
        );
        assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
        assert!(f.warnings[0].starts_with("x.toml:2:1: V is not set"));
        assert!(f.warnings[1].contains("\"W\""), "{:?}", f.warnings);
    }
}
