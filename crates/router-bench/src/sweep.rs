//! `--sweep`: JSON at 1 to 128 connections, direct and routed, and the frontier (the
//! highest rate whose p99 stays under a bound).

use crate::load::{Ctx, Target, load, us};
use crate::surface::body;
use anyhow::Result;
use std::fmt::Write as _;

/// Connection counts of the concurrency sweep (`--sweep`).
pub(crate) const SWEEP_CONNECTIONS: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// The p99 bounds of the frontier, in microseconds: the highest rate whose p99 stays
/// under each, as the 2026 public gateway benchmarks report it.
pub(crate) const FRONTIER_P99_US: [u64; 3] = [1_000, 5_000, 10_000];

/// One point of the concurrency sweep.
pub(crate) struct SweepPoint {
    pub(crate) target: Target,
    pub(crate) connections: usize,
    pub(crate) rps: f64,
    pub(crate) p99_us: u64,
    pub(crate) failed: Option<String>,
}

/// JSON at each of [`SWEEP_CONNECTIONS`], direct and routed interleaved at each level.
pub(crate) async fn sweep(c: &Ctx<'_>) -> Result<Vec<SweepPoint>> {
    let o = c.o;
    let mut points = Vec::new();
    for conns in SWEEP_CONNECTIONS {
        for target in [Target::Direct, Target::Router] {
            let (dial, body) = match target {
                Target::Direct => (&c.fake, body(&o.shape, c.direct_model, false)?),
                Target::Router => (&c.router, body(&o.shape, "openrouter/free", false)?),
            };
            let point = match load(dial, "/api/v1/chat/completions", body, conns, o).await {
                Ok(run) => SweepPoint {
                    target,
                    connections: conns,
                    rps: run.requests as f64 / run.elapsed.as_secs_f64(),
                    p99_us: us(&run.total, 0.99),
                    failed: None,
                },
                Err(e) => {
                    eprintln!("  sweep {target:?} c={conns}: FAILED ({e:#})");
                    SweepPoint { target, connections: conns, rps: 0.0, p99_us: 0, failed: Some(format!("{e:#}")) }
                }
            };
            points.push(point);
        }
        eprintln!("  sweep c={conns} done");
    }
    Ok(points)
}

/// The sweep's points and, for each bound of [`FRONTIER_P99_US`], the highest rate whose
/// p99 stayed under it, direct and routed.
pub(crate) fn render_frontier(s: &mut String, points: &[SweepPoint]) {
    let _ = writeln!(s, "\n## Concurrency sweep (JSON)\n");
    let _ = writeln!(s, "| connections | direct req/s | direct p99 µs | router req/s | router p99 µs |");
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
    let cell = |target: Target, conns: usize| {
        points.iter().find(|p| p.target == target && p.connections == conns).map_or_else(
            || ("-".to_string(), "-".to_string()),
            |p| match &p.failed {
                Some(_) => ("failed".to_string(), "-".to_string()),
                None => (format!("{:.0}", p.rps), p.p99_us.to_string()),
            },
        )
    };
    for conns in SWEEP_CONNECTIONS {
        let ((dr, dp), (rr, rp)) = (cell(Target::Direct, conns), cell(Target::Router, conns));
        let _ = writeln!(s, "| {conns} | {dr} | {dp} | {rr} | {rp} |");
    }
    let _ = writeln!(s, "\n### Frontier: the highest rate whose p99 stays under the bound\n");
    let _ = writeln!(s, "| p99 under | direct req/s (connections) | router req/s (connections) |\n|---:|---:|---:|");
    for bound in FRONTIER_P99_US {
        let best = |target: Target| {
            points
                .iter()
                .filter(|p| p.target == target && p.failed.is_none() && p.p99_us < bound)
                .max_by(|a, b| a.rps.total_cmp(&b.rps))
                .map_or_else(|| "none".to_string(), |p| format!("{:.0} ({})", p.rps, p.connections))
        };
        let _ = writeln!(s, "| {} ms | {} | {} |", bound / 1000, best(Target::Direct), best(Target::Router));
    }
}
