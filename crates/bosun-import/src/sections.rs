//! Every section of a supervisord config, and what it becomes: programs
//! (`program.rs`), `[group:g]` → roles, the FATAL-killing `[eventlistener:x]` →
//! `essential`, `[supervisord]` and `[inet_http_server]` → `[bosun]`, and
//! `priority` → the order of the output and a suggested `after`.

use std::collections::HashMap;

use crate::emit::{self, Doc, Line};
use crate::expand::{expand, Names, Program, Text, Used};
use crate::lex;
use crate::load::Located;
use crate::program::{self, Globals};
use crate::{ParseError, Report};

/// Where bosun reads the HTTP API's bearer token from, in the output.
pub const TOKEN_FILE: &str = "/etc/bosun/http-token";

/// Translates the loaded sections.
pub fn translate(loaded: &[Located], report: &mut Report) -> Result<Doc, ParseError> {
    let mut doc = Doc::default();
    let groups = groups(loaded, report)?;
    let mut globals = Globals {
        exit_kills: find_killer(loaded)?.is_some_and(|k| k.on_exit),
        ..Globals::default()
    };
    for l in loaded.iter().filter(|l| l.section.name == "supervisord") {
        supervisord(l, &mut doc, &mut globals, report)?;
    }
    for l in loaded {
        let Some(name) = l.section.name.strip_prefix("program:") else {
            continue;
        };
        let name = name.trim();
        let group = groups
            .get(name)
            .and_then(|g| g.first())
            .map_or(name, String::as_str);
        let mut u = program::program(l, name, group, &globals, report)?;
        u.roles = groups.get(name).cloned().unwrap_or_default();
        if let Some(prev) = doc.units.iter().position(|p| p.name == u.name) {
            let p = &doc.units[prev];
            let msg = format!(
                "a second unit named `{}` (the first is at {}:{}): the later one is kept",
                u.name, p.file, p.line
            );
            report.warn(&l.file, l.section.line, &l.section.name, "program", &msg);
            doc.units.remove(prev);
        }
        doc.units.push(u);
    }
    for l in loaded {
        other(l, &mut doc, report)?;
    }
    order(&mut doc, report);
    Ok(doc)
}

/// `[group:g] programs=a,b`: program → its groups (the roles it gets).
fn groups(
    loaded: &[Located],
    report: &mut Report,
) -> Result<HashMap<String, Vec<String>>, ParseError> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let programs: Vec<&str> = loaded
        .iter()
        .filter_map(|l| l.section.name.strip_prefix("program:"))
        .map(str::trim)
        .collect();
    for l in loaded {
        let Some(g) = l.section.name.strip_prefix("group:") else {
            continue;
        };
        let (g, sec) = (g.trim(), &l.section);
        let role = program::unit_name(g);
        if role != g || role == "all" {
            report.warn(
                &l.file,
                sec.line,
                &sec.name,
                "group",
                &format!("{g:?} is not a valid role name: the role is `{role}_group`"),
            );
        }
        let role = if role != g || role == "all" {
            format!("{role}_group")
        } else {
            role
        };
        for e in &sec.entries {
            match e.key.as_str() {
                "programs" => {
                    for p in e.value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        if !programs.contains(&p) {
                            return Err(ParseError::at(&l.file, e.line, format!("[{}] programs: no [program:{p}] (supervisord refuses this too)", sec.name)));
                        }
                        out.entry(p.to_string()).or_default().push(role.clone());
                    }
                }
                "priority" => report.warn(&l.file, e.line, &sec.name, "priority", "a group's priority orders its programs among the others: see their own priority; bosun orders by `after`"),
                k => report.warn(&l.file, e.line, &sec.name, k, "unknown key in a group; not translated"),
            }
        }
    }
    Ok(out)
}

/// A value of a non-program section, expanded (`%(here)s`, `%(ENV_X)s`).
fn value(l: &Located, line: usize, key: &str, raw: &str) -> Result<Text, ParseError> {
    let names = Names {
        here: l.here.clone(),
        program: None,
    };
    expand(raw, &names, &mut Used::default())
        .map(Text::trim)
        .map_err(|m| ParseError::at(&l.file, line, format!("[{}] {key}: {m}", l.section.name)))
}

