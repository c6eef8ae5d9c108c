//! `[program:x]` → `[service.x]` or `[task.x]` (a one-shot: `autorestart=false`
//! with `startsecs=0`).

use crate::emit::{self, Unit};
use crate::expand::{expand, Names, Program, Text, Used};
use crate::ini::Entry;
use crate::lex;
use crate::load::Located;
use crate::{ParseError, Report};

/// What every program inherits: `[supervisord] environment=`.
#[derive(Debug, Default)]
pub struct Globals {
    pub env: Vec<(String, Text)>,
    /// A listener stops supervisord when any program exits: a program that is
    /// not restarted is then a service whose exit stops the container, not a one-shot.
    pub exit_kills: bool,
}

/// The keys of a program section this module reads; any other is a warning.
const KNOWN: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "autorestart",
    "startsecs",
    "startretries",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "environment",
    "directory",
    "umask",
];

/// Reads one program section.
struct Reader<'a> {
    loc: &'a Located,
    names: Names,
    used: Used,
    report: &'a mut Report,
}

impl Reader<'_> {
    fn entry(&self, key: &str) -> Option<&Entry> {
        self.loc.section.get(key)
    }

    fn err(&self, line: usize, key: &str, msg: impl std::fmt::Display) -> ParseError {
        let s = &self.loc.section.name;
        ParseError::at(&self.loc.file, line, format!("[{s}] {key}: {msg}"))
    }

    fn warn(&mut self, line: usize, key: &str, msg: &str) {
        let l = self.loc;
        self.report.warn(&l.file, line, &l.section.name, key, msg);
    }

    /// The expanded value of `key`, when written.
    fn text(&mut self, key: &str) -> Result<Option<(Text, usize)>, ParseError> {
        let Some(e) = self.entry(key) else {
            return Ok(None);
        };
        let (value, line) = (e.value.clone(), e.line);
        let t = expand(&value, &self.names, &mut self.used).map_err(|m| self.err(line, key, m))?;
        Ok(Some((t.trim(), line)))
    }

    /// A literal value (no `%(ENV_…)s`), when written; a variable is a warning
    /// and reads as not written.
    fn literal(&mut self, key: &str) -> Result<Option<(String, usize)>, ParseError> {
        let Some((t, line)) = self.text(key)? else {
            return Ok(None);
        };
        match t.as_lit() {
            Some(s) => Ok(Some((s, line))),
            None => {
                self.warn(line, key, "comes from the environment (%(ENV_…)s), which is not known when translating: supervisord's default is used; set it by hand");
                Ok(None)
            }
        }
    }

    fn boolean(&mut self, key: &str, default: bool) -> Result<bool, ParseError> {
        let Some((s, line)) = self.literal(key)? else {
            return Ok(default);
        };
        parse_bool(&s)
            .ok_or_else(|| self.err(line, key, format!("expected true or false, found {s:?}")))
    }

    /// Seconds: a number, or a variable (rendered `${X:-default}`).
    fn seconds(&mut self, key: &str) -> Result<Option<(Secs, usize)>, ParseError> {
        let Some((t, line)) = self.text(key)? else {
            return Ok(None);
        };
        if let Some(v) = t.as_var() {
            return Ok(Some((Secs::Var(v.to_string()), line)));
        }
        let s = t.as_lit().unwrap_or_default();
        let n = s.parse::<u64>().map_err(|_| {
            self.err(
                line,
                key,
                format!("expected a whole number of seconds, found {s:?}"),
            )
        })?;
        Ok(Some((Secs::N(n), line)))
    }

    fn integer(&mut self, key: &str) -> Result<Option<(i64, usize)>, ParseError> {
        let Some((s, line)) = self.literal(key)? else {
            return Ok(None);
        };
        let n = s
            .parse::<i64>()
            .map_err(|_| self.err(line, key, format!("expected a whole number, found {s:?}")))?;
        Ok(Some((n, line)))
    }
}

/// A number of seconds, or where it comes from.
#[derive(Debug, Clone, PartialEq)]
enum Secs {
    N(u64),
    Var(String),
}

impl Secs {
    fn duration(&self, default: u64) -> String {
        match self {
            Secs::N(n) => emit::string(&format!("{n}s")),
            Secs::Var(v) => emit::string(&format!("${{{v}:-{default}}}s")),
        }
    }

