//! A free pool beyond OpenRouter: the server in front of three upstreams at once (an
//! OpenRouter-like fake, a Groq-like free tier and a local server such as Ollama),
//! routing across them with each provider's own ids, shaping bodies for plain
//! OpenAI-compatible servers, keeping to each provider's quota and falling through
//! when one is spent, dead or without a catalog.

use crate::support::{FREE_TEXT_MODELS, Reply, TestServer, start_with};
use fake_upstream::{Behaviour, FakeUpstream, openai_models_json};
use router_settings::{ModelSettings, ProviderKind, ProviderSettings};
use serde_json::Value;

const GROQ_MODELS: [&str; 2] = ["llama-3.1-8b-instant", "openai/gpt-oss-20b"];
const LOCAL_MODELS: [&str; 2] = ["qwen3:8b", "llama3.2:3b"];

/// The three upstreams; the server is started in front of them by [`serve`].
struct Upstreams {
    openrouter: FakeUpstream,
    groq: FakeUpstream,
    local: FakeUpstream,
}

async fn upstreams() -> Upstreams {
    let groq = FakeUpstream::start().await;
    groq.set_models(openai_models_json(&GROQ_MODELS).to_string());
    let local = FakeUpstream::start().await;
    local.set_models(openai_models_json(&LOCAL_MODELS).to_string());
    Upstreams { openrouter: FakeUpstream::start().await, groq, local }
}

/// A free tier on `up`; its first model's capabilities stated as `[[providers.models]]`
/// (the fake is not at Groq's host, so the embedded table does not apply).
fn groq(up: &FakeUpstream) -> ProviderSettings {
    let caps = ModelSettings {
        id: GROQ_MODELS[0].into(),
        context_length: Some(131_072),
        supported_parameters: vec!["tools".into(), "tool_choice".into()],
        ..ModelSettings::default()
    };
    ProviderSettings {
        free_tier: true,
        models: vec![caps],
        ..ProviderSettings::new("groq", ProviderKind::Openai, Some(up.openai_base_url()))
    }
}

fn ollama(up: &FakeUpstream) -> ProviderSettings {
    ProviderSettings {
        local: true,
        ..ProviderSettings::new("ollama", ProviderKind::Openai, Some(up.openai_base_url()))
    }
}

fn openrouter(up: &FakeUpstream) -> ProviderSettings {
    ProviderSettings::new("openrouter", ProviderKind::Openrouter, Some(up.base_url()))
}

/// The server in front of `openrouter` with `providers`; every provider's catalog is
/// loaded before the first request (the `edit`ed providers' own, failed ones included).
async fn serve(openrouter: FakeUpstream, providers: Vec<ProviderSettings>) -> TestServer {
    let server = start_with(openrouter, move |c| c.providers = providers).await;
    for p in &server.server.providers.catalogs {
        let _ = p.refresh().await;
    }
    server
}

async fn chat_seeded(server: &TestServer, body: &str, seed: u64) -> Reply {
    server.post("/api/v1/chat/completions", body, &[("x-router-seed", &seed.to_string())]).await
}

