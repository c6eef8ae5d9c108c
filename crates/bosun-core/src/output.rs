//! A unit's output: read from its pipes line by line, then fanned out to bosun's
//! stdout/stderr (`name | line`), the in-memory ring buffer behind `ctl logs`,
//! live followers (`ctl logs -f`), the `log` readiness probe, and an optional
//! rotated log file.
//!
//! Lines are only ever written whole and with one write each, so output of
//! different units never interleaves mid-line. The console is written by one
//! thread behind a bounded queue: a slow `docker logs` reader makes bosun drop
//! (and count) lines rather than stall the supervisor.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use bosun_config::{LogFile, Output};
use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::status::now_ms;

/// Longest line kept whole; longer ones are split.
const MAX_LINE: usize = 16 * 1024;

/// Which of the unit's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// fd 1.
    Stdout,
    /// fd 2.
    Stderr,
}

/// One line of a unit's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When bosun read it, Unix time in milliseconds.
    pub at_ms: u64,
    /// stdout or stderr.
    pub stream: Stream,
    /// The line, without its newline (invalid UTF-8 replaced).
    pub text: String,
}

struct Ring {
    lines: VecDeque<Arc<LogLine>>,
    bytes: u64,
    cap: u64,
}

impl Ring {
    fn push(&mut self, line: Arc<LogLine>) {
        self.bytes += line.text.len() as u64 + 16;
        self.lines.push_back(line);
        while self.bytes > self.cap {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.text.len() as u64 + 16,
                None => break,
            }
        }
    }
}

/// The output hub of one unit; lives as long as bosun, across restarts.
pub struct UnitLog {
    name: String,
    mode: Output,
    ring: Mutex<Ring>,
    /// Created on the first `ctl logs -f`: a broadcast buffer per unit up
    /// front would cost more memory than the rest of bosun.
    followers: Mutex<Option<broadcast::Sender<Arc<LogLine>>>>,
    matcher: Mutex<Option<(Regex, watch::Sender<bool>)>>,
    file: Option<Mutex<RotatingFile>>,
}

impl UnitLog {
    /// A hub for unit `name` with a ring of `ring_bytes`.
    pub fn new(name: &str, mode: Output, ring_bytes: u64, log_file: Option<&LogFile>) -> UnitLog {
        let file = log_file.map(|f| {
            Mutex::new(RotatingFile {
                path: f.path.clone(),
                max_bytes: f.max_bytes,
                backups: f.backups,
                file: None,
                size: 0,
            })
        });
        UnitLog {
            name: name.to_string(),
            mode,
            ring: Mutex::new(Ring {
                lines: VecDeque::new(),
                bytes: 0,
                cap: ring_bytes.max(1024),
            }),
            followers: Mutex::new(None),
            matcher: Mutex::new(None),
            file,
        }
    }

    /// The last `n` lines of the ring (all when `n` is `None`) and a receiver
    /// for lines that arrive after them.
    pub fn tail(&self, n: Option<usize>) -> (Vec<Arc<LogLine>>, broadcast::Receiver<Arc<LogLine>>) {
        // Subscribing under the ring lock means no line falls between the two.
        let ring = self.ring.lock().expect("ring poisoned");
        let rx = self
            .followers
            .lock()
            .expect("followers poisoned")
            .get_or_insert_with(|| broadcast::channel(512).0)
            .subscribe();
        let skip = n.map_or(0, |n| ring.lines.len().saturating_sub(n));
        (ring.lines.iter().skip(skip).cloned().collect(), rx)
    }