    fn is_zero(&self) -> bool {
        *self == Secs::N(0)
    }
}

/// supervisord's booleans.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A valid unit name for `name`: other characters become `_`.
pub fn unit_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Translates `[program:NAME]` of `loc`.
pub fn program(
    loc: &Located,
    name: &str,
    group: &str,
    globals: &Globals,
    report: &mut Report,
) -> Result<Unit, ParseError> {
    let mut r = Reader {
        loc,
        names: Names {
            here: loc.here.clone(),
            program: None,
        },
        used: Used::default(),
        report,
    };
    let (numprocs, numprocs_line) = numprocs(&mut r)?;
    let first = r
        .integer("numprocs_start")?
        .map_or(0, |(n, _)| n.max(0) as u32);
    r.names.program = Some(Program {
        name: name.to_string(),
        group: group.to_string(),
        numprocs,
        first,
    });
    let autorestart = autorestart(&mut r)?;
    let startsecs = r.seconds("startsecs")?;
    let one_shot =
        autorestart == Some(false) && startsecs.as_ref().is_some_and(|(s, _)| s.is_zero());
    let task = one_shot && !globals.exit_kills;
    let mut u = Unit {
        name: unit_name(name),
        task,
        section: loc.section.name.clone(),
        file: loc.file.clone(),
        line: loc.section.line,
        priority: 999,
        priority_line: None,
        on_demand: false,
        lines: Vec::new(),
        roles: Vec::new(),
        essential: false,
        suggested_after: Vec::new(),
    };
    if u.name != name {
        r.warn(loc.section.line, "program", &format!("{name:?} is not a valid bosun unit name (letters, digits, `_`, `.`, `-`): it is `{}` here", u.name));
    }
    command(&mut r, &mut u)?;
    if one_shot && !task {
        u.comment("autorestart=false and startsecs=0, but a listener stopped supervisord when it exited: a service whose exit stops the container, not a one-shot");
    }
    let numprocs = instances(&mut r, &mut u, numprocs, numprocs_line);
    start_and_restart(&mut r, &mut u, autorestart, startsecs)?;
    stopping(&mut r, &mut u)?;
    identity(&mut r, &mut u)?;
    environment(&mut r, &mut u, globals)?;
    logs(&mut r, &mut u, numprocs > 1)?;
    notes(&mut r, &mut u, numprocs)?;
    Ok(u)
}

/// `numprocs` (1 when not written, or when it comes from the environment).
fn numprocs(r: &mut Reader) -> Result<(u32, Option<usize>), ParseError> {
    let Some((t, line)) = r.text("numprocs")? else {
        return Ok((1, None));
    };
    let Some(s) = t.as_lit() else {
        r.warn(line, "numprocs", "comes from the environment, which is not known when translating: one instance is written; set `instances = N` by hand");
        return Ok((1, Some(line)));
    };
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok((n, Some(line))),
        _ => Err(r.err(
            line,
            "numprocs",
            format!("expected a whole number of at least 1, found {s:?}"),
        )),
    }
}

/// The most instances bosun runs of one service.
const MAX_INSTANCES: u32 = 1000;

/// `numprocs = N` → `instances = N` on a service; returns the instances written (1: none).
fn instances(r: &mut Reader, u: &mut Unit, numprocs: u32, line: Option<usize>) -> u32 {
    let Some(line) = line.filter(|_| numprocs > 1) else {
        return 1;
    };
    if u.task {
        r.warn(
            line,
            "numprocs",
            &format!(
                "{numprocs} copies of a one-shot: a bosun task runs once; write one task per copy"
            ),
        );
        return 1;
    }
    let n = numprocs.min(MAX_INSTANCES);
    if n < numprocs {
        r.warn(
            line,
            "numprocs",
            &format!("{numprocs}: bosun runs at most {MAX_INSTANCES} instances of a service"),
        );
    }
    u.key("instances", n.to_string());
    u.comment("numprocs: each instance has its own pid, logs (`name#2 | line`) and restarts; ${BOSUN_INSTANCE} is 1..N");
    n
}

