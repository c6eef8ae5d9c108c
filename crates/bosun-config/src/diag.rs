//! The diagnostics of one file: errors and warnings located by byte offset, turned
//! into line:column here, redacted all at once at the end, and the "did you mean"
//! suggestions that go into them.
//!
//! Every reader and check reports through [`Diag`]; nothing returns at the first
//! problem. [`Diag::finish`] is the one place that redacts messages, so no message
//! can forget to.

use std::collections::HashSet;
use std::path::Path;

use crate::error::ConfigError;
use crate::redact::Redactor;

/// Collects the errors and warnings of one file.
///
/// Messages are stored as written; [`Diag::finish`] redacts them, and
/// [`Diag::quote`] quotes a value redacted before cutting it short (so that no
/// part of a secret survives the cut).
pub(crate) struct Diag<'a> {
    file: String,
    text: &'a str,
    errors: Vec<ConfigError>,
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
    /// Diagnostics for `text`, read from `file` (named in every message).
    pub fn new(file: &Path, text: &'a str, redactor: Redactor) -> Self {
        Diag {
            file: file.display().to_string(),
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
            redactor,
            warned_vars: HashSet::new(),
        }
    }

    /// The source text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The 1-based line of byte offset `pos` (for "… (line 3)" in messages).
    pub fn line_of(&self, pos: usize) -> usize {
        line_col(self.text, pos).0
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
        let (line, column) = line_col(self.text, pos);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Records an error with no single place (line 0).
    pub fn error_nowhere(&mut self, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: 0,
            column: 0,
            message: message.into(),
        });
    }

    /// Records a warning at byte offset `pos`.
    pub fn warn(&mut self, pos: usize, message: impl AsRef<str>) {
        let (line, column) = line_col(self.text, pos);
        self.warnings.push(format!(
            "{}:{}:{}: {}",
            self.file,
            line,
            column,
            message.as_ref()
        ));
    }

    /// Records a warning with no single place.
    pub fn warn_nowhere(&mut self, message: impl AsRef<str>) {
        self.warnings
            .push(format!("{}: {}", self.file, message.as_ref()));
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
        for e in &mut self.errors {
            e.message = r.redact(&e.message);
        }
        for w in &mut self.warnings {
            *w = r.redact(w);
        }
        self.errors.sort_by_key(|e| (e.line == 0, e.line, e.column));
        self.errors.dedup();
        Findings {
            errors: self.errors,
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
        let mut d = Diag::new(Path::new("x.toml"), text, Redactor::from_vars(&env));
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