fn body(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

#[tokio::test]
async fn routes_across_three_providers_with_their_own_ids() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    let providers = vec![openrouter(&or), groq(&g), ollama(&l)];
    let server = serve(or, providers).await;
    let names: Vec<&str> = server.server.providers.catalogs.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["groq", "ollama"]);

    // The union's /models: every provider's free models, in OpenRouter's shape.
    let models = server.get("/api/v1/models").await;
    assert_eq!(models.status, 200, "{}", models.text);
    let list = models.json();
    let data = list["data"].as_array().expect("data");
    let ids: Vec<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
    for id in FREE_TEXT_MODELS.iter().copied().chain([
        "groq/llama-3.1-8b-instant",
        "groq/openai/gpt-oss-20b",
        "ollama/qwen3:8b",
        "ollama/llama3.2:3b",
    ]) {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let entry = data.iter().find(|m| m["id"] == "groq/llama-3.1-8b-instant").expect("groq entry");
    for field in ["name", "context_length", "architecture", "pricing", "top_provider", "supported_parameters"] {
        assert!(entry.get(field).is_some(), "{field} missing: {entry}");
    }
    assert_eq!(entry["pricing"]["prompt"], "0");
    assert_eq!(entry["provider"]["name"], "groq");
    assert_eq!(entry["provider"]["billing"], "free_tier");
    assert!(entry["supported_parameters"].as_array().is_some_and(|p| p.iter().any(|p| p == "tools")), "{entry}");
    let local = data.iter().find(|m| m["id"] == "ollama/qwen3:8b").expect("ollama entry");
    assert_eq!(local["provider"]["billing"], "local");
    assert_eq!(local["supported_parameters"], serde_json::json!([]), "nothing is assumed of an unknown model");

    // A specific id goes to its provider only, under the upstream's own id, with the
    // OpenRouter-only fields cut out; the answer names the exposed id.
    let shaped = r#"{"model":"groq/llama-3.1-8b-instant","messages":[{"role":"user","content":"hi"}],"provider":{"sort":"price"},"transforms":["middle-out"],"usage":{"include":true},"temperature":0.3}"#;
    let reply = server.chat(shaped).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["model"], "groq/llama-3.1-8b-instant");
    assert_eq!(reply.header("x-router-model"), Some("groq/llama-3.1-8b-instant"));
    let sent = bodies(&g);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["model"], "llama-3.1-8b-instant");
    for field in ["provider", "transforms", "usage"] {
        assert!(sent[0].get(field).is_none(), "{field} reached a plain OpenAI server: {}", sent[0]);
    }
    assert_eq!(sent[0]["temperature"], 0.3);
    assert_eq!(server.upstream.total_calls(), 0, "OpenRouter was not asked");

    // A stream from the local server: every chunk names the exposed id.
    let stream =
        server.chat(r#"{"model":"ollama/qwen3:8b","stream":true,"messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(stream.status, 200, "{}", stream.text);
    let events = stream.events();
    assert!(!events.is_empty());
    for e in &events {
        assert_eq!(e["model"], "ollama/qwen3:8b", "{e}");
    }
    assert_eq!(l.calls("qwen3:8b"), 1, "the local server got its own id");

    // `openrouter/free` draws from every provider; `ollama/free` from the local one only.
    for seed in 0..60 {
        let reply = chat_seeded(&server, &body("openrouter/free"), seed).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    assert!(server.upstream.total_calls() > 0, "no OpenRouter model was drawn");
    assert!(bodies(&g).len() > 1, "no groq model was drawn");
    let before = server.upstream.total_calls() + bodies(&g).len();
    for seed in 0..10 {
        let reply = chat_seeded(&server, &body("ollama/free"), seed).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let model = reply.json()["model"].as_str().map(str::to_owned).unwrap_or_default();
        assert!(model.starts_with("ollama/"), "{model}");
    }
    assert_eq!(server.upstream.total_calls() + bodies(&g).len(), before);

    // An unknown id under a provider is refused, never forwarded.
    let unknown = server.chat(&body("groq/no-such-model")).await;
    assert!(unknown.status == 400 || unknown.status == 404, "{}", unknown.text);
    assert_eq!(server.upstream.total_calls() + bodies(&g).len(), before);
}

/// The chat bodies `up` received.
fn bodies(up: &FakeUpstream) -> Vec<Value> {
    up.requests().into_iter().map(|r| r.body).collect()
}

#[tokio::test]
async fn a_provider_at_its_daily_limit_gets_no_calls_while_the_others_serve() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    let capped = ProviderSettings { per_day: Some(2), ..groq(&g) };
    let providers = vec![openrouter(&or), capped, ollama(&l)];
    let server = serve(or, providers).await;
    for seed in 0..40 {
        let reply = chat_seeded(&server, &body("openrouter/free"), seed).await;
        assert_eq!(reply.status, 200, "the others keep serving: {}", reply.text);
    }
    assert_eq!(g.total_calls(), 2, "the capped provider got exactly its quota");
    assert!(server.upstream.total_calls() > 0 && l.total_calls() > 0);
    // Only when nothing is left: 429 with the earliest recovery.
    let spent = server.chat(&body("groq/free")).await;
    spent.check_error(429, "provider `groq`");
    let retry: u64 = spent.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=86_400).contains(&retry), "{retry}");
    assert_eq!(g.total_calls(), 2);
    // Explain says which provider is passed over, and until when.
    let explain = server.post("/api/v1/router/explain", &body("openrouter/free"), &[("x-router-seed", "3")]).await;
    assert_eq!(explain.status, 200, "{}", explain.text);
    let e = explain.json();
    let providers = e["providers"].as_array().expect("providers in a union");
    let held = providers.iter().find(|p| p["name"] == "groq").expect("groq listed");
    assert!(held["held"].as_str().is_some_and(|h| h.starts_with("quota spent until")), "{held}");
    assert!(providers.iter().any(|p| p["name"] == "ollama" && p.get("held").is_none()), "{e}");
    assert!(!e["pick"].as_str().unwrap_or_default().starts_with("groq/"), "{e}");
    let cooling = e["cooling"].as_array().expect("cooling");
    assert!(
        cooling.iter().any(|c| c["id"].as_str().is_some_and(|id| id.starts_with("groq/"))
            && c["cause"].as_str().is_some_and(|c| c.contains("quota spent until"))),
        "{e}"
    );
    // The day's count is kept per provider and survives in the state.
    let state = server.server.router.health_snapshot();
    assert_eq!(state.providers.get("groq").map(|p| p.quota.day.count), Some(2));
}

