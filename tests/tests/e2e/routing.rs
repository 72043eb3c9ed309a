//! Routing that beats `openrouter/free`, end to end: no request lost while a model can
//! answer (half the pool answering 429, one model hanging), sticky sessions, a short
//! wait instead of a 429, and the per-request weighted pick, with the `x-router-*`
//! headers that say what happened.

use crate::support::{FREE_TEXT_MODELS, Reply, TestServer, start_with};
use fake_upstream::{Behaviour, FakeUpstream};
use router_settings::Seconds;
use std::collections::BTreeSet;
use std::sync::Arc;

const BODY: &str = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#;

/// A server whose transport gives up on a silent model after 2 s.
async fn server() -> TestServer {
    start_with(FakeUpstream::start().await, |c| c.first_byte_timeout_secs = Seconds::new(2)).await
}

fn named(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_the_pool_429_and_one_hanging_300_concurrent_requests_all_succeed() {
    let s = Arc::new(server().await);
    for m in &FREE_TEXT_MODELS[..3] {
        s.upstream.set_behaviour(m, Behaviour::RateLimited { retry_after: Some(1) });
    }
    s.upstream.set_behaviour(FREE_TEXT_MODELS[3], Behaviour::Hang);
    let healthy = &FREE_TEXT_MODELS[4..];
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.chat(BODY).await })
        })
        .collect();
    let mut failed = Vec::new();
    for t in tasks {
        let reply = t.await.expect("task");
        if reply.status != 200 {
            failed.push(reply.text.clone());
            continue;
        }
        let model = reply.header("x-router-model").expect("x-router-model").to_owned();
        assert!(healthy.contains(&model.as_str()), "{model}");
        assert_eq!(reply.header("x-router-pick"), Some("uniform"));
    }
    assert!(failed.is_empty(), "{} of 300 failed; first: {:?}", failed.len(), failed.first());

    // Then 60 in a row, the hanging model answering again and the 429s still there.
    s.upstream.set_behaviour(FREE_TEXT_MODELS[3], Behaviour::Ok);
    for n in 0..60 {
        let reply = s.chat(BODY).await;
        assert_eq!(reply.status, 200, "request {n}: {}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_session_keeps_its_model_through_another_models_cooldown_and_moves_when_its_own_cools() {
    let s = server().await;
    let session = [("x-session-id", "conversation-7")];
    let first = s.post("/api/v1/chat/completions", BODY, &session).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("x-router-pick"), Some("sticky"));
    let home = first.header("x-router-model").expect("model").to_owned();
    for _ in 0..5 {
        let again = s.post("/api/v1/chat/completions", BODY, &session).await;
        assert_eq!(again.header("x-router-model"), Some(home.as_str()));
    }
    // The same key in the body's `user` lands on the same model.
    let by_user = s
        .chat(r#"{"model":"openrouter/free","user":"conversation-7","messages":[{"role":"user","content":"hi"}]}"#)
        .await;
    assert_eq!(by_user.header("x-router-model"), Some(home.as_str()));
    assert_eq!(by_user.header("x-router-pick"), Some("sticky"));

    // Another model cools down: the session stays where it is.
    let other = FREE_TEXT_MODELS.iter().find(|m| **m != home).expect("another model");
    s.upstream.set_behaviour(other, Behaviour::RateLimited { retry_after: Some(60) });
    let cooled = s.chat(&named(other)).await;
    assert_eq!(cooled.status, 429, "{}", cooled.text);
    let still = s.post("/api/v1/chat/completions", BODY, &session).await;
    assert_eq!(still.header("x-router-model"), Some(home.as_str()));

    // Its own model cools down: the session moves, once, and stays moved.
    s.upstream.set_behaviour(&home, Behaviour::RateLimited { retry_after: Some(60) });
    let moved = s.post("/api/v1/chat/completions", BODY, &session).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let new_home = moved.header("x-router-model").expect("model").to_owned();
    assert_ne!(new_home, home);
    assert_ne!(new_home, *other);
    assert_eq!(moved.header("x-router-pick"), Some("sticky"));
    let calls_to_home = s.upstream.calls(&home);
    for _ in 0..5 {
        let again = s.post("/api/v1/chat/completions", BODY, &session).await;
        assert_eq!(again.header("x-router-model"), Some(new_home.as_str()));
    }
    assert_eq!(s.upstream.calls(&home), calls_to_home, "no call to the cooling model");

    // The explanation says the pick is the session's.
    let why = s.post("/api/v1/router/explain", BODY, &session).await.json();
    assert_eq!(why["pick"], new_home.as_str());
    assert_eq!(why["pick_kind"], "sticky");
    assert_eq!(why["session"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_for_a_model_that_recovers_within_the_bound() {
    let s = server().await;
    for m in FREE_TEXT_MODELS {
        s.upstream.set_behaviour(m, Behaviour::RateLimited { retry_after: Some(1) });
    }
    // Every model answers 429: the request has tried them all, and says so.
    let all = s.chat(BODY).await;
    assert_eq!(all.status, 429, "{}", all.text);
    for m in FREE_TEXT_MODELS {
        s.upstream.set_behaviour(m, Behaviour::Ok);
    }
    let calls = s.upstream.total_calls();
    // Every model is cooling for about a second: the next request waits, then routes.
    let waited = s.chat(BODY).await;
    assert_eq!(waited.status, 200, "{}", waited.text);
    let ms: u64 = waited.header("x-router-waited-ms").expect("x-router-waited-ms").parse().expect("a number");
    assert!(ms > 0 && ms <= 1_600, "waited {ms} ms");
    assert_eq!(s.upstream.total_calls(), calls + 1, "nothing was sent while waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_bound_the_answer_is_429_with_retry_after() {
    let s = server().await;
    let model = FREE_TEXT_MODELS[0];
    s.upstream.set_behaviour(model, Behaviour::RateLimited { retry_after: Some(30) });
    assert_eq!(s.chat(&named(model)).await.status, 429);
    let calls = s.upstream.calls(model);
    let reply: Reply = s.chat(&named(model)).await;
    assert_eq!(reply.status, 429, "{}", reply.text);
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
    assert!(reply.header("x-router-waited-ms").is_none());
    assert_eq!(s.upstream.calls(model), calls, "no call to a cooling model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_may_ask_for_the_weighted_pick() {
    let s = server().await;
    let mut seen = BTreeSet::new();
    for seed in 0..20 {
        let seed = seed.to_string();
        let reply =
            s.post("/api/v1/chat/completions", BODY, &[("x-router-pick", "weighted"), ("x-router-seed", &seed)]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("x-router-pick"), Some("weighted"));
        seen.insert(reply.header("x-router-model").expect("model").to_owned());
    }
    assert!(seen.len() > 1, "equal weights still spread: {seen:?}");
    let why = s.post("/api/v1/router/explain", BODY, &[("x-router-pick", "weighted")]).await.json();
    assert_eq!(why["pick_kind"], "weighted");
    assert_eq!(why["weights"].as_array().map(Vec::len), Some(FREE_TEXT_MODELS.len()));
    let bad = s.post("/api/v1/chat/completions", BODY, &[("x-router-pick", "best")]).await;
    bad.check_error(400, "x-router-pick");
}

/// A coding agent's output request (`max_tokens: 128000`) is lowered, per model, to
/// what the model that answers can give, said in `x-router-max-tokens`; with
/// `clamp_max_tokens = false` no free model can take it and the client is told why.
#[tokio::test]
async fn an_agent_sized_output_request_is_lowered_to_what_the_model_can_give() {
    // More than any model of the fake catalog can give, as 128,000 is for most free models.
    let s = server().await;
    let body = r#"{"model":"openrouter/free","max_tokens":10000000,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = s.chat(body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent: u64 = r.header("x-router-max-tokens").expect("lowered").parse().expect("a number");
    let model = r.header("x-router-model").expect("model").to_owned();
    let recorded = s.upstream.requests();
    assert_eq!(recorded.last().map(|c| c.body["max_tokens"].clone()), Some(serde_json::json!(sent)));
    let models = s.get("/api/v1/models").await.json();
    let entry = models["data"].as_array().expect("list").iter().find(|m| m["id"] == model).expect("listed").clone();
    let context = entry["context_length"].as_u64().expect("context");
    assert!(sent < 10_000_000 && sent < context, "{sent} for {entry}");
    if let Some(max) = entry["top_provider"]["max_completion_tokens"].as_u64() {
        assert!(sent <= max, "{sent} > {max}");
    }

    let strict = start_with(FakeUpstream::start().await, |c| c.clamp_max_tokens = false).await;
    let refused = strict.chat(body).await;
    refused.check_error(404, "no free model supports");
    assert!(refused.header("x-router-max-tokens").is_none());
    assert_eq!(strict.upstream.total_calls(), 0);
}
