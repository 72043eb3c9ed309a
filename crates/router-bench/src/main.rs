//! `router-bench` (run by `cargo xtask bench`): the end-to-end overhead benchmark.
//!
//! Starts the fake upstream (in this process) and a release `router-server` (a child
//! process) on loopback, and drives both with a closed-loop load generator: a fixed
//! number of keep-alive connections, each sending its next request when the previous
//! answer has been read. Direct and routed runs are interleaved round by round, so that
//! both see the same machine state. Latencies go into HDR histograms; the router's CPU
//! time and peak RSS come from `/proc`. `--upstream` serves the fake over plaintext
//! HTTP/1.1 or over TLS (HTTP/1.1 or h2 by ALPN), the router trusting it through
//! `extra_ca_cert` and the direct runs speaking the same protocol to it.

// In dependency order: the command line and the server process, the load and the held
// streams built on them, then the runs and the report.
mod upstream;

mod opts;
mod server;
mod surface;

mod load;
mod rows;

mod streams;

mod profile;
mod report;
mod soak;
mod sweep;

use crate::load::{Ctx, Row, scenario};
use crate::opts::{Opts, parse};
use crate::profile::profile;
use crate::report::{Rss, render};
use crate::rows::{rows, start_fake};
use crate::server::{UPSTREAM_THREAD, memory_kib, start_server};
use crate::soak::{SOAK_SETTLE, soak};
use crate::streams::{Streams, direct_count, held_streams, stream_gap, stream_ramp};
use crate::surface::{Surface, body, embeddings_ready};
use crate::sweep::{render_frontier, sweep};
use crate::upstream::{Dial, Upstream};
use anyhow::{Context as _, Result, bail};
use fake_upstream::{Behaviour, FakeUpstream};
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

fn run(args: &[String]) -> Result<()> {
    let root = root();
    let opts = parse(args)?;
    // The driver holds two sockets per stream (client and fake upstream): without this,
    // its own descriptor-table growth stalls both sides of the measurement.
    fd_limits::prepare();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // The fake upstream gets its own thread, so that its CPU per request can be read
    // apart from the load generator's: the yardstick for the router's.
    let upstream = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(UPSTREAM_THREAD)
        .enable_all()
        .build()?;
    let result = rt.block_on(bench(opts, root, upstream.handle().clone()));
    upstream.shutdown_background();
    result
}

async fn bench(o: Opts, root: PathBuf, upstream: tokio::runtime::Handle) -> Result<()> {
    let fake = upstream.spawn(start_fake(o.upstream)).await?;
    let binary = o.server.clone().unwrap_or_else(|| root.join("target/release/router-server"));
    let server = start_server(&binary, o.upstream.name(), &fake.base_url(), fake.ca_pem()).await?;
    embeddings_ready(server.addr).await?;
    if let Some(kind) = &o.profile {
        let result = profile(&o, kind, server).await;
        upstream.spawn(fake.shutdown()).await?;
        return result;
    }
    let pid = server.child.id();
    let idle_rss = memory_kib(pid, "VmRSS:")?;
    if let Some(secs) = o.soak {
        let result = soak(&o, secs, &fake, server.addr, pid, idle_rss, &root).await;
        drop(server);
        upstream.spawn(fake.shutdown()).await?;
        return result;
    }
    let direct_model = fake_upstream::default_models()
        .into_iter()
        .find(|m| m.id.ends_with(":free"))
        .map(|m| m.id)
        .context("the fake upstream lists no free model")?;

    let ctx = Ctx {
        o: &o,
        fake: Dial::to_fake(&fake, o.upstream)?,
        router: Dial::plain(server.addr),
        pid,
        direct_model: &direct_model,
    };
    let mut rows = if o.streams_only { Vec::new() } else { table_rows(&ctx, &binary, &upstream).await? };

    let sweep = if o.sweep && !o.streams_only { sweep(&ctx).await? } else { Vec::new() };

    let (rss, direct_streams, router_streams) = capacity(&ctx, &fake, idle_rss).await?;

    // Upstream answers after a delay, as a remote model does: the question is whether the
    // router, not the upstream, is what limits the rate. Last, so that the connections it
    // leaves pooled do not weigh on the figures above.
    if !o.remote_delay.is_zero() && !o.streams_only {
        fake.set_default_behaviour(Behaviour::Delay { first_byte: o.remote_delay, then: Box::new(Behaviour::Ok) });
        let name = format!("json c={} remote {} ms", o.remote_connections, o.remote_delay.as_millis());
        rows.push(scenario(&ctx, name, Surface::Chat, false, o.remote_connections).await?);
        fake.set_default_behaviour(Behaviour::Ok);
    }

    let mut report = render(&o, &rows, &rss, &direct_streams, &router_streams);
    if o.sweep {
        render_frontier(&mut report, &sweep);
    }
    print!("{report}");
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("report.md"), &report)?;
    eprintln!("wrote {}", out.join("report.md").display());
    drop(server);
    upstream.spawn(fake.shutdown()).await?;
    let failed_rows =
        rows.iter().filter(|r| r.failed.is_some()).count() + sweep.iter().filter(|p| p.failed.is_some()).count();
    let failed_streams = direct_streams.failed + router_streams.failed;
    if failed_rows > 0 || failed_streams > 0 {
        bail!("{failed_rows} scenario(s) and {failed_streams} held stream(s) failed: see the report");
    }
    Ok(())
}

