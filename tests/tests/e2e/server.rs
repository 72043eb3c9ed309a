//! The server's endpoints over real loopback HTTP: SDK-shaped requests routed to a
//! free model that meets their needs, streams, `/models`, explain, probes, headers.

use crate::support::*;
use fake_upstream::{Behaviour, FakeUpstream};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Sends `body` and checks a 200 from one of `allowed`, named alike in the body and the
/// header, and that upstream received the client's body with only `model` changed.
async fn check_routed(s: &TestServer, body: &str, allowed: &[&str]) -> Value {
    s.upstream.reset_counters();
    let r = s.chat(body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let json = r.json();
    let model = json["model"].as_str().expect("model in body").to_owned();
    assert!(allowed.contains(&model.as_str()), "{model} not in {allowed:?}");
    assert_eq!(r.header("x-router-model"), Some(model.as_str()));
    assert_eq!(r.header("x-router-attempts"), Some("1"));
    assert_eq!(r.header("x-router-candidates"), Some(allowed.len().to_string().as_str()));
    let recorded = s.upstream.requests();
    assert_eq!(recorded.len(), 1, "one upstream call");
    let sent: Value = serde_json::from_str(body).expect("fixture is json");
    let mut expected = sent.as_object().expect("object").clone();
    expected.insert("model".into(), json!(model));
    assert_eq!(recorded[0].body, Value::Object(expected), "body forwarded untouched but for `model`");
    assert_eq!(recorded[0].model, model);
    assert_eq!(recorded[0].authorization.as_deref(), Some(format!("Bearer {UPSTREAM_KEY}").as_str()));
    json
}

#[tokio::test]
async fn sdk_shaped_requests_reach_a_capable_free_model() {
    let s = start().await;
    let text = check_routed(&s, SDK_TEXT, &FREE_TEXT_MODELS).await;
    assert_eq!(text["object"], "chat.completion");
    assert!(text["choices"][0]["message"]["content"].as_str().is_some_and(|c| c.starts_with("hello from")));
    check_routed(&s, SDK_IMAGE, &[VISION_MODEL]).await;
    check_routed(&s, SDK_TOOLS, &TOOL_MODELS).await;
    check_routed(&s, SDK_TOOL_RESULT, &TOOL_MODELS).await;
    check_routed(&s, SDK_JSON_SCHEMA, &[STRUCTURED_MODEL]).await;
    assert_eq!(s.upstream.calls(PAID_MODEL), 0);
}

#[tokio::test]
async fn v1_alias_and_tool_calls() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::ToolCall);
    let r = s.post("/v1/chat/completions", SDK_TOOLS, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(body["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    assert!(TOOL_MODELS.contains(&body["model"].as_str().expect("model")));
}

#[tokio::test]
async fn model_is_named_when_upstream_leaves_it_out_or_names_another() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::OkWithoutModel);
    let r = s.chat(SDK_TEXT).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"].as_str(), r.header("x-router-model"));

    s.upstream.set_default_behaviour(Behaviour::OkWithModel("someone/else".into()));
    let r = s.chat(SDK_STREAM).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let chosen = r.header("x-router-model").expect("model header").to_owned();
    let events = r.events();
    assert!(events.len() >= 3, "{}", r.text);
    for e in events.iter().filter(|e| e.get("model").is_some()) {
        assert_eq!(e["model"], chosen.as_str(), "{e}");
    }
}

#[tokio::test]
async fn streams_pass_through_as_sse() {
    let s = start().await;
    let r = s.chat(SDK_STREAM).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let chosen = r.header("x-router-model").expect("model header").to_owned();
    assert!(FREE_TEXT_MODELS.contains(&chosen.as_str()));
    assert!(r.text.trim_end().ends_with("data: [DONE]"), "{}", r.text);
    let events = r.events();
    let content: String =
        events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect::<Vec<_>>().concat();
    assert_eq!(content, format!("hello from {chosen}"));
    assert!(events.iter().all(|e| e["model"] == chosen.as_str()));
    assert!(events.iter().any(|e| e["usage"]["total_tokens"].is_u64()), "usage chunk kept");
    let recorded = s.upstream.requests();
    assert!(recorded[0].stream && recorded[0].body["stream_options"]["include_usage"] == true);
}

