//! The two ways supervisord splits a value, over [`Text`] (a variable is one
//! opaque word character: supervisord expands first and splits after, so a
//! variable whose value holds blanks or commas splits there; bosun keeps it whole).
//!
//! - [`argv`]: `command=` goes through Python's `shlex.split` (POSIX rules:
//!   quotes, backslash escapes, no comments) and is exec'd without a shell.
//! - [`pairs`]: `environment=` goes through supervisord's
//!   `dict_of_key_value_pairs`: a non-POSIX `shlex` whose word characters are
//!   letters, digits and `_/.+-():`; a quoted token keeps its quotes, which are
//!   then stripped from both ends of the value; `#` starts a comment; tokens go
//!   `KEY`, `=`, `VALUE`, separator (any one token, normally `,`).

use crate::expand::{Piece, Text};

/// A character of expanded text, or a variable.
#[derive(Debug, Clone, PartialEq)]
enum Ch {
    C(char),
    V(String),
}

fn chars(t: &Text) -> Vec<Ch> {
    let mut out = Vec::new();
    for p in &t.0 {
        match p {
            Piece::Lit(l) => out.extend(l.chars().map(Ch::C)),
            Piece::Var(v) => out.push(Ch::V(v.clone())),
        }
    }
    out
}

/// Collects characters into a [`Text`].
#[derive(Default)]
struct Word {
    pieces: Vec<Piece>,
    /// Whether anything (even `""`) was read.
    started: bool,
}

impl Word {
    fn push(&mut self, c: &Ch) {
        self.started = true;
        match (c, self.pieces.last_mut()) {
            (Ch::C(c), Some(Piece::Lit(l))) => l.push(*c),
            (Ch::C(c), _) => self.pieces.push(Piece::Lit(c.to_string())),
            (Ch::V(v), _) => self.pieces.push(Piece::Var(v.clone())),
        }
    }

    fn take(&mut self) -> Text {
        self.started = false;
        Text(std::mem::take(&mut self.pieces))
    }
}

fn blank(c: &Ch) -> bool {
    matches!(c, Ch::C(' ' | '\t' | '\r' | '\n'))
}

/// `shlex.split(command)`: the argv supervisord execs.
pub fn argv(t: &Text) -> Result<Vec<Text>, String> {
    let cs = chars(t);
    let mut out = Vec::new();
    let mut w = Word::default();
    let mut i = 0;
    while i < cs.len() {
        let c = &cs[i];
        match c {
            _ if blank(c) => {
                if w.started {
                    out.push(w.take());
                }
            }
            Ch::C('\\') => {
                i += 1;
                let next = cs
                    .get(i)
                    .ok_or("a `\\` at the end of the command: nothing to escape")?;
                w.push(next);
            }
            Ch::C(q @ ('\'' | '"')) => {
                w.started = true;
                i = quoted(&cs, i + 1, *q, &mut w)?;
            }
            _ => w.push(c),
        }
        i += 1;
    }
    if w.started {
        out.push(w.take());
    }
    Ok(out)
}

/// Reads a quoted part from `i` up to the closing `q`; returns its index.
fn quoted(cs: &[Ch], mut i: usize, q: char, w: &mut Word) -> Result<usize, String> {
    while i < cs.len() {
        match &cs[i] {
            Ch::C(c) if *c == q => return Ok(i),
            // In double quotes a backslash escapes only `"` and `\`.
            Ch::C('\\') if q == '"' && matches!(cs.get(i + 1), Some(Ch::C('"' | '\\'))) => {
                i += 1;
                w.push(&cs[i]);
            }
            c => w.push(c),
        }
        i += 1;
    }
    Err(format!("no closing quotation: a {q} is not closed"))
}

fn word_char(c: &Ch) -> bool {
    match c {
        Ch::V(_) => true,
        Ch::C(c) => c.is_ascii_alphanumeric() || "_/.+-():".contains(*c),
    }
}

/// The tokens of non-POSIX `shlex` with supervisord's word characters.
fn tokens(t: &Text) -> Result<Vec<Text>, String> {
    let cs = chars(t);
    let mut out = Vec::new();
    let mut w = Word::default();
    let mut i = 0;
    while i < cs.len() {
        let c = &cs[i];
        if let Ch::C('#') = c {
            // A comment to the end of the line; a word goes on after it.
            while i < cs.len() && cs[i] != Ch::C('\n') {
                i += 1;
            }
        } else if blank(c) {
            if w.started {
                out.push(w.take());
            }
        } else if w.started && (word_char(c) || matches!(c, Ch::C('\'' | '"'))) {
            w.push(c);
        } else if w.started {
            out.push(w.take());
            continue;
        } else if word_char(c) {
            w.push(c);
        } else if let Ch::C(q @ ('\'' | '"')) = c {
            w.push(c);
            let close = quoted_raw(&cs, i + 1, *q, &mut w)?;
            w.push(&cs[close]);
            out.push(w.take());
            i = close;
        } else {
            w.push(c);
            out.push(w.take());
        }
        i += 1;
    }
    if w.started {
        out.push(w.take());
    }
    Ok(out)
}

