//! `--soak`: JSON and waves of held streams for a while, the router's RSS sampled, and read
//! again after the load.

use crate::load::connection;
use crate::opts::Opts;
use crate::server::memory_kib;
use crate::streams::{held_streams, stream_gap, stream_ramp};
use crate::surface::body;
use crate::upstream::Dial;
use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use fake_upstream::{Behaviour, FakeUpstream};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often `--soak` samples the router's RSS.
pub(crate) const SOAK_SAMPLE: Duration = Duration::from_secs(5);

/// When `--soak` reads the router's RSS after the load has ended: jemalloc returns freed
/// pages over its decay time (10 s by default), the upstream pool closes connections idle
/// for 90 s, but its reaper wakes only every 90 s: a connection last used at the load's
/// end is closed between 90 and 180 s after it, hence the last reading at 240 s.
pub(crate) const SOAK_SETTLE: [Duration; 6] = [
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(240),
];

/// `--soak`: for `secs`, JSON on `--connections` keep-alive connections and, beside it,
/// back-to-back waves of `--streams` held streams, all through the router; the router's
/// RSS sampled every [`SOAK_SAMPLE`] and at [`SOAK_SETTLE`] after the load ends. Failed
/// requests and streams are counted; any makes the run fail after the report is written.
pub(crate) async fn soak(
    o: &Opts,
    secs: Duration,
    fake: &FakeUpstream,
    addr: SocketAddr,
    pid: u32,
    idle_rss: u64,
    root: &std::path::Path,
) -> Result<()> {
    // JSON is answered at once; streams send their chunks a gap apart.
    let ramp = stream_ramp(o.streams);
    fake.set_default_behaviour(Behaviour::SlowStream { chunks: 3, gap: stream_gap(ramp) });
    let started = Instant::now();
    let end = started + secs;
    let json_body = body(&o.shape, "openrouter/free", false)?;
    let json: Vec<_> = (0..o.connections)
        .map(|_| {
            tokio::spawn(connection(Dial::plain(addr), "/api/v1/chat/completions", json_body.clone(), started, end))
        })
        .collect();
    let stream_body = body(&o.shape, "openrouter/free", true)?;
    let waves = tokio::spawn(waves(addr, stream_body, o.streams, end));
    let samples = sample_rss(pid, started, end).await?;
    let mut json_totals = JsonTotals::default();
    for t in json {
        json_totals.add(t.await?);
    }
    let waves = waves.await??;
    let load_ended = started.elapsed();
    fake.set_default_behaviour(Behaviour::Ok);
    let settled = settle_rss(pid).await?;

    let run = Run { secs, load_ended, connections: o.connections, streams: o.streams, ramp, idle_rss };
    let s = report(&run, &json_totals, &waves, &samples, &settled);
    print!("{s}");
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("soak.md"), &s)?;
    eprintln!("wrote {}", out.join("soak.md").display());
    let (json_failed, streams_failed) = (json_totals.failed, waves.failed);
    if json_failed > 0 || streams_failed > 0 {
        bail!("{json_failed} JSON connection(s) and {streams_failed} held stream(s) failed during the soak");
    }
    Ok(())
}

/// The held-stream waves: how many ran, streams served and failed, the first failure.
#[derive(Default)]
struct Waves {
    count: usize,
    ok: usize,
    failed: usize,
    first_error: Option<String>,
}

/// Back-to-back waves of `n` held streams until `end` (none for `--streams 0`: JSON alone).
async fn waves(addr: SocketAddr, stream_body: Bytes, n: usize, end: Instant) -> Result<Waves> {
    let mut totals = Waves::default();
    while n > 0 && Instant::now() < end {
        let st =
            held_streams(&[(Dial::plain(addr), stream_body.clone(), n)]).await?.pop().context("no stream results")?;
        totals.count += 1;
        totals.ok += usize::try_from(st.first.len()).unwrap_or(usize::MAX);
        totals.failed += st.failed;
        if totals.first_error.is_none() {
            totals.first_error = st.first_error;
        }
    }
    Ok(totals)
}

/// The JSON connections' answers, failed connections and first failure.
#[derive(Default)]
struct JsonTotals {
    ok: u64,
    failed: usize,
    first_error: Option<String>,
}