/// `autorestart`: `Some(true)`, `Some(false)` or `None` for `unexpected` (the default).
fn autorestart(r: &mut Reader) -> Result<Option<bool>, ParseError> {
    let Some((s, line)) = r.literal("autorestart")? else {
        return Ok(None);
    };
    if s.eq_ignore_ascii_case("unexpected") {
        return Ok(None);
    }
    parse_bool(&s).map(Some).ok_or_else(|| {
        r.err(
            line,
            "autorestart",
            format!("expected true, false or unexpected, found {s:?}"),
        )
    })
}

fn command(r: &mut Reader, u: &mut Unit) -> Result<(), ParseError> {
    let sec = &r.loc.section;
    let Some((t, line)) = r.text("command")? else {
        return Err(ParseError::at(&r.loc.file, sec.line, format!("[{}] has no `command=` (supervisord refuses it too): add the program's command line", sec.name)));
    };
    let argv = lex::argv(&t).map_err(|m| r.err(line, "command", m))?;
    if argv.is_empty() || argv[0].is_empty() {
        return Err(r.err(line, "command", "the command is empty"));
    }
    let argv: Vec<String> = argv.iter().map(Text::to_bosun).collect();
    u.key("run", emit::array(&argv));
    Ok(())
}

fn start_and_restart(
    r: &mut Reader,
    u: &mut Unit,
    autorestart: Option<bool>,
    startsecs: Option<(Secs, usize)>,
) -> Result<(), ParseError> {
    let autostart = r.boolean("autostart", true)?;
    let autostart_line = r.entry("autostart").map(|e| e.line);
    if u.task {
        if !autostart {
            u.on_demand = true;
            u.key("on_demand", "true".into());
            u.comment(&format!(
                "autostart=false: not run at boot; `bosun ctl run {}` runs it",
                u.name
            ));
        }
        u.comment("a one-shot (autorestart=false, startsecs=0): it must exit 0, within `timeout` (1h by default; supervisord had no limit)");
    } else {
        if let (false, Some(line)) = (autostart, autostart_line) {
            r.warn(line, "autostart", "false: bosun starts every active unit at boot; choose the containers it runs in with `roles` (and CONTAINERROLE), or, for a one-shot, make it a task with `on_demand = true`");
        }
        let restart = match autorestart {
            Some(true) => "always",
            Some(false) => "never",
            None => "on-failure",
        };
        u.key("restart", emit::string(restart));
        if let Some((s, _)) = &startsecs {
            u.key("start_secs", s.duration(1));
        }
    }
    if let Some((n, line)) = r.integer("startretries")? {
        let burst = n.max(0) + 1;
        u.key(
            "start_limit",
            format!("{{ burst = {burst}, interval = \"60s\" }}"),
        );
        r.warn(line, "startretries", &format!("{n} failed starts in a row (each shorter than startsecs) made supervisord give up; bosun gives up (`fatal`) after more than {burst} starts within 60s, whatever made them"));
    }
    exitcodes(r, u, autorestart)?;
    if let Some((p, line)) = r.integer("priority")? {
        u.priority = p;
        u.priority_line = Some(line);
    }
    Ok(())
}

fn exitcodes(r: &mut Reader, u: &Unit, autorestart: Option<bool>) -> Result<(), ParseError> {
    let Some((s, line)) = r.literal("exitcodes")? else {
        return Ok(());
    };
    let codes: Result<Vec<u8>, _> = s.split(',').map(|c| c.trim().parse::<u8>()).collect();
    let codes = codes.map_err(|_| {
        r.err(
            line,
            "exitcodes",
            format!("expected exit codes like 0,2, found {s:?}"),
        )
    })?;
    if codes == [0] {
        return Ok(());
    }
    let msg = if u.task {
        "bosun's task succeeds on exit code 0 only; make the command exit 0 on success".to_string()
    } else if autorestart.is_none() {
        format!("{s}: bosun's `on-failure` restarts on any non-zero exit or signal; it has no list of expected codes")
    } else {
        format!("{s}: bosun has no list of expected exit codes (supervisord used it for autorestart=unexpected and its events only)")
    };
    r.warn(line, "exitcodes", &msg);
    Ok(())
}

