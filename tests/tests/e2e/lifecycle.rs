//! Seeds and reproducibility, graceful shutdown, and the upstream key kept out of
//! every log line, response and metric.

use crate::support::*;
use fake_upstream::{Behaviour, FakeUpstream};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// The SDK's text request without `user`: a `user` keys a sticky session (one model
/// whatever the seed), and these tests are about the seeded uniform pick.
const UNKEYED_TEXT: &str = r#"{"messages": [{"role": "user", "content": "Say hello."}], "model": "openrouter/free", "max_completion_tokens": 64}"#;

/// The models that answer `n` sequential text requests on a fresh server with `seed`.
async fn sequence(seed: Option<u64>, n: usize) -> Vec<String> {
    let s = start_with(FakeUpstream::start().await, |c| c.seed = seed).await;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let r = s.chat(UNKEYED_TEXT).await;
        assert_eq!(r.status, 200, "{}", r.text);
        out.push(r.header("x-router-model").expect("model header").to_owned());
    }
    out
}

#[tokio::test]
async fn a_configured_seed_repeats_the_sequence_of_picks() {
    let a = sequence(Some(42), 16).await;
    let b = sequence(Some(42), 16).await;
    assert_eq!(a, b);
    let distinct: std::collections::BTreeSet<&String> = a.iter().collect();
    assert!(distinct.len() > 1, "picks vary along the sequence: {a:?}");
    assert_ne!(sequence(Some(43), 16).await, a, "another seed, another sequence");
}

#[tokio::test]
async fn the_seed_header_makes_one_pick_a_function_of_the_seed() {
    let s = start().await;
    let other = start().await;
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..24u64 {
        let h = seed.to_string();
        let first = s.post("/api/v1/chat/completions", UNKEYED_TEXT, &[("x-router-seed", &h)]).await;
        let again = s.post("/api/v1/chat/completions", UNKEYED_TEXT, &[("x-router-seed", &h)]).await;
        let elsewhere = other.post("/api/v1/chat/completions", UNKEYED_TEXT, &[("x-router-seed", &h)]).await;
        let model = first.header("x-router-model").expect("model").to_owned();
        assert_eq!(again.header("x-router-model"), Some(model.as_str()), "seed {seed}");
        assert_eq!(elsewhere.header("x-router-model"), Some(model.as_str()), "seed {seed} on another server");
        seen.insert(model);
    }
    assert!(seen.len() > 2, "seeds spread over the candidates: {seen:?}");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let mut s = start().await;
    s.upstream.set_default_behaviour(Behaviour::SlowStream { chunks: 8, gap: Duration::from_millis(250) });
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = s.open_stream(SDK_STREAM).await.bytes_stream();
    let mut text = read_until(&mut stream, "tok0").await;
    s.begin_shutdown();
    // New connections are refused soon after the signal...
    let mut refused = false;
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the listener closed");
    // Give `run` time to return if it were not waiting (the stream has ~1.7 s to go).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.is_running(), "run waits for the stream in flight");
    // ...while the stream in flight runs to its end.
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.expect("the stream was not cut")));
    }
    for i in 0..8 {
        assert!(text.contains(&format!("tok{i} ")), "tok{i} missing: {text}");
    }
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    s.stop().await.expect("clean stop");
}

#[tokio::test]
async fn shutdown_has_a_deadline() {
    let mut s = start_with(FakeUpstream::start().await, |c| {
        c.shutdown_grace_secs = router_settings::Seconds::of(Duration::from_millis(300))
    })
    .await;
    s.upstream.set_default_behaviour(Behaviour::Hang);
    let client = s.client.clone();
    let url = s.url("/api/v1/chat/completions");
    let pending =
        tokio::spawn(
            async move { client.post(url).header("content-type", "application/json").body(SDK_TEXT).send().await },
        );
    for _ in 0..500 {
        if s.upstream.total_calls() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.upstream.total_calls(), 1, "the request is in flight upstream");
    // The upstream never answers; the server still stops once the grace period is over
    // (bounded well below the transport's 20 s first-byte timeout).
    tokio::time::timeout(Duration::from_secs(10), s.stop()).await.expect("stopped at the deadline").expect("ok");
    pending.abort();
}