#[tokio::test]
async fn stream_chunks_arrive_as_upstream_sends_them() {
    let s = start().await;
    let gap = std::time::Duration::from_millis(300);
    s.upstream.set_default_behaviour(Behaviour::SlowStream { chunks: 3, gap });
    // The first content chunk must come out before upstream has sent the last one:
    // the router does not buffer the stream.
    let mut stream = s.open_stream(SDK_STREAM).await.bytes_stream();
    let mut seen = read_until(&mut stream, "tok0").await;
    assert!(!seen.contains("tok2"), "everything arrived at once: {seen}");
    while let Some(chunk) = stream.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk read")));
    }
    assert!(seen.contains("tok2") && seen.contains("[DONE]"), "{seen}");
}

#[tokio::test]
async fn models_lists_free_models_and_the_router() {
    let s = start().await;
    for path in ["/api/v1/models", "/v1/models"] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        let ids: Vec<&str> = body["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str()).collect();
        let mut expected = vec!["openrouter/free"];
        expected.extend(FREE_TEXT_MODELS);
        assert_eq!(ids, expected);
        let router = &body["data"][0];
        assert_eq!(router["pricing"]["prompt"], "0");
        assert_eq!(router["context_length"], 262_144, "largest free context");
        for m in body["data"].as_array().expect("data") {
            for key in ["id", "name", "context_length", "architecture", "pricing", "supported_parameters"] {
                assert!(m.get(key).is_some(), "{key} missing in {m}");
            }
        }
    }
    let ids = |r: Reply| -> Vec<String> {
        r.json()["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect()
    };
    let tools = ids(s.get("/api/v1/models?supported_parameters=tools").await);
    assert_eq!(tools, ["openrouter/free", TOOL_MODELS[0], TOOL_MODELS[1]]);
    let both = ids(s.get("/api/v1/models?supported_parameters=tools%2Cstructured_outputs").await);
    assert_eq!(both, ["openrouter/free"], "no single free model has both; the router entry has the union");
    let vision = ids(s.get("/api/v1/models?input_modalities=image").await);
    assert_eq!(vision, ["openrouter/free", VISION_MODEL]);
    let none = ids(s.get("/api/v1/models?supported_parameters=logprobs").await);
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test]
async fn explain_shows_the_decision_and_matches_the_pick() {
    let s = start().await;
    let r = s.post("/api/v1/router/explain", SDK_TOOLS, &[("x-router-seed", "7")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let e = r.json();
    assert_eq!(e["seed"], "7");
    assert_eq!(e["candidates"], json!(TOOL_MODELS));
    assert!(e["requirements"].as_array().expect("requirements").iter().any(|x| x == "tools"), "{e}");
    let rejected = e["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), FREE_TEXT_MODELS.len() - TOOL_MODELS.len());
    assert!(rejected.iter().all(|x| !x["reasons"].as_array().expect("reasons").is_empty()));
    assert!(e["not_free"].as_u64().expect("not_free") >= 2, "paid and zero-priced non-free models counted");
    let pick = e["pick"].as_str().expect("pick").to_owned();
    let routed = s.post("/api/v1/chat/completions", SDK_TOOLS, &[("x-router-seed", "7")]).await;
    assert_eq!(routed.header("x-router-model"), Some(pick.as_str()));
    let by_query = s.post("/api/v1/router/explain?seed=7", SDK_TOOLS, &[]).await.json();
    assert_eq!(by_query["pick"], pick.as_str());
    assert_eq!(s.upstream.total_calls(), 1, "explain forwards nothing");
}

#[tokio::test]
async fn explain_without_a_candidate_still_lists_every_rejection() {
    let s = start().await;
    let body = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}],"logprobs":true}"#;
    let r = s.post("/api/v1/router/explain", body, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let e = r.json();
    assert_eq!(e["pick"], Value::Null);
    assert_eq!(e["candidates"], json!([]));
    assert_eq!(e["error"]["code"], 404, "{e}");
    assert!(e["error"]["message"].as_str().expect("message").contains("logprobs"), "{e}");
    let rejected = e["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), e["free_models"].as_u64().expect("free_models") as usize);
    assert!(rejected.iter().all(|x| x["reasons"].to_string().contains("no logprobs")), "{e}");
    assert_eq!(s.upstream.total_calls(), 0);
}

#[tokio::test]
async fn probes_and_metrics() {
    let s = start().await;
    let r = s.get("/healthz").await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("ok")));
    let r = s.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ready = r.json();
    assert_eq!(ready["catalog"]["source"]["kind"], "live");
    assert_eq!(ready["catalog"]["free_models"], FREE_TEXT_MODELS.len());
    assert!(ready["catalog"]["age_secs"].is_u64());

    // The first request names the rate-limited model first, so it falls back once;
    // later random picks must leave the cooling model out.
    s.upstream.set_behaviour(FREE_TEXT_MODELS[0], Behaviour::RateLimited { retry_after: Some(60) });
    let named = format!(
        r#"{{"model":"{}","models":["openrouter/free"],"messages":[{{"role":"user","content":"hi"}}]}}"#,
        FREE_TEXT_MODELS[0]
    );
    let r = s.chat(&named).await;
    assert_eq!((r.status, r.header("x-router-attempts")), (200, Some("2")), "{}", r.text);
    for seed in 1..12 {
        let r = s.post("/api/v1/chat/completions", SDK_TEXT, &[("x-router-seed", &seed.to_string())]).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    s.chat("{").await;
    let m = s.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    let value = |name: &str| -> f64 {
        m.text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing in\n{}", m.text))
            .parse()
            .expect("a number")
    };
    assert_eq!(value("router_requests_total{endpoint=\"chat\",status=\"200\"}"), 12.0);
    assert_eq!(value("router_requests_total{endpoint=\"chat\",status=\"400\"}"), 1.0);
    assert_eq!(value("router_overhead_seconds_count"), 12.0, "one observation per routed request");
    let rate_limited =
        format!("router_upstream_attempts_total{{model=\"{}\",outcome=\"rate_limited_model\"}}", FREE_TEXT_MODELS[0]);
    assert_eq!(value(&rate_limited), 1.0, "cooled down after the first 429, not tried again");
    assert_eq!(value("router_fallbacks_total"), 1.0);
    assert_eq!(value("router_raced_attempts_total"), 0.0, "sequential requests never race");
    assert_eq!(value("router_models_in_cooldown{cause=\"rate_limited\"}"), 1.0);
    assert_eq!(value("router_quota_used{window=\"day\"}"), 13.0);
    assert_eq!(value("router_catalog_free_models"), FREE_TEXT_MODELS.len() as f64);
    assert_eq!(value("router_catalog_info{source=\"live\"}"), 1.0);
    assert_eq!(value("router_stream_errors_total"), 0.0);
    assert!(m.text.contains("router_overhead_seconds_bucket{le=\"+Inf\"} 12"));
}

#[tokio::test]
async fn mid_stream_errors_end_the_stream_in_band_and_are_counted() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::MidStreamError);
    let r = s.chat(SDK_STREAM).await;
    assert_eq!(r.status, 200, "the head was already sent");
    let events = r.events();
    let last = events.last().expect("events");
    assert_eq!(last["error"]["code"], 502, "{}", r.text);
    assert_eq!(last["model"].as_str(), r.header("x-router-model"));
    let m = s.get("/metrics").await;
    assert!(m.text.lines().any(|l| l == "router_stream_errors_total 1"), "{}", m.text);
}

