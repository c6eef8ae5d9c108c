//! supervisord's INI dialect, as Python's `RawConfigParser` reads it with the
//! options supervisord passes (`inline_comment_prefixes=(';', '#')`,
//! `strict=False`), keeping the line of every section and key.
//!
//! - `[name]` headers; `key = value` or `key: value` (keys are lower-cased);
//! - full-line comments start with `;` or `#` (after optional blanks);
//! - an inline comment is `;` or `#` after a blank (`a;b` keeps its `;`);
//! - a line indented deeper than its key continues the value (joined with `\n`);
//!   blank lines inside a continued value are kept, trailing ones dropped;
//! - a section or key given twice: the later value wins (`strict=False`).

use crate::ParseError;

/// One `[section]` with its keys in file order.
#[derive(Debug, Clone)]
pub struct Section {
    /// The header's text between `[` and `]`, trimmed: `program:web`.
    pub name: String,
    /// The 1-based line of the header.
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// One `key = value`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// The 1-based line of the key.
    pub line: usize,
}

impl Section {
    /// The last value of `key` (supervisord: the later one wins).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// Parses `text` (the file `file`, for messages) into its sections.
pub fn parse(text: &str, file: &str) -> Result<Vec<Section>, ParseError> {
    let mut p = Parser {
        file,
        sections: Vec::new(),
        open: None,
        blanks: 0,
    };
    for (i, raw) in text.lines().enumerate() {
        p.line(i + 1, raw.strip_suffix('\r').unwrap_or(raw))?;
    }
    Ok(p.sections)
}

/// The state between lines.
struct Parser<'a> {
    file: &'a str,
    sections: Vec<Section>,
    /// The indent of the key being read, while continuation lines may follow.
    open: Option<usize>,
    /// Blank lines since the last line read (kept inside a continued value).
    blanks: usize,
}

impl Parser<'_> {
    fn line(&mut self, line_no: usize, raw: &str) -> Result<(), ParseError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            self.blanks += 1;
            return Ok(());
        }
        if trimmed.starts_with(';') || trimmed.starts_with('#') {
            return Ok(());
        }
        let indent = raw.len() - raw.trim_start().len();
        let value = strip_inline_comment(trimmed);
        if self.open.is_some_and(|key_indent| indent > key_indent) {
            self.continuation(value);
            return Ok(());
        }
        self.blanks = 0;
        match header(value) {
            Some(name) => {
                let name = name.map_err(|m| ParseError::at(self.file, line_no, m))?;
                self.section(name, line_no);
                Ok(())
            }
            None => self.entry(value, line_no, indent),
        }
    }

    /// A line that continues the open key's value.
    fn continuation(&mut self, value: &str) {
        let sec = self
            .sections
            .last_mut()
            .expect("an open key is in a section");
        let e = sec.entries.last_mut().expect("an open key has an entry");
        for _ in 0..self.blanks {
            e.value.push('\n');
        }
        if !e.value.is_empty() || self.blanks > 0 {
            e.value.push('\n');
        }
        e.value.push_str(value);
        self.blanks = 0;
    }

    fn section(&mut self, name: String, line_no: usize) {
        self.open = None;
        // `strict=False`: a section named again continues the first one.
        if let Some(prev) = self.sections.iter().position(|s| s.name == name) {
            let s = self.sections.remove(prev);
            self.sections.push(s);
        } else {
            self.sections.push(Section {
                name,
                line: line_no,
                entries: Vec::new(),
            });
        }
    }

    fn entry(&mut self, value: &str, line_no: usize, indent: usize) -> Result<(), ParseError> {
        let Some(sec) = self.sections.last_mut() else {
            let msg = "expected a section header like [program:name] before the first key";
            return Err(ParseError::at(self.file, line_no, msg.into()));
        };
        let Some((key, value)) = key_value(value) else {
            let msg = format!(
                "expected `key = value` in [{}], found {}",
                sec.name,
                shown(value)
            );
            return Err(ParseError::at(self.file, line_no, msg));
        };
        sec.entries.push(Entry {
            key,
            value,
            line: line_no,
        });
        self.open = Some(indent);
        Ok(())
    }
}

