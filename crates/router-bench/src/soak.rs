//! `--soak`: JSON and waves of held streams for a while, the router's RSS sampled, and read
//! again after the load.

use crate::load::connection;
use crate::opts::Opts;
use crate::server::memory_kib;
use crate::streams::{held_streams, stream_gap, stream_ramp};
use crate::surface::body;
use crate::upstream::Dial;
use anyhow::{Context as _, Result, bail};
use fake_upstream::{Behaviour, FakeUpstream};
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
    let n = o.streams;
    let waves = tokio::spawn(async move {
        let mut totals = (0usize, 0usize, 0usize, None::<String>);
        // `--streams 0`: JSON alone.
        while n > 0 && Instant::now() < end {
            let st = held_streams(&[(Dial::plain(addr), stream_body.clone(), n)])
                .await?
                .pop()
                .context("no stream results")?;
            totals.0 += 1;
            totals.1 += usize::try_from(st.first.len()).unwrap_or(usize::MAX);
            totals.2 += st.failed;
            if totals.3.is_none() {
                totals.3 = st.first_error;
            }
        }
        Ok::<_, anyhow::Error>(totals)
    });
    let mut samples = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(SOAK_SAMPLE.min(end.saturating_duration_since(Instant::now()))).await;
        let rss = memory_kib(pid, "VmRSS:")?;
        eprintln!("  soak {:>5.0}s: router RSS {:.1} MB", started.elapsed().as_secs_f64(), rss as f64 / 1024.0);
        samples.push((started.elapsed(), rss));
    }
    let (mut json_ok, mut json_failed, mut json_error) = (0u64, 0usize, None);
    for t in json {
        match t.await? {
            Ok((_, _, n)) => json_ok += n,
            Err(e) => {
                json_failed += 1;
                json_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let (wave_count, streams_ok, streams_failed, stream_error) = waves.await??;
    let load_ended = started.elapsed();
    fake.set_default_behaviour(Behaviour::Ok);
    let mut settled = Vec::new();
    let quiet = Instant::now();
    for at in SOAK_SETTLE {
        tokio::time::sleep(at.saturating_sub(quiet.elapsed())).await;
        settled.push((at, memory_kib(pid, "VmRSS:")?));
    }

    let mb = |kib: u64| kib as f64 / 1024.0;
    let mut s = String::new();
    let _ = writeln!(s, "# Soak: mixed JSON and held streams through the router\n");
    let _ = writeln!(
        s,
        "{:?} of load (ended after {:.0} s): JSON on {} connections ({json_ok} answered, {json_failed} connections \
         failed), {wave_count} waves of {n} streams opened over {ramp:?} ({streams_ok} served, {streams_failed} failed)\n",
        secs,
        load_ended.as_secs_f64(),
        o.connections,
    );
    let third = samples.len() / 3;
    let max_of = |xs: &[(Duration, u64)]| xs.iter().map(|&(_, r)| r).max().unwrap_or(0);
    let _ = writeln!(s, "| router RSS | MB |\n|---|---:|");
    let _ = writeln!(s, "| idle, before the load | {:.1} |", mb(idle_rss));
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let _ = writeln!(s, "| first sample ({:.0} s) | {:.1} |", first.0.as_secs_f64(), mb(first.1));
        let _ = writeln!(s, "| last sample ({:.0} s) | {:.1} |", last.0.as_secs_f64(), mb(last.1));
    }
    let _ = writeln!(s, "| max over the load | {:.1} |", mb(max_of(&samples)));
    if third > 0 {
        let _ = writeln!(s, "| max over the first third | {:.1} |", mb(max_of(&samples[..third])));
        let _ = writeln!(s, "| max over the last third | {:.1} |", mb(max_of(&samples[samples.len() - third..])));
    }
    for (at, rss) in &settled {
        let _ = writeln!(s, "| {} s after the load | {:.1} |", at.as_secs(), mb(*rss));
    }
    let _ = writeln!(s, "\nsamples (s: MB), every {:?}:\n", SOAK_SAMPLE);
    let line: Vec<String> = samples.iter().map(|(t, r)| format!("{:.0}: {:.1}", t.as_secs_f64(), mb(*r))).collect();
    let _ = writeln!(s, "{}", line.join(", "));
    for (what, e) in [("JSON", &json_error), ("stream", &stream_error)] {
        if let Some(e) = e {
            let _ = writeln!(s, "\nfirst {what} failure: {e}");
        }
    }
    print!("{s}");
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("soak.md"), &s)?;
    eprintln!("wrote {}", out.join("soak.md").display());
    if json_failed > 0 || streams_failed > 0 {
        bail!("{json_failed} JSON connection(s) and {streams_failed} held stream(s) failed during the soak");
    }
    Ok(())
}
