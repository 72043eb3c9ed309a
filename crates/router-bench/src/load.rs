//! The closed-loop load: request bodies, keep-alive connections sending back to back, and
//! one scenario run direct and routed, interleaved.

use crate::opts::Opts;
use crate::server::{cpu_time, upstream_cpu_time};
use anyhow::{Result, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The request bodies the load sends.
pub(crate) fn body(shape: &str, model: &str, stream: bool) -> Result<Bytes> {
    let messages = match shape {
        "small" => serde_json::json!([{"role": "user", "content": "Say hello."}]),
        "tools" => serde_json::json!([{"role": "user", "content": "What is the weather in Paris?"}]),
        "conversation" => serde_json::Value::Array(
            (0..50)
                .map(|i| {
                    let role = if i % 2 == 0 { "user" } else { "assistant" };
                    serde_json::json!({"role": role, "content": format!("message {i}: {}", "lorem ipsum ".repeat(20))})
                })
                .collect(),
        ),
        other => bail!("unknown shape `{other}` (small, tools, conversation)"),
    };
    let mut b = serde_json::json!({"model": model, "messages": messages, "stream": stream});
    if shape == "tools" {
        b["tools"] = serde_json::json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    }
    Ok(Bytes::from(serde_json::to_vec(&b)?))
}

/// The same request as [`body`] in Anthropic's Messages shape, for `/v1/messages`.
pub(crate) fn messages_body(shape: &str, model: &str, stream: bool) -> Result<Bytes> {
    let chat: serde_json::Value = serde_json::from_slice(&body(shape, model, stream)?)?;
    let mut b = serde_json::json!({"model": model, "max_tokens": 1024, "messages": chat["messages"], "stream": stream});
    if shape == "tools" {
        b["tools"] = serde_json::json!([{"name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    }
    Ok(Bytes::from(serde_json::to_vec(&b)?))
}

/// The same request as [`body`] in OpenAI's Responses shape (stateless), for `/v1/responses`.
pub(crate) fn responses_body(shape: &str, model: &str, stream: bool) -> Result<Bytes> {
    let chat: serde_json::Value = serde_json::from_slice(&body(shape, model, stream)?)?;
    let mut b = serde_json::json!({"model": model, "input": chat["messages"], "stream": stream, "store": false});
    if shape == "tools" {
        b["tools"] = serde_json::json!([{"type": "function", "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    }
    Ok(Bytes::from(serde_json::to_vec(&b)?))
}

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
    addr: SocketAddr,
    path: &'static str,
    body: Bytes,
    measure_from: Instant,
    end: Instant,
) -> Result<(Histogram<u64>, Histogram<u64>, u64)> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let (mut total, mut first, mut n) = (hist(), hist(), 0);
    let host = addr.to_string();
    while Instant::now() < end {
        let req = Request::post(path)
            .header("host", &host)
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        // After a streamed answer the connection may not have taken the end of the body
        // in yet; sending at once fails with "connection was not ready".
        sender.ready().await?;
        let t0 = Instant::now();
        let resp = sender.send_request(req).await?;
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

pub(crate) async fn load(addr: SocketAddr, path: &'static str, body: Bytes, conns: usize, o: &Opts) -> Result<Run> {
    let start = Instant::now();
    let measure_from = start + o.warmup;
    let end = measure_from + o.duration;
    let tasks: Vec<_> =
        (0..conns).map(|_| tokio::spawn(connection(addr, path, body.clone(), measure_from, end))).collect();
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
    pub(crate) fake_addr: SocketAddr,
    pub(crate) router_addr: SocketAddr,
    /// The router's process, for its CPU time.
    pub(crate) pid: u32,
    pub(crate) direct_model: &'a str,
}

/// One scenario: direct and routed runs interleaved, `rounds` times each.
pub(crate) async fn scenario(c: &Ctx<'_>, name: String, stream: bool, conns: usize) -> Result<Row> {
    let o = c.o;
    let direct_body = body(&o.shape, c.direct_model, stream)?;
    let router_body = body(&o.shape, "openrouter/free", stream)?;
    let mut direct: Option<Run> = None;
    let mut router: Option<Run> = None;
    let mut router_cpu = Duration::ZERO;
    let mut upstream_cpu = Duration::ZERO;
    for _ in 0..o.rounds {
        for target in [Target::Direct, Target::Router] {
            let run = match target {
                Target::Direct => {
                    let before = upstream_cpu_time()?;
                    let r = load(c.fake_addr, "/api/v1/chat/completions", direct_body.clone(), conns, o).await;
                    upstream_cpu += upstream_cpu_time()?.saturating_sub(before);
                    r
                }
                Target::Router => {
                    let before = cpu_time(c.pid)?;
                    let r = load(c.router_addr, "/api/v1/chat/completions", router_body.clone(), conns, o).await;
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
    Ok(Row { scenario: name, direct, router, router_cpu, upstream_cpu, failed: None })
}