#[tokio::test]
async fn quota_defaults_follow_the_key_tier() {
    let upstream = FakeUpstream::start().await;
    upstream.set_key_info(json!({"data": {"is_free_tier": false, "limit": null, "usage": 3.5}}));
    let s = start_with(upstream, |c| {
        c.per_day = router_settings::Limit::of(50);
        c.sources.remove("per_day");
    })
    .await;
    assert_eq!(s.server.router.quota_report().day_limit, Some(50));
    let background = s.server.spawn_background(&s.config);
    let mut limit = None;
    for _ in 0..200 {
        limit = s.server.router.quota_report().day_limit;
        if limit == Some(1000) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    background.abort();
    assert_eq!(limit, Some(1000), "a key that bought credits may send 1000 free requests a day");

    // Configured explicitly, the limit stays whatever the key's tier.
    let upstream = FakeUpstream::start().await;
    upstream.set_key_info(json!({"data": {"is_free_tier": false}}));
    let s = start_with(upstream, |c| {
        c.per_day = router_settings::Limit::of(70);
    })
    .await;
    let background = s.server.spawn_background(&s.config);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    background.abort();
    assert_eq!(s.server.router.quota_report().day_limit, Some(70));
}

#[tokio::test]
async fn configured_attribution_headers_reach_upstream() {
    let s = start_with(FakeUpstream::start().await, |c| {
        c.http_referer = Some("https://example.test/my-app".into());
        c.x_title = Some("My App".into());
    })
    .await;
    assert_eq!(s.chat(SDK_TEXT).await.status, 200);
    let sent = &s.upstream.requests()[0].headers;
    let header = |name: &str| sent.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("http-referer"), Some("https://example.test/my-app"));
    assert_eq!(header("x-title"), Some("My App"));
}
