//! Typed value readers: one TOML value (a [`Node`]) to one model value, or a
//! located error that says what was expected and what was found.
//!
//! Every string is interpolated first (`${VAR}`, [`crate::interp`]) and then
//! parsed (the pure syntaxes are in [`crate::value`]). A reader returns `None`
//! after reporting, and the caller keeps its default, so that the walk goes on
//! and reports the next problem too.

use std::path::PathBuf;
use std::time::Duration;

use crate::diag::{did_you_mean, Diag, Findings, Sources};
use crate::interp::{self, Vars};
use crate::model::{Command, Signal, WaitFor};
use crate::redact::Redactor;
use crate::tree::{Node, Val};
use crate::value::{is_host_port, parse_duration, parse_size, parse_umask};

/// What the walk reads values with: where messages go, and what strings are
/// interpolated against (the environment). Relative paths are resolved against
/// the directory of the file each value was written in.
pub(crate) struct Ctx<'a> {
    /// Errors and warnings.
    pub diag: Diag<'a>,
    env: &'a dyn Vars,
    /// Reading a service with `instances`: `${BOSUN_INSTANCE}` is kept for each
    /// instance to fill in ([`crate::instance`]).
    pub instance_var: bool,
}

const DURATION_HINT: &str = "expected a duration like \"30s\" or \"100ms\"";

impl<'a> Ctx<'a> {
    /// The context for reading the files of `sources` against `env`.
    pub fn new(sources: &'a Sources, env: &'a dyn Vars) -> Self {
        Ctx {
            diag: Diag::new(sources, Redactor::from_vars(env)),
            env,
            instance_var: false,
        }
    }

    /// The end of the walk ([`Diag::finish`]).
    pub fn finish(self) -> Findings {
        let not_unicode = self.env.not_unicode_names();
        self.diag.finish(not_unicode)
    }

    /// Interpolates a string value; errors (a `${X:?}`) are reported at `node`.
    fn interp(&mut self, node: &Node, raw: &str, what: &str) -> Option<interp::Expanded> {
        let with_instance = crate::instance::WithInstance(self.env);
        let env: &dyn Vars = match self.instance_var {
            true => &with_instance,
            false => self.env,
        };
        match interp::expand(raw, env) {
            Ok(x) => {
                for var in &x.unset {
                    let only = match var.as_str() {
                        crate::instance::VAR => " (it is set only in a service with `instances`)",
                        _ => "",
                    };
                    self.diag.warn_var(
                        var,
                        node.pos(),
                        format!("`${{{var}}}` is not set{only}; {what} uses an empty string there"),
                    );
                }
                for var in &x.not_unicode {
                    self.diag.warn_var(
                        var,
                        node.pos(),
                        format!("environment variable `{var}` is not valid UTF-8, so {what} reads it as unset (units still inherit it unchanged)"),
                    );
                }
                Some(x)
            }
            Err(msg) => {
                self.diag.error(node.pos(), format!("{what}: {msg}"));
                None
            }
        }
    }

    /// A string value, interpolated. `expected` completes "expected …" on a type error.
    pub fn string(&mut self, node: &Node, what: &str, expected: &str) -> Option<String> {
        self.string_x(node, what, expected).map(|x| x.value)
    }

    /// [`Ctx::string`], with what the interpolation found.
    pub fn string_x(
        &mut self,
        node: &Node,
        what: &str,
        expected: &str,
    ) -> Option<interp::Expanded> {
        match &node.val {
            Val::Str(s) => self.interp(node, s, what),
            _ => {
                self.diag.error(
                    node.pos(),
                    format!("{what}: expected {expected}, found {}", node.found()),
                );
                None
            }
        }
    }

    /// A non-empty string (after interpolation).
    pub fn nonempty(&mut self, node: &Node, what: &str, expected: &str) -> Option<String> {
        let s = self.string(node, what, expected)?;
        if s.trim().is_empty() {
            self.diag.error(
                node.pos(),
                format!("{what}: expected {expected}, found an empty string"),
            );
            return None;
        }
        Some(s)
    }