/// A line for a message: quoted and cut short, or not at all when it may hold
/// a password.
fn shown(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    if ["pass", "secret", "token"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return "a line that may hold a secret (not shown)".into();
    }
    format!("{:?}", cut(line))
}

/// `Some(Ok(name))` for `[name]`, `Some(Err)` for a broken header, `None` otherwise.
fn header(line: &str) -> Option<Result<String, String>> {
    let rest = line.strip_prefix('[')?;
    // Python: `\[(?P<header>.+)\]` (greedy): the last `]` closes it.
    match rest.rfind(']') {
        Some(end) if !rest[..end].trim().is_empty() => Some(Ok(rest[..end].trim().to_string())),
        _ => Some(Err(format!(
            "expected a section header like [program:name], found {:?}",
            cut(line)
        ))),
    }
}

/// Splits at the first `=` or `:`; the key is lower-cased (`optionxform`).
fn key_value(line: &str) -> Option<(String, String)> {
    let at = line.find(['=', ':'])?;
    let key = line[..at].trim();
    if key.is_empty() {
        return None;
    }
    Some((key.to_lowercase(), line[at + 1..].trim().to_string()))
}

/// Cuts an inline comment: `;` or `#` preceded by a blank.
fn strip_inline_comment(s: &str) -> &str {
    let bytes = s.as_bytes();
    for i in 1..bytes.len() {
        if matches!(bytes[i], b';' | b'#') && bytes[i - 1].is_ascii_whitespace() {
            return s[..i].trim_end();
        }
    }
    s
}

/// A line shortened for a message.
fn cut(s: &str) -> String {
    if s.chars().count() > 60 {
        let mut t: String = s.chars().take(57).collect();
        t.push_str("...");
        t
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Vec<Section> {
        parse(text, "t.conf").expect("parses")
    }

    #[test]
    fn sections_keys_and_lines() {
        let s = one("; top\n[program:web]\ncommand = nginx -g 'daemon off;'\nUser: www\n");
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].name.as_str(), s[0].line), ("program:web", 2));
        let c = s[0].get("command").unwrap();
        assert_eq!((c.value.as_str(), c.line), ("nginx -g 'daemon off;'", 3));
        assert_eq!(s[0].get("user").unwrap().value, "www");
    }

    #[test]
    fn inline_comments_need_a_blank_before() {
        let s = one("[a]\nx = 1 ; one\ny = a;b\nz = 2 # two\nw = c#d\n");
        let v = |k: &str| s[0].get(k).unwrap().value.clone();
        assert_eq!(
            (v("x"), v("y"), v("z"), v("w")),
            ("1".into(), "a;b".into(), "2".into(), "c#d".into())
        );
    }

    #[test]
    fn a_header_may_carry_a_comment() {
        let s = one("[program:w] ; workers [see docs]\ncommand=w\n");
        assert_eq!(s[0].name, "program:w");
    }

    #[test]
    fn continuation_lines_by_indentation() {
        let s = one("[program:x]\nenvironment=A=\"1\",\n    B=\"2\"\n  ; a comment inside\n\n   C=3\nnext=1\n");
        assert_eq!(
            s[0].get("environment").unwrap().value,
            "A=\"1\",\nB=\"2\"\n\nC=3"
        );
        assert_eq!(s[0].get("next").unwrap().line, 7);
    }

    #[test]
    fn later_values_and_sections_win() {
        let s = one("[a]\nx=1\n[b]\ny=2\n[a]\nx=3\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name, "a");
        assert_eq!(s[1].get("x").unwrap().value, "3");
    }

    #[test]
    fn errors_name_the_line_and_what_is_expected() {
        let e = parse("x=1\n", "f.conf").unwrap_err();
        assert_eq!((e.line, e.file.as_str()), (1, "f.conf"));
        assert!(e.message.contains("section header"), "{}", e.message);
        let e = parse("[a]\nx=1\njust words\n", "f.conf").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("expected `key = value` in [a]"),
            "{}",
            e.message
        );
        let e = parse("[a\n", "f.conf").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("[inet_http_server]\npassword hunter2\n", "f.conf").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
