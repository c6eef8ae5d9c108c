//! The translated document and its TOML text.

use crate::Warning;

/// One line of a table: `key = value` (the value already TOML) or a comment.
#[derive(Debug, Clone)]
pub enum Line {
    Key(String, String),
    Comment(String),
}

/// A `[service.x]` or `[task.x]` in the making.
#[derive(Debug, Clone)]
pub struct Unit {
    pub name: String,
    pub task: bool,
    /// Where it comes from: the section as written, its file and line.
    pub section: String,
    pub file: String,
    pub line: usize,
    /// supervisord's `priority` (999 when not written) and its line when written.
    pub priority: i64,
    pub priority_line: Option<usize>,
    pub on_demand: bool,
    pub lines: Vec<Line>,
    /// Filled in by the other sections: `[group:g]`, the FATAL listener, priorities.
    pub roles: Vec<String>,
    pub essential: bool,
    pub suggested_after: Vec<String>,
}

impl Unit {
    pub fn key(&mut self, key: &str, toml: String) {
        self.lines.push(Line::Key(key.to_string(), toml));
    }

    pub fn comment(&mut self, text: &str) {
        self.lines.push(Line::Comment(text.to_string()));
    }
}

/// The whole translation.
#[derive(Debug, Default)]
pub struct Doc {
    /// Comments at the top, for sections that need no key in bosun.
    pub notes: Vec<String>,
    /// `[bosun]` lines.
    pub bosun: Vec<Line>,
    pub units: Vec<Unit>,
}

/// A TOML basic string.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when it can be.
pub fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        k.to_string()
    } else {
        string(k)
    }
}

/// An array of strings on one line.
pub fn array(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| string(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// Comment text on one line (a value with newlines would break out of it).
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn lines(out: &mut String, ls: &[Line]) {
    for l in ls {
        match l {
            Line::Key(k, v) => out.push_str(&format!("{} = {v}\n", key(k))),
            Line::Comment(c) => out.push_str(&format!("# {}\n", one_line(c))),
        }
    }
}

fn warning_comment(w: &Warning) -> String {
    one_line(&format!(
        "# warning: {}:{} `{}`: {}\n",
        w.file, w.line, w.key, w.message
    ))
    .trim_end()
    .to_string()
        + "\n"
}

/// The document as TOML text, the warnings as comments where they belong.
pub fn document(source: &str, doc: &Doc, warnings: &[Warning]) -> String {
    let mut out = format!(
        "# bosun.toml, translated by `bosun import supervisord` from {}.\n\
         # {} warning(s): each is a comment below (\"# warning:\") and was printed on stderr;\n\
         # each names something supervisord did that bosun does differently or not at all.\n",
        one_line(source),
        warnings.len()
    );
    let is_unit = |w: &Warning| {
        doc.units
            .iter()
            .any(|u| u.section == w.section && u.file == w.file)
    };
    let global: Vec<&Warning> = warnings.iter().filter(|w| !is_unit(w)).collect();
    if !doc.notes.is_empty() {
        out.push('\n');
        for n in &doc.notes {
            out.push_str(&format!("# {}\n", one_line(n)));
        }
    }
    if !doc.bosun.is_empty() {
        out.push_str("\n[bosun]\n");
        lines(&mut out, &doc.bosun);
    }
    if !global.is_empty() {
        out.push('\n');
        for w in global {
            out.push_str(&format!("# [{}] ", w.section));
            out.push_str(warning_comment(w).trim_start_matches("# "));
        }
    }
    for u in &doc.units {
        unit(&mut out, u, warnings);
    }
    out
}

fn unit(out: &mut String, u: &Unit, warnings: &[Warning]) {
    let kind = if u.task { "task" } else { "service" };
    out.push_str(&format!("\n[{kind}.{}]\n", key(&u.name)));
    out.push_str(&format!(
        "# from {}:{} [{}]\n",
        one_line(&u.file),
        u.line,
        one_line(&u.section)
    ));
    lines(out, &u.lines);
    if !u.roles.is_empty() {
        out.push_str(&format!("roles = {}\n", array(&u.roles)));
    }
    if u.essential {
        out.push_str("essential = true  # supervisord stopped when a program went FATAL (its [eventlistener])\n");
    }
    if !u.suggested_after.is_empty() {
        out.push_str(&format!(
            "# after = {}  # suggested by priority: uncomment if it needs them ready first\n",
            array(&u.suggested_after)
        ));
    }
    for w in warnings
        .iter()
        .filter(|w| w.section == u.section && w.file == u.file)
    {
        out.push_str(&warning_comment(w));
    }
}
