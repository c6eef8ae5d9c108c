//! A unit's output: read from its pipes line by line, then fanned out to bosun's
//! stdout/stderr (`name | line`), the in-memory ring buffer behind `ctl logs`,
//! live followers (`ctl logs -f`), the `log` readiness probe, and an optional
//! rotated log file.
//!
//! Lines are only ever written whole and with one write each, so output of
//! different units never interleaves mid-line. The console is written by one
//! thread behind a bounded queue: a slow `docker logs` reader makes bosun drop
//! (and count) lines rather than stall the supervisor.

use std::collections::{HashMap, VecDeque};
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
    /// Its place in the order bosun read lines in, across every unit (increasing
    /// over bosun's life): how lines of several units interleave. 0 on lines that
    /// bosun writes itself (a follower's "lines skipped" note).
    #[serde(default)]
    pub seq: u64,
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
    /// The name again, shared by every line sent to followers of several units.
    tag: Arc<str>,
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
            tag: Arc::from(name),
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
        self.tail_since(n, None)
    }

    /// [`UnitLog::tail`] of the lines read at or after `since_ms`.
    fn tail_since(
        &self,
        n: Option<usize>,
        since_ms: Option<u64>,
    ) -> (Vec<Arc<LogLine>>, broadcast::Receiver<Arc<LogLine>>) {
        // Subscribing under the ring lock means no line falls between the two.
        let ring = self.ring.lock().expect("ring poisoned");
        let rx = self
            .followers
            .lock()
            .expect("followers poisoned")
            .get_or_insert_with(|| broadcast::channel(512).0)
            .subscribe();
        (recent(&ring, n, since_ms), rx)
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
        let at_ms = now_ms();
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
        // The sequence number is taken under the ring lock, so each ring is in
        // sequence order (a merge of rings relies on it).
        let mut ring = self.ring.lock().expect("ring poisoned");
        let line = Arc::new(LogLine {
            at_ms,
            seq: SEQ.fetch_add(1, Ordering::Relaxed) + 1,
            stream,
            text: text.to_string(),
        });
        ring.push(line.clone());
        {
            let mut all = ALL.lock().expect("all-lines channel poisoned");
            if let Some(tx) = all.as_ref() {
                if tx.receiver_count() == 0 {
                    // The last follower of several units left: the channel goes,
                    // and with it the lines its buffer still held.
                    *all = None;
                } else {
                    let _ = tx.send(Tagged {
                        unit: self.tag.clone(),
                        line: line.clone(),
                    });
                }
            }
        }
        if let Some(f) = self.followers.lock().expect("followers poisoned").as_ref() {
            let _ = f.send(line);
        }
    }

    /// The ring's lines read at or after `since_ms`, at most the last `n`.
    fn recent(&self, n: Option<usize>, since_ms: Option<u64>) -> Vec<Arc<LogLine>> {
        recent(&self.ring.lock().expect("ring poisoned"), n, since_ms)
    }

    /// [`UnitLog::recent`], and how many lines the ring holds since `since_ms`.
    fn recent_counted(&self, n: usize, since_ms: Option<u64>) -> (Vec<Arc<LogLine>>, usize) {
        let ring = self.ring.lock().expect("ring poisoned");
        let from = since_ms.map_or(0, |t| ring.lines.partition_point(|l| l.at_ms < t));
        (recent(&ring, Some(n), since_ms), ring.lines.len() - from)
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

/// Of `ring`, the lines read at or after `since_ms`, at most the last `n`.
fn recent(ring: &Ring, n: Option<usize>, since_ms: Option<u64>) -> Vec<Arc<LogLine>> {
    // Oldest first, so the lines at or after `since_ms` are a suffix.
    let from = since_ms.map_or(0, |t| ring.lines.partition_point(|l| l.at_ms < t));
    let kept = ring.lines.len() - from;
    let skip = from + n.map_or(0, |n| kept.saturating_sub(n));
    ring.lines.iter().skip(skip).cloned().collect()
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

/// The last sequence number given to a line ([`LogLine::seq`]).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Every unit's lines, for followers of several units: created by the first such
/// follower and dropped after the last one leaves (until then, and after, a line
/// costs one uncontended lock more), bounded like the per-unit channels: a reader
/// that falls this far behind is told how many lines it missed rather than holding
/// bosun up.
static ALL: Mutex<Option<broadcast::Sender<Tagged>>> = Mutex::new(None);

/// Lines of every unit a follower of several units can fall behind by.
const ALL_CAPACITY: usize = 4096;

/// The most lines a backlog of several units holds (the last ones): `ctl logs
/// all` of 1000 full rings must not copy them all. One ring holds fewer.
pub const MAX_BACKLOG: usize = 100_000;

/// A line and the unit it came from.
#[derive(Debug, Clone)]
pub struct Tagged {
    /// The unit's name.
    pub unit: Arc<str>,
    /// The line.
    pub line: Arc<LogLine>,
}

/// Several units' logs, read together: what they hold now (merged in the
/// order bosun read the lines), then, for a follower, each new line as it comes.
pub struct Merged {
    /// The backlog, oldest first.
    pub backlog: Vec<Tagged>,
    /// Lines the rings held (since `since_ms`) that the backlog leaves out
    /// because it holds at most [`MAX_BACKLOG`]; 0 when `n` asked for fewer.
    pub left_out: u64,
    /// New lines of these units.
    pub live: Live,
}

/// New lines of the units a [`Merged`] was made for.
pub enum Live {
    /// Not following.
    None,
    /// One unit: its own channel.
    One(Arc<str>, broadcast::Receiver<Arc<LogLine>>),
    /// Several: the channel of every unit's lines, filtered. Each unit's value is
    /// the last sequence number the backlog held of it: a line at or before that
    /// is already out.
    Many(broadcast::Receiver<Tagged>, HashMap<Arc<str>, u64>),
}

/// Why [`Live::recv`] has no line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// The reader was too slow: this many lines (of any unit, for several) went by.
    Lagged(u64),
    /// No more lines will come (not following, or bosun is exiting).
    Closed,
}

impl Live {
    /// The next new line of these units.
    pub async fn recv(&mut self) -> Result<Tagged, Missed> {
        use broadcast::error::RecvError;
        match self {
            Live::None => Err(Missed::Closed),
            Live::One(unit, rx) => match rx.recv().await {
                Ok(line) => Ok(Tagged {
                    unit: unit.clone(),
                    line,
                }),
                Err(RecvError::Lagged(n)) => Err(Missed::Lagged(n)),
                Err(RecvError::Closed) => Err(Missed::Closed),
            },
            Live::Many(rx, after) => loop {
                match rx.recv().await {
                    Ok(t) => match after.get(&t.unit) {
                        Some(&last) if t.line.seq > last => return Ok(t),
                        _ => continue,
                    },
                    Err(RecvError::Lagged(n)) => return Err(Missed::Lagged(n)),
                    Err(RecvError::Closed) => return Err(Missed::Closed),
                }
            },
        }
    }
}

/// The logs of `units` read together: of each, the lines read at or after
/// `since_ms`; of all of them merged in arrival order, the last `n` (all when
/// `None`); with `follow`, a [`Live`] for what comes next, with no line lost or
/// repeated between the two. The backlog holds only pointers into the rings,
/// which are bounded by `log_buffer` each.
pub fn merged(
    units: &[Arc<UnitLog>],
    n: Option<usize>,
    since_ms: Option<u64>,
    follow: bool,
) -> Merged {
    if let [one] = units {
        let (lines, live) = if follow {
            let (lines, rx) = one.tail_since(n, since_ms);
            (lines, Live::One(one.tag.clone(), rx))
        } else {
            (one.recent(n, since_ms), Live::None)
        };
        let backlog = lines
            .into_iter()
            .map(|line| Tagged {
                unit: one.tag.clone(),
                line,
            })
            .collect();
        return Merged {
            backlog,
            live,
            left_out: 0,
        };
    }
    // Subscribed before the rings are read: a line pushed in between is in both,
    // and the follower skips it by its sequence number.
    let rx = follow.then(|| {
        ALL.lock()
            .expect("all-lines channel poisoned")
            .get_or_insert_with(|| broadcast::channel(ALL_CAPACITY).0)
            .subscribe()
    });
    let want = n.unwrap_or(usize::MAX).min(MAX_BACKLOG);
    let mut after = HashMap::with_capacity(units.len());
    // (unit index, line): never more than three times `want` at once, however
    // many units and however full their rings.
    let mut picked: Vec<(usize, Arc<LogLine>)> = Vec::new();
    let mut total = 0usize;
    for (i, u) in units.iter().enumerate() {
        let (lines, held) = u.recent_counted(want, since_ms);
        total += held;
        after.insert(u.tag.clone(), lines.last().map_or(0, |l| l.seq));
        picked.extend(lines.into_iter().map(|l| (i, l)));
        if picked.len() > 2 * want {
            keep_last(&mut picked, want);
        }
    }
    keep_last(&mut picked, want);
    let left_out = total
        .min(n.unwrap_or(usize::MAX))
        .saturating_sub(picked.len()) as u64;
    let backlog = picked
        .into_iter()
        .map(|(i, line)| Tagged {
            unit: units[i].tag.clone(),
            line,
        })
        .collect();
    let live = match rx {
        Some(rx) => Live::Many(rx, after),
        None => Live::None,
    };
    Merged {
        backlog,
        live,
        left_out,
    }
}

/// Sorts `v` by arrival and keeps its last `n`.
fn keep_last(v: &mut Vec<(usize, Arc<LogLine>)>, n: usize) {
    v.sort_unstable_by_key(|(_, l)| l.seq);
    let extra = v.len().saturating_sub(n);
    v.drain(..extra);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str) -> Arc<UnitLog> {
        Arc::new(UnitLog::new(name, Output::Null, 1 << 20, None))
    }

    fn texts(m: &Merged) -> Vec<String> {
        m.backlog
            .iter()
            .map(|t| format!("{}:{}", t.unit, t.line.text))
            .collect()
    }

    #[test]
    fn several_units_interleave_in_arrival_order_and_n_takes_the_last() {
        let (a, b) = (unit("a"), unit("b"));
        a.line(Stream::Stdout, "1");
        b.line(Stream::Stdout, "2");
        a.line(Stream::Stderr, "3");
        b.line(Stream::Stdout, "4");
        let both = [a.clone(), b.clone()];
        let m = merged(&both, None, None, false);
        assert_eq!(texts(&m), ["a:1", "b:2", "a:3", "b:4"]);
        assert_eq!(m.left_out, 0);
        let m = merged(&both, Some(3), None, false);
        assert_eq!(texts(&m), ["b:2", "a:3", "b:4"]);
        let m = merged(&[b], Some(1), None, false);
        assert_eq!(texts(&m), ["b:4"]);
    }

    #[test]
    fn a_backlog_of_several_units_is_capped_and_says_so() {
        let units: Vec<Arc<UnitLog>> = (0..3).map(|i| unit(&format!("cap{i}"))).collect();
        let each = MAX_BACKLOG / 2;
        for i in 0..each {
            for u in &units {
                u.line(Stream::Stdout, if i + 1 == each { "last" } else { "" });
            }
        }
        let m = merged(&units, None, None, false);
        assert_eq!(m.backlog.len(), MAX_BACKLOG);
        assert_eq!(m.left_out, (3 * each - MAX_BACKLOG) as u64);
        let tail: Vec<String> = texts(&m).split_off(MAX_BACKLOG - 3);
        assert_eq!(tail, ["cap0:last", "cap1:last", "cap2:last"]);
        let m = merged(&units, Some(5), None, false);
        assert_eq!((m.backlog.len(), m.left_out), (5, 0));
    }

    #[test]
    fn since_keeps_the_lines_read_at_or_after_it() {
        let a = unit("a");
        a.line(Stream::Stdout, "old");
        let t = a.recent(None, None)[0].at_ms;
        let m = merged(std::slice::from_ref(&a), None, Some(t + 60_000), false);
        assert!(m.backlog.is_empty());
        let m = merged(&[a], None, Some(t), false);
        assert_eq!(texts(&m), ["a:old"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_follower_of_several_gets_each_new_line_once_and_only_theirs() {
        let (a, b, c) = (unit("fa"), unit("fb"), unit("fc"));
        a.line(Stream::Stdout, "before");
        let mut m = merged(&[a.clone(), b.clone()], None, None, true);
        assert_eq!(texts(&m), ["fa:before"]);
        c.line(Stream::Stdout, "not followed");
        b.line(Stream::Stdout, "new b");
        a.line(Stream::Stdout, "new a");
        let got = [m.live.recv().await, m.live.recv().await];
        let got: Vec<String> = got
            .iter()
            .map(|t| {
                let t = t.as_ref().expect("a line");
                format!("{}:{}", t.unit, t.line.text)
            })
            .collect();
        assert_eq!(got, ["fb:new b", "fa:new a"]);
    }
}
