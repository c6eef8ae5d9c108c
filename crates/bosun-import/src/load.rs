//! Reads the main file and the files its `[include] files=` name (globs,
//! relative to the directory of the including file, sorted, as supervisord
//! does), each section tagged with its file.

use std::path::{Path, PathBuf};

use crate::expand::{expand, Names, Used};
use crate::ini::{self, Section};
use crate::{Files, ParseError, Report};

/// A section and the file it is in.
#[derive(Debug, Clone)]
pub struct Located {
    pub file: String,
    /// The directory of `file` (`%(here)s`).
    pub here: String,
    pub section: Section,
}

/// How deep includes may nest (a loop is refused long before).
const MAX_DEPTH: usize = 8;

/// Every section of `path` and of what it includes, in reading order.
pub fn load(
    path: &Path,
    files: &dyn Files,
    report: &mut Report,
) -> Result<Vec<Located>, ParseError> {
    let mut walk = Walk {
        files,
        report,
        out: Vec::new(),
        seen: Vec::new(),
    };
    walk.file(path, 0)?;
    Ok(walk.out)
}

/// A read of a file and its includes: the sections so far, the files read.
struct Walk<'a> {
    files: &'a dyn Files,
    report: &'a mut Report,
    out: Vec<Located>,
    seen: Vec<PathBuf>,
}

impl Walk<'_> {
    /// Reads `path` (`depth` includes down): its sections, then its `[include]`.
    fn file(&mut self, path: &Path, depth: usize) -> Result<(), ParseError> {
        let file = path.display().to_string();
        let text = self
            .files
            .read(path)
            .map_err(|e| ParseError::at(&file, 0, format!("cannot read the file: {e}")))?;
        self.seen.push(path.to_path_buf());
        let here = path
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into());
        let sections = ini::parse(&text, &file)?;
        let include = sections.iter().find(|s| s.name == "include").cloned();
        for s in sections {
            self.out.push(Located {
                file: file.clone(),
                here: here.clone(),
                section: s,
            });
        }
        let Some(inc) = include else { return Ok(()) };
        self.include(&inc, &file, &here, depth)
    }

    /// The `[include]` section `inc` of `file` (in directory `here`): each
    /// pattern of its `files` key; other keys and unexpandable lists are warned about.
    fn include(
        &mut self,
        inc: &Section,
        file: &str,
        here: &str,
        depth: usize,
    ) -> Result<(), ParseError> {
        for e in &inc.entries {
            if e.key != "files" {
                self.report.warn(
                    file,
                    e.line,
                    "include",
                    &e.key,
                    "unknown key (supervisord knows only `files`); ignored",
                );
                continue;
            }
            let names = Names {
                here: here.to_string(),
                program: None,
            };
            let value = expand(&e.value, &names, &mut Used::default())
                .map_err(|m| ParseError::at(file, e.line, format!("[include] files: {m}")))?;
            let Some(value) = value.as_lit() else {
                self.report.warn(file, e.line, "include", "files", "the file list uses %(ENV_…)s: it cannot be read when translating; the files it names are not translated (run the import on them, or expand the variable first)");
                continue;
            };
            for pattern in value.split_whitespace() {
                self.pattern(pattern, file, here, e.line, depth)?;
            }
        }
        Ok(())
    }

    /// Reads the files `pattern` matches (from `file`'s `[include]` at `line`),
    /// each once, at most [`MAX_DEPTH`] includes deep.
    fn pattern(
        &mut self,
        pattern: &str,
        file: &str,
        here: &str,
        line: usize,
        depth: usize,
    ) -> Result<(), ParseError> {
        let matched = glob(Path::new(here), pattern, self.files);
        if matched.is_empty() {
            self.report.warn(
                file,
                line,
                "include",
                "files",
                &format!("{pattern:?} matches no file here: nothing was included from it"),
            );
        }
        for m in matched {
            if self.seen.contains(&m) {
                self.report.warn(
                    file,
                    line,
                    "include",
                    "files",
                    &format!("{} is already included: not read twice", m.display()),
                );
            } else if depth >= MAX_DEPTH {
                return Err(ParseError::at(
                    file,
                    line,
                    format!("[include] nests more than {MAX_DEPTH} deep"),
                ));
            } else {
                self.file(&m, depth + 1)?;
            }
        }
        Ok(())
    }
}

/// The files that `pattern` (relative to `base` unless absolute) matches, sorted.
/// Wildcards (`*`, `?`, `[…]`) are allowed in the last component only, and in
/// whole directories (`conf.d/*/x.conf` is walked one level at a time).
fn glob(base: &Path, pattern: &str, files: &dyn Files) -> Vec<PathBuf> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let mut found = vec![PathBuf::from(if full.is_absolute() { "/" } else { "" })];
    let parts: Vec<String> = full
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => Some("..".into()),
            std::path::Component::CurDir => Some(".".into()),
            _ => None,
        })
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &found {
            if !part.contains(['*', '?', '[']) {
                let p = dir.join(part);
                if !last || files.is_file(&p) {
                    next.push(p);
                }
                continue;
            }
            let Ok(mut names) = files.list(dir) else {
                continue;
            };
            names.sort();
            for n in names
                .iter()
                .filter(|n| !n.starts_with('.') && matches(part, n))
            {
                let p = dir.join(n);
                if !last || files.is_file(&p) {
                    next.push(p);
                }
            }
        }
        found = next;
    }
    found.sort();
    found
}

/// fnmatch: `*`, `?`, `[abc]`, `[!abc]`, `[a-z]`.
pub(crate) fn matches(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let (neg, set) = match p[1] {
                    '!' => (true, &p[2..close]),
                    _ => (false, &p[1..close]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && go(&p[close + 1..], &n[1..])
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn fnmatch() {
        assert!(matches("*.conf", "web.conf"));
        assert!(!matches("*.conf", "web.ini"));
        assert!(matches("w?b.[ch]onf", "web.conf"));
        assert!(matches("[!x]*", "abc"));
        assert!(!matches("[!a]*", "abc"));
        assert!(matches("[0-9]-*.ini", "5-a.ini"));
    }
}
