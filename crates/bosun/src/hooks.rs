//! `[hooks]`: the one place where events (core's [`Event`], plus `backup_failed`
//! from the keeper) become hook commands and webhook calls.
//!
//! Supervision never waits for a hook: [`HookRunner::emit`] puts the event on a
//! bounded queue (a full queue drops it, counted, logged once) and returns. One
//! dispatcher task takes events off the queue and runs each matching hook in a
//! task of its own, at most [`CONCURRENT`] at a time. A command gets the event as
//! `BOSUN_*` variables and as JSON on its stdin, runs in a process group of its
//! own, is killed after `timeout`, and is never retried; its output goes to
//! bosun's log as `hook:on_EVENT | line`. The webhook `POST`s the event's JSON,
//! retrying a failed attempt `retries` times (1 s, 2 s, 4 s … apart).
//!
//! At the end of the stop, core calls [`EventSink::flush`] with what is left of
//! the stop budget: hooks still running then are cut (the sweep kills their
//! processes). `stop_over_budget` fires `timeout` (at most a quarter of the
//! budget) before the budget ends, so that its hooks run within the budget.

use std::future::Future;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bosun_config::redact::Redactor;
use bosun_config::{Command, HooksConfig, Webhook};
use bosun_core::reaper::Reaper;
use bosun_core::{Event, EventKind, EventSink};
use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::time::Instant;

/// Events that may wait for a hook slot; more are dropped (and counted).
const QUEUE: usize = 64;
/// Hooks running at once.
const CONCURRENT: usize = 4;
/// Lines of one hook run's output that reach bosun's log (the rest is counted).
const MAX_LINES: usize = 200;

/// Runs `[hooks]` for events; the [`EventSink`] core and the keeper emit into.
pub struct HookRunner {
    tx: mpsc::Sender<Event>,
    state: Arc<Pending>,
    config: Arc<HooksConfig>,
}

/// Events queued or hooks running, and who waits for none to be left.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    idle: Notify,
    dropped: AtomicU64,
}

impl Pending {
    fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::SeqCst);
    }

    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// One thing to run for one event.
enum Job {
    Command { name: String, cmd: Command },
    Webhook(Webhook),
}

impl HookRunner {
    /// Starts the dispatcher for `config`. `secrets` masks what the config read
    /// from secret variables, should an event's reason quote one.
    pub fn start(config: &HooksConfig, reaper: Reaper, secrets: Redactor) -> Arc<HookRunner> {
        let (runner, rx) = HookRunner::new(config);
        let ctx = Arc::new(RunCtx {
            reaper,
            secrets,
            timeout: config.timeout,
        });
        tokio::spawn(dispatch(
            rx,
            runner.config.clone(),
            ctx,
            runner.state.clone(),
        ));
        Arc::new(runner)
    }

    /// The runner and the queue its dispatcher reads.
    fn new(config: &HooksConfig) -> (HookRunner, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let runner = HookRunner {
            tx,
            state: Arc::new(Pending::default()),
            config: Arc::new(config.clone()),
        };
        (runner, rx)
    }

    /// Whether any hook runs on `kind`.
    fn wanted(&self, kind: EventKind) -> bool {
        !jobs_for(&self.config, kind).is_empty()
    }
}

impl EventSink for HookRunner {
    fn emit(&self, event: Event) {
        if !self.wanted(event.event) {
            return;
        }
        self.state.add(1);
        if self.tx.try_send(event).is_err() {
            self.state.done();
            let before = self.state.dropped.fetch_add(1, Ordering::Relaxed);
            if before == 0 {
                tracing::warn!("hooks: the queue of {QUEUE} events is full: dropping events until hooks catch up (the count is logged at exit)");
            }
        }
    }

    fn flush(&self, until: Instant) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                let idle = self.state.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                let left = self.state.count.load(Ordering::SeqCst);
                if left == 0 {
                    break;
                }
                tokio::select! {
                    _ = idle => {}
                    _ = tokio::time::sleep_until(until) => {
                        tracing::warn!("hooks: {left} still queued or running when bosun's time ran out; they are cut");
                        break;
                    }
                }
            }
            let dropped = self.state.dropped.load(Ordering::Relaxed);
            if dropped > 0 {
                tracing::warn!("hooks: {dropped} events were dropped (queue full)");
            }
        })
    }

    fn stop_warning(&self) -> Duration {
        if self.wanted(EventKind::StopOverBudget) {
            let web = self
                .config
                .webhook
                .as_ref()
                .map_or(Duration::ZERO, |w| w.timeout);
            self.config.timeout.max(web)
        } else {
            Duration::ZERO
        }
    }
}

