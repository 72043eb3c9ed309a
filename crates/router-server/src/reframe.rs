//! Re-framing an upstream's chat stream as another dialect's events (Anthropic's
//! Messages, OpenAI's Responses), chunk by chunk, with a keep-alive after a silence: the
//! one loop both surfaces use, each through its writer.

use bytes::Bytes;
use futures_util::Stream;
use router_core::{ByteStream, TransportError};
use slab::Slab;
use std::cell::RefCell;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

/// A dialect's writer of events from chat chunks.
pub(crate) trait Reframe: Send + 'static {
    /// What goes out after a silence (a `ping` event, an SSE comment).
    fn keepalive(&self) -> &'static [u8];
    /// The events an upstream chunk (any split of the SSE bytes) becomes, into `out`.
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>);
    /// The events a transport failure after the start becomes (the stream's end).
    fn fail(&mut self, error: &TransportError, out: &mut Vec<u8>);
    /// The events that end the stream when the upstream's has ended.
    fn finish(&mut self, out: &mut Vec<u8>);
    /// Whether the last event was written.
    fn is_ended(&self) -> bool;
}

/// The longest silence of a re-framed stream without the writer's keep-alive (a Messages
/// `ping`, a Responses comment), so that a client and the proxies between keep a quiet
/// stream (a model reasoning at length) open: one comes after half to all of it.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The keep-alive's clock, one for every re-framed stream of a server: it ticks every
/// half interval and wakes the streams waiting on it. A timer of each stream's own cost
/// its registration and removal on every stream (about 1,300 instructions of a request).
#[derive(Clone, Debug)]
pub struct KeepaliveClock(Arc<Ticks>);

#[derive(Debug)]
struct Ticks {
    period: Duration,
    /// Ticks so far, for a look without the lock (written under it).
    count: AtomicU64,
    waiting: Mutex<Waiting>,
    /// The ticking task was started (in the runtime of the first stream that looked).
    started: AtomicBool,
}

/// The tasks to wake at the next tick, kept apart by tick so that a stream that ends
/// takes its own out (a waker keeps its task's memory).
#[derive(Debug, Default)]
struct Waiting {
    tick: u64,
    wakers: Slab<Waker>,
}

impl KeepaliveClock {
    /// A clock for a keep-alive after at most `interval` of silence.
    pub fn new(interval: Duration) -> Self {
        KeepaliveClock(Arc::new(Ticks {
            period: interval / 2,
            count: AtomicU64::new(0),
            waiting: Mutex::default(),
            started: AtomicBool::new(false),
        }))
    }

    /// The ticks so far; the first call starts the ticking (it ends with the clock).
    fn now(&self) -> u64 {
        // A plain load first: the swap, a locked instruction, only until it started (in
        // a runtime: a look from outside one starts nothing).
        if !self.0.started.load(Ordering::Relaxed)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !self.0.started.swap(true, Ordering::Relaxed)
        {
            runtime.spawn(tick(Arc::downgrade(&self.0)));
        }
        self.0.count.load(Ordering::Acquire)
    }

    /// Wakes `waker`'s task at the next tick; returns that tick's place (see [`Self::forget`]).
    fn wake_at_next_tick(&self, waker: &Waker) -> (u64, usize) {
        let mut waiting = self.0.lock();
        (waiting.tick, waiting.wakers.insert(waker.clone()))
    }

    /// Takes back a waker given before the tick `tick`, if that tick has not come.
    fn forget(&self, (tick, key): (u64, usize)) {
        let mut waiting = self.0.lock();
        if waiting.tick == tick {
            waiting.wakers.try_remove(key);
        }
    }
}

impl Ticks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Nothing is left half-done under the lock: a poisoned one is still whole.
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ticks every period while the clock lives, waking whoever waits.
async fn tick(clock: Weak<Ticks>) {
    let Some(period) = clock.upgrade().map(|c| c.period) else { return };
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(ticks) = clock.upgrade() else { return };
        let wakers = {
            let mut waiting = ticks.lock();
            waiting.tick += 1;
            ticks.count.store(waiting.tick, Ordering::Release);
            std::mem::take(&mut waiting.wakers)
        };
        drop(ticks);
        wakers.into_iter().for_each(|(_, w)| w.wake());
    }
}

