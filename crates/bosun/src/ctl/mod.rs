//! `bosun ctl`: the client of the control API.
//!
//! It talks to the unix socket (`--socket`, else `$BOSUN_SOCKET`, else
//! `/run/bosun/ctl.sock`) or to the TCP API (`--url` with `--token-file` or
//! `$BOSUN_HTTP_TOKEN`). It is synchronous and small on purpose (see
//! [`http`]): no async runtime starts for a status query.
//!
//! Exit codes: 0 done; 1 bosun answered no (unknown unit, inactive unit, not
//! authorised, not implemented); 2 bosun could not be reached or the command
//! line was wrong. `ctl health`: 0 healthy, 1 not, 2 unreachable.

mod fleet;
mod http;
mod top;

use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use bosun_core::status::now_ms;

use crate::api::text;
use crate::protocol::paths;
use crate::protocol::{
    ActionReply, DaemonStatus, ErrorReply, HealthReport, LogLine, MessageReply, RunEvent,
    ScaleRequest, SignalRequest, SnapshotEntry, Stream, UnitLogLine, DEFAULT_SOCKET, SOCKET_ENV,
    TOKEN_ENV,
};
use http::{Client, Endpoint, EndpointError, Response, Unreachable};

/// A command line that cannot be acted on (ctl exits 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// `--url` is not one ctl can use.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// `--token-file` cannot be read.
    #[error("cannot read --token-file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// `$BOSUN_HTTP_TOKEN` holds bytes that are not UTF-8.
    #[error("{TOKEN_ENV} is not valid UTF-8: a token is text")]
    TokenNotUtf8,
    /// `--token-file` without `--url`.
    #[error("--token-file goes with --url (the socket needs no token)")]
    TokenWithoutUrl,
}