/// `[supervisord]`: supervisord's own settings.
fn supervisord(
    l: &Located,
    doc: &mut Doc,
    globals: &mut Globals,
    report: &mut Report,
) -> Result<(), ParseError> {
    let sec = &l.section;
    for e in &sec.entries {
        let v = value(l, e.line, &e.key, &e.value)?;
        let warn =
            |report: &mut Report, msg: &str| report.warn(&l.file, e.line, &sec.name, &e.key, msg);
        match e.key.as_str() {
            "nodaemon" => doc.notes.push("[supervisord] nodaemon: bosun always runs in the foreground (it is PID 1)".into()),
            "logfile" => match v.to_bosun().as_str() {
                p if p.starts_with("/dev/") || p.starts_with("/proc/self/fd/") => {
                    doc.notes.push(format!("[supervisord] logfile={p}: bosun's own log always goes to stderr"));
                }
                p => doc.bosun.push(Line::Key("log_file".into(), emit::string(p))),
            },
            "environment" => {
                let pairs = lex::pairs(&v).map_err(|m| ParseError::at(&l.file, e.line, format!("[supervisord] environment: {m}")))?;
                globals.env.extend(pairs);
                doc.notes.push("[supervisord] environment: in the `env` of every unit".into());
            }
            "loglevel" => warn(report, "bosun's log level is the BOSUN_LOG environment variable (debug, info, warn), not a config key"),
            "pidfile" => warn(report, "bosun writes no pid file (it is PID 1; `bosun ctl` talks to its socket)"),
            "user" => warn(report, "bosun runs as the user that starts it; give each unit its own `user`"),
            "childlogdir" => warn(report, "bosun writes no automatic log files; give a unit a `log_file`"),
            "minfds" => warn(report, "bosun raises its open-file limit to the hard limit at start; there is no key for a minimum"),
            k => warn(report, &format!("no bosun equivalent for [supervisord] {k}; not translated")),
        }
    }
    Ok(())
}

/// Every section but programs and `[supervisord]`.
fn other(l: &Located, doc: &mut Doc, report: &mut Report) -> Result<(), ParseError> {
    let sec = &l.section;
    let name = sec.name.as_str();
    if name.starts_with("program:")
        || name.starts_with("group:")
        || name == "supervisord"
        || name == "include"
    {
        return Ok(());
    }
    if name == "inet_http_server" {
        return inet_http_server(l, doc, report);
    }
    if let Some(x) = name.strip_prefix("eventlistener:") {
        return eventlistener(l, x.trim(), doc, report);
    }
    match name.split(':').next().unwrap_or(name) {
        "unix_http_server" => unix_http_server(l, doc, report)?,
        "supervisorctl" => doc.notes.push(format!("[{name}]: `bosun ctl` needs no config: `--socket` or $BOSUN_SOCKET, or `--url` with `--token-file`")),
        "rpcinterface" => doc.notes.push(format!("[{name}]: bosun's control API is built in (HTTP on the socket, `http_listen` for TCP)")),
        "fcgi-program" => report.warn(&l.file, sec.line, name, "fcgi-program", "bosun cannot create the listening socket a FastCGI program is handed: not translated (run it with its own listener as a [service])"),
        _ => report.warn(&l.file, sec.line, name, "section", &format!("an unknown section ({} keys): not translated", sec.entries.len())),
    }
    Ok(())
}

/// `[unix_http_server]`: bosun's socket is its own; the group of `chown` is kept.
fn unix_http_server(l: &Located, doc: &mut Doc, report: &mut Report) -> Result<(), ParseError> {
    let sec = &l.section;
    doc.notes.push(format!("[{}]: bosun's control socket is /run/bosun/ctl.sock (`[bosun] control_socket`), mode 0600, or 0660 for `control_group`", sec.name));
    for e in &sec.entries {
        match (e.key.as_str(), e.value.split_once(':')) {
            ("chown", Some((_, group))) if !group.trim().is_empty() => {
                let g = value(l, e.line, "chown", group)?.to_bosun();
                doc.bosun.push(Line::Key("control_group".into(), emit::string(&g)));
            }
            ("file" | "chmod" | "chown", _) => {}
            // Never the value.
            ("username" | "password", _) => report.warn(&l.file, e.line, &sec.name, &e.key, "not carried over: bosun's socket has no password, its file mode (and control_group) is the access control"),
            (k, _) => report.warn(&l.file, e.line, &sec.name, k, "no bosun equivalent; not translated"),
        }
    }
    Ok(())
}