#[tokio::test]
async fn a_rate_limited_free_tier_cools_its_model_from_groq_headers() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    g.set_default_behaviour(Behaviour::OpenAiRateLimited { reset: "2m59.56s".into(), retry_after: None });
    let providers = vec![openrouter(&or), groq(&g), ollama(&l)];
    let server = serve(or, providers).await;
    let listed =
        r#"{"models":["groq/llama-3.1-8b-instant","ollama/qwen3:8b"],"messages":[{"role":"user","content":"hi"}]}"#;
    let reply = server.chat(listed).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["model"], "ollama/qwen3:8b", "fell through to the local server");
    assert_eq!(reply.header("x-router-attempts"), Some("2"));
    // The model cools until the reset Groq stated; it is not called again meanwhile.
    let again = server.chat(listed).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(g.total_calls(), 1);
    let cooling = server.server.router.cooldowns();
    let (_, c) = cooling.iter().find(|(id, _)| id.as_str() == "groq/llama-3.1-8b-instant").expect("cooling");
    let until = c.until.expect("a timed cooldown");
    let secs = until.saturating_since(server.server.router.now()).as_secs();
    assert!((170..=180).contains(&secs), "cools for Groq's 2m59.56s, not a default: {secs}");
}

#[tokio::test]
async fn a_dead_local_server_opens_its_breaker_and_costs_few_attempts() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    let providers = vec![openrouter(&or), groq(&g), ollama(&l)];
    let server = serve(or, providers).await;
    l.shutdown().await;
    let mut retried = 0;
    for seed in 0..30 {
        let reply = chat_seeded(&server, &body("openrouter/free"), seed).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(!reply.json()["model"].as_str().unwrap_or_default().starts_with("ollama/"));
        if reply.header("x-router-attempts") != Some("1") {
            retried += 1;
        }
    }
    assert!(retried <= 2, "the breaker opens after two connection failures; {retried} requests paid for it");
    let state = server.server.router.health_snapshot();
    assert!(state.providers.get("ollama").is_some_and(|p| p.unreachable_until.is_some()));
    // `ollama/free` has nothing left: an answer at once, not a connection attempt.
    let reply = server.chat(&body("ollama/free")).await;
    assert_eq!(reply.status, 429, "{}", reply.text);
    assert!(reply.header("retry-after").is_some());
}