    /// Arms the `log` readiness probe for the next process: the returned flag
    /// turns true on the first line matching `re`.
    pub fn arm_matcher(&self, re: Regex) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        *self.matcher.lock().expect("matcher poisoned") = Some((re, tx));
        rx
    }

    /// Records one line from the unit (or from bosun about the unit).
    pub fn line(&self, stream: Stream, text: &str) {
        let line = Arc::new(LogLine {
            at_ms: now_ms(),
            stream,
            text: text.to_string(),
        });
        if self.mode == Output::Prefix {
            let mut buf = Vec::with_capacity(self.name.len() + text.len() + 4);
            buf.extend_from_slice(self.name.as_bytes());
            buf.extend_from_slice(b" | ");
            buf.extend_from_slice(text.as_bytes());
            buf.push(b'\n');
            console().send(stream, buf);
        }
        {
            let mut m = self.matcher.lock().expect("matcher poisoned");
            if let Some((re, _)) = m.as_ref() {
                if re.is_match(text) {
                    if let Some((_, tx)) = m.take() {
                        let _ = tx.send(true);
                    }
                }
            }
        }
        if let Some(f) = &self.file {
            f.lock().expect("log file poisoned").write_line(text);
        }
        let mut ring = self.ring.lock().expect("ring poisoned");
        ring.push(line.clone());
        if let Some(f) = self.followers.lock().expect("followers poisoned").as_ref() {
            let _ = f.send(line);
        }
    }

    /// Reads `pipe` to its end, recording each line.
    pub async fn pump(self: Arc<Self>, pipe: tokio::net::unix::pipe::Receiver, stream: Stream) {
        ACTIVE_PUMPS.fetch_add(1, Ordering::SeqCst);
        self.pump_inner(pipe, stream).await;
        ACTIVE_PUMPS.fetch_sub(1, Ordering::SeqCst);
    }

    async fn pump_inner(&self, pipe: tokio::net::unix::pipe::Receiver, stream: Stream) {
        // Waiting for readability first and reading into one shared buffer
        // keeps an idle pipe nearly free: no read buffer per pipe (100 units =
        // 200 pipes, most of them silent most of the time).
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 64 * 1024]);
        }
        let mut pending: Vec<u8> = Vec::new();
        loop {
            if pipe.readable().await.is_err() {
                break;
            }
            let chunk = BUF.with(|b| {
                let mut b = b.borrow_mut();
                match pipe.try_read(&mut b) {
                    Ok(0) => None,
                    Ok(n) => {
                        pending.extend_from_slice(&b[..n]);
                        Some(true)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(false),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Some(false),
                    Err(_) => None,
                }
            });
            match chunk {
                None => break,
                Some(false) => continue,
                Some(true) => {}
            }
            let mut start = 0;
            while let Some(i) = pending[start..].iter().position(|&b| b == b'\n') {
                let end = start + i;
                self.line(
                    stream,
                    &String::from_utf8_lossy(trim_cr(&pending[start..end])),
                );
                start = end + 1;
            }
            pending.drain(..start);
            while pending.len() >= MAX_LINE {
                let rest = pending.split_off(MAX_LINE);
                self.line(stream, &String::from_utf8_lossy(&pending));
                pending = rest;
            }
            if pending.is_empty() {
                pending = Vec::new(); // give the capacity back
            }
        }
        if !pending.is_empty() {
            self.line(stream, &String::from_utf8_lossy(trim_cr(&pending)));
        }
    }
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// A log file rotated by size: `path` → `path.1` → … → `path.N`.
/// Only ever appended to (never seeks), so it is safe on any file.
struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    backups: u32,
    file: Option<File>,
    size: u64,
}

impl RotatingFile {
    fn write_line(&mut self, text: &str) {
        let len = text.len() as u64 + 1;
        if self.file.is_none() {
            self.open();
        }
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.max_bytes {
            self.rotate();
        }
        if let Some(f) = &mut self.file {
            let mut buf = Vec::with_capacity(text.len() + 1);
            buf.extend_from_slice(text.as_bytes());
            buf.push(b'\n');
            if f.write_all(&buf).is_ok() {
                self.size += len;
            }
        }
    }

    fn open(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(f) => {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(f);
            }
            Err(e) => {
                tracing::warn!("cannot open log file {}: {e}", self.path.display());
            }
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.backups == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            for n in (1..self.backups).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            let _ = std::fs::rename(&self.path, numbered(1));
        }
        self.open();
    }
}

/// Pipes still being read.
static ACTIVE_PUMPS: AtomicU64 = AtomicU64::new(0);

/// Before bosun exits: waits (up to `limit`) for every pipe to reach its end,
/// then for the console thread to write out what is queued, so the last lines
/// of the units (often the most telling ones) are not lost.
pub async fn drain(limit: std::time::Duration) {
    let until = tokio::time::Instant::now() + limit;
    while ACTIVE_PUMPS.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    if console().tx.send(Msg::Flush(tx)).is_ok() {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let _ = rx.recv_timeout(left.max(std::time::Duration::from_millis(100)));
    }
}

enum Msg {
    Line(Stream, Vec<u8>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// bosun's console writer: one thread, one bounded queue, whole lines only.
pub struct Console {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl Console {
    fn start() -> Console {
        let (tx, rx) = sync_channel::<Msg>(2048);
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                let mut reported = 0;
                for msg in rx {
                    let (stream, buf) = match msg {
                        Msg::Line(stream, buf) => (stream, buf),
                        Msg::Flush(done) => {
                            let _ = std::io::stdout().flush();
                            let _ = done.send(());
                            continue;
                        }
                    };
                    let total = seen.load(Ordering::Relaxed);
                    if total > reported {
                        let note = format!(
                            "bosun | dropped {} output lines: stdout is not keeping up\n",
                            total - reported
                        );
                        let _ = std::io::stderr().lock().write_all(note.as_bytes());
                        reported = total;
                    }
                    let _ = match stream {
                        Stream::Stdout => std::io::stdout().lock().write_all(&buf),
                        Stream::Stderr => std::io::stderr().lock().write_all(&buf),
                    };
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the console thread: {e}");
        }
        Console { tx, dropped }
    }

    /// Queues one whole line; drops it (counted) when the queue is full.
    pub fn send(&self, stream: Stream, line: Vec<u8>) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Line(stream, line)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The process-wide console writer.
pub fn console() -> &'static Console {
    static CONSOLE: OnceLock<Console> = OnceLock::new();
    CONSOLE.get_or_init(Console::start)
}
