//! The process environment as the config sees it.
//!
//! Linux allows any bytes but NUL in a variable's value, and any but `=` and NUL in
//! its name; config strings are UTF-8. [`Env`] keeps the variables that are valid
//! UTF-8 for `${VAR}` interpolation and remembers the names of the others, so that a
//! reference to one says why it reads as unset and `bosun check` / `bosun run` warn
//! about each. Reading never fails and never panics (`std::env::vars` panics on such
//! a variable). The process environment itself is left alone: units inherit every
//! variable with its exact bytes.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;

use crate::interp::{Lookup, Vars};

/// Environment variables for interpolation: the valid UTF-8 ones, and the names
/// (lossily decoded) of those that are not.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: HashMap<String, String>,
    not_unicode: BTreeSet<String>,
}

impl std::fmt::Debug for Env {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env")
            .field("vars", &names)
            .field("not_unicode", &self.not_unicode)
            .finish()
    }
}

impl Env {
    /// This process's environment (`std::env::vars_os`).
    pub fn current() -> Env {
        Env::from_os(std::env::vars_os())
    }

    /// An environment from raw name/value pairs. When a name occurs twice the first
    /// one counts, as for `getenv(3)`.
    pub fn from_os<I>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let mut env = Env::default();
        for (name, value) in pairs {
            match (name.into_string(), value.into_string()) {
                (Ok(name), Ok(value)) => {
                    if !env.not_unicode.contains(&name) {
                        env.vars.entry(name).or_insert(value);
                    }
                }
                (Ok(name), Err(_)) => {
                    if !env.vars.contains_key(&name) {
                        env.not_unicode.insert(name);
                    }
                }
                (Err(name), _) => {
                    // Such a name cannot be written as `${…}` (names there are ASCII).
                    env.not_unicode.insert(name.to_string_lossy().into_owned());
                }
            }
        }
        env
    }

    /// The variables that are valid UTF-8.
    pub fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    /// Names (lossily decoded, sorted) of the variables whose name or value is not
    /// valid UTF-8.
    pub fn not_unicode(&self) -> impl Iterator<Item = &str> {
        self.not_unicode.iter().map(String::as_str)
    }

    /// One warning per variable that is not valid UTF-8, naming it.
    pub fn warnings(&self) -> Vec<String> {
        self.not_unicode().map(not_unicode_warning).collect()
    }
}

/// The warning for a variable that is not valid UTF-8 (its name, quoted and escaped).
pub(crate) fn not_unicode_warning(name: &str) -> String {
    format!(
        "environment variable {name:?} is not valid UTF-8: the config reads it as unset (units still inherit it unchanged)"
    )
}

impl From<HashMap<String, String>> for Env {
    fn from(vars: HashMap<String, String>) -> Env {
        Env {
            vars,
            not_unicode: BTreeSet::new(),
        }
    }
}

impl Vars for Env {
    fn lookup(&self, name: &str) -> Lookup<'_> {
        match self.vars.get(name) {
            Some(v) => Lookup::Set(v),
            None if self.not_unicode.contains(name) => Lookup::NotUnicode,
            None => Lookup::Unset,
        }
    }

    fn not_unicode_names(&self) -> Vec<String> {
        self.not_unicode.iter().cloned().collect()
    }

    fn each(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in &self.vars {
            f(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn os(b: &[u8]) -> OsString {
        OsString::from_vec(b.to_vec())
    }

    #[test]
    fn keeps_utf8_and_names_the_rest() {
        let env = Env::from_os([
            (os(b"A"), os(b"alpha")),
            (os(b"X"), os(b"caf\xe9")),
            (os(b"N\xff"), os(b"v")),
            (os(b"A"), os(b"second")),
        ]);
        assert_eq!(env.vars().get("A").map(String::as_str), Some("alpha"));
        assert!(env.lookup("X") == Lookup::NotUnicode);
        assert!(env.lookup("NOPE") == Lookup::Unset);
        let bad: Vec<&str> = env.not_unicode().collect();
        assert_eq!(bad, vec!["N\u{fffd}", "X"]);
        let w = env.warnings();
        assert!(w[1].contains("\"X\" is not valid UTF-8"), "{w:?}");
        assert!(!format!("{env:?}").contains("alpha"));
    }
}
