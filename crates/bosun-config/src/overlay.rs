//! A config made of several files: `bosun run -c base.toml -c site.toml` and
//! `include = ["conf.d/*.toml"]`.
//!
//! Each file is parsed into its own spanned tree ([`crate::tree`]), its spans
//! shifted into one offset space shared by all files ([`Sources`]), so that after
//! the merge every value still knows its file, line and column. The layers are
//! merged in order, later over earlier: tables merge key by key, anything else
//! (a string, a number, an array, an array of tables) is replaced whole.
//!
//! Order: each file comes first, then the files it includes (in the order of its
//! `include` entries, the matches of one glob sorted by name), each followed by
//! its own includes; then the next `-c` file. So `conf.d/*.toml` overrides the
//! file that includes it, and a later `-c` file overrides both.

use std::path::{Path, PathBuf};

use crate::diag::Sources;
use crate::tree::{self, Entry, Node, Val};

/// How deep includes may nest (a guard; cycles are caught by name first).
const MAX_DEPTH: usize = 16;

/// A problem found while reading the files, reported before the schema walk.
pub(crate) enum Problem {
    /// At an offset of the shared space.
    At(usize, String),
    /// About a whole file (it cannot be read).
    File(PathBuf, String),
}

/// The files of one config, read and merged.
pub(crate) struct Set {
    pub sources: Sources,
    /// The merged tree; `None` when no file could be parsed.
    pub root: Option<Node>,
    pub problems: Vec<Problem>,
}

/// Reads `paths` (and what they include) and merges them. `first` is the text of
/// `paths[0]` when the caller has it already ([`crate::parse`]).
pub(crate) fn read(paths: &[PathBuf], first: Option<&str>) -> Set {
    let mut r = Reader {
        sources: Sources::default(),
        layers: Vec::new(),
        problems: Vec::new(),
        stack: Vec::new(),
    };
    for (i, path) in paths.iter().enumerate() {
        let text = match (i, first) {
            (0, Some(t)) => t.to_string(),
            _ => match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    let msg = format!("cannot read the config file: {e}");
                    r.problems.push(Problem::File(path.clone(), msg));
                    continue;
                }
            },
        };
        r.file(path, text);
    }
    let mut layers = r.layers.into_iter();
    let root = layers.next().map(|mut root| {
        for layer in layers {
            merge(&mut root, layer);
        }
        root
    });
    Set {
        sources: r.sources,
        root,
        problems: r.problems,
    }
}

struct Reader {
    sources: Sources,
    layers: Vec<Node>,
    problems: Vec<Problem>,
    /// The files being read, outermost first (an include cycle is one of them again).
    stack: Vec<PathBuf>,
}

impl Reader {
    /// One file: its own layer, then its includes.
    fn file(&mut self, path: &Path, text: String) {
        let parsed = tree::parse_document(&text);
        let base = self.sources.add(path, text);
        let mut root = match parsed {
            Ok(root) => root,
            Err(e) => {
                let message = format!("TOML syntax error: {}", crate::one_line(e.message()));
                let pos = e.span().map(|s| s.start).unwrap_or(0);
                self.problems.push(Problem::At(base + pos, message));
                return;
            }
        };
        shift(&mut root, base);
        let includes = self.take_includes(&mut root);
        self.layers.push(root);
        if includes.is_empty() {
            return;
        }
        self.stack.push(identity(path));
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for (pattern, pos) in includes {
            for found in self.expand(&dir, &pattern, pos) {
                self.include(&found, pos);
            }
        }
        self.stack.pop();
    }

    /// An included file, named at `pos` of the including one.
    fn include(&mut self, path: &Path, pos: usize) {
        let shown = path.display();
        if self.stack.contains(&identity(path)) {
            let msg = format!("`include`: {shown} is already being read (an include cycle); remove one of the includes");
            self.problems.push(Problem::At(pos, msg));
            return;
        }
        if self.stack.len() >= MAX_DEPTH {
            let msg = format!("`include`: includes nest deeper than {MAX_DEPTH} files at {shown}");
            self.problems.push(Problem::At(pos, msg));
            return;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => self.file(path, text),
            Err(e) => {
                let msg = format!("`include`: cannot read {shown}: {e}");
                self.problems.push(Problem::At(pos, msg));
            }
        }
    }