    /// An optional string: an empty string (after interpolation) means "not set".
    pub fn optional(&mut self, node: &Node, what: &str, expected: &str) -> Option<String> {
        let s = self.string(node, what, expected)?;
        (!s.trim().is_empty()).then_some(s)
    }

    /// How an error shows a value: quoted and redacted, with the string it was
    /// interpolated from when that differs (`"x" (from "${VAR}")`).
    pub fn found_interp(&self, raw: &Node, value: &str) -> String {
        match &raw.val {
            Val::Str(s) if s != value => {
                format!("{} (from {})", self.diag.quote(value), self.diag.quote(s))
            }
            Val::Str(_) => self.diag.quote(value),
            _ => raw.found(),
        }
    }

    /// A string that must be one of `choices` (spelled by `name`); anything else is
    /// an error listing them, with the nearest one.
    pub fn one_of<T: Copy>(
        &mut self,
        node: &Node,
        what: &str,
        value: &str,
        choices: &[T],
        name: fn(T) -> &'static str,
    ) -> Option<T> {
        if let Some(c) = choices.iter().copied().find(|c| name(*c) == value) {
            return Some(c);
        }
        let hint = did_you_mean(value, choices.iter().map(|c| name(*c)));
        let list: Vec<String> = choices
            .iter()
            .map(|c| format!("\"{}\"", name(*c)))
            .collect();
        self.diag.error(
            node.pos(),
            format!(
                "{what}: expected {}, found {}{hint}",
                list.join(" | "),
                self.diag.quote(value)
            ),
        );
        None
    }