#[tokio::test]
async fn the_upstream_key_never_leaks() {
    // A current-thread runtime: the server's tasks run on this thread, under this subscriber.
    let (logs, _guard) = capture_logs();
    let s = start().await;
    let echo = format!(
        r#"{{"error":{{"code":401,"message":"Invalid key {UPSTREAM_KEY}","metadata":{{"raw":"{UPSTREAM_KEY}"}}}}}}"#
    );
    s.upstream.set_behaviour(FREE_TEXT_MODELS[0], Behaviour::Status { status: 401, body: echo });
    s.upstream.set_behaviour(FREE_TEXT_MODELS[1], Behaviour::RateLimited { retry_after: None });
    s.upstream.set_behaviour(FREE_TEXT_MODELS[2], Behaviour::MidStreamError);
    let mut seen = String::new();
    let mut record = |r: &Reply| {
        seen.push_str(&format!("{} {:?} {}\n", r.status, r.headers, r.text));
    };
    for (i, model) in FREE_TEXT_MODELS.iter().enumerate() {
        let body =
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"stream":{}}}"#, i % 2 == 0);
        record(&s.chat(&body).await);
    }
    for body in [
        SDK_TEXT,
        SDK_STREAM,
        SDK_IMAGE,
        "{",
        r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#,
    ] {
        record(&s.chat(body).await);
        record(&s.post("/api/v1/router/explain", body, &[]).await);
    }
    for path in ["/api/v1/models", "/healthz", "/readyz", "/metrics", "/nowhere"] {
        record(&s.get(path).await);
    }
    seen.push_str(&format!("{:?}\n{}\n{:?}", s.config, s.config.describe(), s.server));
    let logs = logs.text();
    // The key was in play: upstream received it on every call.
    let auth = format!("Bearer {UPSTREAM_KEY}");
    assert!(s.upstream.requests().iter().all(|r| r.authorization.as_deref() == Some(auth.as_str())));
    let core = &UPSTREAM_KEY[8..];
    assert!(!seen.contains(core), "key in a response, the metrics or a debug print");
    assert!(!logs.contains(core), "key in the logs");
    assert!(seen.contains("Invalid key"), "upstream's message is kept, without the key: {seen}");
    // One structured line per request, with what the router did.
    let chat_lines: Vec<&str> =
        logs.lines().filter(|l| l.contains(" request ") && l.contains("/api/v1/chat/completions")).collect();
    assert_eq!(chat_lines.len(), FREE_TEXT_MODELS.len() + 5, "{logs}");
    let ok = chat_lines.iter().find(|l| l.contains("status=200")).expect("a routed request logged");
    for field in ["method=POST", "model=", "attempts=1", "total_us=", "overhead_us="] {
        assert!(ok.contains(field), "{field} missing: {ok}");
    }
}

#[tokio::test]
async fn an_unreadable_state_file_is_set_aside_and_the_server_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("state.json"), "{not json").expect("write state");
    let data = dir.path().to_owned();
    let s = start_with(FakeUpstream::start().await, |c| c.data_dir = Some(data)).await;
    assert_eq!(s.chat(SDK_TEXT).await.status, 200);
    let aside = std::fs::read_to_string(dir.path().join("state.json.unreadable")).expect("kept for inspection");
    assert_eq!(aside, "{not json");
    assert!(s.server.router.persist().expect("saved"), "a fresh state was written");
    let saved = std::fs::read_to_string(dir.path().join("state.json")).expect("new state");
    assert!(saved.contains("\"day\""), "{saved}");
}

#[tokio::test]
async fn with_no_network_and_no_cache_it_routes_from_the_embedded_catalog() {
    install_crypto();
    let dir = tempfile::tempdir().expect("temp dir");
    // A loopback port nobody listens on stands for "no network".
    let dead = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let config = test_config(&format!("http://{dead}/api/v1"), dir.path());
    let server = router_server::build(&config).expect("starts without network");
    assert_eq!(server.catalogs.refresh("openrouter").await, Some(false), "there is nothing to fetch");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = router_server::app(server.state.clone());
    let task = tokio::spawn(router_server::run_with_grace(
        listener,
        app,
        std::future::pending(),
        config.shutdown_grace_secs.get(),
    ));
    let http = client();

    let ready: Value = http.get(format!("{base}/readyz")).send().await.expect("readyz").json().await.expect("json");
    assert_eq!(ready["catalog"]["source"]["kind"], "embedded", "{ready}");
    let embedded = catalog_openrouter::embedded_snapshot();
    let now = server.state.router.now();
    let free: Vec<String> = embedded.free_models(now).map(|m| m.id.to_string()).collect();
    assert!(!free.is_empty());

    let explain = http
        .post(format!("{base}/api/v1/router/explain"))
        .header("content-type", "application/json")
        .body(SDK_TEXT)
        .send()
        .await
        .expect("explain");
    assert_eq!(explain.status(), 200);
    let e: Value = explain.json().await.expect("json");
    let pick = e["pick"].as_str().expect("a pick from the embedded catalog");
    assert!(free.iter().any(|f| f == pick), "{pick} not in {free:?}");

    // Forwarding fails (no network), cleanly, in OpenRouter's shape.
    let chat = http
        .post(format!("{base}/api/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(SDK_TEXT)
        .send()
        .await
        .expect("chat");
    assert_eq!(chat.status(), 502);
    let err: Value = chat.json().await.expect("json");
    assert_eq!(err["error"]["metadata"]["error_type"], "connection", "{err}");
    task.abort();
}