#[tokio::test]
async fn a_provider_whose_catalog_fails_leaves_the_others_serving() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    g.set_models_status(500);
    let providers = vec![openrouter(&or), groq(&g), ollama(&l)];
    let server = serve(or, providers).await;
    let groq_catalog = &server.server.providers.catalogs[0];
    assert!(groq_catalog.stats().refreshes.last_error.is_some());
    let ids: Vec<String> = server.get("/api/v1/models").await.json()["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    assert!(!ids.iter().any(|id| id.starts_with("groq/")));
    assert!(ids.iter().any(|id| id.starts_with("ollama/")) && ids.iter().any(|id| id.ends_with(":free")));
    for seed in 0..10 {
        assert_eq!(chat_seeded(&server, &body("openrouter/free"), seed).await.status, 200);
    }
    assert_eq!(g.total_calls(), 0);
    // A later good refresh brings the provider back; a failed one after it keeps it.
    g.set_models_status(200);
    groq_catalog.refresh().await.expect("refresh");
    g.set_models_status(500);
    assert!(groq_catalog.refresh().await.is_err());
    assert_eq!(server.chat(&body("groq/llama-3.1-8b-instant")).await.status, 200);
}

#[tokio::test]
async fn without_openrouter_nothing_goes_to_openrouter() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    let server = serve(or, vec![groq(&g), ollama(&l)]).await;
    let fetches = server.upstream.models_fetches();
    for seed in 0..10 {
        let reply = chat_seeded(&server, &body("openrouter/free"), seed).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let refused = server.chat(&body(FREE_TEXT_MODELS[0])).await;
    assert!(refused.status == 400 || refused.status == 404, "{}", refused.text);
    assert_eq!(server.upstream.total_calls(), 0, "OpenRouter is not a provider here");
    assert_eq!(server.upstream.models_fetches(), fetches);
    assert!(g.total_calls() + l.total_calls() == 10);
}

#[tokio::test]
async fn a_local_server_beyond_max_concurrent_or_busy_is_passed_over_briefly() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    let slow = Behaviour::Delay { first_byte: std::time::Duration::from_secs(2), then: Box::new(Behaviour::Ok) };
    l.set_default_behaviour(slow);
    let bounded = ProviderSettings { max_concurrent: Some(1), ..ollama(&l) };
    let server = serve(or, vec![groq(&g), bounded]).await;
    let first_body = body("ollama/qwen3:8b");
    let first = server.chat(&first_body);
    let second = async {
        // Sent once the first holds the local server's one slot (it is there, answering
        // slowly), not after a guessed head start.
        let held = async {
            while l.total_calls() == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), held).await.expect("the first reached ollama");
        let listed = r#"{"models":["ollama/llama3.2:3b","groq/llama-3.1-8b-instant"],"messages":[{"role":"user","content":"hi"}]}"#;
        server.chat(listed).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json()["model"], "groq/llama-3.1-8b-instant", "the busy local server was passed over");
    assert_eq!(l.total_calls(), 1, "nothing beyond max_concurrent reached the local server");
    let metrics = server.get("/metrics").await.text;
    for line in
        ["router_provider_in_flight{provider=\"ollama\"} 0", "router_provider_max_concurrent{provider=\"ollama\"} 1"]
    {
        assert!(metrics.contains(line), "{line} missing (the slot is given back):\n{metrics}");
    }

    // A busy answer (503) is a short pause for that model, not a 30 s cooldown.
    l.set_default_behaviour(Behaviour::Status { status: 503, body: r#"{"error":"server busy"}"#.into() });
    let reply = server.chat(&body("ollama/free")).await;
    assert!(reply.status == 503 || reply.status == 429, "{}", reply.text);
    assert_eq!(reply.json()["error"]["metadata"]["error_type"], "rate_limited_model", "{}", reply.text);
    let cooling = server.server.router.cooldowns();
    let now = server.server.router.now();
    for (id, c) in cooling.iter().filter(|(id, _)| id.as_str().starts_with("ollama/")) {
        let left = c.until.map(|u| u.saturating_since(now).as_millis());
        assert!(left.is_some_and(|ms| ms <= 1_000), "{id} cools {left:?} ms, not a short busy pause");
    }
}

#[tokio::test]
async fn a_free_tiers_word_that_nothing_is_left_is_believed_over_the_local_count() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    g.set_default_behaviour(Behaviour::OkLastRequest { reset: "7m12s".into() });
    let server = serve(or, vec![groq(&g), ollama(&l)]).await;
    let listed =
        r#"{"models":["groq/llama-3.1-8b-instant","ollama/qwen3:8b"],"messages":[{"role":"user","content":"hi"}]}"#;
    let first = server.chat(listed).await;
    assert_eq!(first.json()["model"], "groq/llama-3.1-8b-instant", "{}", first.text);
    // Groq said no request is left: the next one goes elsewhere without calling it.
    let second = server.chat(listed).await;
    assert_eq!(second.json()["model"], "ollama/qwen3:8b", "{}", second.text);
    let third = server.chat(listed).await;
    assert_eq!(third.json()["model"], "ollama/qwen3:8b", "{}", third.text);
    assert_eq!(g.total_calls(), 1);
    let cooling = server.server.router.cooldowns();
    let (_, c) = cooling.iter().find(|(id, _)| id.as_str() == "groq/llama-3.1-8b-instant").expect("cooling");
    let secs = c.until.expect("timed").saturating_since(server.server.router.now()).as_secs();
    assert!((420..=432).contains(&secs), "cools until Groq's reset (7m12s): {secs}");
}