impl JsonTotals {
    fn add(&mut self, connection: Result<(Histogram<u64>, Histogram<u64>, u64)>) {
        match connection {
            Ok((_, _, n)) => self.ok += n,
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
}

/// The router's RSS every [`SOAK_SAMPLE`] until `end`, each said on stderr as it is read.
async fn sample_rss(pid: u32, started: Instant, end: Instant) -> Result<Vec<(Duration, u64)>> {
    let mut samples = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(SOAK_SAMPLE.min(end.saturating_duration_since(Instant::now()))).await;
        let rss = memory_kib(pid, "VmRSS:")?;
        eprintln!("  soak {:>5.0}s: router RSS {:.1} MB", started.elapsed().as_secs_f64(), rss as f64 / 1024.0);
        samples.push((started.elapsed(), rss));
    }
    Ok(samples)
}

/// The router's RSS at each of [`SOAK_SETTLE`] after now (the load's end).
async fn settle_rss(pid: u32) -> Result<Vec<(Duration, u64)>> {
    let mut settled = Vec::new();
    let quiet = Instant::now();
    for at in SOAK_SETTLE {
        tokio::time::sleep(at.saturating_sub(quiet.elapsed())).await;
        settled.push((at, memory_kib(pid, "VmRSS:")?));
    }
    Ok(settled)
}

/// What the report says of the run itself.
struct Run {
    secs: Duration,
    load_ended: Duration,
    connections: usize,
    streams: usize,
    ramp: Duration,
    idle_rss: u64,
}

/// `soak.md`: the load, the RSS table, the samples and the first failures.
fn report(
    run: &Run,
    json: &JsonTotals,
    waves: &Waves,
    samples: &[(Duration, u64)],
    settled: &[(Duration, u64)],
) -> String {
    let mb = |kib: u64| kib as f64 / 1024.0;
    let mut s = String::new();
    let _ = writeln!(s, "# Soak: mixed JSON and held streams through the router\n");
    let _ = writeln!(
        s,
        "{:?} of load (ended after {:.0} s): JSON on {} connections ({} answered, {} connections \
         failed), {} waves of {} streams opened over {:?} ({} served, {} failed)\n",
        run.secs,
        run.load_ended.as_secs_f64(),
        run.connections,
        json.ok,
        json.failed,
        waves.count,
        run.streams,
        run.ramp,
        waves.ok,
        waves.failed,
    );
    let third = samples.len() / 3;
    let max_of = |xs: &[(Duration, u64)]| xs.iter().map(|&(_, r)| r).max().unwrap_or(0);
    let _ = writeln!(s, "| router RSS | MB |\n|---|---:|");
    let _ = writeln!(s, "| idle, before the load | {:.1} |", mb(run.idle_rss));
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let _ = writeln!(s, "| first sample ({:.0} s) | {:.1} |", first.0.as_secs_f64(), mb(first.1));
        let _ = writeln!(s, "| last sample ({:.0} s) | {:.1} |", last.0.as_secs_f64(), mb(last.1));
    }
    let _ = writeln!(s, "| max over the load | {:.1} |", mb(max_of(samples)));
    if third > 0 {
        let _ = writeln!(s, "| max over the first third | {:.1} |", mb(max_of(&samples[..third])));
        let _ = writeln!(s, "| max over the last third | {:.1} |", mb(max_of(&samples[samples.len() - third..])));
    }
    for (at, rss) in settled {
        let _ = writeln!(s, "| {} s after the load | {:.1} |", at.as_secs(), mb(*rss));
    }
    let _ = writeln!(s, "\nsamples (s: MB), every {:?}:\n", SOAK_SAMPLE);
    let line: Vec<String> = samples.iter().map(|(t, r)| format!("{:.0}: {:.1}", t.as_secs_f64(), mb(*r))).collect();
    let _ = writeln!(s, "{}", line.join(", "));
    for (what, e) in [("JSON", &json.first_error), ("stream", &waves.first_error)] {
        if let Some(e) = e {
            let _ = writeln!(s, "\nfirst {what} failure: {e}");
        }
    }
    s
}
