//! A deadline on writing to a client: a connection whose writes have been blocked (the
//! client's receive window full) for longer than the write timeout fails, and hyper drops
//! it. Without it, a client that stops reading (a stalled stream, a live-events
//! subscriber that never reads) holds a connection slot, its buffers and, for a stream,
//! an upstream connection for ever. The timer is armed only while a write is blocked, so
//! a client that reads costs nothing.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The connection's IO with the deadline.
#[derive(Debug)]
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    /// Armed at the first blocked write, disarmed by the next one that goes through.
    blocked: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        WriteDeadline { inner, timeout, blocked: None }
    }

    /// Passes a write's outcome on, arming the deadline while it is `Pending` and failing
    /// once the deadline has passed.
    fn watch<R>(&mut self, cx: &mut Context<'_>, outcome: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if outcome.is_ready() {
            self.blocked = None;
            return outcome;
        }
        let timeout = self.timeout;
        let sleep = self.blocked.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading the response")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for WriteDeadline<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::WriteDeadline;
    use hyper::rt::Write;
    use hyper_util::rt::TokioIo;
    use std::pin::Pin;
    use std::task::Poll;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::time::Instant;

    const TIMEOUT: Duration = Duration::from_millis(150);

    /// Writes into `io` until a write fails or `total` bytes went through.
    async fn write(io: &mut WriteDeadline<TokioIo<tokio::io::DuplexStream>>, total: usize) -> std::io::Result<()> {
        let mut written = 0;
        std::future::poll_fn(|cx| {
            while written < total {
                match Pin::new(&mut *io).poll_write(cx, b"0123456789abcdef") {
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    // Both on tokio's paused clock: the deadline and the reader's pauses are the test's,
    // not a busy machine's.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_dropped_after_the_timeout() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut io = WriteDeadline::new(TokioIo::new(ours), TIMEOUT);
        let started = Instant::now();
        let err = write(&mut io, 1 << 20).await.expect_err("the peer never reads");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= TIMEOUT, "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_kept() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            // Each read comes well within the timeout, though the whole takes longer.
            while total < 4096 {
                tokio::time::sleep(TIMEOUT / 5).await;
                total += theirs.read(&mut buf).await.expect("read");
            }
        });
        let mut io = WriteDeadline::new(TokioIo::new(ours), TIMEOUT);
        let started = Instant::now();
        write(&mut io, 4096).await.expect("a reader that reads is never cut");
        assert!(started.elapsed() > TIMEOUT, "the writes were blocked longer than the timeout in all");
        reader.await.expect("reader");
    }
}