/// The upstream's chunks through `writer`, one output per input that yields events, with
/// the writer's keep-alive in every silence, at most the clock's interval (and at least
/// half of it) after the last chunk, then every half of it. After the last event the
/// upstream stream is dropped.
pub(crate) fn reframe<W: Reframe + Unpin>(
    stream: ByteStream,
    writer: W,
    clock: &KeepaliveClock,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + use<W> {
    let seen = clock.now();
    // The start counts as a chunk: no keep-alive before half the interval.
    Reframed { stream: Some(stream), writer, clock: clock.clone(), seen, heard: true, waiting: None }
}

/// [`reframe`]'s stream, written out: an `unfold` moved the upstream and the writer in
/// and out of its state for every chunk, and a `timeout` made a timer for each one.
/// Here a chunk only notes that it came (no clock read, no timer moved per chunk), and
/// a tick of the shared clock with no chunk since the one before sends the keep-alive.
struct Reframed<W> {
    /// The upstream, until the last event is written.
    stream: Option<ByteStream>,
    writer: W,
    clock: KeepaliveClock,
    /// The clock's tick when the stream last looked.
    seen: u64,
    /// A chunk came since that tick.
    heard: bool,
    /// Where this task waits on the clock to be woken: the tick and its place.
    waiting: Option<(u64, usize)>,
}

impl<W: Reframe + Unpin> Stream for Reframed<W> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(stream) = this.stream.as_mut() else { return Poll::Ready(None) };
            let writer = &mut this.writer;
            let out = match stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => framed(|out| writer.push(&bytes, out)),
                Poll::Ready(Some(Err(e))) => framed(|out| writer.fail(&e, out)),
                Poll::Ready(None) => framed(|out| writer.finish(out)),
                Poll::Pending => {
                    ready!(this.poll_quiet(cx));
                    return Poll::Ready(Some(Ok(Bytes::from_static(this.writer.keepalive()))));
                }
            };
            this.heard = true;
            if this.writer.is_ended() {
                this.stream = None;
                return Poll::Ready(Some(Ok(out)));
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(out)));
            }
        }
    }
}

thread_local! {
    /// Where a chunk's events are written before they go out, one buffer a serving
    /// thread: each output is then copied at its size into the `Bytes` that goes out
    /// (a `Vec` made into `Bytes` cost a second allocation, its shared header, and a
    /// buffer reserved for each output).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most the scratch buffer keeps between outputs: one grown past it (a whole
/// answer's events) is let go.
const SCRATCH_KEPT: usize = 64 * 1024;

/// What `write` writes, as `Bytes` of its size (empty: none allocated).
fn framed(write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    SCRATCH.with_borrow_mut(|out| {
        out.clear();
        write(out);
        let bytes = if out.is_empty() { Bytes::new() } else { Bytes::copy_from_slice(out) };
        if out.capacity() > SCRATCH_KEPT {
            *out = Vec::new();
        }
        bytes
    })
}

impl<W> Reframed<W> {
    /// Ready when the clock has ticked with no chunk since its tick before (the
    /// keep-alive is due); else waits for the next tick.
    fn poll_quiet(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let now = self.clock.now();
            if now != self.seen {
                self.seen = now;
                if !std::mem::take(&mut self.heard) {
                    return Poll::Ready(());
                }
            }
            if self.waiting.is_some_and(|(tick, _)| tick == now) {
                return Poll::Pending;
            }
            let place = self.clock.wake_at_next_tick(cx.waker());
            self.waiting = Some(place);
            if place.0 == now {
                return Poll::Pending;
            }
            // A tick came between the look and the wait: it is looked at first.
        }
    }
}

impl<W> Drop for Reframed<W> {
    fn drop(&mut self) {
        if let Some(place) = self.waiting {
            self.clock.forget(place);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{FutureExt, StreamExt};

    /// A writer that writes each chunk as it came and `.` for a keep-alive.
    struct Echo;

    impl Reframe for Echo {
        fn keepalive(&self) -> &'static [u8] {
            b"."
        }
        fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
            out.extend_from_slice(chunk);
        }
        fn fail(&mut self, _: &TransportError, _: &mut Vec<u8>) {}
        fn finish(&mut self, _: &mut Vec<u8>) {}
        fn is_ended(&self) -> bool {
            false
        }
    }

    fn waiting(clock: &KeepaliveClock) -> usize {
        clock.0.lock().wakers.len()
    }

    /// Streams that never send anything: what `n` of them on one clock give.
    fn silent(clock: &KeepaliveClock, n: usize) -> Vec<impl Stream<Item = Result<Bytes, Infallible>> + use<>> {
        (0..n).map(|_| Box::pin(reframe(Box::pin(futures_util::stream::pending()), Echo, clock))).collect()
    }

    #[tokio::test]
    async fn every_silent_stream_gets_its_keepalive_from_the_one_clock() {
        let clock = KeepaliveClock::new(Duration::from_millis(40));
        let mut streams = silent(&clock, 3);
        for s in &mut streams {
            let got = tokio::time::timeout(Duration::from_secs(5), s.next()).await;
            assert_eq!(got.ok().flatten().map(Result::unwrap_or_default), Some(Bytes::from_static(b".")));
        }
    }

    #[tokio::test]
    async fn a_stream_that_ends_takes_its_waker_back() {
        // Ticks far apart: nothing ticks while the test looks.
        let clock = KeepaliveClock::new(Duration::from_secs(600));
        let mut streams = silent(&clock, 2);
        for s in &mut streams {
            assert!(s.next().now_or_never().is_none(), "silent: nothing yet");
        }
        assert_eq!(waiting(&clock), 2, "each waits on the clock");
        streams.pop();
        assert_eq!(waiting(&clock), 1, "the dropped one no longer holds its task");
    }
}