fn stopping(r: &mut Reader, u: &mut Unit) -> Result<(), ParseError> {
    if let Some((s, line)) = r.literal("stopsignal")? {
        u.key(
            "stop_signal",
            emit::string(
                &signal(&s)
                    .ok_or_else(|| r.err(line, "stopsignal", format!("unknown signal {s:?}")))?,
            ),
        );
    }
    if let Some((s, _)) = r.seconds("stopwaitsecs")? {
        u.key("stop_timeout", s.duration(10));
    }
    for key in ["stopasgroup", "killasgroup"] {
        let Some(line) = r.entry(key).map(|e| e.line) else {
            continue;
        };
        if r.boolean(key, false)? {
            u.comment(&format!(
                "{key}=true: always so in bosun (signals go to the unit's whole process group)"
            ));
        } else {
            r.warn(line, key, "false: bosun always signals the unit's whole process group, not only its main process");
        }
    }
    Ok(())
}

/// `TERM`, `SIGTERM`, `15` → `SIGTERM` (as supervisord's `signal_number`).
fn signal(s: &str) -> Option<String> {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    if let Ok(n) = s.parse::<usize>() {
        return NAMES.get(n.checked_sub(1)?).map(|n| format!("SIG{n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    NAMES.contains(&name).then(|| format!("SIG{name}"))
}

fn identity(r: &mut Reader, u: &mut Unit) -> Result<(), ParseError> {
    if let Some((t, _)) = r.text("user")? {
        u.key("user", emit::string(&t.to_bosun()));
    }
    if let Some((t, _)) = r.text("directory")? {
        u.key("cwd", emit::string(&t.to_bosun()));
    }
    if let Some((t, line)) = r.text("umask")? {
        let s = t.to_bosun();
        if t.as_lit().is_some_and(|l| {
            l.is_empty() || !l.bytes().all(|b| (b'0'..=b'7').contains(&b)) || l.len() > 4
        }) {
            return Err(r.err(
                line,
                "umask",
                format!("expected an octal mask like 022, found {s:?}"),
            ));
        }
        u.key("umask", emit::string(&s));
    }
    Ok(())
}

fn environment(r: &mut Reader, u: &mut Unit, globals: &Globals) -> Result<(), ParseError> {
    let mut env: Vec<(String, Text)> = globals.env.clone();
    if let Some((t, line)) = r.text("environment")? {
        let pairs = lex::pairs(&t).map_err(|m| r.err(line, "environment", m))?;
        for (k, v) in pairs {
            env.retain(|(ek, _)| *ek != k);
            env.push((k, v));
        }
    }
    if env.is_empty() {
        return Ok(());
    }
    let items: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{} = {}", emit::key(k), emit::string(&v.to_bosun())))
        .collect();
    u.key("env", format!("{{ {} }}", items.join(", ")));
    Ok(())
}

/// Where one stream went under supervisord.
#[derive(Debug, Clone, PartialEq)]
enum Sink {
    Unset,
    Auto,
    Discard,
    Console,
    Syslog,
    File(String),
}

fn sink(r: &mut Reader, stream: &str) -> Result<(Sink, Option<usize>), ParseError> {
    let key = format!("{stream}_logfile");
    let Some((t, line)) = r.text(&key)? else {
        return Ok((Sink::Unset, None));
    };
    let s = t.to_bosun();
    let sink = match s.as_str() {
        "" | "NONE" | "none" => Sink::Discard,
        "AUTO" | "auto" => Sink::Auto,
        "syslog" | "SYSLOG" => Sink::Syslog,
        "/dev/stdout" | "/dev/stderr" | "/dev/fd/1" | "/dev/fd/2" | "/proc/self/fd/1"
        | "/proc/self/fd/2" | "/dev/tty" | "/dev/console" => Sink::Console,
        "/dev/null" => Sink::Discard,
        _ => Sink::File(s),
    };
    Ok((sink, Some(line)))
}

fn logs(r: &mut Reader, u: &mut Unit, instances: bool) -> Result<(), ParseError> {
    let redirect = r.boolean("redirect_stderr", false)?;
    let (out, out_line) = sink(r, "stdout")?;
    let (mut err, err_line) = sink(r, "stderr")?;
    if redirect {
        if let Some(line) = err_line {
            r.warn(
                line,
                "stderr_logfile",
                "ignored with redirect_stderr=true (by supervisord too)",
            );
        }
        err = out.clone();
        u.comment("redirect_stderr=true: always so in bosun (both streams go to the same outputs)");
    }
    let sinks = [(&out, out_line, "stdout"), (&err, err_line, "stderr")];
    let console = sinks.iter().any(|(s, _, _)| **s == Sink::Console);
    if console {
        u.key("output", emit::string("prefix"));
    } else if !sinks.iter().all(|(s, _, _)| **s == Sink::Unset) {
        u.key("output", emit::string("null"));
        u.comment("under supervisord its output did not reach the container's stdout/stderr; `output = \"prefix\"` puts it in `docker logs` as `name | line`");
    }
    for (s, line, stream) in sinks {
        let Some(line) = line else { continue };
        let key = format!("{stream}_logfile");
        match s {
            Sink::Auto => r.warn(line, &key, "AUTO: bosun writes no automatic log files; the last lines are in `bosun ctl logs` (the ring buffer), or set log_file"),
            Sink::Syslog => r.warn(line, &key, "syslog: bosun has no syslog output; use output = \"prefix\" (docker logs) or log_file"),
            Sink::Console => maxbytes_on_console(r, stream)?,
            _ => {}
        }
    }
    log_file(r, u, &out, &err, redirect, instances)
}

/// `/dev/stdout` with `maxbytes` other than 0: supervisord cannot rotate a pipe.
fn maxbytes_on_console(r: &mut Reader, stream: &str) -> Result<(), ParseError> {
    for what in ["maxbytes", "backups"] {
        let key = format!("{stream}_logfile_{what}");
        if let Some((s, line)) = r.literal(&key)? {
            if s != "0" {
                r.warn(line, &key, "a console has no rotation: ignored (supervisord fails to rotate it; set it to 0 there)");
            }
        }
    }
    Ok(())
}

/// `log_file` from the one file both streams (or one) went to.
fn log_file(
    r: &mut Reader,
    u: &mut Unit,
    out: &Sink,
    err: &Sink,
    redirect: bool,
    instances: bool,
) -> Result<(), ParseError> {
    let (mut path, stream) = match (out, err) {
        (Sink::File(p), _) => (p.clone(), "stdout"),
        (_, Sink::File(p)) => (p.clone(), "stderr"),
        _ => return Ok(()),
    };
    if instances && !path.contains("${BOSUN_INSTANCE}") {
        let shared = path.clone();
        path = per_instance(&path);
        let key = format!("{stream}_logfile");
        let line = r.entry(&key).map_or(0, |e| e.line);
        r.warn(line, &key, &format!("supervisord's processes shared {shared}; each bosun instance writes (and rotates) a file of its own: {path}"));
    }
    let mut parts = vec![format!("path = {}", emit::string(&path))];
    let maxbytes = match r.literal(&format!("{stream}_logfile_maxbytes"))? {
        Some((s, line)) => Some(bytes(&s).ok_or_else(|| {
            r.err(
                line,
                &format!("{stream}_logfile_maxbytes"),
                format!("expected a size like 50MB, found {s:?}"),
            )
        })?),
        None => Some(50 << 20),
    };
    match maxbytes {
        Some(0) => {
            let line = r
                .entry(&format!("{stream}_logfile_maxbytes"))
                .map_or(0, |e| e.line);
            r.warn(
                line,
                &format!("{stream}_logfile_maxbytes"),
                "0 (never rotate): bosun always rotates a log_file; it rotates at 50MB here",
            );
        }
        Some(n) => parts.push(format!("max_bytes = {}", emit::string(&size(n)))),
        None => {}
    }
    let backups = r
        .integer(&format!("{stream}_logfile_backups"))?
        .map_or(10, |(n, _)| n.max(0));
    parts.push(format!("backups = {backups}"));
    u.key("log_file", format!("{{ {} }}", parts.join(", ")));
    if let (Sink::File(a), Sink::File(b)) = (out, err) {
        if a != b && !redirect {
            let line = r.entry("stderr_logfile").map_or(0, |e| e.line);
            r.warn(line, "stderr_logfile", &format!("a second file: bosun writes both streams to one log_file ({a}), not stderr to {b}"));
        }
    }
    let other_console = matches!(
        (out, err),
        (Sink::File(_), Sink::Console) | (Sink::Console, Sink::File(_))
    );
    if other_console {
        u.comment("one stream went to a file, the other to the console: in bosun both go to both");
    }
    Ok(())
}

/// `/var/log/w.log` → `/var/log/w-${BOSUN_INSTANCE}.log`.
fn per_instance(path: &str) -> String {
    let name_at = path.rfind('/').map_or(0, |i| i + 1);
    match path[name_at..].rfind('.') {
        Some(dot) if dot > 0 => {
            let at = name_at + dot;
            format!("{}-${{BOSUN_INSTANCE}}{}", &path[..at], &path[at..])
        }
        _ => format!("{path}-${{BOSUN_INSTANCE}}"),
    }
}

/// supervisord's `byte_size`: `50MB` is 50 × 1024 × 1024.
fn bytes(s: &str) -> Option<u64> {
    let up = s.trim().to_ascii_uppercase();
    let (num, mult) = if let Some(n) = up.strip_suffix("GB") {
        (n, 1u64 << 30)
    } else if let Some(n) = up.strip_suffix("MB") {
        (n, 1 << 20)
    } else if let Some(n) = up.strip_suffix("KB") {
        (n, 1 << 10)
    } else {
        (up.as_str(), 1)
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// A byte count in bosun's syntax, exact (`50MiB`).
fn size(n: u64) -> String {
    for (unit, m) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n % m == 0 {
            return format!("{}{unit}", n / m);
        }
    }
    n.to_string()
}

/// The keys bosun has no equivalent for, and the ones it needs no key for.
fn notes(r: &mut Reader, u: &mut Unit, numprocs: u32) -> Result<(), ParseError> {
    if let Some(e) = r.entry("process_name") {
        let line = e.line;
        if numprocs > 1 {
            u.comment("process_name: the instances are `name#1` … `name#N` in ctl status and logs");
        } else if r
            .text("process_name")?
            .and_then(|(t, _)| t.as_lit())
            .as_deref()
            != Some(u.name.as_str())
        {
            r.warn(
                line,
                "process_name",
                "bosun names the process after the unit",
            );
        }
    }
    if r.used.instance && r.names.program.as_ref().is_some_and(|p| p.first != 1) {
        let line = r.entry("command").map_or(r.loc.section.line, |e| e.line);
        r.warn(line, "process_num", "%(process_num)s became ${BOSUN_INSTANCE}, which counts from 1 (supervisord counted from numprocs_start, 0 by default) and is not zero-padded");
    }
    if r.used.hostname {
        r.warn(
            r.loc.section.line,
            "host_node_name",
            "%(host_node_name)s became ${HOSTNAME} (the container's hostname variable)",
        );
    }
    let unknown: Vec<(String, usize)> = r
        .loc
        .section
        .entries
        .iter()
        .filter(|e| !KNOWN.contains(&e.key.as_str()))
        .map(|e| (e.key.clone(), e.line))
        .collect();
    for (key, line) in unknown {
        r.warn(line, &key, &no_equivalent(&key));
    }
    Ok(())
}

fn no_equivalent(key: &str) -> String {
    let why = match key {
        "serverurl" => "bosun's units do not talk to it over XML-RPC",
        k if k.ends_with("_events_enabled") => "bosun has no event listeners; its output is in `bosun ctl logs`",
        k if k.ends_with("_capture_maxbytes") => "bosun has no capture mode",
        k if k.ends_with("_syslog") => "bosun has no syslog output",
        _ => return "not a key bosun has an equivalent for (nor one supervisord documents); not translated".into(),
    };
    format!("not translated: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_sizes() {
        assert_eq!(signal("TERM").as_deref(), Some("SIGTERM"));
        assert_eq!(signal("sigquit").as_deref(), Some("SIGQUIT"));
        assert_eq!(signal("2").as_deref(), Some("SIGINT"));
        assert_eq!(signal("NOPE"), None);
        assert_eq!(bytes("50MB"), Some(50 << 20));
        assert_eq!(bytes("1kb"), Some(1024));
        assert_eq!(bytes("100"), Some(100));
        assert_eq!(size(50 << 20), "50MiB");
        assert_eq!(size(1000), "1000");
        assert_eq!(
            per_instance("/var/log/w.log"),
            "/var/log/w-${BOSUN_INSTANCE}.log"
        );
        assert_eq!(
            per_instance("/var/log.d/worker"),
            "/var/log.d/worker-${BOSUN_INSTANCE}"
        );
    }
}