/// The hooks that run on `kind`.
fn jobs_for(config: &HooksConfig, kind: EventKind) -> Vec<Job> {
    let mut jobs = Vec::new();
    if let Some(cmd) = config.commands.get(kind.as_str()) {
        jobs.push(Job::Command {
            name: format!("on_{kind}"),
            cmd: cmd.clone(),
        });
    }
    if let Some(w) = config.webhook.as_ref() {
        if w.events.iter().any(|e| e == kind.as_str()) {
            jobs.push(Job::Webhook(w.clone()));
        }
    }
    jobs
}

/// What every hook run needs.
struct RunCtx {
    reaper: Reaper,
    secrets: Redactor,
    timeout: Duration,
}

/// Takes events off the queue; each hook in its own task, [`CONCURRENT`] at most.
async fn dispatch(
    mut rx: mpsc::Receiver<Event>,
    config: Arc<HooksConfig>,
    ctx: Arc<RunCtx>,
    state: Arc<Pending>,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    while let Some(mut event) = rx.recv().await {
        event.reason = bosun_config::redact::redact_url(&ctx.secrets.redact(&event.reason));
        let jobs = jobs_for(&config, event.event);
        state.add(jobs.len());
        for job in jobs {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                state.done();
                continue;
            };
            let (ctx, state, event) = (ctx.clone(), state.clone(), event.clone());
            tokio::spawn(async move {
                match job {
                    Job::Command { name, cmd } => run_command(&ctx, &name, &cmd, &event).await,
                    Job::Webhook(w) => call_webhook(&w, &event).await,
                }
                drop(slot);
                state.done();
            });
        }
        state.done();
    }
}

/// Runs one hook command for `event`; logs how it ended, never retries.
async fn run_command(ctx: &RunCtx, name: &str, cmd: &Command, event: &Event) {
    let json = serde_json::to_string(event).expect("an event serialises");
    let argv = cmd.argv();
    let (read, write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("hook:{name}: cannot make its output pipe: {e}");
            return;
        }
    };
    let mut c = std::process::Command::new(&argv[0]);
    c.args(&argv[1..])
        .env("BOSUN_EVENT", event.event.as_str())
        .env("BOSUN_REASON", &event.reason)
        .env("BOSUN_AT_MS", event.at_ms.to_string())
        .env("BOSUN_EVENT_JSON", &json)
        .stdin(Stdio::piped())
        .process_group(0);
    match &event.unit {
        Some(u) => c.env("BOSUN_UNIT", u),
        None => c.env_remove("BOSUN_UNIT"),
    };
    match write.try_clone() {
        Ok(w2) => c.stdout(Stdio::from(w2)).stderr(Stdio::from(write)),
        Err(e) => {
            tracing::error!("hook:{name}: cannot make its output pipe: {e}");
            return;
        }
    };
    let spawned = ctx.reaper.spawn(&mut c);
    // The command holds the pipe's write ends: drop it, or the reader never ends.
    drop(c);
    let (mut child, exit) = match spawned {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("hook:{name}: cannot start {:?}: {e}", argv[0]);
            return;
        }
    };
    let pid = child.id() as i32;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin gets EPIPE here, which is fine.
        std::thread::spawn(move || {
            let _ = stdin.write_all(json.as_bytes());
        });
    }
    let label = name.to_string();
    std::thread::spawn(move || log_output(read, &label));
    tracing::info!("hook:{name}: started for {} (pid {pid})", event.event);
    match tokio::time::timeout(ctx.timeout, exit).await {
        Ok(Ok(e)) if e.success() => tracing::info!("hook:{name}: done"),
        Ok(Ok(e)) => tracing::warn!("hook:{name}: failed ({e}); hooks are not retried"),
        Ok(Err(_)) => tracing::warn!("hook:{name}: its exit was not seen"),
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            tracing::error!(
                "hook:{name}: still running after its timeout of {:?}: killed",
                ctx.timeout
            );
        }
    }
}

/// Copies a hook's output into bosun's log, `hook:NAME | line`, up to [`MAX_LINES`].
fn log_output(read: std::os::fd::OwnedFd, name: &str) {
    let reader = std::io::BufReader::new(std::fs::File::from(read));
    let mut cut = 0u64;
    for (i, line) in reader.split(b'\n').enumerate() {
        let Ok(line) = line else { break };
        if i < MAX_LINES {
            tracing::info!(
                "hook:{name} | {}",
                String::from_utf8_lossy(&line).trim_end()
            );
        } else {
            cut += 1;
        }
    }
    if cut > 0 {
        tracing::warn!("hook:{name}: {cut} more output lines not logged");
    }
}

