//! Streaming helpers: counting and hashing readers, progress lines, and a channel reader
//! that carries bytes (or an error) from a blocking producer into async code.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// How often progress lines are logged at most.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Logs `info` progress lines for one item at most every [`PROGRESS_EVERY`].
#[derive(Debug)]
pub(crate) struct Progress {
    action: &'static str,
    item: String,
    snapshot: String,
    started: Instant,
    last: Instant,
    /// What status readers see of it (`crate::progress::active`).
    live: crate::progress::Live,
}

impl Progress {
    pub(crate) fn new(action: &'static str, snapshot: &str, item: &str) -> Progress {
        let now = Instant::now();
        Progress {
            action,
            item: item.into(),
            snapshot: snapshot.into(),
            started: now,
            last: now,
            live: crate::progress::Live::register(action, snapshot, item),
        }
    }

    /// The item's size, when known (a restore: from the manifest).
    pub(crate) fn expect(&self, total: u64) {
        self.live.set_total(total);
    }

    fn rate(&self, bytes: u64) -> f64 {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        bytes as f64 / secs / (1024.0 * 1024.0)
    }

    pub(crate) fn tick(&mut self, bytes: u64) {
        self.live.set_done(bytes);
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            tracing::info!(
                snapshot = %self.snapshot,
                item = %self.item,
                bytes,
                rate_mib_s = format_args!("{:.1}", self.rate(bytes)),
                "{} {}: {} so far",
                self.action,
                self.item,
                human(bytes)
            );
        }
    }

    pub(crate) fn finish(&self, raw: u64, stored: u64) {
        tracing::info!(
            snapshot = %self.snapshot,
            item = %self.item,
            bytes = raw,
            stored_bytes = stored,
            rate_mib_s = format_args!("{:.1}", self.rate(raw)),
            secs = format_args!("{:.1}", self.started.elapsed().as_secs_f64()),
            "{} {}: done, {} ({} stored)",
            self.action,
            self.item,
            human(raw),
            human(stored)
        );
    }
}

/// `12.3 MiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Passes bytes through, counting them and hashing them with sha256, optionally
/// ticking a [`Progress`].
#[derive(Debug)]
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    progress: Option<Progress>,
}

impl<R> Hashing<R> {
    pub(crate) fn new(inner: R, progress: Option<Progress>) -> Hashing<R> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            progress,
        }
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The sha256 (hex) of what passed so far.
    pub(crate) fn digest(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }

    pub(crate) fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                this.hasher.update(new);
                this.bytes += new.len() as u64;
                if let Some(p) = this.progress.as_mut() {
                    p.tick(this.bytes);
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// What a [`Tap`] saw: bytes, their sha256, whether the source ended or failed.
#[derive(Default)]
pub(crate) struct TapState {
    hasher: Sha256,
    /// Bytes read so far.
    pub(crate) bytes: u64,
    /// The source reached its end.
    pub(crate) eof: bool,
    /// The source itself failed (the network, the disk), not a layer above it.
    pub(crate) failed: bool,
}

impl TapState {
    /// The sha256 (hex) of what passed so far.
    pub(crate) fn digest(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

/// Like [`Hashing`], with its state shared, so it can be read from under layers
/// (decryption) that do not hand their inner reader back.
pub(crate) struct Tap<R> {
    inner: R,
    state: std::sync::Arc<std::sync::Mutex<TapState>>,
}

impl<R> Tap<R> {
    pub(crate) fn new(inner: R) -> (Tap<R>, std::sync::Arc<std::sync::Mutex<TapState>>) {
        let state = std::sync::Arc::new(std::sync::Mutex::new(TapState::default()));
        (
            Tap {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Tap<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let mut st = this.state.lock().expect("poisoned");
        match &r {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() && buf.remaining() > 0 {
                    st.eof = true;
                }
                st.hasher.update(new);
                st.bytes += new.len() as u64;
            }
            Poll::Ready(Err(_)) => st.failed = true,
            Poll::Pending => {}
        }
        r
    }
}

/// One message from a blocking producer.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Some bytes.
    Data(Bytes),
    /// The producer failed: the reader fails with this error.
    Failed(io::Error),
    /// The producer finished: the reader reaches end of stream.
    End,
}

/// Reads what a producer sends through a channel. A channel closed without
/// [`Chunk::End`] (the producer panicked or was dropped) is an error, never a silent
/// end of stream: a truncated archive must not look complete.
#[derive(Debug)]
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    done: bool,
    /// The error when the channel closes without [`Chunk::End`].
    unfinished: &'static str,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<Chunk>) -> ChannelReader {
        ChannelReader::with_context(rx, "the archive producer stopped without finishing")
    }

    /// Like [`new`](Self::new), with `unfinished` as the error of a producer that
    /// stopped without [`Chunk::End`].
    pub(crate) fn with_context(
        rx: mpsc::Receiver<Chunk>,
        unfinished: &'static str,
    ) -> ChannelReader {
        ChannelReader {
            rx,
            current: Bytes::new(),
            done: false,
            unfinished,
        }
    }
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.current.is_empty() {
                let n = this.current.len().min(buf.remaining());
                buf.put_slice(&this.current.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.done {
                return Poll::Ready(Ok(()));
            }
            match this.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Chunk::Data(b))) => this.current = b,
                Poll::Ready(Some(Chunk::End)) => this.done = true,
                Poll::Ready(Some(Chunk::Failed(e))) => {
                    this.done = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Err(io::Error::other(this.unfinished)));
                }
            }
        }
    }
}

/// A blocking `Write` that sends its bytes through a channel in chunks.
#[derive(Debug)]
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
    chunk: usize,
}

impl ChannelWriter {
    pub(crate) fn new(tx: mpsc::Sender<Chunk>, chunk: usize) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(chunk),
            chunk,
        }
    }

    fn send(&mut self, c: Chunk) -> io::Result<()> {
        self.tx
            .blocking_send(c)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped reading"))
    }

    /// Flushes and sends the end marker.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        io::Write::flush(&mut self)?;
        self.send(Chunk::End)
    }
}

impl io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.chunk {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let data = Bytes::from(std::mem::replace(
                &mut self.buf,
                Vec::with_capacity(self.chunk),
            ));
            self.send(Chunk::Data(data))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn channel_without_end_is_an_error() {
        let (tx, rx) = mpsc::channel(2);
        let mut r = ChannelReader::new(rx);
        tx.send(Chunk::Data(Bytes::from_static(b"abc")))
            .await
            .expect("send");
        drop(tx);
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).await.expect_err("truncated");
        assert!(err.to_string().contains("without finishing"), "{err}");
    }

    #[test]
    fn formats() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