/// Arguments of `bosun ctl`.
#[derive(clap::Args)]
#[command(
    after_help = "Unit targets for start/stop/restart/signal: a unit name, `all` (every active unit), or `role:NAME`.\n\
Exit codes: 0 done, 1 bosun refused, 2 bosun unreachable. `health`: 0 healthy, 1 not healthy, 2 unreachable."
)]
pub struct CtlArgs {
    /// The control socket [default: $BOSUN_SOCKET, else /run/bosun/ctl.sock].
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
    /// Use the TCP API instead of the socket: http://HOST:PORT.
    #[arg(long, value_name = "URL", global = true, conflicts_with = "socket")]
    url: Option<String>,
    /// File with the bearer token for --url [default: $BOSUN_HTTP_TOKEN].
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
    /// Seconds to wait for an answer [default: 10] (not for `logs -f`; stop/restart
    /// wait for the units; `run` waits for the task unless this is given).
    #[arg(long, value_name = "SECS", global = true)]
    timeout: Option<f64>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Units and their state (a table; --json for scripts).
    Status {
        /// Print bosun's JSON status as it is.
        #[arg(long)]
        json: bool,
        /// Only these units.
        units: Vec<String>,
    },
    /// Start units (a name, `all`, or `role:NAME`).
    Start {
        /// Unit targets.
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Stop units; waits until they have stopped.
    Stop {
        /// Unit targets.
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Restart units; a service with `instances` one instance at a time, each
    /// ready before the next (`worker#2`: that instance only).
    Restart {
        /// Unit targets.
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Run N instances of a service with `instances`: new ones start, the
    /// highest numbers stop, the others are left alone (until bosun restarts).
    Scale {
        /// The service (`worker`, not `worker#2`).
        service: String,
        /// How many instances, 1-1000.
        instances: u32,
    },
    /// Send a signal to units' main processes: `ctl signal HUP web`.
    Signal {
        /// A name (HUP, SIGHUP, hup, IOT: every name `stop_signal` takes) or a number 1-31.
        signal: String,
        /// Unit targets.
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Run an on-demand task here: its output, then its exit code as ours.
    Run {
        /// The task (`on_demand = true`).
        task: String,
    },
    /// Units' recent output (from their ring buffers); -f to follow. Several
    /// units (`web worker`, a service with `instances`, `role:NAME`, `all`) come
    /// interleaved in the order bosun read them, each line as `name | line`.
    Logs {
        /// Keep printing new lines until interrupted (or bosun stops).
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines of the buffer [default: all of it].
        #[arg(short = 'n', long = "lines", value_name = "N")]
        lines: Option<usize>,
        /// Prefix lines with their time (UTC).
        #[arg(short, long)]
        timestamps: bool,
        /// Only lines read this long ago or later: 10m, 90s, 1h.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Print the NDJSON records as they come (each with its `unit`).
        #[arg(long)]
        json: bool,
        /// Unit targets: names, services with `instances`, `role:NAME`, `all`.
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// The active units by CPU use, with memory and processes of each unit's
    /// whole process tree; refreshed every 2 s until q or Ctrl-C.
    Top {
        /// Seconds between refreshes.
        #[arg(short = 'd', long, value_name = "SECS", default_value_t = 2.0)]
        interval: f64,
        /// Refresh this many times, then exit (for scripts).
        #[arg(short = 'n', long = "iterations", value_name = "N")]
        iterations: Option<u64>,
    },
    /// Exit 0 when every active unit is ready, 1 when not, 2 when bosun is unreachable.
    Health {
        /// Print the JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Re-read the config and apply the changes.
    Reload,
    /// Take a snapshot now.
    Backup,
    /// List the store's snapshots.
    Snapshots,
    /// Stop bosun, as SIGTERM does.
    Shutdown,
    /// The fleet: `fleet [status]` lists peers and singletons; `fleet restart|start|stop
    /// UNIT|role:R` and `fleet run TASK` fan out to every peer (one row per peer; exit 0
    /// only when every live peer that has the unit succeeded; --timeout: how long to
    /// wait for the peers, default 60).
    Fleet {
        /// Print the JSON as it is.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        cmd: Option<FleetCmd>,
    },
}

#[derive(clap::Subcommand)]
enum FleetCmd {
    /// Peers (name, roles, url, version, state, last seen) and singletons (unit,
    /// holder, term, since).
    Status {
        /// Print the JSON as it is.
        #[arg(long)]
        json: bool,
    },
    /// Restart a unit (or `role:NAME`) on every peer.
    Restart {
        /// A unit name or `role:NAME`.
        target: String,
    },
    /// Start a unit (or `role:NAME`) on every peer.
    Start {
        /// A unit name or `role:NAME`.
        target: String,
    },
    /// Stop a unit (or `role:NAME`) on every peer.
    Stop {
        /// A unit name or `role:NAME`.
        target: String,
    },
    /// Run an on-demand task on every peer that has it.
    Run {
        /// The task (`on_demand = true`).
        task: String,
    },
}

impl CtlArgs {
    /// The queries a probe or a watch loop runs most, `bosun ctl [--socket PATH]
    /// status [--json] [UNIT...]` and `bosun ctl [--socket PATH] health [--json]`,
    /// parsed without clap: building clap's whole command tree and dropping it is
    /// most of what such a query costs bosun itself (measured with callgrind: ~250k
    /// of ~430k instructions in `main`). Any other spelling (another flag, `--`,
    /// `-h`, a name that starts with `-`, `--socket` twice) returns `None` and goes
    /// through clap as usual, so the two paths cannot disagree on anything but speed.
    pub fn quick(args: &[std::ffi::OsString]) -> Option<CtlArgs> {
        let mut words = args.iter().peekable();
        if words.next()?.to_str()? != "ctl" {
            return None;
        }
        let mut socket = None;
        let mut cmd = None;
        let (mut json, mut units) = (false, Vec::new());
        while let Some(word) = words.next() {
            // `--socket` is a path: any bytes, as clap takes them (`global`, so
            // before or after the command).
            if word == "--socket" && socket.is_none() {
                let path = words.next().filter(|p| !p.is_empty())?;
                if path.as_encoded_bytes().starts_with(b"-") {
                    return None;
                }
                socket = Some(PathBuf::from(path));
                continue;
            }
            if let Some(path) = word.as_encoded_bytes().strip_prefix(b"--socket=") {
                if socket.is_some() || path.is_empty() {
                    return None;
                }
                socket = Some(PathBuf::from(word.to_str()?.strip_prefix("--socket=")?));
                continue;
            }
            match (cmd, word.to_str()?) {
                (None, "status") => cmd = Some("status"),
                (None, "health") => cmd = Some("health"),
                (Some(_), "--json") if !json => json = true,
                (Some("status"), w) if !w.is_empty() && !w.starts_with('-') => {
                    units.push(w.to_string())
                }
                _ => return None,
            }
        }
        let cmd = match cmd? {
            "status" => Cmd::Status { json, units },
            _ => Cmd::Health { json },
        };
        Some(CtlArgs {
            socket,
            url: None,
            token_file: None,
            timeout: None,
            cmd,
        })
    }
}

/// `bosun ctl`: one command against bosun's control API; the exit code (2 when
/// the endpoint is unusable or bosun cannot be reached).
pub fn main(args: CtlArgs) -> i32 {
    let endpoint = match endpoint(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bosun ctl: {e}");
            return 2;
        }
    };
    let given = args.timeout;
    let secs = given.unwrap_or(10.0);
    let timeout = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
    let client = Client { endpoint, timeout };
    let is_health = matches!(args.cmd, Cmd::Health { .. });
    match dispatch(client, args.cmd, given) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bosun ctl: {e}");
            if is_health {
                eprintln!("unhealthy: bosun is unreachable");
            }
            2
        }
    }
}

/// Runs `cmd`. Calls that wait on units use a client without a read timeout
/// (`run` only when no `--timeout` was `given`).
fn dispatch(client: Client, cmd: Cmd, given: Option<f64>) -> Result<i32, Unreachable> {
    match cmd {
        Cmd::Status { json, units } => status(&client, json, &units),
        Cmd::Start { units } => act(&client.patient(), "start", &units, None),
        Cmd::Stop { units } => act(&client.patient(), "stop", &units, None),
        Cmd::Restart { units } => act(&client.patient(), "restart", &units, None),
        Cmd::Signal { signal, units } => match bosun_config::Signal::parse(&signal) {
            // Sent by its canonical name: the config's table is the one that decides.
            Some(sig) => act(&client, "signal", &units, Some(sig.name)),
            None => {
                eprintln!(
                    "bosun ctl: unknown signal {signal:?} (use a name like HUP, SIGALRM or IOT, or a number 1-31)"
                );
                Ok(1)
            }
        },
        Cmd::Logs {
            follow,
            lines,
            timestamps,
            since,
            json,
            units,
        } => {
            let client = if follow { client.patient() } else { client };
            let q = paths::LogsQuery {
                n: lines,
                since,
                follow,
            };
            logs(&client, &units, &q, timestamps, json)
        }
        Cmd::Health { json } => health(&client, json),
        Cmd::Top {
            interval,
            iterations,
        } => top::top(&client, interval, iterations),
        Cmd::Run { task } => {
            let client = if given.is_some() {
                client
            } else {
                client.patient()
            };
            run(&client, &task)
        }
        Cmd::Reload => message(&client.patient(), "POST", paths::RELOAD),
        Cmd::Scale { service, instances } => scale(&client.patient(), &service, instances),
        Cmd::Backup => message(&client.patient(), "POST", paths::BACKUP),
        Cmd::Snapshots => snapshots(&client),
        Cmd::Shutdown => message(&client, "POST", paths::SHUTDOWN),
        Cmd::Fleet { json, cmd } => fleet_cmd(&client, json, cmd, given),
    }
}

/// `bosun ctl fleet …`; a `--timeout` (`given`) bounds how long a command waits
/// for the peers.
fn fleet_cmd(
    client: &Client,
    json: bool,
    cmd: Option<FleetCmd>,
    given: Option<f64>,
) -> Result<i32, Unreachable> {
    let wait = given.map(Duration::from_secs_f64);
    match cmd {
        None => fleet::status(client, json),
        Some(FleetCmd::Status { json: j }) => fleet::status(client, json || j),
        Some(FleetCmd::Restart { target }) => {
            fleet::command(&client.patient(), "restart", &target, wait, json)
        }
        Some(FleetCmd::Start { target }) => {
            fleet::command(&client.patient(), "start", &target, wait, json)
        }
        Some(FleetCmd::Stop { target }) => {
            fleet::command(&client.patient(), "stop", &target, wait, json)
        }
        Some(FleetCmd::Run { task }) => fleet::command(&client.patient(), "run", &task, wait, json),
    }
}

impl Client {
    /// The same endpoint without a read timeout: for calls that wait on units.
    fn patient(&self) -> Client {
        let endpoint = match &self.endpoint {
            Endpoint::Unix(p) => Endpoint::Unix(p.clone()),
            Endpoint::Tcp {
                url,
                authority,
                prefix,
                token,
            } => Endpoint::Tcp {
                url: url.clone(),
                authority: authority.clone(),
                prefix: prefix.clone(),
                token: token.clone(),
            },
        };
        Client {
            endpoint,
            timeout: None,
        }
    }
}

fn endpoint(args: &CtlArgs) -> Result<Endpoint, UsageError> {
    if let Some(url) = &args.url {
        let token = match &args.token_file {
            Some(f) => {
                let t = std::fs::read_to_string(f).map_err(|source| UsageError::TokenFile {
                    path: f.clone(),
                    source,
                })?;
                Some(t.trim().to_string())
            }
            None => match std::env::var(TOKEN_ENV) {
                Ok(t) => Some(t.trim().to_string()),
                Err(std::env::VarError::NotPresent) => None,
                // Sending no token would only earn a puzzling 401.
                Err(std::env::VarError::NotUnicode(_)) => return Err(UsageError::TokenNotUtf8),
            },
        };
        return Ok(Endpoint::tcp(url, token.filter(|t| !t.is_empty()))?);
    }
    if args.token_file.is_some() {
        return Err(UsageError::TokenWithoutUrl);
    }
    let path = args
        .socket
        .clone()
        .or_else(|| {
            std::env::var_os(SOCKET_ENV)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    Ok(Endpoint::Unix(path))
}

/// Writes to stdout; a closed pipe (`ctl logs web | head`) is not an error.
fn out(text: &[u8]) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(text)?;
    o.flush()
}

/// The error an API answer carries, for stderr.
fn api_error(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorReply>(body) {
        Ok(e) => e.error,
        Err(_) => format!(
            "bosun answered {status}: {}",
            String::from_utf8_lossy(body).trim()
        ),
    }
}

fn get_json<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
) -> Result<Result<T, (u16, String)>, Unreachable> {
    let resp = client.request("GET", path, None)?;
    let status = resp.status;
    let body = resp.bytes()?;
    if status != 200 {
        return Ok(Err((status, api_error(status, &body))));
    }
    serde_json::from_slice(&body)
        .map(Ok)
        .map_err(|e| Unreachable(format!("cannot read bosun's answer to {path}: {e}")))
}

fn status(client: &Client, json: bool, only: &[String]) -> Result<i32, Unreachable> {
    if only.is_empty() {
        // As it came: the JSON, or the table bosun renders itself (with its
        // own clock for uptimes); no parse here, which is most of the cost of
        // a status with many units.
        let path = if json {
            paths::STATUS
        } else {
            paths::STATUS_TABLE
        };
        let resp = client.request("GET", path, None)?;
        let code = resp.status;
        let body = resp.bytes()?;
        if code != 200 {
            eprintln!("bosun ctl: {}", api_error(code, &body));
            return Ok(1);
        }
        let _ = out(&body);
        return Ok(0);
    }
    if !json {
        // bosun picks the units and renders their table: no parse here either.
        let resp = client.request("GET", &paths::status_of(only, true), None)?;
        let code = resp.status;
        let picked = resp.header(paths::UNITS_PICKED).is_some();
        let body = resp.bytes()?;
        if code != 200 {
            eprintln!("bosun ctl: {}", api_error(code, &body));
            return Ok(1);
        }
        if picked {
            let _ = out(&body);
            return Ok(0);
        }
        // A bosun older than `?units=` sent them all: pick them here.
    }
    let mut st: DaemonStatus = match get_json(client, &paths::status_of(only, false))? {
        Ok(s) => s,
        Err((_, e)) => {
            eprintln!("bosun ctl: {e}");
            return Ok(1);
        }
    };
    // Again, for a bosun older than `?units=` (for a newer one, a no-op).
    if let Some(missing) = only
        .iter()
        .find(|n| !st.units.iter().any(|u| u.is_named(n)))
    {
        eprintln!("bosun ctl: no unit named {missing:?}");
        return Ok(1);
    }
    st.units.retain(|u| only.iter().any(|n| u.is_named(n)));
    let text = if json {
        let mut v = serde_json::to_vec(&st).unwrap_or_default();
        v.push(b'\n');
        v
    } else {
        text::table(&st, now_ms()).into_bytes()
    };
    let _ = out(&text);
    Ok(0)
}

fn act(
    client: &Client,
    verb: &str,
    targets: &[String],
    signal: Option<&str>,
) -> Result<i32, Unreachable> {
    let mut code = 0;
    for t in targets {
        let path = paths::unit_action(t, verb);
        let body = signal.map(|s| {
            serde_json::to_vec(&SignalRequest {
                signal: s.to_string(),
            })
            .unwrap_or_default()
        });
        let resp = client.request("POST", &path, body.as_deref())?;
        let status = resp.status;
        let bytes = resp.bytes()?;
        if status == 200 {
            if let Ok(r) = serde_json::from_slice::<ActionReply>(&bytes) {
                let text: String = r
                    .results
                    .iter()
                    .map(|x| format!("{}\n", x.message))
                    .collect();
                let _ = out(text.as_bytes());
            }
            continue;
        }
        code = 1;
        match serde_json::from_slice::<ErrorReply>(&bytes) {
            Ok(e) if !e.results.is_empty() => {
                for r in e.results {
                    if r.ok {
                        let _ = out(format!("{}\n", r.message).as_bytes());
                    } else {
                        eprintln!("bosun ctl: {}: {}", r.unit, r.message);
                    }
                }
            }
            _ => eprintln!("bosun ctl: {t}: {}", api_error(status, &bytes)),
        }
    }
    Ok(code)
}

/// `ctl scale SERVICE N`: the daemon's answer (what started and stopped).
fn scale(client: &Client, service: &str, instances: u32) -> Result<i32, Unreachable> {
    let body = serde_json::to_vec(&ScaleRequest { instances }).unwrap_or_default();
    let resp = client.request("POST", &paths::unit_action(service, "scale"), Some(&body))?;
    let status = resp.status;
    let bytes = resp.bytes()?;
    match serde_json::from_slice::<MessageReply>(&bytes) {
        Ok(m) if status == 200 => {
            let _ = out(format!("{}\n", m.message).as_bytes());
            Ok(0)
        }
        _ => {
            eprintln!("bosun ctl: {}", api_error(status, &bytes));
            Ok(1)
        }
    }
}

/// `ctl run TASK`: streams the task's output (its stdout to ours, its stderr to
/// ours) and exits with its code; 1 with the reason when bosun refuses the run.
fn run(client: &Client, task: &str) -> Result<i32, Unreachable> {
    let resp: Response = client.request("POST", &paths::unit_action(task, "run"), None)?;
    if resp.status != 200 {
        let status = resp.status;
        eprintln!("bosun ctl: {}", api_error(status, &resp.bytes()?));
        return Ok(1);
    }
    let mut r = BufReader::new(resp.body);
    let mut raw = String::new();
    loop {
        raw.clear();
        match r.read_line(&mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match serde_json::from_str::<RunEvent>(raw.trim_end()) {
            Ok(RunEvent::Line(l)) if l.stream == Stream::Stderr => eprintln!("{}", l.text),
            Ok(RunEvent::Line(l)) => println!("{}", l.text),
            Ok(RunEvent::Done { exit_code, detail }) => {
                if exit_code != 0 {
                    eprintln!("bosun ctl: {task}: {detail}");
                }
                return Ok(exit_code);
            }
            Err(_) => {}
        }
    }
    eprintln!("bosun ctl: the connection to bosun ended before {task} did; it may still be running (bosun ctl status {task})");
    Ok(1)
}

fn logs(
    client: &Client,
    targets: &[String],
    q: &paths::LogsQuery,
    stamps: bool,
    json: bool,
) -> Result<i32, Unreachable> {
    if let Some(s) = &q.since {
        if bosun_config::value::parse_duration(s).is_none() {
            eprintln!("bosun ctl: --since {s:?}: expected a duration like 10m, 90s or 1h");
            return Ok(2);
        }
    }
    let path = paths::logs(targets, q);
    let resp: Response = client.request("GET", &path, None)?;
    if resp.status != 200 {
        let status = resp.status;
        eprintln!("bosun ctl: {}", api_error(status, &resp.bytes()?));
        return Ok(1);
    }
    // One unit named as it is: its lines as they are (as always); anything that
    // can mean several units: each line under its unit's name.
    let bare = |unit: &str| matches!(targets, [t] if t == unit || unit.is_empty());
    let mut r = BufReader::with_capacity(64 * 1024, resp.body);
    let stdout = io::stdout();
    let mut o = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut raw = String::new();
    loop {
        raw.clear();
        match r.read_line(&mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            // bosun went away mid-stream: what was printed stands.
            Err(_) => break,
        }
        let written = if json {
            o.write_all(raw.as_bytes())
        } else {
            match serde_json::from_str::<UnitLogLine>(raw.trim_end()) {
                Ok(l) => {
                    let name = (!bare(&l.unit)).then_some(l.unit.as_str());
                    print_line(&mut o, &l.line, name, stamps)
                }
                Err(_) => Ok(()),
            }
        };
        // Flush whenever nothing more is waiting, so that a follower sees each
        // line at once while a big backlog still goes out in large writes.
        let flushed = if r.buffer().is_empty() {
            o.flush()
        } else {
            Ok(())
        };
        if written.and(flushed).is_err() {
            // stdout closed (`| head`): done, not an error.
            return Ok(0);
        }
    }
    let _ = o.flush();
    Ok(0)
}

/// One line: `[TIME ][name | ][[stderr] ]text`.
fn print_line(o: &mut impl Write, l: &LogLine, unit: Option<&str>, stamps: bool) -> io::Result<()> {
    if stamps {
        write!(o, "{} ", utc(l.at_ms))?;
    }
    if let Some(u) = unit {
        write!(o, "{u} | ")?;
    }
    if l.stream == Stream::Stderr && stamps {
        write!(o, "[stderr] ")?;
    }
    o.write_all(l.text.as_bytes())?;
    o.write_all(b"\n")
}

/// `2024-05-01T12:00:00.123Z` from Unix milliseconds (bosun's one civil-date routine).
fn utc(ms: u64) -> String {
    bosun_snapshot::time::format_rfc3339_ms(ms)
}

fn health(client: &Client, json: bool) -> Result<i32, Unreachable> {
    let resp = client.request("GET", paths::HEALTH, None)?;
    let status = resp.status;
    let body = resp.bytes()?;
    let report: HealthReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            eprintln!("bosun ctl: {}", api_error(status, &body));
            return Ok(2);
        }
    };
    if json {
        let _ = out(&body);
    } else if report.healthy {
        let _ = out(b"healthy\n");
    } else {
        let mut t = String::from("unhealthy:\n");
        for r in &report.reasons {
            t.push_str(&format!("  {r}\n"));
        }
        let _ = out(t.as_bytes());
    }
    Ok(if report.healthy && status == 200 {
        0
    } else {
        1
    })
}

fn message(client: &Client, method: &str, path: &str) -> Result<i32, Unreachable> {
    let resp = client.request(method, path, None)?;
    let status = resp.status;
    let body = resp.bytes()?;
    if (200..300).contains(&status) {
        match serde_json::from_slice::<MessageReply>(&body) {
            Ok(m) => {
                let _ = out(format!("{}\n", m.message).as_bytes());
            }
            Err(_) => {
                let _ = out(&body);
            }
        }
        Ok(0)
    } else {
        eprintln!("bosun ctl: {}", api_error(status, &body));
        Ok(1)
    }
}

fn snapshots(client: &Client) -> Result<i32, Unreachable> {
    let resp = client.request("GET", paths::SNAPSHOTS, None)?;
    let status = resp.status;
    let body = resp.bytes()?;
    if status != 200 {
        eprintln!("bosun ctl: {}", api_error(status, &body));
        return Ok(1);
    }
    let list: Vec<SnapshotEntry> = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(_) => {
            // A newer bosun's answer: shown as it came rather than not at all.
            let _ = out(&body);
            return Ok(0);
        }
    };
    let mut t = format!(
        "{:<40} {:<6} {:<24} {:>12}  {:<8} {:<35} LATEST\n",
        "ID", "KIND", "TIME", "SIZE", "COMPLETE", "VERIFIED"
    );
    for s in &list {
        let verified = s.verified.as_ref().map_or("never".to_string(), |v| {
            let how = match (v.ok, v.depth.as_str()) {
                (false, _) => "DAMAGED",
                (true, "full") => "ok",
                (true, _) => "ok(cipher)",
            };
            format!("{} {how}", utc(v.at_ms))
        });
        t.push_str(&format!(
            "{:<40} {:<6} {:<24} {:>12}  {:<8} {:<35} {}\n",
            s.id,
            s.kind.as_str(),
            utc(s.time_ms),
            s.size,
            if s.complete { "yes" } else { "no" },
            verified,
            if s.latest { "*" } else { "" }
        ));
    }
    let _ = out(t.as_bytes());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ctl ARGS` as clap reads it (the path every other command takes).
    fn by_clap(args: &[&str]) -> Option<CtlArgs> {
        #[derive(clap::Parser)]
        struct Top {
            #[command(subcommand)]
            cmd: TopCmd,
        }
        #[derive(clap::Subcommand)]
        enum TopCmd {
            Ctl(CtlArgs),
        }
        use clap::Parser;
        let argv = std::iter::once("bosun").chain(args.iter().copied());
        Top::try_parse_from(argv).ok().map(|t| match t.cmd {
            TopCmd::Ctl(a) => a,
        })
    }

    /// What a quick-parsed command means: the socket, the command, its flags.
    type Meaning = (Option<PathBuf>, &'static str, bool, Vec<String>);

    fn meaning(a: &CtlArgs) -> Option<Meaning> {
        let plain = a.url.is_none() && a.token_file.is_none() && a.timeout.is_none();
        let socket = a.socket.clone();
        match &a.cmd {
            Cmd::Status { json, units } if plain => Some((socket, "status", *json, units.clone())),
            Cmd::Health { json } if plain => Some((socket, "health", *json, Vec::new())),
            _ => None,
        }
    }

    proptest::proptest! {
        /// Whatever the quick parse accepts, clap reads the same way.
        #[test]
        fn the_quick_status_parse_agrees_with_clap(
            words in proptest::collection::vec(
                proptest::sample::select(vec![
                    "--json", "web", "worker#2", "role:db", "-x", "--", "--socket", "/s",
                    "-h", "", "--timeout", "3", "status", "all", "health",
                    "--socket=/t", "--socket=", "--url", "http://127.0.0.1:1",
                ]),
                0..6,
            )
        ) {
            let args: Vec<&str> = std::iter::once("ctl").chain(words).collect();
            let os: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            if let Some(quick) = CtlArgs::quick(&os) {
                let clap = by_clap(&args).expect("clap accepts what quick accepts");
                proptest::prop_assert_eq!(meaning(&quick), meaning(&clap));
            }
        }
    }

    #[test]
    fn the_quick_parse_takes_only_status_and_health() {
        let os = |v: &[&str]| {
            v.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        assert!(CtlArgs::quick(&os(&["ctl", "status"])).is_some());
        assert!(CtlArgs::quick(&os(&["ctl", "status", "--json", "web"])).is_some());
        assert!(CtlArgs::quick(&os(&["ctl", "status", "--json", "--json"])).is_none());
        let with_socket = CtlArgs::quick(&os(&["ctl", "status", "--socket", "/s", "web"]));
        assert_eq!(
            with_socket.as_ref().and_then(|a| a.socket.clone()),
            Some("/s".into())
        );
        assert!(CtlArgs::quick(&os(&["ctl", "--socket=/s", "health", "--json"])).is_some());
        assert!(CtlArgs::quick(&os(&["ctl", "health", "web"])).is_none());
        assert!(
            CtlArgs::quick(&os(&["ctl", "--socket", "/s", "--socket", "/t", "status"])).is_none()
        );
        assert!(CtlArgs::quick(&os(&["ctl", "--socket", "--json", "status"])).is_none());
        assert!(CtlArgs::quick(&os(&["ctl", "--socket"])).is_none());
        assert!(CtlArgs::quick(&os(&["ctl", "logs", "web"])).is_none());
        assert!(CtlArgs::quick(&os(&["ctl", "--json", "status"])).is_none());
    }

    #[test]
    fn utc_formats() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_709_251_199_123), "2024-02-29T23:59:59.123Z");
    }
}