/// `[inet_http_server] port=` → `http_listen`; a token file instead of the password.
fn inet_http_server(l: &Located, doc: &mut Doc, report: &mut Report) -> Result<(), ParseError> {
    let sec = &l.section;
    for e in &sec.entries {
        match e.key.as_str() {
            "port" => {
                let v = value(l, e.line, "port", &e.value)?.to_bosun();
                let addr = match v.rsplit_once(':') {
                    None => format!("0.0.0.0:{v}"),
                    Some(("" | "*", port)) => format!("0.0.0.0:{port}"),
                    Some(_) => v,
                };
                doc.bosun.push(Line::Key("http_listen".into(), emit::string(&addr)));
                doc.bosun.push(Line::Key("http_token_file".into(), emit::string(TOKEN_FILE)));
                doc.bosun.push(Line::Comment(format!("write a bearer token (one line) to {TOKEN_FILE}: every call but /health and /metrics needs it (`Authorization: Bearer …`)")));
            }
            // Never the value: not here, not in a warning, not in the output.
            "username" | "password" => report.warn(&l.file, e.line, &sec.name, &e.key, &format!("not carried over: bosun's TCP API takes a bearer token from {TOKEN_FILE} (`[bosun] http_token_file`) instead of a user name and password")),
            k => report.warn(&l.file, e.line, &sec.name, k, "no bosun equivalent; not translated"),
        }
    }
    Ok(())
}

/// The file name commands known to stop supervisord when they hear an event.
const KILLERS: &[&str] = &[
    "kill_supervisor",
    "kill-supervisor",
    "kill_supervisord",
    "kill-supervisord",
    "stop-supervisor",
    "stop_supervisor",
    "stop-supervisord",
    "stop_supervisord",
    "supervisord-kill",
    "supervisor-kill",
    "kill-all-on-exit",
    "kill_all_on_exit",
    "sigquit-supervisord",
    "sigquit_supervisord",
    "kill-supervisord-on-fatal",
];

/// Whether `command` is one of the well-known listeners that stop supervisord:
/// an inline `kill` of `$PPID`, of PID 1 or of supervisord's pid file, a
/// `supervisorctl shutdown`, or a script named like `kill_supervisor.py`.
fn kills_supervisord(command: &str) -> bool {
    let c = command.to_ascii_lowercase();
    let kill_target = [
        "$ppid",
        "${ppid}",
        "supervisord.pid",
        "supervisor.pid",
        "supervisord)",
        "supervisord`",
    ];
    if c.contains("kill") && kill_target.iter().any(|t| c.contains(t)) {
        return true;
    }
    let words: Vec<&str> = c
        .split(|ch: char| ch.is_whitespace() || ch == '"' || ch == '\'' || ch == ';')
        .collect();
    let kills_one = words
        .windows(3)
        .any(|w| w[0] == "kill" && (w[1] == "1" || (w[1].starts_with('-') && w[2] == "1")));
    if kills_one || c.contains("supervisorctl shutdown") {
        return true;
    }
    words.iter().any(|w| {
        let file = w.rsplit('/').next().unwrap_or(w);
        let stem = file.split('.').next().unwrap_or(file);
        KILLERS.contains(&stem)
    })
}

/// A recognised listener that stops supervisord, and whether it does so on any
/// exit (`PROCESS_STATE_EXITED`/`STOPPED`) or only on FATAL.
#[derive(Debug, Clone, Copy)]
struct Killer {
    pub on_exit: bool,
}

