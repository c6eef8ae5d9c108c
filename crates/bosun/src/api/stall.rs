//! A connection whose client stops reading is cut off.
//!
//! hyper's header timeout bounds a client that is slow to *send*; a client
//! that sends requests (pipelined `GET /metrics`, needing no token) and never
//! reads the answers would block bosun's writes, and with them the connection
//! and its slot, forever. [`StallGuard`] fails a write that has made no
//! progress for its limit; hyper then drops the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// An I/O stream whose writes fail once they have been stuck for `limit`.
pub struct StallGuard<I> {
    io: I,
    limit: Duration,
    /// Running while a write waits; reset by any progress.
    stuck: Option<Pin<Box<Sleep>>>,
}

impl<I> StallGuard<I> {
    /// Wraps `io`.
    pub fn new(io: I, limit: Duration) -> StallGuard<I> {
        StallGuard {
            io,
            limit,
            stuck: None,
        }
    }

    /// Passes a write's result on; a `Pending` one starts (or checks) the clock.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stuck = None;
            return r;
        }
        let limit = self.limit;
        let clock = self
            .stuck
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallGuard<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallGuard<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_reader_never_takes_fails_after_the_limit() {
        let (client, _server) = tokio::io::duplex(64);
        let limit = Duration::from_millis(200);
        let mut w = StallGuard::new(client, limit);
        // The first 64 bytes fit; then nobody reads.
        let t = tokio::time::Instant::now();
        let err = w.write_all(&[0u8; 1024]).await.expect_err("must time out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= limit);
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (client, mut server) = tokio::io::duplex(64);
        // Reads come every 50 ms, well within the limit; together they take
        // longer than it: progress resets the clock.
        let mut w = StallGuard::new(client, Duration::from_millis(500));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut got = 0;
            while got < 1024 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                got += server.read(&mut buf).await.expect("read");
            }
            got
        });
        w.write_all(&[0u8; 1024]).await.expect("a reading client");
        assert_eq!(reader.await.expect("reader"), 1024);
    }
}