#[tokio::test]
async fn a_models_own_daily_limit_holds_that_model_only() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    let mut limited = groq(&g);
    limited.models[0].per_day = Some(1);
    let server = serve(or, vec![limited, ollama(&l)]).await;
    assert_eq!(server.chat(&body("groq/llama-3.1-8b-instant")).await.status, 200);
    let spent = server.chat(&body("groq/llama-3.1-8b-instant")).await;
    spent.check_error(429, "model `groq/llama-3.1-8b-instant`: limit of 1 requests per day");
    assert!(spent.header("retry-after").is_some());
    // The provider's other model still serves.
    let other = server.chat(&body("groq/free")).await;
    assert_eq!(other.status, 200, "{}", other.text);
    assert_eq!(other.json()["model"], "groq/openai/gpt-oss-20b");
    assert_eq!(g.calls("llama-3.1-8b-instant"), 1);
}

#[tokio::test]
async fn a_dead_openrouter_in_a_union_opens_its_breaker_too() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    let providers = vec![openrouter(&or), groq(&g), ollama(&l)];
    let mut server = serve(or, providers).await;
    // OpenRouter goes away; the fake is replaced by a closed port.
    let dead = std::mem::replace(&mut server.upstream, FakeUpstream::start().await);
    dead.shutdown().await;
    let mut retried = 0;
    for seed in 0..30 {
        let reply = chat_seeded(&server, &body("openrouter/free"), seed).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let model = reply.json()["model"].as_str().unwrap_or_default().to_owned();
        assert!(model.starts_with("groq/") || model.starts_with("ollama/"), "{model}");
        if reply.header("x-router-attempts") != Some("1") {
            retried += 1;
        }
    }
    assert!(retried <= 2, "OpenRouter's breaker opens after two connection failures; {retried} requests paid for it");
}