/// Whether the eventlistener `l` is a recognised supervisord killer.
fn killer(l: &Located) -> Result<Option<Killer>, ParseError> {
    let sec = &l.section;
    // A listener is a program too: `%(program_name)s` and the like are known.
    let name = sec.name.trim_start_matches("eventlistener:").trim();
    let prog = Program {
        name: name.into(),
        group: name.into(),
        numprocs: 1,
        first: 0,
    };
    let names = Names {
        here: l.here.clone(),
        program: Some(prog),
    };
    let command = match sec.get("command") {
        Some(e) => expand(&e.value, &names, &mut Used::default())
            .map_err(|m| ParseError::at(&l.file, e.line, format!("[{}] command: {m}", sec.name)))?
            .to_bosun(),
        None => String::new(),
    };
    let events = events(l);
    let watched = |e: &&String| {
        matches!(
            e.as_str(),
            "PROCESS_STATE"
                | "PROCESS_STATE_FATAL"
                | "PROCESS_STATE_EXITED"
                | "PROCESS_STATE_STOPPED"
        )
    };
    if !events.iter().any(|e| watched(&e)) || !kills_supervisord(&command) {
        return Ok(None);
    }
    let on_exit = events.iter().any(|e| {
        matches!(
            e.as_str(),
            "PROCESS_STATE" | "PROCESS_STATE_EXITED" | "PROCESS_STATE_STOPPED"
        )
    });
    Ok(Some(Killer { on_exit }))
}

fn events(l: &Located) -> Vec<String> {
    l.section.get("events").map_or(Vec::new(), |e| {
        e.value
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// The first recognised killer among the listeners, if any.
fn find_killer(loaded: &[Located]) -> Result<Option<Killer>, ParseError> {
    for l in loaded
        .iter()
        .filter(|l| l.section.name.starts_with("eventlistener:"))
    {
        if let Some(k) = killer(l)? {
            return Ok(Some(k));
        }
    }
    Ok(None)
}

fn eventlistener(
    l: &Located,
    name: &str,
    doc: &mut Doc,
    report: &mut Report,
) -> Result<(), ParseError> {
    let sec = &l.section;
    let Some(k) = killer(l)? else {
        let msg = "bosun has no event listeners: not translated. For alerts use `health` probes, GET /health and GET /metrics; a listener that stopped supervisord on FATAL becomes `essential = true` (this one was not recognised as one)";
        report.warn(&l.file, sec.line, &sec.name, "eventlistener", msg);
        return Ok(());
    };
    let mut n = 0;
    for u in doc.units.iter_mut().filter(|u| !u.task) {
        u.essential = true;
        n += 1;
    }
    let when = if k.on_exit {
        "a program exited or went FATAL"
    } else {
        "a program went FATAL"
    };
    doc.notes.push(format!("[eventlistener:{name}] stopped supervisord when {when}: `essential = true` on every service ({n}); bosun stops the container when one exits for good"));
    if k.on_exit {
        let line = sec.get("events").map_or(sec.line, |e| e.line);
        let msg = "supervisord stopped on any exit; bosun stops when an essential unit exits for good, after its `restart` policy (restart = \"never\" stops at the first exit)";
        report.warn(&l.file, line, &sec.name, "events", msg);
    }
    Ok(())
}

/// Orders the units by priority (then file order) and suggests `after` from it.
fn order(doc: &mut Doc, report: &mut Report) {
    doc.units.sort_by_key(|u| u.priority);
    let levels: Vec<(i64, String, bool)> = doc
        .units
        .iter()
        .map(|u| (u.priority, u.name.clone(), u.on_demand))
        .collect();
    for u in &mut doc.units {
        let Some(line) = u.priority_line else {
            continue;
        };
        let below = levels
            .iter()
            .filter(|(p, _, od)| *p < u.priority && !od)
            .map(|(p, _, _)| *p)
            .max();
        let mut msg = format!("{}: supervisord started lower priorities first, without waiting for them to be up; bosun starts independent units together", u.priority);
        if let Some(b) = below {
            u.suggested_after = levels
                .iter()
                .filter(|(p, _, od)| *p == b && !od)
                .map(|(_, n, _)| n.clone())
                .collect();
            msg.push_str(&format!(
                "; if it needs {} ready first, say so: after = {} (and give them a `ready` probe)",
                u.suggested_after.join(", "),
                emit::array(&u.suggested_after)
            ));
        }
        report.warn(&u.file, line, &u.section, "priority", &msg);
    }
}
