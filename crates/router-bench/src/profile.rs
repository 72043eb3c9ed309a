//! `--profile`: a fixed number of requests, then a graceful stop, for counting tools
//! wrapped around the server.

use crate::opts::Opts;
use crate::server::{READY_TIMEOUT, Server};
use crate::surface::{body, embeddings_body, messages_body, responses_body};
use anyhow::{Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Requests `--profile` sends before the counted ones (connection set-up, first-use
/// allocations), so that the run with `--requests 0` carries the same fixed cost.
pub(crate) const PROFILE_WARMUP: usize = 50;

/// `--profile`: a fixed number of requests of one kind through the router, spread over
/// `--profile-connections` keep-alive connections (one by default), then a graceful stop
/// (SIGTERM), so that a profiler wrapping the server (valgrind, strace) writes its counts
/// on the way out.
pub(crate) async fn profile(o: &Opts, kind: &str, server: Server) -> Result<()> {
    let (path, body) = request_of(o, kind)?;
    let conns = o.profile_connections;
    let started = Instant::now();
    // Each connection sends its share of the warm-up, then of the counted requests; the
    // counted ones start once every connection has finished its warm-up.
    let warmed = Arc::new(Barrier::new(conns + 1));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let share = |n: usize| n / conns + usize::from(c < n % conns);
        let (warmup, counted) = (share(PROFILE_WARMUP), share(o.requests));
        let (addr, body, warmed) = (server.addr, body.clone(), warmed.clone());
        tasks.push(tokio::spawn(connection(addr, path, body, warmup, counted, warmed)));
    }
    warmed.wait().await;
    eprintln!("profile: {PROFILE_WARMUP} warm-up requests in {:?}", started.elapsed());
    for task in tasks {
        task.await??;
    }
    eprintln!(
        "profile: {} {kind} requests over {conns} connection(s) sent in {:?}; stopping the server",
        o.requests,
        started.elapsed()
    );
    stop(server).await
}

/// The path and body of a `kind` request; `messages*` and `responses*` go through the
/// Messages or Responses translation.
fn request_of(o: &Opts, kind: &str) -> Result<(&'static str, Bytes)> {
    let stream = kind.ends_with("stream");
    Ok(if kind.starts_with("messages") {
        ("/v1/messages", messages_body(&o.shape, "openrouter/free", stream)?)
    } else if kind.starts_with("responses") {
        ("/v1/responses", responses_body(&o.shape, "openrouter/free", stream)?)
    } else if kind == "embeddings" {
        ("/api/v1/embeddings", embeddings_body()?)
    } else {
        ("/api/v1/chat/completions", body(&o.shape, "openrouter/free", stream)?)
    })
}

/// One keep-alive connection: `warmup` requests, the barrier, then `counted` ones.
async fn connection(
    addr: SocketAddr,
    path: &'static str,
    body: Bytes,
    warmup: usize,
    counted: usize,
    warmed: Arc<Barrier>,
) -> Result<()> {
    let mut waited = false;
    let sent = send(addr, path, &body, warmup, counted, &warmed, &mut waited).await;
    // Every connection passes the barrier once, failed or done without counted
    // requests, so that the others are not left waiting.
    if !waited {
        warmed.wait().await;
    }
    sent
}

/// Sends the requests in turn, waiting at the barrier (`waited` set) before the counted
/// ones; a request answered with other than success fails the connection.
async fn send(
    addr: SocketAddr,
    path: &'static str,
    body: &Bytes,
    warmup: usize,
    counted: usize,
    warmed: &Barrier,
    waited: &mut bool,
) -> Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let host = addr.to_string();
    for i in 0..warmup + counted {
        if i == warmup {
            *waited = true;
            warmed.wait().await;
        }
        let req = Request::post(path)
            .header("host", &host)
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let text = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("request {i} answered {status}: {}", String::from_utf8_lossy(&text));
        }
    }
    Ok(())
}

/// SIGTERM, then waits for the server to exit (so that a wrapping profiler writes its
/// counts), at most [`READY_TIMEOUT`].
async fn stop(mut server: Server) -> Result<()> {
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status()?;
    if !status.success() {
        bail!("kill -TERM failed");
    }
    let deadline = Instant::now() + READY_TIMEOUT;
    while server.child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            bail!("the server did not exit within {READY_TIMEOUT:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