/// The table's rows; over TLS, with the plaintext pair beside it (a second fake and
/// router), for the TLS ratio in the same run.
async fn table_rows(ctx: &Ctx<'_>, binary: &std::path::Path, upstream: &tokio::runtime::Handle) -> Result<Vec<Row>> {
    if !ctx.o.upstream.tls() {
        return rows(ctx, None).await;
    }
    let plain_fake = upstream.spawn(start_fake(Upstream::H1)).await?;
    let plain_server = start_server(binary, "h1", &plain_fake.base_url(), None).await?;
    let plain = Ctx {
        fake: Dial::plain(plain_fake.addr()),
        router: Dial::plain(plain_server.addr),
        pid: plain_server.child.id(),
        ..*ctx
    };
    let rows = rows(ctx, Some(&plain)).await?;
    drop(plain_server);
    upstream.spawn(plain_fake.shutdown()).await?;
    Ok(rows)
}

/// Stream capacity: many concurrent slow streams held open at once, routed and direct,
/// with the router's RSS before, at the peak of this phase and after it.
async fn capacity(ctx: &Ctx<'_>, fake: &FakeUpstream, idle_rss: u64) -> Result<(Rss, Streams, Streams)> {
    let (o, pid) = (ctx.o, ctx.pid);
    // The peak is the peak of this phase: "5" resets the high-water mark to the current RSS.
    // The routed streams, and direct ones opened among them: both see the same machine
    // state, which two runs a minute apart on a shared machine do not.
    fake.set_default_behaviour(Behaviour::SlowStream { chunks: 3, gap: stream_gap(stream_ramp(o.streams)) });
    // The router's RSS with what the runs above left (jemalloc keeps freed pages for its
    // decay time), and the peak from here: "5" resets the high-water mark to the current RSS.
    let before_rss = memory_kib(pid, "VmRSS:")?;
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("resetting the router's peak RSS")?;
    let mut held = held_streams(&[
        (ctx.router.clone(), body(&o.shape, "openrouter/free", true)?, o.streams),
        (ctx.fake.clone(), body(&o.shape, ctx.direct_model, true)?, direct_count(o.streams)),
    ])
    .await?;
    let (Some(direct_streams), Some(router_streams)) = (held.pop(), held.pop()) else { bail!("no stream results") };
    for (label, st, n) in [("direct", &direct_streams, direct_count(o.streams)), ("router", &router_streams, o.streams)]
    {
        if st.failed > 0 {
            eprintln!("  held streams ({label}): {} of {n} failed", st.failed);
        }
    }
    let peak_rss = memory_kib(pid, "VmHWM:")?;
    fake.set_default_behaviour(Behaviour::Ok);
    // What the router gives back once the streams have ended (jemalloc's decay time).
    tokio::time::sleep(SOAK_SETTLE[1]).await;
    let after_rss = memory_kib(pid, "VmRSS:")?;
    let rss = Rss { idle: idle_rss, before: before_rss, peak: peak_rss, after: after_rss };
    Ok((rss, direct_streams, router_streams))
}

/// The workspace root (this crate lives two levels below it).
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}
