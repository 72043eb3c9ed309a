//! Every error a client can meet, always in OpenRouter's shape with the matching status,
//! and a server that keeps serving whatever it is sent.

use crate::support::*;
use fake_upstream::{Behaviour, FakeUpstream};

const HI: &str = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#;

fn with_model(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

#[tokio::test]
async fn bad_requests_are_refused_in_openrouter_shape() {
    let s = start().await;
    let cases: [(&str, u16, &str); 9] = [
        ("{\"messages\": [", 400, "not valid json"),
        ("[1, 2]", 400, "must be a json object"),
        ("\"hello\"", 400, "must be a json object"),
        (r#"{"model":"openrouter/free"}"#, 400, "`messages` is required"),
        (r#"{"model":"openrouter/free","messages":[]}"#, 400, "`messages` is required"),
        (r#"{"messages":[1]}"#, 400, "`messages[0]` must be an object"),
        (r#"{"model":5,"messages":[{"role":"user","content":"hi"}]}"#, 400, "`model` must be a string"),
        (r#"{"stream":"yes","messages":[{"role":"user","content":"hi"}]}"#, 400, "`stream` must be a boolean"),
        ("", 400, "not valid json"),
    ];
    for (body, status, needle) in cases {
        s.chat(body).await.check_error(status, needle);
    }
    s.post("/api/v1/chat/completions", HI, &[("x-router-seed", "-1")]).await.check_error(400, "x-router-seed");
    s.post("/api/v1/router/explain?seed=abc", HI, &[]).await.check_error(400, "seed");
    assert_eq!(s.upstream.total_calls(), 0, "nothing refused reaches upstream");
    assert_eq!(s.chat(HI).await.status, 200, "still serving");
}

#[tokio::test]
async fn content_type_and_size() {
    let upstream = FakeUpstream::start().await;
    let s = start_with(upstream, |c| c.max_body_size = 64 * 1024).await;
    let send = |ct: Option<&'static str>, body: Vec<u8>| {
        let mut req = s.client.post(s.url("/api/v1/chat/completions")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        async move { Reply::read(req.send().await.expect("request sent")).await }
    };
    send(Some("text/plain"), HI.into()).await.check_error(415, "application/json");
    send(Some("application/x-www-form-urlencoded"), HI.into()).await.check_error(415, "application/json");
    send(None, HI.into()).await.check_error(415, "no content type");
    assert_eq!(send(Some("application/json; charset=utf-8"), HI.into()).await.status, 200);

    // Over the limit, with a length header and chunked without one.
    let big = format!(r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(100 * 1024));
    send(Some("application/json"), big.clone().into_bytes()).await.check_error(413, "65536 bytes");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.as_bytes().chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let streamed = s
        .client
        .post(s.url("/api/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .expect("request sent");
    Reply::read(streamed).await.check_error(413, "65536 bytes");
    // Just under the limit is fine.
    let fits = format!(r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(60 * 1024));
    assert_eq!(send(Some("application/json"), fits.into_bytes()).await.status, 200);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = start().await;
    s.get("/api/v1/chat/completions").await.check_error(405, "GET");
    s.get("/nowhere").await.check_error(404, "/nowhere");
    s.post("/healthz", "{}", &[]).await.check_error(405, "POST");
    s.post("/api/v1/completions", HI, &[]).await.check_error(404, "/api/v1/completions");
}

#[tokio::test]
async fn unknown_and_paid_models_are_refused_and_never_forwarded() {
    let s = start().await;
    s.chat(&with_model("nobody/nothing:free")).await.check_error(400, "not in the catalog");
    let paid = s.chat(&with_model(PAID_MODEL)).await;
    paid.check_error(400, "never forwards to a paid model");
    assert_eq!(paid.json()["error"]["metadata"]["error_type"], "paid_model_refused");
    s.chat(&with_model(ZERO_PRICED_MODEL)).await.check_error(400, "not a :free variant");
    s.chat(&with_model("openrouter/auto")).await.check_error(400, "");
    let listed = format!(
        r#"{{"models":["{PAID_MODEL}","{}"],"messages":[{{"role":"user","content":"hi"}}]}}"#,
        FREE_TEXT_MODELS[0]
    );
    s.chat(&listed).await.check_error(400, PAID_MODEL);
    // Even when every free model fails, the fallback never reaches a paid one.
    s.upstream.set_default_behaviour(Behaviour::Status { status: 503, body: "{}".into() });
    for _ in 0..4 {
        let r = s.chat(HI).await;
        assert!(r.status >= 400, "{}", r.text);
    }
    assert_eq!(s.upstream.calls(PAID_MODEL), 0);
    assert_eq!(s.upstream.calls(ZERO_PRICED_MODEL), 0);
    assert!(s.upstream.requests().iter().all(|r| r.model.ends_with(":free")));
}

#[tokio::test]
async fn no_free_model_meets_the_requirements() {
    let s = start().await;
    let body = SDK_IMAGE.replacen(
        r#""model":"openrouter/free","#,
        r#""model":"openrouter/free","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},"#,
        1,
    );
    let r = s.chat(&body).await;
    r.check_error(404, "no free model supports");
    let error = &r.json()["error"];
    let message = error["message"].as_str().expect("message");
    assert!(message.contains("image input") && message.contains("structured outputs"), "{message}");
    let reqs = error["metadata"]["requirements"].as_array().expect("requirements");
    assert!(reqs.iter().any(|x| x == "image input"), "{reqs:?}");
    assert_eq!(s.upstream.total_calls(), 0);
}

#[tokio::test]
async fn upstream_failures_keep_upstream_message() {
    let upstream = FakeUpstream::start().await;
    let s = start_with(upstream, |c| c.first_byte_timeout_secs = router_settings::Seconds::new(1)).await;

    let key_error = r#"{"error":{"code":401,"message":"User not found.","metadata":{}}}"#;
    s.upstream.set_default_behaviour(Behaviour::Status { status: 401, body: key_error.into() });
    s.chat(HI).await.check_error(401, "User not found.");
    assert_eq!(s.upstream.total_calls(), 1, "key errors are not retried");

    s.upstream.reset_counters();
    let overloaded = r#"{"error":{"code":502,"message":"Provider overloaded right now","metadata":{}}}"#;
    s.upstream.set_default_behaviour(Behaviour::Status { status: 502, body: overloaded.into() });
    let r = s.chat(HI).await;
    r.check_error(502, "Provider overloaded right now");
    // A quick 502 is a cheap failure: it does not use up the three attempts, so every
    // one of the six candidates is tried (within the cap of ten calls).
    assert_eq!(r.header("x-router-attempts"), Some("6"));
    assert_eq!(s.upstream.total_calls(), 6, "one attempt on each model");
    let models: std::collections::BTreeSet<String> = s.upstream.requests().into_iter().map(|r| r.model).collect();
    assert_eq!(models.len(), 6, "never the same model twice: {models:?}");

    let named = with_model(FREE_TEXT_MODELS[5]);
    s.upstream.set_behaviour(FREE_TEXT_MODELS[5], Behaviour::NoEndpoints);
    s.chat(&named).await.check_error(404, "No endpoints found");

    let slow = with_model(FREE_TEXT_MODELS[4]);
    s.upstream.set_behaviour(FREE_TEXT_MODELS[4], Behaviour::Hang);
    s.chat(&slow).await.check_error(504, "");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::RateLimited { retry_after: Some(40) });
    // Three models per request fail and cool down; the third request finds all six cooling.
    for _ in 0..2 {
        let r = s.chat(HI).await;
        r.check_error(429, "");
        let after: u64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
        assert!((1..=40).contains(&after), "{after}");
    }
    let calls = s.upstream.total_calls();
    assert_eq!(calls, 6);
    let r = s.chat(HI).await;
    r.check_error(429, "cooling down");
    let after: u64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=40).contains(&after), "{after}");
    assert_eq!(s.upstream.total_calls(), calls, "no upstream call while everything cools down");
}

#[tokio::test]
async fn local_quota_answers_429_at_once() {
    let upstream = FakeUpstream::start().await;
    // The daily window, not the minute one: a minute boundary between two requests of
    // this test would be a (rare) flake, a UTC midnight far rarer still.
    let s = start_with(upstream, |c| c.per_day = router_settings::Limit::of(2)).await;
    assert_eq!(s.chat(HI).await.status, 200);
    assert_eq!(s.chat(HI).await.status, 200);
    let r = s.chat(HI).await;
    r.check_error(429, "2 requests per day");
    let after: u64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=86_400).contains(&after), "{after}");
    assert_eq!(s.upstream.total_calls(), 2);
}

#[tokio::test]
async fn client_keys_are_required_when_configured() {
    let upstream = FakeUpstream::start().await;
    let s = start_with(upstream, |c| {
        c.api_keys = vec![router_core::Secret::new("ck-one"), router_core::Secret::new("ck-two")];
    })
    .await;
    let send = |auth: Option<String>, path: &'static str| {
        let mut req = s.client.post(s.url(path)).header("content-type", "application/json").body(HI);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move { Reply::read(req.send().await.expect("request sent")).await }
    };
    send(None, "/api/v1/chat/completions").await.check_error(401, "client key");
    send(Some("Bearer ck-on".into()), "/api/v1/chat/completions").await.check_error(401, "client key");
    send(Some(format!("Bearer {UPSTREAM_KEY}")), "/api/v1/chat/completions").await.check_error(401, "client key");
    send(None, "/api/v1/router/explain").await.check_error(401, "client key");
    let models = s.client.get(s.url("/api/v1/models")).send().await.expect("sent");
    Reply::read(models).await.check_error(401, "client key");
    assert_eq!(s.upstream.total_calls(), 0);
    assert_eq!(send(Some("Bearer ck-two".into()), "/api/v1/chat/completions").await.status, 200);
    let r = s.client.get(s.url("/api/v1/models")).bearer_auth("ck-one").send().await.expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(s.get("/healthz").await.status, 200, "probes stay open");
    // Readiness without a key is the status alone; the details and the metrics need one.
    let ready = s.get("/readyz").await;
    assert_eq!((ready.status, ready.json()), (200, serde_json::json!({"status": "ready"})));
    s.get("/metrics").await.check_error(401, "client key");
    let full = s.client.get(s.url("/readyz")).bearer_auth("ck-one").send().await.expect("sent");
    let full: serde_json::Value = full.json().await.expect("json");
    assert!(full["catalog"]["free_models"].as_u64().is_some_and(|n| n > 0), "{full}");
    let metrics = s.client.get(s.url("/metrics")).bearer_auth("ck-two").send().await.expect("sent");
    assert_eq!(metrics.status(), 200);
    // The client's key is never passed upstream; the upstream key is.
    let recorded = s.upstream.requests();
    assert_eq!(recorded[0].authorization.as_deref(), Some(format!("Bearer {UPSTREAM_KEY}").as_str()));
}

/// Mutations of valid bodies (truncations and byte flips) and hostile inputs: every
/// answer is well-formed JSON with a status the client can act on, and the server
/// keeps serving.
#[tokio::test]
async fn nothing_a_client_sends_breaks_the_server() {
    let s = start().await;
    let mut bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00garbage".to_vec(),
        "[".repeat(100_000).into_bytes(),
        r#"{"messages":[{"role":"user","content":"\ud800"}]}"#.into(),
        r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}"#.into(),
        r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":-1}"#.into(),
        r#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#.into(),
        r#"{"messages":[{"role":"user","content":{"nested":true}}],"tools":"x"}"#.into(),
        r#"{"messages":[{"role":"user","content":"hi"}],"models":"x"}"#.into(),
        r#"{"messages":[{"role":"user","content":"hi"}],"response_format":[]}"#.into(),
        b"{\"messages\":[{\"role\":\"user\",\"content\":\"\0\"}]}".to_vec(),
    ];
    // A small deterministic generator, so that a failure reproduces.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for fixture in [SDK_TEXT, SDK_IMAGE, SDK_TOOLS, SDK_TOOL_RESULT, SDK_JSON_SCHEMA, SDK_STREAM] {
        let bytes = fixture.as_bytes();
        for _ in 0..12 {
            let cut = (next() as usize) % bytes.len();
            bodies.push(bytes[..cut].to_vec());
            let mut flipped = bytes.to_vec();
            for _ in 0..3 {
                let i = (next() as usize) % flipped.len();
                flipped[i] = (next() & 0xff) as u8;
            }
            bodies.push(flipped);
        }
    }
    for body in bodies {
        let resp = s
            .client
            .post(s.url("/api/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("the server answers");
        let r = Reply::read(resp).await;
        let shown = String::from_utf8_lossy(&body).chars().take(200).collect::<String>();
        match r.status {
            200 if r.header("content-type") == Some("text/event-stream") => {
                assert!(r.text.contains("data: [DONE]"), "{shown}: {}", r.text);
            }
            200 => assert!(r.json()["choices"].is_array(), "{shown}: {}", r.text),
            400..=499 => r.check_error(r.status, ""),
            other => panic!("status {other} for {shown}: {}", r.text),
        }
    }
    assert_eq!(s.chat(HI).await.status, 200, "still serving");
}

/// Upstreams (or proxies) that echo what they were sent: the catalog's refresh error and
/// a chat error both quote the `Authorization` header. Neither the key nor the echo
/// reaches a page, an error, the status API, the events or the metrics.
#[tokio::test]
async fn echoed_keys_reach_no_page() {
    let s = start().await;
    let echo = format!("denied: Authorization: Bearer {UPSTREAM_KEY} (url http://user:hunter2@proxy.test/api)");
    s.upstream.set_models_error(500, format!(r#"{{"error":{{"message":"{echo}"}}}}"#));
    assert_eq!(s.server.catalogs.refresh("openrouter").await, Some(false), "the refresh fails");
    let body = serde_json::json!({"error": {"code": 500, "message": echo, "metadata": {"raw": echo}}}).to_string();
    s.upstream.set_default_behaviour(Behaviour::Status { status: 500, body });
    let chat = s.chat(HI).await;
    assert!(chat.status >= 500, "{}", chat.text);
    let mut seen = vec![chat.text.clone()];
    for path in ["/readyz", "/metrics", "/api/v1/router/status", "/api/v1/router/explain"] {
        let reply = if path.ends_with("explain") {
            Reply::read(
                s.client
                    .post(s.url(path))
                    .header("content-type", "application/json")
                    .body(HI)
                    .send()
                    .await
                    .expect("sent"),
            )
            .await
        } else {
            s.get(path).await
        };
        if path == "/readyz" {
            // The refresh's error, echo included, is kept and shown redacted.
            assert!(reply.text.contains("Bearer ***"), "{}", reply.text);
        }
        seen.push(reply.text);
    }
    let all = seen.join("\n");
    assert!(all.contains("Bearer ***"), "the echo is shown redacted:\n{all}");
    for secret in [UPSTREAM_KEY, "hunter2"] {
        assert!(!all.contains(secret), "`{secret}` leaked:\n{all}");
    }
}
