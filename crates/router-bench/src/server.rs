//! The router under test as a child process, and what `/proc` says of it and of the fake
//! upstream's thread (CPU time, RSS).

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long the driver waits for the router to report the live catalog: long enough for a
/// server started under valgrind.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a stopped server is given to exit after SIGTERM (a profiler wrapping it
/// writes its output then) before it is killed.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The name of the fake upstream's thread (at most 15 bytes: the kernel's `comm`).
pub(crate) const UPSTREAM_THREAD: &str = "bench-upstream";

/// User + system CPU time of this process's threads named [`UPSTREAM_THREAD`].
pub(crate) fn upstream_cpu_time() -> Result<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        // A thread may end between the listing and the read: skip it.
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else { continue };
        if comm.trim_end() == UPSTREAM_THREAD
            && let Ok(stat) = std::fs::read_to_string(dir.join("stat"))
        {
            total += stat_cpu_time(&stat)?;
        }
    }
    Ok(total)
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) _dir: TempDir,
}

impl Drop for Server {
    /// SIGTERM, so that a profiler wrapping the server (`--server`) writes its output, and
    /// SIGKILL if it has not exited within [`STOP_TIMEOUT`].
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `binary` against `upstream`, trusting `ca_pem` (an HTTPS fake's CA) through
/// `extra_ca_cert`; `name` tells apart the scratch directories of two servers.
pub(crate) async fn start_server(
    binary: &std::path::Path,
    name: &str,
    upstream: &str,
    ca_pem: Option<&str>,
) -> Result<Server> {
    let dir = std::env::temp_dir().join(format!("fmr-bench-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut command = Command::new(binary);
    if let Some(pem) = ca_pem {
        let path = dir.join("fake-upstream-ca.pem");
        std::fs::write(&path, pem).context("writing the fake upstream's CA certificate")?;
        command.env("ROUTER_EXTRA_CA_CERT", path);
    }
    let child = command
        .args(["--listen", &addr.to_string(), "--seed", "42"])
        .env("OPENROUTER_BASE_URL", upstream)
        .env("OPENROUTER_API_KEY", "sk-bench-not-a-real-key")
        .env("ROUTER_PER_MINUTE", "0")
        .env("ROUTER_PER_DAY", "0")
        .env("ROUTER_DATA_DIR", &dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let server = Server { child, addr, _dir: TempDir(dir) };
    // Ready once the live catalog from the fake upstream is loaded.
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(body) = get(addr, "/readyz").await
            && body.contains("live")
        {
            return Ok(server);
        }
        if Instant::now() > deadline {
            bail!("router-server did not become ready with the live catalog within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = Request::get(path).header("host", addr.to_string()).body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// User + system CPU time of a process, from `/proc/<pid>/stat`.
pub(crate) fn cpu_time(pid: u32) -> Result<Duration> {
    stat_cpu_time(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// User + system CPU time from the text of a `/proc/.../stat` file.
pub(crate) fn stat_cpu_time(stat: &str) -> Result<Duration> {
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?;
    // The kernel reports in USER_HZ, which is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

/// `VmRSS` or `VmHWM` of a process, in KiB.
pub(crate) fn memory_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("{field} missing"))?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}