/// A non-POSIX quoted token: everything up to the closing `q`, kept as is.
fn quoted_raw(cs: &[Ch], mut i: usize, q: char, w: &mut Word) -> Result<usize, String> {
    while i < cs.len() {
        if cs[i] == Ch::C(q) {
            return Ok(i);
        }
        w.push(&cs[i]);
        i += 1;
    }
    Err(format!("no closing quotation: a {q} is not closed"))
}

/// `environment=KEY="val,with,commas",KEY2=val2` as supervisord reads it.
pub fn pairs(t: &Text) -> Result<Vec<(String, Text)>, String> {
    let toks = tokens(t)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let eq = toks.get(i + 1).and_then(Text::as_lit);
        let (Some(key), Some("="), Some(val)) = (toks[i].as_lit(), eq.as_deref(), toks.get(i + 2))
        else {
            return Err(format!(
                "expected KEY=value pairs separated by commas (quote a value that holds blanks, commas or other signs: KEY=\"a, b\"), stopped at pair {}",
                out.len() + 1
            ));
        };
        out.push((key, strip_quotes(val.clone())));
        i += 4;
    }
    Ok(out)
}

/// Python's `.strip('\'"')`: every quote at both ends.
fn strip_quotes(mut t: Text) -> Text {
    if let Some(Piece::Lit(l)) = t.0.first_mut() {
        *l = l.trim_start_matches(['\'', '"']).to_string();
    }
    if let Some(Piece::Lit(l)) = t.0.last_mut() {
        *l = l.trim_end_matches(['\'', '"']).to_string();
    }
    t.0.retain(|p| !matches!(p, Piece::Lit(l) if l.is_empty()));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::{expand, Names, Used};

    fn text(s: &str) -> Text {
        expand(s, &Names::default(), &mut Used::default()).unwrap()
    }

    fn split(s: &str) -> Vec<String> {
        argv(&text(s)).unwrap().iter().map(Text::to_bosun).collect()
    }

    fn env(s: &str) -> Vec<(String, String)> {
        pairs(&text(s))
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.to_bosun()))
            .collect()
    }

    #[test]
    fn argv_like_shlex_split() {
        assert_eq!(
            split("nginx -g 'daemon off;'"),
            ["nginx", "-g", "daemon off;"]
        );
        assert_eq!(
            split(r#"sh -c "echo \"hi\" \$x""#),
            ["sh", "-c", r#"echo "hi" \$x"#]
        );
        assert_eq!(split(r"a\ b  ''  c"), ["a b", "", "c"]);
        assert_eq!(
            split("php %(ENV_ROOT)s/artisan"),
            ["php", "${ROOT}/artisan"]
        );
        assert_eq!(split("a#b # c"), ["a#b", "#", "c"]);
        assert!(argv(&text("sh -c 'x")).is_err());
    }

    #[test]
    fn environment_quoting() {
        assert_eq!(
            env(r#"KEY="val,with,commas",KEY2=val2"#),
            [
                ("KEY".into(), "val,with,commas".into()),
                ("KEY2".into(), "val2".into())
            ]
        );
        assert_eq!(
            env("A='x y', B = /usr/bin:/bin,\n  C=%(ENV_HOME)s/.cache"),
            [
                ("A".into(), "x y".into()),
                ("B".into(), "/usr/bin:/bin".into()),
                ("C".into(), "${HOME}/.cache".into())
            ]
        );
        // The quotes of a quoted value go, however many.
        assert_eq!(env(r#"A="'q'""#), [("A".into(), "q".into())]);
        // A value with a sign that is not a word character must be quoted.
        assert!(pairs(&text("URL=a@b,C=1")).is_err());
        assert_eq!(env("URL=\"a@b\",C=1")[0].1, "a@b");
        // A `#` starts a comment, as in supervisord.
        assert_eq!(
            env("A=1 # the rest\n,B=2"),
            [("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert!(pairs(&text("A=\"open")).is_err());
        assert!(pairs(&text("A=1,B")).is_err());
    }
}
