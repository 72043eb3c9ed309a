//! `--profile`: a fixed number of requests, then a graceful stop, for counting tools
//! wrapped around the server.

use crate::opts::Opts;
use crate::server::{READY_TIMEOUT, Server};
use crate::surface::{body, embeddings_body, messages_body, responses_body};
use anyhow::{Result, bail};
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Requests `--profile` sends before the counted ones (connection set-up, first-use
/// allocations), so that the run with `--requests 0` carries the same fixed cost.
pub(crate) const PROFILE_WARMUP: usize = 50;

/// `--profile`: a fixed number of requests of one kind through the router, spread over
/// `--profile-connections` keep-alive connections (one by default), then a graceful stop
/// (SIGTERM), so that a profiler wrapping the server (valgrind, strace) writes its counts
/// on the way out.
pub(crate) async fn profile(o: &Opts, kind: &str, mut server: Server) -> Result<()> {
    let stream = kind.ends_with("stream");
    // `messages*` and `responses*` go through the Messages or Responses translation.
    let (path, body) = if kind.starts_with("messages") {
        ("/v1/messages", messages_body(&o.shape, "openrouter/free", stream)?)
    } else if kind.starts_with("responses") {
        ("/v1/responses", responses_body(&o.shape, "openrouter/free", stream)?)
    } else if kind == "embeddings" {
        ("/api/v1/embeddings", embeddings_body()?)
    } else {
        ("/api/v1/chat/completions", body(&o.shape, "openrouter/free", stream)?)
    };
    let conns = o.profile_connections;
    let started = Instant::now();
    // Each connection sends its share of the warm-up, then of the counted requests; the
    // counted ones start once every connection has finished its warm-up.
    let warmed = std::sync::Arc::new(tokio::sync::Barrier::new(conns + 1));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let share = |n: usize| n / conns + usize::from(c < n % conns);
        let (warmup, counted) = (share(PROFILE_WARMUP), share(o.requests));
        let (addr, body, warmed) = (server.addr, body.clone(), warmed.clone());
        tasks.push(tokio::spawn(async move {
            let mut waited = false;
            let sent = async {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
                tokio::spawn(conn);
                let host = addr.to_string();
                for i in 0..warmup + counted {
                    if i == warmup {
                        waited = true;
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
                anyhow::Ok(())
            }
            .await;
            // Every connection passes the barrier once, failed or done without counted
            // requests, so that the others are not left waiting.
            if !waited {
                warmed.wait().await;
            }
            sent
        }));
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
