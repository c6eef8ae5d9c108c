//! `${VAR}` interpolation of config strings against an environment.
//!
//! Forms (as in docker compose):
//!
//! | form | value |
//! |---|---|
//! | `${VAR}` | the value; unset → empty string and a warning |
//! | `${VAR:-default}` | the value, or `default` when unset **or empty** |
//! | `${VAR-default}` | the value, or `default` when unset |
//! | `${VAR:?message}` | the value; unset or empty → an error with `message` |
//! | `${VAR?message}` | the value; unset → an error with `message` |
//! | `${VAR:+alt}` | `alt` when set and not empty, else empty |
//! | `${VAR+alt}` | `alt` when set, else empty |
//! | `$$` | a literal `$` |
//!
//! Defaults and messages may themselves hold `${…}`; they are expanded only when
//! used. A `$` that is not followed by `{` or `$` is kept as is (so `^ready$` in a
//! regex and `$HOME` in a shell command pass through untouched).
//!
//! A variable that is set but not valid UTF-8 ([`Lookup::NotUnicode`]) reads as
//! unset, and is listed in [`Expanded::not_unicode`] so the caller can say why.

use std::collections::HashMap;

/// What looking a variable up found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Set, to this value.
    Set(&'a str),
    /// Not set.
    Unset,
    /// Set, but its value (or name) is not valid UTF-8: it reads as unset.
    NotUnicode,
}

/// Where `${VAR}` finds its variables: a plain map, or an [`crate::Env`] that also
/// knows which variables are not valid UTF-8.
pub trait Vars {
    /// The variable called `name`.
    fn lookup(&self, name: &str) -> Lookup<'_>;
    /// Names of the variables that are set but not valid UTF-8.
    fn not_unicode_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Calls `f` with every valid variable (to find the secrets among them).
    fn each(&self, f: &mut dyn FnMut(&str, &str));
}

impl Vars for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Lookup<'_> {
        match self.get(name) {
            Some(v) => Lookup::Set(v),
            None => Lookup::Unset,
        }
    }

    fn each(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in self {
            f(k, v);
        }
    }
}

/// The result of expanding one string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expanded {
    /// The expanded text.
    pub value: String,
    /// Variables referenced as plain `${VAR}` that were not set (expanded to "").
    pub unset: Vec<String>,
    /// Whether the string contained any `${…}` at all.
    pub interpolated: bool,
    /// Variables referenced (in any form) that are set but not valid UTF-8, so
    /// read as unset.
    pub not_unicode: Vec<String>,
}

/// Expands `s` against `env`. The error is a complete message (without location).
pub fn expand(s: &str, env: &dyn Vars) -> Result<Expanded, String> {
    let mut out = Expanded::default();
    let mut value = String::with_capacity(s.len());
    expand_into(s, env, &mut value, &mut out, 0).map_err(|e| e.to_string())?;
    out.value = value;
    Ok(out)
}

/// Why a string cannot be interpolated; its text is the message [`expand`] gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum InterpError {
    #[error("`${{…}}` nested too deeply")]
    TooDeep,
    /// The string (quoted and cut short) has a `${` without its `}`.
    #[error("unterminated `${{` in {0}: expected `}}` (write `$$` for a literal `$`)")]
    Unterminated(String),
    /// `${…}` without a variable name.
    #[error("bad interpolation `${{{0}}}`: expected a variable name like `${{NAME}}` or `${{NAME:-default}}`")]
    BadName(String),
    /// `${NAME!x}`: no such form.
    #[error("bad interpolation `${{{inner}}}`: expected `${{{name}}}`, `${{{name}:-default}}`, `${{{name}-default}}` or `${{{name}:?message}}`")]
    BadForm { inner: String, name: String },
    /// `${NAME:?message}` with `NAME` unset (`state`); `detail` is `: message` or empty.
    #[error("required variable `{name}` is {state}{detail}")]
    Required {
        name: String,
        state: &'static str,
        detail: String,
    },
}

const MAX_DEPTH: usize = 16;

fn expand_into(
    s: &str,
    env: &dyn Vars,
    out: &mut String,
    st: &mut Expanded,
    depth: usize,
) -> Result<(), InterpError> {
    if depth > MAX_DEPTH {
        return Err(InterpError::TooDeep);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut lit = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push_str(&s[lit..i]);
                out.push('$');
                i += 2;
                lit = i;
                continue;
            }
            if b[i + 1] == b'{' {
                out.push_str(&s[lit..i]);
                let close = find_close(s, i + 2)?;
                st.interpolated = true;
                expand_var(&s[i + 2..close], env, out, st, depth)?;
                i = close + 1;
                lit = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[lit..]);
    Ok(())
}

/// Index of the `}` closing a `${` whose body starts at `start`.
fn find_close(s: &str, start: usize) -> Result<usize, InterpError> {
    let b = s.as_bytes();
    let mut depth = 1usize;
    let mut j = start;
    while j < b.len() {
        match b[j] {
            b'$' if j + 1 < b.len() && b[j + 1] == b'$' => j += 2,
            b'$' if j + 1 < b.len() && b[j + 1] == b'{' => {
                depth += 1;
                j += 2;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j);
                }
                j += 1;
            }
            _ => j += 1,
        }
    }
    Err(InterpError::Unterminated(crate::tree::quote_short(s)))
}

/// What `${NAME…}` does with its argument when the variable is unset (or, after
/// a `:`, empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `${NAME}`: the value, or empty with a warning.
    Plain,
    /// `${NAME-default}`, `${NAME:-default}`.
    Default,
    /// `${NAME+alt}`, `${NAME:+alt}`: the argument when set.
    Alt,
    /// `${NAME?message}`, `${NAME:?message}`: an error when unset.
    Required,
}