    /// A duration (`"30s"`, `"1m30s"`, `"100ms"`, `"0"` or the integer 0).
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        match &node.val {
            Val::Int(0) => Some(Duration::ZERO),
            Val::Str(_) => {
                let s = self.string(node, what, DURATION_HINT)?;
                let d = parse_duration(&s);
                if d.is_none() {
                    let found = self.found_interp(node, &s);
                    self.diag.error(
                        node.pos(),
                        format!("{what}: {DURATION_HINT}, found {found}"),
                    );
                }
                d
            }
            Val::Int(i) => {
                self.diag.error(node.pos(), format!("{what}: {DURATION_HINT}, found the integer {i} (write \"{i}s\" for seconds)"));
                None
            }
            _ => {
                self.diag.error(
                    node.pos(),
                    format!("{what}: {DURATION_HINT}, found {}", node.found()),
                );
                None
            }
        }
    }

    /// A size: a number of bytes, or `"50MB"`, `"1MiB"`, …
    pub fn size(&mut self, node: &Node, what: &str) -> Option<u64> {
        const HINT: &str = "expected a size like \"50MB\", \"1MiB\" or a number of bytes";
        match &node.val {
            Val::Int(i) => match u64::try_from(*i) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.diag
                        .error(node.pos(), format!("{what}: {HINT}, found the integer {i}"));
                    None
                }
            },
            Val::Str(_) => {
                let s = self.string(node, what, HINT)?;
                let v = parse_size(&s);
                if v.is_none() {
                    let found = self.found_interp(node, &s);
                    self.diag
                        .error(node.pos(), format!("{what}: {HINT}, found {found}"));
                }
                v
            }
            _ => {
                self.diag.error(
                    node.pos(),
                    format!("{what}: {HINT}, found {}", node.found()),
                );
                None
            }
        }
    }

    /// An integer of at least `min` that fits a `u32`.
    pub fn uint(&mut self, node: &Node, what: &str, min: u32) -> Option<u32> {
        match &node.val {
            Val::Int(i) if *i >= i64::from(min) && *i <= i64::from(u32::MAX) => {
                u32::try_from(*i).ok()
            }
            _ => {
                self.diag.error(
                    node.pos(),
                    format!(
                        "{what}: expected an integer of at least {min}, found {}",
                        node.found()
                    ),
                );
                None
            }
        }
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.val {
            Val::Bool(b) => Some(*b),
            _ => {
                self.diag.error(
                    node.pos(),
                    format!("{what}: expected true or false, found {}", node.found()),
                );
                None
            }
        }
    }

    /// A path; relative paths are resolved against the config file's directory.
    pub fn path(&mut self, node: &Node, what: &str) -> Option<PathBuf> {
        let s = self.nonempty(node, what, "a path")?;
        Some(self.resolve(node, &s))
    }

    /// A path given inside another value (a list entry at `pos`), resolved like
    /// [`Self::path`].
    pub fn path_str(&self, pos: usize, s: &str) -> String {
        self.resolve_at(pos, s).display().to_string()
    }

    /// `s` written at `node`: relative to the directory of the file it is in.
    fn resolve(&self, node: &Node, s: &str) -> PathBuf {
        self.resolve_at(node.pos(), s)
    }

    fn resolve_at(&self, pos: usize, s: &str) -> PathBuf {
        let p = PathBuf::from(s);
        if p.is_absolute() {
            p
        } else {
            self.diag.dir_of(pos).join(p)
        }
    }

    /// An optional path: an empty string means "not set".
    pub fn optional_path(&mut self, node: &Node, what: &str) -> Option<PathBuf> {
        self.optional(node, what, "a path")
            .map(|s| self.resolve(node, &s))
    }

    /// An argv array or a shell string; empty is an error.
    pub fn command(&mut self, node: &Node, what: &str) -> Option<Command> {
        const EXPECTED: &str =
            "a command: an argv array like [\"prog\", \"arg\"] or a shell string";
        let empty = format!("{what}: the command is empty; expected {EXPECTED}");
        match &node.val {
            Val::Str(_) => {
                let s = self.string(node, what, EXPECTED)?;
                if s.trim().is_empty() {
                    self.diag.error(node.pos(), empty);
                    return None;
                }
                Some(Command::Shell(s))
            }
            Val::Array(items) => {
                if items.is_empty() {
                    self.diag.error(node.pos(), empty);
                    return None;
                }
                let mut argv = Vec::with_capacity(items.len());
                for item in items {
                    argv.push(self.string(item, what, "a string (each argv element)")?);
                }
                if argv[0].trim().is_empty() {
                    self.diag.error(
                        items[0].pos(),
                        format!("{what}: the program (first element) is empty"),
                    );
                    return None;
                }
                Some(Command::Argv(argv))
            }
            _ => {
                self.diag.error(
                    node.pos(),
                    format!("{what}: expected {EXPECTED}, found {}", node.found()),
                );
                None
            }
        }
    }

    /// An array of strings with the position of each.
    pub fn string_list(&mut self, node: &Node, what: &str, example: &str) -> Vec<(String, usize)> {
        let Val::Array(items) = &node.val else {
            self.diag.error(
                node.pos(),
                format!(
                    "{what}: expected an array like {example}, found {}",
                    node.found()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            if let Some(s) = self.string(item, what, "a string") {
                out.push((s, item.pos()));
            }
        }
        out
    }

    /// A signal: `"SIGTERM"`, `"TERM"`, `"sigterm"` or a number.
    pub fn signal(&mut self, node: &Node, what: &str) -> Option<Signal> {
        const HINT: &str = "expected a signal like \"SIGTERM\", \"SIGINT\", \"SIGQUIT\", \"SIGHUP\", \"SIGUSR1\", \"INT\" or a number (1-31)";
        let text = match &node.val {
            Val::Int(i) => i.to_string(),
            Val::Str(_) => self.string(node, what, HINT)?,
            _ => {
                self.diag.error(
                    node.pos(),
                    format!("{what}: {HINT}, found {}", node.found()),
                );
                return None;
            }
        };
        let sig = Signal::parse(&text);
        if sig.is_none() {
            self.diag.error(
                node.pos(),
                format!("{what}: unknown signal {}; {HINT}", self.diag.quote(&text)),
            );
        }
        sig
    }

    /// A file mode mask: an octal string (`"022"`) or an integer (`0o022`; a
    /// decimal integer is taken at its value, with a warning).
    pub fn umask(&mut self, node: &Node, what: &str) -> Option<u32> {
        const HINT: &str = "expected an octal mask like \"022\" or \"0027\" (at most 777)";
        let v = match &node.val {
            Val::Int(i) => u32::try_from(*i).ok().filter(|v| *v <= 0o777),
            Val::Str(_) => {
                let s = self.string(node, what, HINT)?;
                let v = parse_umask(&s);
                if v.is_none() {
                    let found = self.diag.quote(&s);
                    self.diag
                        .error(node.pos(), format!("{what}: {HINT}, found {found}"));
                }
                return v;
            }
            _ => None,
        };
        let Some(v) = v else {
            self.diag.error(
                node.pos(),
                format!("{what}: {HINT}, found {}", node.found()),
            );
            return None;
        };
        // `umask = 22` is decimal 22 (octal 026), surely not what was meant.
        let literal = node
            .span
            .as_ref()
            .and_then(|r| self.diag.slice(r.clone()))
            .unwrap_or("");
        if v > 7 && !literal.trim_start_matches('+').starts_with("0o") {
            self.diag.warn(
                node.pos(),
                format!("{what} is the decimal integer {v} (octal {v:03o}); write it as a string (\"{v:03o}\") or an octal literal (0o{v:03o}) to be clear"),
            );
        }
        Some(v)
    }

    /// Checks an `http://` URL for a probe or gate; reports at `node`.
    pub fn http_url(&mut self, node: &Node, what: &str, s: &str) -> bool {
        if let Some(rest) = s.strip_prefix("http://") {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() {
                let msg = format!("{what}: the URL {} has no host", self.diag.quote(s));
                self.diag.error(node.pos(), msg);
                return false;
            }
            return true;
        }
        let msg = if s.starts_with("https://") {
            format!("{what}: https is not supported (bosun's HTTP probes speak plain http, no TLS): use an http:// URL, or a tcp probe on port 443; found {}", self.diag.quote(s))
        } else {
            format!(
                "{what}: expected an http:// URL like \"http://127.0.0.1:8080/health\", found {}",
                self.diag.quote(s)
            )
        };
        self.diag.error(node.pos(), msg);
        false
    }

    /// `wait_for = ["tcp://db:5432", …]`; an entry that interpolates to nothing is
    /// dropped (a gate that exists only when its variable is set).
    pub fn wait_for_list(&mut self, node: &Node, what: &str) -> Vec<WaitFor> {
        let Val::Array(items) = &node.val else {
            self.diag.error(
                node.pos(),
                format!(
                    "{what}: expected an array like [\"tcp://db:5432\"], found {}",
                    node.found()
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.wait_for(item, what))
            .collect()
    }

    fn wait_for(&mut self, item: &Node, what: &str) -> Option<WaitFor> {
        const EXPECTED: &str =
            "tcp://host:port, http://host/path, postgres://… (or postgresql://…) or file:///path";
        let x = self.string_x(item, what, EXPECTED)?;
        let s = x.value.trim().to_string();
        if s.is_empty() {
            if !x.interpolated {
                // (interpolated: `${GATE:-}` unset, no gate in this container)
                self.diag.error(
                    item.pos(),
                    format!("{what}: empty entry; expected {EXPECTED}"),
                );
            }
            return None;
        }
        let found = self.found_interp(item, &s);
        let problem = if let Some(addr) = s.strip_prefix("tcp://") {
            let addr = addr.strip_suffix('/').unwrap_or(addr);
            if is_host_port(&crate::instance::sample(addr)) {
                return Some(WaitFor::Tcp(addr.to_string()));
            }
            format!("{what}: expected tcp://host:port, found {found}")
        } else if s.starts_with("http://") || s.starts_with("https://") {
            return self.http_url(item, what, &s).then_some(WaitFor::Http(s));
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Some(WaitFor::Postgres(s));
        } else if let Some(p) = s.strip_prefix("file://") {
            if p.starts_with('/') {
                return Some(WaitFor::File(PathBuf::from(p)));
            }
            format!("{what}: expected file:///absolute/path (three slashes), found {found}")
        } else {
            format!("{what}: unsupported gate {found}; expected {EXPECTED}")
        };
        self.diag.error(item.pos(), problem);
        None
    }
}

/// The last line of a regex error ("error: unclosed group"), without the drawing.
pub(crate) fn regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .map(|l| {
            l.trim_start()
                .trim_start_matches("error:")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_string())
}