/// Posts `event` to the webhook, retrying failed attempts with backoff.
async fn call_webhook(w: &Webhook, event: &Event) {
    let body = Bytes::from(serde_json::to_vec(event).expect("an event serialises"));
    let shown = bosun_config::redact::redact_url(&w.url);
    let attempts = w.retries + 1;
    for n in 1..=attempts {
        if n > 1 {
            tokio::time::sleep(Duration::from_secs(1 << (n - 2).min(5))).await;
        }
        let why = match tokio::time::timeout(w.timeout, post(w, body.clone())).await {
            Ok(Ok(status)) if status.is_success() => {
                tracing::info!("hook:webhook: {} posted to {shown} ({status})", event.event);
                return;
            }
            // A 4xx other than 408/429 will not change by asking again.
            Ok(Ok(status))
                if status.is_client_error() && ![408, 429].contains(&status.as_u16()) =>
            {
                tracing::error!(
                    "hook:webhook: {shown} refused {} ({status}); not retried",
                    event.event
                );
                return;
            }
            Ok(Ok(status)) => format!("answered {status}"),
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {:?}", w.timeout),
        };
        tracing::warn!("hook:webhook: {shown}: {why} (attempt {n} of {attempts})");
    }
    tracing::error!(
        "hook:webhook: giving up on {} after {attempts} attempts",
        event.event
    );
}

/// One `POST` of `body`; the status, or why there is none. Redirects are not
/// followed: bosun talks only to the URL the operator wrote.
async fn post(w: &Webhook, body: Bytes) -> Result<hyper::StatusCode, String> {
    let (addr, host, path) =
        bosun_core::probe::split_http_url(&w.url).map_err(|e| e.to_string())?;
    let token = match &w.token_file {
        // Read at each call (a rotated token is picked up); never logged.
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read the token file {}: {e}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // The connection ends with the attempt, even if the receiver never answers.
    let limit = w.timeout;
    tokio::spawn(async move {
        let _ = tokio::time::timeout(limit, conn).await;
    });
    let mut req = hyper::Request::post(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "bosun-hook")
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(Full::new(body)).map_err(|_| {
        "the request could not be built (a bad header value in the token file?)".to_string()
    })?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    Ok(resp.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HooksConfig {
        let mut c = HooksConfig {
            commands: Default::default(),
            webhook: None,
            timeout: Duration::from_secs(10),
        };
        c.commands
            .insert("fatal".to_string(), Command::Shell("true".into()));
        c
    }

    fn fatal() -> Event {
        Event::new(EventKind::Fatal, Some("web"), "gave up")
    }

    /// A full queue drops (and counts) instead of waiting; events no hook wants
    /// are not queued at all; flush gives up at its deadline.
    #[tokio::test]
    async fn a_full_queue_drops_and_flush_ends_at_its_deadline() {
        let (runner, mut rx) = HookRunner::new(&config());
        for _ in 0..QUEUE + 5 {
            runner.emit(fatal());
        }
        runner.emit(Event::new(EventKind::BootFailed, None, "nobody listens"));
        assert_eq!(runner.state.dropped.load(Ordering::Relaxed), 5);
        assert_eq!(runner.state.count.load(Ordering::SeqCst), QUEUE);
        let t0 = Instant::now();
        runner.flush(t0 + Duration::from_millis(50)).await;
        assert!(t0.elapsed() >= Duration::from_millis(50));
        // What was queued is what the dispatcher would get.
        let mut n = 0;
        while let Ok(e) = rx.try_recv() {
            assert_eq!(e.event, EventKind::Fatal);
            n += 1;
        }
        assert_eq!(n, QUEUE);
    }

    /// With nothing pending, flush returns at once.
    #[tokio::test]
    async fn flush_with_nothing_pending_returns_at_once() {
        let (runner, _rx) = HookRunner::new(&config());
        let t0 = Instant::now();
        runner.flush(t0 + Duration::from_secs(30)).await;
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    /// `stop_over_budget` warns the hooks' timeout ahead only when a hook wants it.
    #[test]
    fn the_stop_warning_is_the_hook_timeout_when_wanted() {
        let (runner, _rx) = HookRunner::new(&config());
        assert_eq!(runner.stop_warning(), Duration::ZERO);
        let mut c = config();
        c.commands
            .insert("stop_over_budget".into(), Command::Shell("true".into()));
        let (runner, _rx) = HookRunner::new(&c);
        assert_eq!(runner.stop_warning(), Duration::from_secs(10));
    }
}