/// One `${…}`, taken apart: `NAME`, the form, whether a `:` makes an empty value
/// count as unset, and the argument (default, alternative or message).
struct Ref<'s> {
    name: &'s str,
    form: Form,
    colon: bool,
    arg: &'s str,
}

impl<'s> Ref<'s> {
    /// `inner` is the text between `${` and `}`.
    fn parse(inner: &'s str) -> Result<Ref<'s>, InterpError> {
        let name_len = inner
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .count();
        let name = &inner[..name_len];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            return Err(InterpError::BadName(inner.to_string()));
        }
        let rest = &inner[name_len..];
        if rest.is_empty() {
            let (form, colon, arg) = (Form::Plain, false, "");
            return Ok(Ref {
                name,
                form,
                colon,
                arg,
            });
        }
        let (colon, tail) = match rest.strip_prefix(':') {
            Some(t) => (true, t),
            None => (false, rest),
        };
        let form = match tail.as_bytes().first() {
            Some(b'-') => Form::Default,
            Some(b'+') => Form::Alt,
            Some(b'?') => Form::Required,
            _ => {
                let (inner, name) = (inner.to_string(), name.to_string());
                return Err(InterpError::BadForm { inner, name });
            }
        };
        // The form's character is ASCII: the argument starts right after it.
        let arg = &tail[1..];
        Ok(Ref {
            name,
            form,
            colon,
            arg,
        })
    }
}

fn expand_var(
    inner: &str,
    env: &dyn Vars,
    out: &mut String,
    st: &mut Expanded,
    depth: usize,
) -> Result<(), InterpError> {
    let r = Ref::parse(inner)?;
    let found = env.lookup(r.name);
    let not_unicode = found == Lookup::NotUnicode;
    if not_unicode && !st.not_unicode.iter().any(|n| n == r.name) {
        st.not_unicode.push(r.name.to_string());
    }
    let val = match found {
        Lookup::Set(v) => Some(v),
        Lookup::Unset | Lookup::NotUnicode => None,
    };
    // After a `:`, an empty value counts as unset.
    let usable = if r.colon {
        val.filter(|v| !v.is_empty())
    } else {
        val
    };
    match (r.form, usable) {
        (Form::Plain, Some(v)) | (Form::Default, Some(v)) | (Form::Required, Some(v)) => {
            out.push_str(v)
        }
        (Form::Plain, None) if !not_unicode => st.unset.push(r.name.to_string()),
        (Form::Plain, None) | (Form::Alt, None) => {}
        (Form::Default, None) | (Form::Alt, Some(_)) => {
            expand_into(r.arg, env, out, st, depth + 1)?
        }
        (Form::Required, None) => {
            let mut msg = String::new();
            let mut scratch = Expanded::default();
            expand_into(r.arg, env, &mut msg, &mut scratch, depth + 1)?;
            let state = match val {
                Some(_) => "empty",
                None if not_unicode => "set but not valid UTF-8",
                None => "not set",
            };
            let msg = msg.trim();
            return Err(InterpError::Required {
                name: r.name.to_string(),
                state,
                detail: if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                },
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [("A", "alpha"), ("EMPTY", ""), ("N", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn x(s: &str) -> String {
        expand(s, &env()).unwrap().value
    }

    #[test]
    fn forms() {
        assert_eq!(x("plain"), "plain");
        assert_eq!(x("${A}"), "alpha");
        assert_eq!(x("a-${A}-b"), "a-alpha-b");
        assert_eq!(x("${EMPTY:-d}"), "d");
        assert_eq!(x("${EMPTY-d}"), "");
        assert_eq!(x("${UNSET-d}"), "d");
        assert_eq!(x("${UNSET:-d}"), "d");
        assert_eq!(x("${A:-d}"), "alpha");
        assert_eq!(x("${UNSET:-${A}}"), "alpha");
        assert_eq!(x("${UNSET:-${UNSET2:-deep}}"), "deep");
        assert_eq!(x("${A:+yes}"), "yes");
        assert_eq!(x("${EMPTY:+yes}"), "");
        assert_eq!(x("${EMPTY+yes}"), "yes");
        assert_eq!(x("$$A"), "$A");
        assert_eq!(x("$${A}"), "${A}");
        assert_eq!(x("^ready$"), "^ready$");
        assert_eq!(x("echo $HOME"), "echo $HOME");
        assert_eq!(x("${UNSET:-a:b}"), "a:b");
        assert_eq!(x("tcp://${UNSET:-localhost}:5432"), "tcp://localhost:5432");
        assert_eq!(x("é${A}é"), "éalphaé");
    }

    #[test]
    fn unset_and_errors() {
        let e = expand("${NOPE}x", &env()).unwrap();
        assert_eq!(e.value, "x");
        assert_eq!(e.unset, vec!["NOPE".to_string()]);
        assert!(e.interpolated);
        let err = expand("${NOPE:?set NOPE please}", &env()).unwrap_err();
        assert!(err.contains("`NOPE` is not set: set NOPE please"), "{err}");
        let err = expand("${EMPTY:?}", &env()).unwrap_err();
        assert!(err.contains("`EMPTY` is empty"), "{err}");
        assert!(expand("${EMPTY?}", &env()).is_ok());
        assert!(expand("${A", &env()).unwrap_err().contains("unterminated"));
        assert!(expand("${}", &env()).unwrap_err().contains("variable name"));
        assert!(expand("${1A}", &env())
            .unwrap_err()
            .contains("variable name"));
        assert!(expand("${A!x}", &env())
            .unwrap_err()
            .contains("bad interpolation"));
        // Only the branch taken is expanded.
        assert_eq!(x("${A:-${NOPE:?never}}"), "alpha");
    }
}
