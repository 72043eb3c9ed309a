//! Hostile clients and a hostile upstream, over raw loopback sockets: slow or half-sent
//! heads and bodies are cut off, oversized or oddly framed requests are refused before
//! their body is read, connections over the cap get a 503, and upstream answers that are
//! too large, never end a line, are not JSON or are compressed are failed attempts that
//! fall back to another model.

use crate::support::{FREE_TEXT_MODELS, Reply, client, install_crypto, test_config};
use fake_upstream::{Behaviour, FakeUpstream};
use router_server::{Config, ServeLimits, Server};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous bound for anything that must happen "promptly": only a hang fails it.
const PROMPTLY: Duration = Duration::from_secs(20);

/// A server run with the configuration's client-side limits.
struct Hardened {
    upstream: FakeUpstream,
    server: Server,
    addr: std::net::SocketAddr,
    _stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Hardened {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(edit: impl FnOnce(&mut Config)) -> Hardened {
    install_crypto();
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(&upstream.base_url(), dir.path());
    edit(&mut config);
    let server = router_server::build(&config).expect("server builds");
    assert_eq!(server.catalogs.refresh("openrouter").await, Some(true), "catalog from the fake upstream");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let limits = ServeLimits::from_config(&config, server.state.metrics.serve.clone());
    let app = router_server::app(server.state.clone());
    let signal = async move {
        let _ = rx.await;
    };
    let task =
        tokio::spawn(router_server::run_with_limits(listener, app, signal, config.shutdown_grace_secs.get(), limits));
    Hardened { upstream, server, addr, _stop: tx, task, _dir: dir }
}

impl Hardened {
    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    /// A chat request through an HTTP client, read whole.
    async fn chat(&self, body: &str) -> Reply {
        let resp = client()
            .post(format!("http://{}/api/v1/chat/completions", self.addr))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        Reply::read(resp).await
    }

    async fn metrics(&self) -> String {
        let resp = client().get(format!("http://{}/metrics", self.addr)).send().await.expect("metrics");
        resp.text().await.expect("metrics text")
    }
}

/// Everything the server sends until it closes the connection (or `PROMPTLY` passes:
/// then the test fails), and how long that took.
async fn read_to_close(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(PROMPTLY, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server left the connection open: {}", String::from_utf8_lossy(&out));
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

/// Reads one response head and the body it declares.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                return (head, body);
            }
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Asserts an OpenRouter-shaped error body with `code`.
#[track_caller]
fn check_error_body(body: &str, code: u16) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not json ({e}): {body}"));
    assert_eq!(v["error"]["code"], code, "{body}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(v["error"]["metadata"].is_object(), "{body}");
}

fn one_second(c: &mut Config) {
    c.client_header_timeout_secs = router_settings::Seconds::new(1);
    c.client_body_timeout_secs = router_settings::Seconds::new(1);
}

#[tokio::test]
async fn a_half_sent_head_is_closed_within_the_header_timeout() {
    let s = start(one_second).await;
    // Timed from before the connection, so that the server's timer cannot have started
    // earlier than the test's (a slow moment between the two would shorten it).
    let started = Instant::now();
    let mut half = s.connect().await;
    half.write_all(b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-ty").await.expect("write");
    let mut silent = s.connect().await;
    read_to_close(&mut half).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "closed after {took:?}, before the timeout");
    read_to_close(&mut silent).await;
    // The server still serves.
    assert_eq!(s.chat(r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#).await.status, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let s = start(one_second).await;
    let mut conn = s.connect().await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("write");
    let (head, _) = read_response(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (rest, _) = read_to_close(&mut conn).await;
    assert!(rest.is_empty(), "{rest}");
}

#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    let s = start(one_second).await;
    let mut conn = s.connect().await;
    conn.write_all(
        b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"mod",
    )
    .await
    .expect("write");
    let (head, body) = read_response(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    check_error_body(&body, 408);
    read_to_close(&mut conn).await;
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    let s = start(|c| c.max_body_size = 1024 * 1024).await;
    // With `Expect: 100-continue`: a 413, never `100 Continue`.
    let mut conn = s.connect().await;
    conn.write_all(
        b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
          content-length: 999999999\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .expect("write");
    let (head, body) = read_response(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    check_error_body(&body, 413);
    // Without it: 30 MiB announced, 1 KiB sent, and the answer comes anyway.
    let mut conn = s.connect().await;
    let mut request =
        b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
          content-length: 31457280\r\n\r\n"
            .to_vec();
    request.extend_from_slice(&[b' '; 1024]);
    conn.write_all(&request).await.expect("write");
    let (head, body) = read_response(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    check_error_body(&body, 413);
    assert_eq!(s.upstream.total_calls(), 0);
}

#[tokio::test]
async fn transfer_codings_other_than_chunked_are_refused() {
    let s = start(|_| {}).await;
    let mut conn = s.connect().await;
    conn.write_all(
        b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
          transfer-encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await
    .expect("write");
    let (head, body) = read_response(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 501"), "{head}");
    check_error_body(&body, 501);
    assert_eq!(s.upstream.total_calls(), 0);
}

#[tokio::test]
async fn requests_that_cannot_be_parsed_get_openrouter_shaped_errors() {
    let s = start(|_| {}).await;
    let long_target = format!("GET /{} HTTP/1.1\r\nhost: localhost\r\n\r\n", "a".repeat(70_000));
    let many_fields = format!("GET /healthz HTTP/1.1\r\nhost: localhost\r\n{}\r\n", "x-filler: 1\r\n".repeat(200));
    for (request, status) in [
        ("GET /healthz HTTP/1.1\r\nbad header\r\n\r\n".to_owned(), 400),
        ("G\x01T /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n".to_owned(), 400),
        (long_target, 414),
        (many_fields, 431),
    ] {
        let mut conn = s.connect().await;
        conn.write_all(request.as_bytes()).await.expect("write");
        let (head, body) = read_response(&mut conn).await;
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
        check_error_body(&body, status);
        read_to_close(&mut conn).await;
    }
    // On a kept-alive connection too, after a good request.
    let mut conn = s.connect().await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("write");
    let (head, _) = read_response(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nbad header\r\n\r\n").await.expect("write");
    let (head, body) = read_response(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    check_error_body(&body, 400);
}

#[tokio::test]
async fn connections_over_the_cap_get_503_with_retry_after() {
    let s = start(|c| c.max_connections = 2).await;
    let held = [s.connect().await, s.connect().await];
    // Let the server accept both before the third arrives.
    let deadline = Instant::now() + PROMPTLY;
    while s.server.state.metrics.serve.open.load(std::sync::atomic::Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "the two connections were never accepted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut third = s.connect().await;
    let (head, body) = read_response(&mut third).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    check_error_body(&body, 503);
    drop(held);
    // Once they are gone, clients are served again.
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let mut conn = s.connect().await;
        conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("write");
        let (head, body) = read_response(&mut conn).await;
        if head.starts_with("HTTP/1.1 200") {
            assert!(body.contains("router_client_connections_refused_total"), "{body}");
            let refused = body
                .lines()
                .find_map(|l| l.strip_prefix("router_client_connections_refused_total "))
                .and_then(|v| v.parse::<u64>().ok());
            assert!(refused.is_some_and(|n| n >= 1), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {head}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A request for `first`, falling back to `FREE_TEXT_MODELS[5]` (which answers).
fn fallback_body(first: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{first}","models":["{}"],"stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#,
        FREE_TEXT_MODELS[5]
    )
}

/// `behaviour` on the first model makes the attempt fail and the second model answer.
async fn falls_back_from(behaviour: Behaviour, stream: bool) -> Hardened {
    let s = start(|_| {}).await;
    let first = FREE_TEXT_MODELS[0];
    s.upstream.set_behaviour(first, behaviour.clone());
    let reply = s.chat(&fallback_body(first, stream)).await;
    assert_eq!(reply.status, 200, "{behaviour:?}: {}", reply.text);
    assert_eq!(reply.header("x-router-model"), Some(FREE_TEXT_MODELS[5]), "{behaviour:?}");
    assert_eq!(reply.header("x-router-attempts"), Some("2"), "{behaviour:?}");
    assert!(reply.header("content-encoding").is_none());
    if stream {
        let events = reply.events();
        assert!(events.iter().all(|e| e["model"] == FREE_TEXT_MODELS[5]), "{}", reply.text);
    } else {
        assert_eq!(reply.json()["model"], FREE_TEXT_MODELS[5], "{}", reply.text);
    }
    assert_eq!(s.upstream.calls(first), 1);
    let metrics = s.metrics().await;
    let failed = format!("router_upstream_attempts_total{{model=\"{first}\",outcome=\"protocol\"}} 1");
    assert!(metrics.contains(&failed), "{behaviour:?}: `{failed}` not in\n{metrics}");
    s
}

#[tokio::test]
async fn a_64_mib_answer_is_a_failed_attempt_that_falls_back() {
    // Chunked: read up to the limit, then given up on.
    let s = falls_back_from(Behaviour::HugeBody { bytes: 64 << 20, declared: false }, false).await;
    // The router stopped reading rather than taking it all in.
    assert_eq!(s.upstream.open_connections_closed(), 1);
    // With a declared length: refused from the head alone.
    falls_back_from(Behaviour::HugeBody { bytes: 64 << 20, declared: true }, false).await;
    // The same for a stream request answered with JSON.
    falls_back_from(Behaviour::HugeBody { bytes: 64 << 20, declared: false }, true).await;
}

#[tokio::test]
async fn an_unterminated_32_mib_sse_line_falls_back_before_the_first_byte() {
    let s = falls_back_from(Behaviour::EndlessLine { bytes: 32 << 20 }, true).await;
    assert_eq!(s.upstream.open_connections_closed(), 1, "the router stopped reading the endless line");
}

#[tokio::test]
async fn an_html_page_with_200_falls_back() {
    falls_back_from(Behaviour::Html, false).await;
    falls_back_from(Behaviour::Html, true).await;
}

/// An upstream that compresses although asked not to: gzip, br, deflate and zstd answers
/// (JSON and streams) are decoded and reach the client readable, never as their bytes;
/// an encoding nothing can decode is a failed attempt that falls back.
#[tokio::test]
async fn compressed_answers_are_decoded() {
    let s = start(|_| {}).await;
    let model = FREE_TEXT_MODELS[0];
    for encoding in ["gzip", "br", "deflate", "zstd"] {
        s.upstream.set_behaviour(model, Behaviour::Compressed { encoding: encoding.to_owned() });
        for stream in [false, true] {
            let body =
                format!(r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#);
            let reply = s.chat(&body).await;
            assert_eq!(reply.status, 200, "{encoding} {stream}: {}", reply.text);
            assert!(reply.header("content-encoding").is_none(), "{encoding}: {:?}", reply.headers);
            assert_eq!(reply.header("x-router-attempts"), Some("1"), "{encoding} {stream}");
            let text = if stream {
                reply.events().iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect::<String>()
            } else {
                reply.json()["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned()
            };
            assert_eq!(text, format!("hello from {model}"), "{encoding} {stream}");
        }
    }
    // The router still asks for bodies it can pass on as they are.
    let asked = s.upstream.requests();
    assert!(
        asked.iter().all(|r| r.headers.iter().any(|(k, v)| k == "accept-encoding" && v == "identity")),
        "{:?}",
        asked.iter().map(|r| &r.headers).collect::<Vec<_>>()
    );
    falls_back_from(Behaviour::Compressed { encoding: "compress".to_owned() }, false).await;
}

#[tokio::test]
async fn unreadable_json_with_200_falls_back() {
    falls_back_from(Behaviour::Status { status: 200, body: "{\"choices\":[".into() }, false).await;
}

/// Asserts that `reply` is a well-formed answer from `model`, or a well-formed error.
#[track_caller]
fn well_formed(reply: &Reply, stream: bool, model: &str) -> bool {
    assert!(reply.header("content-encoding").is_none(), "{:?}", reply.headers);
    if reply.status != 200 {
        assert!([429, 502, 503, 504].contains(&reply.status), "{}: {}", reply.status, reply.text);
        check_error_body(&reply.text, reply.status);
        return false;
    }
    if stream {
        assert!(reply.text.trim_end().ends_with("data: [DONE]"), "{}", reply.text);
        let events = reply.events();
        assert!(!events.is_empty() && events.iter().all(|e| e["model"] == model), "{}", reply.text);
    } else {
        assert_eq!(reply.json()["model"], model, "{}", reply.text);
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_with_hostile_answers_sprinkled_in_ends_well_formed_and_serving() {
    let s = start(|c| {
        c.max_attempts = 6;
        c.max_answer_size = 256 * 1024;
        c.max_sse_line = 64 * 1024;
    })
    .await;
    let hostile = [
        Behaviour::HugeBody { bytes: 2 << 20, declared: false },
        Behaviour::EndlessLine { bytes: 2 << 20 },
        Behaviour::Html,
        Behaviour::Compressed { encoding: "compress".to_owned() },
        Behaviour::Status { status: 200, body: "{\"choices\":[{".into() },
    ];
    for (model, b) in FREE_TEXT_MODELS.iter().zip(hostile) {
        s.upstream.set_behaviour(model, b);
    }
    let healthy = FREE_TEXT_MODELS[5];
    let s = std::sync::Arc::new(s);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let stream = i % 2 == 0;
                let body = format!(
                    r#"{{"model":"openrouter/free","stream":{stream},"messages":[{{"role":"user","content":"hi {i}"}}]}}"#
                );
                (stream, s.chat(&body).await)
            })
        })
        .collect();
    let mut served = 0;
    for t in tasks {
        let (stream, reply) = t.await.expect("request task");
        served += usize::from(well_formed(&reply, stream, healthy));
    }
    assert!(served >= 100, "only {served} of 200 were served by the healthy model");
    // Still serving, and the healthy model answers.
    let reply = s.chat(&fallback_body(healthy, false)).await;
    assert!(well_formed(&reply, false, healthy), "{}", reply.text);
}

/// DNS rebinding: a router on loopback answers only requests that name it by an IP
/// address or `localhost`; a page whose own name resolves to 127.0.0.1 gets a 403 before
/// anything is routed or shown.
#[tokio::test]
async fn a_loopback_router_refuses_foreign_host_names() {
    const HI: &str = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#;
    let s = start(|_| {}).await;
    for (host, status) in
        [("attacker.example", 403), ("localhost.attacker.example:80", 403), ("localhost", 200), ("127.0.0.1", 200)]
    {
        let mut conn = s.connect().await;
        let request = format!(
            "POST /api/v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{HI}",
            HI.len()
        );
        conn.write_all(request.as_bytes()).await.expect("write");
        let (head, body) = read_response(&mut conn).await;
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{host}: {head}\n{body}");
        if status == 403 {
            check_error_body(&body, 403);
            assert!(body.contains("allowed_hosts"), "{body}");
        }
    }
    assert_eq!(s.upstream.total_calls(), 2, "only the two requests naming the router reached upstream");
}
