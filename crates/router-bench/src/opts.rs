//! The command line: the options and their defaults.

use crate::upstream::Upstream;
use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use std::time::Duration;

/// What `--profile` sends: chat JSON or stream, or the same as Anthropic's Messages or
/// OpenAI's Responses.
const PROFILE_KINDS: [&str; 7] =
    ["json", "stream", "messages", "messages-stream", "responses", "responses-stream", "embeddings"];

pub(crate) const HELP: &str = "\
usage: cargo xtask bench [options]

  --connections N   concurrent keep-alive connections for the loaded runs (default 32)
  --duration SECS   measured seconds per run (default 5)
  --warmup SECS     unmeasured seconds before each run (default 1)
  --rounds N        direct/router interleaved rounds per scenario (default 2)
  --streams N       concurrent streams held open for the stream-capacity run (default 1000),
                    opened at most 500 a second (8,000 over 16 s)
  --remote-delay MS the upstream's answer time in the remote-like run (default 50; 0 skips it)
  --remote-connections N
                    connections for the remote-like run (default 256)
  --upstream KIND   how the fake upstream serves: h1 (plaintext HTTP/1.1) | tls-h1 (HTTPS,
                    HTTP/1.1 by ALPN) | tls-h2 (HTTPS, h2 by ALPN, as OpenRouter) (default h1).
                    The router trusts the fake's CA through extra_ca_cert; the direct runs
                    speak the same protocol to it. Over TLS the run also measures chat at one
                    connection against a plaintext HTTP/1.1 fake, for the TLS ratio
  --shape NAME      request shape: small | tools | conversation (default small)
  --server PATH     the router-server binary to measure (default target/release/router-server),
                    e.g. a copy of an earlier build for a before/after comparison
  --quick           short runs (1 s, 1 round, 200 streams) to check the harness
  --profile KIND    instead of the timed runs: json | stream | messages | messages-stream |
                    responses | responses-stream | embeddings (the same request as Anthropic's
                    Messages on /v1/messages, or as OpenAI's Responses on /v1/responses; one
                    input on /api/v1/embeddings).
                    Sends PROFILE_WARMUP requests,
                    then --requests N (default 1000) of that kind through the router at one
                    connection, then stops the server with SIGTERM and waits for it to exit:
                    run it with N and with 0 under a --server wrapper (valgrind, strace) and
                    divide the difference by N for per-request counts
  --requests N      requests sent by --profile (default 1000)
  --profile-connections N
                    keep-alive connections --profile spreads its requests over (default 1)
  --sweep           also run JSON at 1, 2, 4, ... 128 connections, direct and routed, and report
                    the frontier: the highest rate whose p99 stays under 1, 5 and 10 ms
  --rows A,B        only the scenario rows whose names start with one of these (e.g. `json c=1`
                    runs it and its plaintext pair): to repeat one row without the others
  --streams-only    only the stream-capacity run (no JSON/stream scenarios): for memory figures
  --soak SECS       instead of the timed runs: for SECS, JSON at --connections plus back-to-back
                    waves of --streams held streams through the router, sampling the router's RSS
                    every 5 s; reports first/last/max and the RSS up to 240 s after the load
                    ends (--streams 0: JSON alone)
";

#[derive(Clone, Debug)]
pub(crate) struct Opts {
    pub(crate) connections: usize,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) rounds: usize,
    pub(crate) streams: usize,
    /// The remote-like run: the upstream answers after this delay, as a real model would.
    pub(crate) remote_delay: Duration,
    pub(crate) remote_connections: usize,
    pub(crate) shape: String,
    /// `--upstream`: how the fake upstream is served.
    pub(crate) upstream: Upstream,
    pub(crate) server: Option<PathBuf>,
    /// `--profile`: send a fixed number of requests of this kind instead of timed runs.
    pub(crate) profile: Option<String>,
    pub(crate) requests: usize,
    /// `--profile-connections`: connections the profile's requests are spread over.
    pub(crate) profile_connections: usize,
    /// `--sweep`: the concurrency sweep and its frontier.
    pub(crate) sweep: bool,
    /// `--streams-only`: the stream-capacity run alone.
    pub(crate) streams_only: bool,
    /// `--rows`: name prefixes of the scenario rows to run (empty: every row).
    pub(crate) rows: Vec<String>,
    /// `--soak SECS`: mixed load for this long, sampling the router's RSS.
    pub(crate) soak: Option<Duration>,
}

pub(crate) fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        connections: 32,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        rounds: 2,
        streams: 1000,
        remote_delay: Duration::from_millis(50),
        remote_connections: 256,
        shape: "small".into(),
        upstream: Upstream::H1,
        server: None,
        profile: None,
        requests: 1000,
        profile_connections: 1,
        sweep: false,
        streams_only: false,
        rows: Vec::new(),
        soak: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("`{a}` needs a value"));
        match a.as_str() {
            "--connections" => o.connections = val()?.parse()?,
            "--duration" => o.duration = Duration::from_secs_f64(val()?.parse()?),
            "--warmup" => o.warmup = Duration::from_secs_f64(val()?.parse()?),
            "--rounds" => o.rounds = val()?.parse()?,
            "--streams" => o.streams = val()?.parse()?,
            "--remote-delay" => o.remote_delay = Duration::from_millis(val()?.parse()?),
            "--remote-connections" => o.remote_connections = val()?.parse()?,
            "--shape" => o.shape = val()?.clone(),
            "--upstream" => o.upstream = Upstream::parse(val()?)?,
            "--server" => o.server = Some(PathBuf::from(val()?)),
            "--profile" => o.profile = Some(val()?.clone()),
            "--requests" => o.requests = val()?.parse()?,
            "--profile-connections" => o.profile_connections = val()?.parse::<usize>()?.max(1),
            "--sweep" => o.sweep = true,
            "--streams-only" => o.streams_only = true,
            "--rows" => o.rows = val()?.split(',').map(|r| r.trim().to_owned()).collect(),
            "--soak" => o.soak = Some(Duration::from_secs_f64(val()?.parse()?)),
            "--quick" => {
                o.duration = Duration::from_secs(1);
                o.warmup = Duration::from_millis(300);
                o.rounds = 1;
                o.streams = 200;
            }
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}`\n\n{HELP}"),
        }
    }
    if let Some(kind) = &o.profile
        && !PROFILE_KINDS.contains(&kind.as_str())
    {
        bail!("--profile takes {}, not `{kind}`", PROFILE_KINDS.join(", "));
    }
    if o.connections == 0 || o.rounds == 0 || o.remote_connections == 0 {
        bail!("--connections, --rounds and --remote-connections must be at least 1");
    }
    Ok(o)
}
