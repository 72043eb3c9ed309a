//! The stream-capacity run: many slow streams held open at once, opened at a bounded rate,
//! each timed to its first chunk.

use crate::load::hist;
use crate::upstream::Dial;
use anyhow::{Result, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::BodyExt as _;
use std::time::{Duration, Instant};

/// The shortest time over which the stream-capacity run opens its streams.
pub(crate) const STREAM_RAMP: Duration = Duration::from_secs(2);

/// Routed streams opened per second at most: thousands opened in one instant measure the listen
/// backlog (a dropped SYN is retried a second later), not the router. 8,000 streams are
/// opened over 16 s.
pub(crate) const STREAM_OPEN_RATE: u32 = 500;

/// The most direct streams opened among the routed ones in the stream-capacity run.
pub(crate) const DIRECT_STREAMS_MAX: usize = 1000;

/// The time over which `n` streams are opened: [`STREAM_RAMP`], or longer at
/// [`STREAM_OPEN_RATE`].
pub(crate) fn stream_ramp(n: usize) -> Duration {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    STREAM_RAMP.max(Duration::from_secs(1) * n / STREAM_OPEN_RATE)
}

/// Direct streams opened among `n` routed ones: at most [`DIRECT_STREAMS_MAX`], so that
/// the driver's descriptors (two per stream of either kind) stay under 20,000 with 8,000
/// routed streams.
pub(crate) fn direct_count(n: usize) -> usize {
    n.min(DIRECT_STREAMS_MAX)
}

/// The pause between a held stream's chunks: longer than the ramp, so that every stream
/// is open when the last one opens and no chunk is sent while streams are being opened.
pub(crate) fn stream_gap(ramp: Duration) -> Duration {
    ramp + Duration::from_millis(500)
}

/// Opens the streams of each target (`(address, body, count)`), the targets' opens
/// interleaved over the ramp of the first target's count ([`stream_ramp`]), and records
/// each stream's time to its first chunk, per target; a stream that fails is counted, not
/// an error.
pub(crate) async fn held_streams(targets: &[(Dial, Bytes, usize)]) -> Result<Vec<Streams>> {
    // Opening every connection at the same instant measures the accept queue, not the
    // router: spread the opens over the ramp. Each stream is held for longer than that
    // (the fake pauses between chunks), so all are open together at the end.
    let ramp = stream_ramp(targets.first().map_or(0, |t| t.2));
    let begin = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for (k, (dial, body, n)) in targets.iter().enumerate() {
        // The second target's opens fall halfway between the first's.
        let offset = if k % 2 == 1 { 0.5 } else { 0.0 };
        for i in 0..*n {
            let start = begin + ramp.mul_f64((i as f64 + offset) / *n as f64);
            tasks.push((k, tokio::spawn(one_stream(dial.clone(), body.clone(), start))));
        }
    }
    let mut streams: Vec<Streams> =
        targets.iter().map(|_| Streams { first: hist(), failed: 0, first_error: None }).collect();
    for (k, t) in tasks {
        let st = &mut streams[k];
        match t.await? {
            Ok(d) => st.first.saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)),
            Err(e) => {
                st.failed += 1;
                st.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    Ok(streams)
}

/// One held stream, opened at `start`: its time to the first chunk (from sending the
/// request), after reading it to its end.
pub(crate) async fn one_stream(dial: Dial, body: Bytes, start: tokio::time::Instant) -> Result<Duration> {
    const PATH: &str = "/api/v1/chat/completions";
    tokio::time::sleep_until(start).await;
    let mut sender = dial.connect().await?;
    let req = sender.post(PATH, body)?;
    let t0 = Instant::now();
    let resp = sender.send(req).await?;
    if !resp.status().is_success() {
        bail!("{PATH} answered {}", resp.status());
    }
    let mut b = resp.into_body();
    let mut ttfb = None;
    while let Some(frame) = b.frame().await {
        frame?;
        ttfb.get_or_insert_with(|| t0.elapsed());
    }
    Ok(ttfb.unwrap_or_else(|| t0.elapsed()))
}

/// The held streams of one target: each served stream's time to its first chunk, and
/// the streams that failed (a non-200, a refused or reset connection), counted rather
/// than ending the benchmark.
pub(crate) struct Streams {
    pub(crate) first: Histogram<u64>,
    pub(crate) failed: usize,
    pub(crate) first_error: Option<String>,
}