/// A free tier that starts asking for payment (SambaNova's `PAYMENT_METHOD_REQUIRED`, a
/// 402) leaves the pool at once: the request falls back, nothing else is sent to it, the
/// status and the metrics say so, and a request for its model alone is told why.
#[tokio::test]
async fn a_free_provider_that_asks_for_payment_leaves_the_pool() {
    let Upstreams { openrouter: or, groq: g, local: _ } = upstreams().await;
    let payment = r#"{"error":{"message":"Please add a payment method to continue","code":"PAYMENT_METHOD_REQUIRED"}}"#;
    g.set_default_behaviour(Behaviour::Status { status: 402, body: payment.into() });
    let providers = vec![openrouter(&or), groq(&g)];
    let server = serve(or, providers).await;
    let groq_model = format!("groq/{}", GROQ_MODELS[0]);
    let both = format!(
        r#"{{"model":"{groq_model}","models":["{}"],"messages":[{{"role":"user","content":"hi"}}]}}"#,
        FREE_TEXT_MODELS[0]
    );
    let r = server.chat(&both).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-router-model"), Some(FREE_TEXT_MODELS[0]), "fell back to OpenRouter");
    assert_eq!(g.total_calls(), 1);
    // Out of the pool: nothing more reaches it, whatever is asked.
    for seed in 0..20 {
        assert_eq!(chat_seeded(&server, &body("openrouter/free"), seed).await.status, 200);
    }
    let alone = server.chat(&body(&groq_model)).await;
    alone.check_error(404, "asked for payment");
    assert_eq!(g.total_calls(), 1, "nothing else was sent to the provider that asked for payment");
    let status = server.get("/api/v1/router/status").await.json();
    assert!(status["not_free_providers"]["groq"]["reason"].as_str().is_some_and(|r| r.contains("payment")), "{status}");
    let pool = status["pool"].as_array().expect("pool");
    let entry = pool.iter().find(|m| m["id"] == groq_model.as_str()).expect("listed");
    assert_eq!(entry["state"], "not_free", "{entry}");
    let metrics = server.get("/metrics").await.text;
    assert!(metrics.contains("router_provider_not_free{provider=\"groq\"} 1"), "{metrics}");
}

/// A coding agent's request (about 12,000 prompt tokens, `max_tokens: 128000`) through
/// OpenRouter, a Groq-like free tier that counts 8,000 tokens a minute (prompt and
/// output asked for, up front) and a local server: never sent to the free tier, which
/// would refuse it and charge the minute. A small request is sent there with its output
/// lowered to what the minute leaves, and once the minute is spent the next one waits.
#[tokio::test]
async fn an_agent_sized_request_never_reaches_a_token_budget_that_cannot_take_it() {
    crate::support::early_in_a_minute().await;
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    let providers = vec![openrouter(&or), ProviderSettings { tokens_per_minute: Some(8_000), ..groq(&g) }, ollama(&l)];
    let server = serve(or, providers).await;
    let prompt = "word ".repeat(9_600); // 48,000 bytes: about 12,000 tokens by the estimate
    let agent = format!(
        r#"{{"model":"openrouter/free","max_tokens":128000,"messages":[{{"role":"user","content":"{prompt}"}}]}}"#
    );
    for seed in 0..12 {
        let r = chat_seeded(&server, &agent, seed).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!r.header("x-router-model").unwrap_or_default().starts_with("groq/"));
    }
    // Named, it is refused rather than sent.
    let named = agent.replace("openrouter/free", &format!("groq/{}", GROQ_MODELS[0]));
    let refused = server.chat(&named).await;
    assert!(refused.status >= 400, "{}", refused.text);
    assert_eq!(g.total_calls(), 0, "the free tier never saw a request its minute could not take");

    let groq_model = format!("groq/{}", GROQ_MODELS[0]);
    let small =
        format!(r#"{{"model":"{groq_model}","max_tokens":128000,"messages":[{{"role":"user","content":"hi"}}]}}"#);
    let r = server.chat(&small).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = g.requests()[0].body["max_tokens"].as_u64().expect("max_tokens said");
    assert!(sent < 8_000, "asked for {sent} of an 8,000-token minute");
    assert_eq!(r.header("x-router-max-tokens"), Some(sent.to_string().as_str()));
    // Counted up front, as the tier counts it, then settled from the answer's `usage` (the
    // fake says 12 prompt tokens and a few of output): the minute takes the next request
    // too, streamed this time, asked for what the minute really leaves.
    let stream = small.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"");
    let r = server.chat(&stream).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("\"usage\""), "{}", r.text);
    let second = g.requests()[1].body["max_tokens"].as_u64().expect("max_tokens said");
    assert!(second + 40 > sent, "asked for {second} after {sent}: the first answer's usage settled its charge");
    // An answer that says it spent nearly the whole minute spends it.
    let spent = r#"{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"finish_reason":"stop",
        "message":{"role":"assistant","content":"long"}}],"usage":{"prompt_tokens":12,"completion_tokens":7978,"total_tokens":7990}}"#;
    g.set_default_behaviour(Behaviour::Status { status: 200, body: spent.replace('\n', "") });
    assert_eq!(server.chat(&small).await.status, 200);
    let again = server.chat(&small).await;
    again.check_error(429, "token budget");
    assert!(again.header("retry-after").is_some());
    assert_eq!(g.total_calls(), 3);
}

