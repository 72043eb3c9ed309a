//! The binary under pressure, as a child process so that its own descriptors and memory
//! can be limited and measured: out of descriptors, a request is answered 503 with
//! `Retry-After` and charges neither the quota nor the model; a 64 MiB answer and an
//! unterminated 32 MiB SSE line leave its peak memory bounded.
#![cfg(target_os = "linux")]

use fake_upstream::{Behaviour, FakeUpstream};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_router-server");
const KEY: &str = "sk-or-v1-exhaustion0test0key";
const CHAT: &str = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#;

/// A running router-server child, killed when dropped.
struct Running {
    child: Child,
    addr: String,
    /// The child's log lines after `listening`.
    logs: std::sync::mpsc::Receiver<String>,
    _home: tempfile::TempDir,
}

impl Running {
    /// Waits (bounded) for a log line containing `needle`.
    fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = self.logs.recv_timeout(Duration::from_millis(100))
                && line.contains(needle)
            {
                return;
            }
        }
        panic!("no log line with `{needle}`");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary against `upstream` (one serving thread, JSON logs), under `sh`'s
/// `ulimit -n` when `open_files` is given, and waits for its `listening` line.
fn start(upstream: &FakeUpstream, open_files: Option<u32>, args: &[&str]) -> Running {
    let home = tempfile::tempdir().expect("temp dir");
    let mut script = String::new();
    if let Some(n) = open_files {
        script.push_str(&format!("ulimit -n {n} && "));
    }
    script.push_str("exec \"$0\" \"$@\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .args(["--listen", "127.0.0.1:0", "--openrouter-base-url", &upstream.base_url(), "--log-format", "json"])
        .args(["--data-dir", &home.path().join("data").display().to_string()])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("OPENROUTER_API_KEY", KEY)
        .env("ROUTER_WORKER_THREADS", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start router-server");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        // Drained to the end, so that the child never writes into a closed pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else { continue };
        seen.push_str(&line);
        seen.push('\n');
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["message"] == "listening"
        {
            let addr = v["addr"].as_str().expect("addr").to_owned();
            return Running { child, addr, logs: rx, _home: home };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("router-server never listened:\n{seen}");
}

/// One HTTP/1.1 exchange on `conn`: the head of the answer and its body.
async fn exchange(conn: &mut TcpStream, request: &str) -> (String, String) {
    conn.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok());
            if let Some(length) = length
                && buf.len() >= end + 4 + length
            {
                return (head, String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned());
            }
        }
        let n = tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await.expect("an answer").expect("read");
        assert!(n > 0, "closed before a whole answer: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn metrics(addr: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let (head, body) = exchange(&mut conn, "GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_a_request_gets_503_and_charges_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, Some(64), &["--max-connections", "1000", "--per-day", "50"]);
    let addr = server.addr.clone();
    // Accepted first, before the descriptors run out. The router may hold a pooled
    // upstream connection (from its look-ups); a slow stream keeps it busy, so that the
    // next request needs a socket of its own.
    upstream.set_default_behaviour(Behaviour::SlowStream { chunks: 4, gap: Duration::from_secs(1) });
    let mut conns = Vec::new();
    for _ in 0..6 {
        let mut conn = TcpStream::connect(&addr).await.expect("connect");
        let (head, _) = exchange(&mut conn, "GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        conns.push(conn);
    }
    // Then idle connections until the server can accept no more.
    let mut idle = Vec::new();
    for _ in 0..80 {
        idle.push(TcpStream::connect(&addr).await.expect("connect (the backlog takes what is not accepted)"));
    }
    tokio::task::block_in_place(|| server.wait_for_log("cannot accept a client connection"));
    // Slow streams, one after the other: each is served over an idle pooled upstream
    // connection while there is one, then refused for want of a socket.
    let stream = CHAT.replace("\"messages\"", "\"stream\":true,\"messages\"");
    let (mut served, mut refused) = (0, 0);
    for conn in &mut conns {
        conn.write_all(post("/api/v1/chat/completions", &stream).as_bytes()).await.expect("write");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n =
                tokio::time::timeout(Duration::from_secs(60), conn.read(&mut byte)).await.expect("head").expect("read");
            assert!(n == 1, "closed: {}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if head.starts_with("HTTP/1.1 200") {
            served += 1;
            continue;
        }
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse::<usize>().ok())
            .expect("a length");
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"]["code"], 503, "{v}");
        assert_eq!(v["error"]["metadata"]["error_type"], "local_resource", "{v}");
        refused += 1;
    }
    assert!(refused >= 1, "every request found an upstream connection");
    assert_eq!(upstream.total_calls(), served, "nothing else reached upstream");
    drop(idle);
    drop(conns);
    // Descriptors back: the metrics say what happened, and nothing was charged.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = metrics(&addr).await;
        if metric(&text, "router_local_resource_errors_total{where=\"accept\"}").is_some_and(|n| n >= 1.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "accept failures never counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        metric(&text, "router_local_resource_errors_total{where=\"upstream\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let charged = f64::from(u32::try_from(served).expect("a handful"));
    assert_eq!(metric(&text, "router_quota_used{window=\"day\"}"), Some(charged), "{text}");
    assert_eq!(metric(&text, "router_quota_used{window=\"minute\"}"), Some(charged), "{text}");
    assert!(!text.contains("outcome=\"connection\""), "no model was blamed:\n{text}");
    // And it serves again.
    let mut conn = TcpStream::connect(&addr).await.expect("connect");
    let (head, body) = exchange(&mut conn, &post("/api/v1/chat/completions", CHAT)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
}

/// The child's resident memory now and at its peak (`VmRSS`, `VmHWM`), in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("a number")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_answers_leave_the_router_memory_bounded() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = FakeUpstream::start().await;
    upstream.set_default_behaviour(Behaviour::HugeBody { bytes: 64 << 20, declared: false });
    let server = start(&upstream, None, &["--max-attempts", "1", "--per-day", "0", "--per-minute", "0"]);
    let mut conn = TcpStream::connect(&server.addr).await.expect("connect");
    let (head, _) = exchange(&mut conn, "GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (before, _) = rss_kib(server.child.id());

    let (head, body) = exchange(&mut conn, &post("/api/v1/chat/completions", CHAT)).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}\n{body}");
    assert!(body.contains("larger than the limit"), "{body}");
    let (_, peak) = rss_kib(server.child.id());
    // Reading the whole answer alone would take 64 MiB; bounded, it stops at 32 MiB.
    assert!(peak.saturating_sub(before) < 48 * 1024, "peak RSS grew by {} KiB", peak - before);

    upstream.set_default_behaviour(Behaviour::EndlessLine { bytes: 32 << 20 });
    let stream = CHAT.replace("\"messages\"", "\"stream\":true,\"messages\"");
    let (head, body) = exchange(&mut conn, &post("/api/v1/chat/completions", &stream)).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}\n{body}");
    assert!(body.contains("SSE line longer than"), "{body}");
    let (_, peak) = rss_kib(server.child.id());
    assert!(peak.saturating_sub(before) < 48 * 1024, "peak RSS grew by {} KiB", peak - before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_does_not_stop_the_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = FakeUpstream::start().await;
    let home = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--openrouter-base-url", &upstream.base_url(), "--log-format", "json"])
        .args(["--data-dir", &home.path().join("data").display().to_string()])
        .env_clear()
        .env("HOME", home.path())
        .env("ROUTER_WORKER_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start router-server");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines.next().expect("a log line").expect("read");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["message"] == "listening"
        {
            break v["addr"].as_str().expect("addr").to_owned();
        }
    };
    // The supervisor's end of the log pipe goes away: every later log line fails.
    drop(lines);
    for _ in 0..3 {
        let mut conn = TcpStream::connect(&addr).await.expect("connect");
        let (head, body) = exchange(&mut conn, &post("/api/v1/chat/completions", CHAT)).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    }
    assert!(child.try_wait().expect("status").is_none(), "the server stopped");
    let _ = child.kill();
    let _ = child.wait();
}

/// Opens `n` streams at once and reads each to its end.
async fn streams(addr: String, n: usize) -> usize {
    let body = CHAT.replace("\"messages\"", "\"stream\":true,\"messages\"");
    let request = post("/api/v1/chat/completions", &body).replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n");
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (addr, request) = (addr.clone(), request.clone());
            tokio::spawn(async move {
                let mut conn = TcpStream::connect(&addr).await.ok()?;
                conn.write_all(request.as_bytes()).await.ok()?;
                let mut answer = Vec::new();
                conn.read_to_end(&mut answer).await.ok()?;
                answer.starts_with(b"HTTP/1.1 200").then_some(())
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(matches!(t.await, Ok(Some(()))));
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_goes_back_after_a_burst_of_streams() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = FakeUpstream::start().await;
    upstream.set_recording(false);
    upstream.set_default_behaviour(Behaviour::SlowStream { chunks: 4, gap: Duration::from_millis(1500) });
    let server = start(&upstream, None, &["--per-day", "0", "--per-minute", "0"]);
    let pid = server.child.id();
    let (idle, _) = rss_kib(pid);
    let burst = tokio::spawn(streams(server.addr.clone(), 2000));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (during, _) = rss_kib(pid);
    assert_eq!(burst.await.expect("burst"), 2000, "every stream was served");
    assert!(during > idle + 40 * 1024, "the burst should have cost memory: idle {idle} KiB, during {during} KiB");
    // A trickle of requests, as a live server gets, while the allocator gives back.
    let deadline = Instant::now() + Duration::from_secs(90);
    let after = loop {
        let mut conn = TcpStream::connect(&server.addr).await.expect("connect");
        let (head, _) = exchange(&mut conn, "GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let (now, _) = rss_kib(pid);
        if now < idle + 24 * 1024 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(after < idle + 24 * 1024, "RSS stayed at {after} KiB (idle {idle} KiB, during the burst {during} KiB)");
}

#[test]
fn a_data_dir_that_is_a_file_is_one_clear_message() {
    let home = tempfile::tempdir().expect("temp dir");
    let file = home.path().join("data");
    std::fs::write(&file, "not a directory").expect("write");
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--openrouter-base-url", "http://127.0.0.1:9/api/v1"])
        .args(["--data-dir", &file.display().to_string()])
        .env_clear()
        .env("HOME", home.path())
        .output()
        .expect("run router-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let needle = "is a file, not a directory";
    assert!(stderr.contains(needle), "{stderr}");
    for line in stderr.lines() {
        assert!(line.matches(needle).count() <= 1, "said twice: {line}");
        assert!(!line.contains("cannot move"), "{line}");
    }
}

/// Issue 28's probe: 100 requests whose client-sized strings are 20 MB each (`model`,
/// `models`, `user`, and a member that is forwarded) and a few live-events subscribers
/// that never read. Refused or answered, none of it is kept: the decision log and the
/// events hold only bounded strings, so the router stays far under 100 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sized_strings_leave_the_router_memory_bounded() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, None, &["--per-day", "0", "--per-minute", "0", "--max-body-size", "25000000"]);
    let pid = server.child.id();
    // Subscribers that never read a byte after their request.
    let mut idle_subscribers = Vec::new();
    for _ in 0..8 {
        let mut conn = TcpStream::connect(&server.addr).await.expect("connect");
        conn.write_all(b"GET /api/v1/router/events HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("write");
        idle_subscribers.push(conn);
    }
    let huge = "x".repeat(20_000_000);
    let bodies = [
        format!(r#"{{"model":"{huge}","messages":[{{"role":"user","content":"hi"}}]}}"#),
        format!(r#"{{"models":["{huge}"],"messages":[{{"role":"user","content":"hi"}}]}}"#),
        format!(r#"{{"user":"{huge}","messages":[{{"role":"user","content":"hi"}}]}}"#),
        // Forwarded whole: an unknown member goes upstream as sent.
        format!(r#"{{"model":"openrouter/free","messages":[{{"role":"user","content":"hi"}}],"x_blob":"{huge}"}}"#),
    ];
    let mut conn = TcpStream::connect(&server.addr).await.expect("connect");
    for i in 0..100 {
        let body = &bodies[i % bodies.len()];
        let (head, answer) = exchange(&mut conn, &post("/api/v1/chat/completions", body)).await;
        if i % bodies.len() == 3 {
            assert!(head.starts_with("HTTP/1.1 200"), "a big prompt is routed: {head}\n{answer}");
        } else {
            assert!(head.starts_with("HTTP/1.1 400"), "{head}\n{answer}");
            assert!(answer.contains("is longer than 256 bytes") && answer.len() < 1024, "{answer}");
        }
    }
    let (head, recent) = exchange(
        &mut TcpStream::connect(&server.addr).await.expect("connect"),
        "GET /api/v1/router/status HTTP/1.1\r\nhost: localhost\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(recent.len() < 1_000_000, "the status page holds no client-sized string: {} bytes", recent.len());
    // jemalloc's background threads hand freed memory back within seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rss = loop {
        let (now, _) = rss_kib(pid);
        if now < 100 * 1024 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("RSS after 100 requests with 20 MB fields: {rss} KiB");
    assert!(rss < 100 * 1024, "RSS {rss} KiB after 100 requests with 20 MB fields");
    drop(idle_subscribers);
}

/// Upstreams (or proxies) that echo what they were sent: the catalog's refresh error and
/// a chat error quote the `Authorization` header and a URL password. The binary's log
/// lines (JSON, `info`) never hold the key or the password, only their redactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_keys_reach_no_log_line() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = FakeUpstream::start().await;
    let echo = format!("denied: Authorization: Bearer {KEY} via http://user:hunter2@proxy.test/api");
    upstream.set_models_error(500, format!(r#"{{"error":{{"message":"{echo}"}}}}"#));
    let body = serde_json::json!({"error": {"code": 500, "message": echo, "metadata": {"raw": echo}}}).to_string();
    upstream.set_default_behaviour(Behaviour::Status { status: 500, body });
    let server = start(&upstream, None, &["--max-attempts", "2", "--per-day", "0", "--per-minute", "0"]);
    let mut conn = TcpStream::connect(&server.addr).await.expect("connect");
    for _ in 0..3 {
        let (head, answer) = exchange(&mut conn, &post("/api/v1/chat/completions", CHAT)).await;
        assert!(!head.starts_with("HTTP/1.1 200"), "{head}\n{answer}");
        assert!(!answer.contains(KEY) && !answer.contains("hunter2"), "{answer}");
    }
    // The background refresh has failed by now (the fake counts it), and every line is in.
    let deadline = Instant::now() + Duration::from_secs(30);
    while upstream.models_fetches() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines: Vec<String> = server.logs.try_iter().collect();
    let all = lines.join("\n");
    assert!(upstream.models_fetches() > 0 && lines.len() >= 3, "{all}");
    assert!(all.contains("***"), "the echo is logged redacted:\n{all}");
    assert!(!all.contains(KEY) && !all.contains("hunter2"), "a secret in the log:\n{all}");
}
