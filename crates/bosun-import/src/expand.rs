//! supervisord's `%(name)s` expansions, turned into bosun text.
//!
//! supervisord expands values with Python's `%` operator against a dict:
//! `ENV_X` (its environment), `here` (the directory of the file holding the
//! section), `program_name`, `group_name`, `process_num`, `numprocs`,
//! `host_node_name`; `%%` is a literal `%`. A bare `%` is an error there, and
//! here. `ENV_X` becomes bosun's `${X}` (read from bosun's environment when it
//! starts, as supervisord read its own); the others are known when translating,
//! except `process_num` with `numprocs > 1`, which becomes `${BOSUN_INSTANCE}`.

/// A piece of translated text: literal characters, or a bosun variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    /// `${NAME}` in the output (NAME may carry a default: `X:-10`).
    Var(String),
}

/// Text made of [`Piece`]s.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub Vec<Piece>);

impl Text {
    /// The literal text, when it holds no variable.
    pub fn as_lit(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(l) => s.push_str(l),
                Piece::Var(_) => return None,
            }
        }
        Some(s)
    }

    /// The one variable this text is, when it is exactly one (`%(ENV_X)s`).
    pub fn as_var(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Piece::Var(v)] => Some(v),
            _ => None,
        }
    }

    /// Whether it holds no character and no variable.
    pub fn is_empty(&self) -> bool {
        self.0
            .iter()
            .all(|p| matches!(p, Piece::Lit(l) if l.is_empty()))
    }

    /// As a bosun string: variables as `${…}`, a literal `$` that bosun would
    /// read as the start of one (before `{` or `$`, or before a variable) as `$$`.
    pub fn to_bosun(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Var(v) => {
                    out.push_str("${");
                    out.push_str(v);
                    out.push('}');
                }
                Piece::Lit(l) => {
                    let chars: Vec<char> = l.chars().collect();
                    for (i, c) in chars.iter().enumerate() {
                        out.push(*c);
                        if *c == '$' && matches!(chars.get(i + 1), None | Some('{') | Some('$')) {
                            out.push('$');
                        }
                    }
                }
            }
        }
        out
    }

    /// Trims blanks at both ends of the literal parts at the ends.
    pub fn trim(mut self) -> Text {
        if let Some(Piece::Lit(l)) = self.0.first_mut() {
            *l = l.trim_start().to_string();
        }
        if let Some(Piece::Lit(l)) = self.0.last_mut() {
            *l = l.trim_end().to_string();
        }
        self
    }
}

/// What the names stand for in one section.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// The directory of the file the section is in.
    pub here: String,
    /// Set in `[program:x]` and `[eventlistener:x]`.
    pub program: Option<Program>,
}

/// The names of a program section.
#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    pub group: String,
    pub numprocs: u32,
    /// `numprocs_start`: the first `process_num`.
    pub first: u32,
}

/// What an expansion used, for the warnings of the caller.
#[derive(Debug, Default, Clone)]
pub struct Used {
    /// `process_num` became `${BOSUN_INSTANCE}` (counts from 1, not from `numprocs_start`).
    pub instance: bool,
    /// `host_node_name` became `${HOSTNAME}`.
    pub hostname: bool,
}

/// Expands `s`; the error is the message (the caller adds file:line and key).
pub fn expand(s: &str, names: &Names, used: &mut Used) -> Result<Text, String> {
    let mut out: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        lit.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('%') {
            lit.push('%');
            rest = r;
            continue;
        }
        let Some(inner) = after.strip_prefix('(') else {
            return Err("a bare `%`: supervisord reads `%(name)s` expansions, so a literal `%` must be written `%%`".into());
        };
        let close = inner
            .find(')')
            .ok_or("unterminated `%(`: expected `%(name)s`")?;
        let name = &inner[..close];
        let (spec, tail) = conversion(&inner[close + 1..])
            .ok_or_else(|| format!("`%({name})` without a conversion: expected `%({name})s`"))?;
        match value(name, names, used)? {
            Piece::Lit(v) => lit.push_str(&format_spec(&v, spec)),
            var => {
                out.push(Piece::Lit(std::mem::take(&mut lit)));
                out.push(var);
            }
        }
        rest = tail;
    }
    lit.push_str(rest);
    out.push(Piece::Lit(lit));
    out.retain(|p| !matches!(p, Piece::Lit(l) if l.is_empty()));
    Ok(Text(out))
}

