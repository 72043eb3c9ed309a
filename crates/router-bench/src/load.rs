//! The closed-loop load: keep-alive connections sending back to back, and one scenario
//! run direct and routed, interleaved.

use crate::opts::Opts;
use crate::server::{cpu_time, upstream_cpu_time};
use crate::surface::Surface;
use crate::upstream::Dial;
use anyhow::{Result, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::BodyExt as _;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Direct,
    Router,
}

/// Latencies of one run, in microseconds.
pub(crate) struct Run {
    pub(crate) total: Histogram<u64>,
    pub(crate) first: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) elapsed: Duration,
}

pub(crate) fn hist() -> Histogram<u64> {
    // 1 µs .. 100 s at 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

/// One keep-alive connection sending requests back to back until `end`.
pub(crate) async fn connection(
    dial: Dial,
    path: &'static str,
    body: Bytes,
    measure_from: Instant,
    end: Instant,
) -> Result<(Histogram<u64>, Histogram<u64>, u64)> {
    let mut sender = dial.connect().await?;
    let (mut total, mut first, mut n) = (hist(), hist(), 0);
    while Instant::now() < end {
        let req = sender.post(path, body.clone())?;
        sender.ready().await?;
        let t0 = Instant::now();
        let resp = sender.send(req).await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.into_body().collect().await?.to_bytes();
            bail!("{path} answered {status}: {}", String::from_utf8_lossy(&text));
        }
        let mut b = resp.into_body();
        let mut ttfb = None;
        while let Some(frame) = b.frame().await {
            frame?;
            ttfb.get_or_insert_with(|| t0.elapsed());
        }
        let done = t0.elapsed();
        if t0 >= measure_from {
            let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
            total.saturating_record(us(done));
            first.saturating_record(us(ttfb.unwrap_or(done)));
            n += 1;
        }
    }
    Ok((total, first, n))
}

pub(crate) async fn load(dial: &Dial, path: &'static str, body: Bytes, conns: usize, o: &Opts) -> Result<Run> {
    let start = Instant::now();
    let measure_from = start + o.warmup;
    let end = measure_from + o.duration;
    let tasks: Vec<_> =
        (0..conns).map(|_| tokio::spawn(connection(dial.clone(), path, body.clone(), measure_from, end))).collect();
    let mut run = Run { total: hist(), first: hist(), requests: 0, elapsed: o.duration };
    let mut failure = None;
    // Every connection is awaited, so that none is left running into the next run.
    for t in tasks {
        match t.await? {
            Ok((total, first, n)) => {
                run.total.add(total)?;
                run.first.add(first)?;
                run.requests += n;
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(run),
    }
}

pub(crate) struct Row {
    pub(crate) scenario: String,
    /// Streamed answers: the report shows their first chunk too.
    pub(crate) stream: bool,
    pub(crate) direct: Run,
    pub(crate) router: Run,
    pub(crate) router_cpu: Duration,
    /// The fake upstream's CPU over the direct runs (warm-up included, like the router's).
    pub(crate) upstream_cpu: Duration,
    /// Why the scenario failed (a non-200, a connection error), if it did: the report
    /// shows it as a failed row and the driver exits non-zero after writing the report.
    pub(crate) failed: Option<String>,
}

pub(crate) fn us(h: &Histogram<u64>, q: f64) -> u64 {
    h.value_at_quantile(q)
}

/// What every scenario run needs.
pub(crate) struct Ctx<'a> {
    pub(crate) o: &'a Opts,
    /// The fake upstream, reached as the router reaches it (`--upstream`).
    pub(crate) fake: Dial,
    pub(crate) router: Dial,
    /// The router's process, for its CPU time.
    pub(crate) pid: u32,
    pub(crate) direct_model: &'a str,
}

/// One scenario: direct and routed runs interleaved, `rounds` times each. The direct
/// runs send the upstream's own request (chat, or embeddings); the routed ones the
/// surface's.
pub(crate) async fn scenario(c: &Ctx<'_>, name: String, surface: Surface, stream: bool, conns: usize) -> Result<Row> {
    let o = c.o;
    let direct_body = surface.direct_body(&o.shape, c.direct_model, stream)?;
    let router_body = surface.router_body(&o.shape, stream)?;
    let mut direct: Option<Run> = None;
    let mut router: Option<Run> = None;
    let mut router_cpu = Duration::ZERO;
    let mut upstream_cpu = Duration::ZERO;
    for _ in 0..o.rounds {
        for target in [Target::Direct, Target::Router] {
            let run = match target {
                Target::Direct => {
                    let before = upstream_cpu_time()?;
                    let r = load(&c.fake, surface.direct_path(), direct_body.clone(), conns, o).await;
                    upstream_cpu += upstream_cpu_time()?.saturating_sub(before);
                    r
                }
                Target::Router => {
                    let before = cpu_time(c.pid)?;
                    let r = load(&c.router, surface.router_path(), router_body.clone(), conns, o).await;
                    // CPU spent during warm-up is included; requests counted only
                    // after it, so the per-request figure errs on the high side.
                    router_cpu += cpu_time(c.pid)?.saturating_sub(before);
                    r
                }
            };
            let r = match run {
                Ok(r) => r,
                Err(e) => {
                    let why = format!("{target:?} run: {e:#}");
                    eprintln!("  {name}: FAILED ({why})");
                    let empty = || Run { total: hist(), first: hist(), requests: 0, elapsed: o.duration };
                    return Ok(Row {
                        scenario: name,
                        stream,
                        direct: direct.unwrap_or_else(empty),
                        router: router.unwrap_or_else(empty),
                        router_cpu,
                        upstream_cpu,
                        failed: Some(why),
                    });
                }
            };
            let slot = if target == Target::Direct { &mut direct } else { &mut router };
            match slot {
                None => *slot = Some(r),
                Some(acc) => {
                    acc.total.add(&r.total)?;
                    acc.first.add(&r.first)?;
                    acc.requests += r.requests;
                    acc.elapsed += r.elapsed;
                }
            }
        }
    }
    let (Some(direct), Some(router)) = (direct, router) else { bail!("no runs") };
    eprintln!("  {name}: direct {} req, router {} req", direct.requests, router.requests);
    Ok(Row { scenario: name, stream, direct, router, router_cpu, upstream_cpu, failed: None })
}