    /// Removes the top-level `include` from `root`; its entries and their places.
    fn take_includes(&mut self, root: &mut Node) -> Vec<(String, usize)> {
        let Val::Table(entries) = &mut root.val else {
            return Vec::new();
        };
        let Some(i) = entries.iter().position(|e| e.key == "include") else {
            return Vec::new();
        };
        let e = entries.remove(i);
        const EXPECTED: &str = "an array of files or globs like [\"conf.d/*.toml\"]";
        let items = match e.node.val {
            Val::Array(items) => items,
            Val::Str(s) => vec![Node {
                span: e.node.span,
                val: Val::Str(s),
            }],
            _ => {
                let msg = format!("`include`: expected {EXPECTED}, found {}", e.node.found());
                self.problems.push(Problem::At(e.node.pos(), msg));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            match &item.val {
                Val::Str(s) if !s.trim().is_empty() => out.push((s.clone(), item.pos())),
                _ => {
                    let msg = format!(
                        "`include`: expected a file name or glob, found {}",
                        item.found()
                    );
                    self.problems.push(Problem::At(item.pos(), msg));
                }
            }
        }
        out
    }

    /// The files `pattern` names, relative to `dir`: itself when it has no
    /// wildcard (it must exist: reading it says so), else the matches of its file
    /// name, sorted (none is fine: an empty `conf.d/`).
    fn expand(&mut self, dir: &Path, pattern: &str, pos: usize) -> Vec<PathBuf> {
        let full = dir.join(pattern);
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = full.parent().map(Path::to_path_buf).unwrap_or_default();
        if !has_wildcard(&parent.to_string_lossy()) && !has_wildcard(&name) {
            return vec![full];
        }
        if has_wildcard(&parent.to_string_lossy()) {
            let msg = format!("`include`: {pattern:?}: wildcards (`*`, `?`) are allowed in the file name only, not in directories");
            self.problems.push(Problem::At(pos, msg));
            return Vec::new();
        }
        let Ok(read) = std::fs::read_dir(&parent) else {
            // A missing directory matches nothing, like an empty one.
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                // Hidden files (editor swap files, `.#x`) only when asked for.
                (name.starts_with('.') || !n.starts_with('.')) && glob_match(&name, &n)
            })
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found
    }
}

/// The name a file is known by in the include stack: canonical when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// `*` (any run of characters) and `?` (one character) against a file name.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it is trying to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Moves every span of `node` by `base` (into the shared offset space).
fn shift(node: &mut Node, base: usize) {
    if let Some(r) = &mut node.span {
        *r = r.start + base..r.end + base;
    }
    match &mut node.val {
        Val::Array(items) => items.iter_mut().for_each(|n| shift(n, base)),
        Val::Table(entries) => {
            for e in entries {
                if let Some(r) = &mut e.key_span {
                    *r = r.start + base..r.end + base;
                }
                shift(&mut e.node, base);
            }
        }
        _ => {}
    }
}

/// `over` onto `into`: tables merge key by key (new keys after the old ones),
/// anything else is replaced, and keeps the place it was written at.
pub(crate) fn merge(into: &mut Node, over: Node) {
    match (&mut into.val, over.val) {
        (Val::Table(old), Val::Table(new)) => {
            for e in new {
                match old.iter_mut().find(|x| x.key == e.key) {
                    Some(x) => {
                        if !matches!(x.node.val, Val::Table(_)) {
                            x.key_span = e.key_span;
                        }
                        merge(&mut x.node, e.node);
                    }
                    None => old.push(e),
                }
            }
        }
        (_, val) => {
            *into = Node {
                span: over.span,
                val,
            };
        }
    }
}

/// Every value of the merged tree with where it was set: (`service.web.run`,
/// offset). Tables are walked into; an array is one value.
pub(crate) fn leaves(root: &Node) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    walk_leaves(root, "", &mut out);
    out
}

fn walk_leaves(node: &Node, prefix: &str, out: &mut Vec<(String, usize)>) {
    match &node.val {
        Val::Table(entries) => {
            for Entry { key, node, .. } in entries {
                let seg = crate::schema::path_seg(key);
                let path = match prefix {
                    "" => seg,
                    p => format!("{p}.{seg}"),
                };
                walk_leaves(node, &path, out);
            }
        }
        _ => out.push((prefix.to_string(), node.pos())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.toml", "a.toml"));
        assert!(glob_match("*.toml", ".toml"));
        assert!(!glob_match("*.toml", "a.toml.bak"));
        assert!(glob_match("1?-*.toml", "10-site.toml"));
        assert!(!glob_match("1?-*.toml", "1-site.toml"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
    }

    fn parse(text: &str, base: usize) -> Node {
        let mut n = tree::parse_document(text).unwrap();
        shift(&mut n, base);
        n
    }

    #[test]
    fn tables_merge_and_the_rest_is_replaced() {
        let mut a = parse(
            "[service.web]\nrun = \"a\"\nafter = [\"db\"]\nenv = { A = \"1\" }\n",
            0,
        );
        let b = parse(
            "[service.web]\nafter = []\nenv = { B = \"2\" }\n[service.db]\nrun = \"d\"\n",
            1000,
        );
        merge(&mut a, b);
        let got: Vec<(String, bool)> = leaves(&a)
            .into_iter()
            .map(|(k, pos)| (k, pos >= 1000))
            .collect();
        let want = [
            ("service.web.run", false),
            ("service.web.after", true),
            ("service.web.env.A", false),
            ("service.web.env.B", true),
            ("service.db.run", true),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(k, b)| (k.to_string(), *b)).collect();
        assert_eq!(got, want);
    }
}