/// Splits `02d…` into the spec (`02d`) and what follows.
fn conversion(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || "-+ #.".contains(c)))?;
    let conv = s[end..].chars().next()?;
    if !"sdirf".contains(conv) {
        return None;
    }
    Some((&s[..end + 1], &s[end + 1..]))
}

/// Applies `%02d`-like width and zero padding to a known value.
fn format_spec(v: &str, spec: &str) -> String {
    let flags_end = spec.find(|c: char| !"-+ #0".contains(c)).unwrap_or(0);
    let zero = spec[..flags_end].contains('0');
    let left = spec[..flags_end].contains('-');
    let width: usize = spec[flags_end..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    let n = v.chars().count();
    if n >= width {
        return v.to_string();
    }
    let pad = width - n;
    match (left, zero) {
        (true, _) => format!("{v}{}", " ".repeat(pad)),
        (false, true) => format!("{}{v}", "0".repeat(pad)),
        (false, false) => format!("{}{v}", " ".repeat(pad)),
    }
}

/// The value of `name` in `names`.
fn value(name: &str, names: &Names, used: &mut Used) -> Result<Piece, String> {
    if let Some(var) = name.strip_prefix("ENV_") {
        if var.is_empty() {
            return Err("`%(ENV_)s` names no variable".into());
        }
        return Ok(Piece::Var(var.to_string()));
    }
    let prog = names.program.as_ref();
    let v = match (name, prog) {
        ("here", _) => names.here.clone(),
        ("host_node_name", _) => {
            used.hostname = true;
            return Ok(Piece::Var("HOSTNAME".into()));
        }
        ("program_name", Some(p)) => p.name.clone(),
        ("group_name", Some(p)) => p.group.clone(),
        ("numprocs", Some(p)) => p.numprocs.to_string(),
        ("process_num", Some(p)) if p.numprocs > 1 => {
            used.instance = true;
            return Ok(Piece::Var("BOSUN_INSTANCE".into()));
        }
        ("process_num", Some(p)) => p.first.to_string(),
        _ => {
            let known = match prog {
                Some(_) => "ENV_NAME, here, program_name, group_name, process_num, numprocs, host_node_name",
                None => "ENV_NAME, here, host_node_name",
            };
            return Err(format!(
                "unknown expansion `%({name})s`: known here are {known}"
            ));
        }
    };
    Ok(Piece::Lit(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            here: "/etc/supervisor".into(),
            program: Some(Program {
                name: "worker".into(),
                group: "jobs".into(),
                numprocs: 1,
                first: 3,
            }),
        }
    }

    fn ex(s: &str) -> Result<String, String> {
        expand(s, &names(), &mut Used::default()).map(|t| t.to_bosun())
    }

    #[test]
    fn names_env_and_formats() {
        assert_eq!(ex("%(here)s/x.log").unwrap(), "/etc/supervisor/x.log");
        assert_eq!(
            ex("%(program_name)s_%(process_num)02d").unwrap(),
            "worker_03"
        );
        assert_eq!(ex("%(group_name)s-%(numprocs)d").unwrap(), "jobs-1");
        assert_eq!(ex("--home=%(ENV_HOME)s/app").unwrap(), "--home=${HOME}/app");
        assert_eq!(ex("100%% sure").unwrap(), "100% sure");
    }

    #[test]
    fn instances_become_bosun_instance() {
        let mut n = names();
        n.program.as_mut().unwrap().numprocs = 4;
        let mut used = Used::default();
        let t = expand("w%(process_num)02d", &n, &mut used).unwrap();
        assert_eq!(t.to_bosun(), "w${BOSUN_INSTANCE}");
        assert!(used.instance);
    }

    #[test]
    fn dollars_stay_literal() {
        assert_eq!(
            ex("echo ${X} $$ $HOME $").unwrap(),
            "echo $${X} $$$ $HOME $$"
        );
        assert_eq!(ex("a$%(ENV_B)s").unwrap(), "a$$${B}");
    }

    #[test]
    fn errors() {
        assert!(ex("date +%Y").unwrap_err().contains("%%"));
        assert!(ex("%(nope)s").unwrap_err().contains("unknown expansion"));
        assert!(ex("%(here").unwrap_err().contains("unterminated"));
        let none = Names::default();
        assert!(expand("%(program_name)s", &none, &mut Used::default()).is_err());
    }
}