/// A free endpoint that hangs (NVIDIA's free models sometimes do, for minutes) is given
/// up on after its provider's own `first_byte_timeout_secs`, and the request falls back.
#[tokio::test]
async fn a_providers_own_first_byte_timeout_bounds_a_hanging_endpoint() {
    let Upstreams { openrouter: or, groq: g, local: _ } = upstreams().await;
    let slow = Behaviour::Delay { first_byte: std::time::Duration::from_secs(8), then: Box::new(Behaviour::Ok) };
    g.set_default_behaviour(slow);
    let providers = vec![openrouter(&or), ProviderSettings { first_byte_timeout_secs: Some(1), ..groq(&g) }];
    let server = serve(or, providers).await;
    let both = format!(
        r#"{{"model":"groq/{}","models":["{}"],"messages":[{{"role":"user","content":"hi"}}]}}"#,
        GROQ_MODELS[0], FREE_TEXT_MODELS[0]
    );
    let r = server.chat(&both).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Waited for, the endpoint would have answered after 8 s: it was given up on first.
    assert_eq!(r.header("x-router-model"), Some(FREE_TEXT_MODELS[0]));
    assert_eq!(r.header("x-router-attempts"), Some("2"));
    assert_eq!(g.total_calls(), 1);
}

/// Every provider's catalog refreshes are shown by provider on `/readyz`, `/metrics` and
/// the status page, OpenRouter's among them; a declared provider whose `/models` fails
/// says so there (before, only OpenRouter's refreshes were counted anywhere).
#[tokio::test]
async fn each_providers_catalog_refreshes_are_shown_by_provider() {
    let Upstreams { openrouter: or, groq: g, local: l } = upstreams().await;
    l.set_models_error(500, r#"{"error":"models listing is down"}"#);
    let providers = vec![openrouter(&or), groq(&g), ollama(&l)];
    let server = serve(or, providers).await;

    let ready = server.get("/readyz").await.json();
    let catalogs = ready["catalogs"].as_array().expect("catalogs by provider");
    let by = |name: &str| catalogs.iter().find(|c| c["provider"] == name).cloned().expect(name);
    assert_eq!(catalogs.len(), 3, "{ready}");
    assert_eq!((by("openrouter")["ok"].as_u64(), by("openrouter")["failed"].as_u64()), (Some(1), Some(0)), "{ready}");
    assert_eq!((by("groq")["ok"].as_u64(), by("groq")["models"].as_u64()), (Some(1), Some(2)), "{ready}");
    let ollama = by("ollama");
    assert_eq!((ollama["ok"].as_u64(), ollama["failed"].as_u64()), (Some(0), Some(1)), "{ready}");
    assert!(ollama["last_error"].as_str().is_some_and(|e| e.contains("500")), "{ollama}");
    // As one: the sums, and the failed catalog named.
    assert_eq!((ready["refresh"]["ok"].as_u64(), ready["refresh"]["failed"].as_u64()), (Some(2), Some(1)), "{ready}");
    assert!(ready["refresh"]["last_error"].as_str().is_some_and(|e| e.starts_with("ollama: ")), "{ready}");
    assert!(ready["refresh"]["last_success_at"].is_null(), "one catalog never refreshed: {ready}");

    let metrics = server.get("/metrics").await.text;
    for line in [
        "router_provider_catalog_refreshes_total{provider=\"groq\",result=\"ok\"} 1",
        "router_provider_catalog_refreshes_total{provider=\"ollama\",result=\"failed\"} 1",
        "router_provider_catalog_models{provider=\"groq\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    let status = server.get("/api/v1/router/status").await.json();
    let shown: Vec<&str> = status["catalog"]["refreshes"]
        .as_array()
        .expect("refreshes")
        .iter()
        .filter_map(|r| r["provider"].as_str())
        .collect();
    assert_eq!(shown, ["openrouter", "groq", "ollama"], "{status}");
}
