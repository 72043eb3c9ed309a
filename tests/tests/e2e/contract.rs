//! OpenRouter's contract as it is in 2026, end to end over loopback against the fake
//! upstream: `/models` in the full published shape, `openrouter_metadata` when asked,
//! empty answers that fall back, `limit_source` on 429s, and upstream's daily counter.

use crate::support::{FREE_TEXT_MODELS, Reply, TestServer, start, start_with};
use fake_upstream::{Behaviour, FakeUpstream, default_models, models_json};
use serde_json::{Value, json};

/// OpenRouter's published `/models` schema (ModelsListResponse and Model), as written
/// into the repository from the API reference.
const SCHEMA: &str = include_str!("../../../docs/schemas/openrouter-models.schema.json");

/// Checks `v` against the JSON Schema subset the schema file uses (`type`, `required`,
/// `properties`, `items`, `$ref` into `$defs`); returns every violation with its path.
fn violations(schema: &Value, root: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => root.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("unknown $ref {r}")),
        None => schema,
    };
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => panic!("bad type {other}"),
        };
        let fits = |t: &str| match t {
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            "null" => v.is_null(),
            other => panic!("unknown type {other}"),
        };
        if !types.iter().any(|t| fits(t)) {
            out.push(format!("{path}: {v} is not {types:?}"));
            return;
        }
    }
    if let (Some(required), Some(obj)) = (schema.get("required").and_then(Value::as_array), v.as_object()) {
        for r in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                out.push(format!("{path}: `{r}` is missing"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (schema.get("properties").and_then(Value::as_object), v.as_object()) {
        for (k, s) in props {
            if let Some(x) = obj.get(k) {
                violations(s, root, x, &format!("{path}.{k}"), out);
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            violations(items, root, x, &format!("{path}[{i}]"), out);
        }
    }
}

fn check_schema(body: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    let mut out = Vec::new();
    violations(&schema, &schema, body, "$", &mut out);
    out
}

#[tokio::test]
async fn the_model_list_validates_against_openrouters_published_schema() {
    let fake = FakeUpstream::start().await;
    // Upstream's entries carry fields the router does not know; they pass through.
    let mut catalog = models_json(&default_models());
    catalog["data"][0]["benchmarks"] = json!({"artificial_analysis": {"intelligence_index": 41.5}});
    catalog["data"][0]["reasoning"] = json!({"mandatory": false});
    let served: Vec<Value> = catalog["data"].as_array().expect("data").clone();
    fake.set_models(serde_json::to_vec(&catalog).expect("json"));
    let s = start_with(fake, |_| {}).await;

    let reply = s.get("/api/v1/models").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let problems = check_schema(&body);
    assert!(problems.is_empty(), "{problems:#?}");

    let data = body["data"].as_array().expect("data");
    assert_eq!(body["total_count"], data.len());
    assert_eq!(body["links"], json!({"next": null}));
    let router = &data[0];
    assert_eq!(router["id"], "openrouter/free");
    assert!(router["created"].is_i64(), "numeric created: {router}");
    assert_eq!(router["top_provider"]["is_moderated"], false);
    assert!(router["pricing"].as_object().is_some_and(|p| p.values().all(|v| v == "0")), "{router}");
    // The router entry describes the union of today's free models.
    let free: Vec<&Value> = data[1..].iter().collect();
    let max_context = free.iter().filter_map(|m| m["context_length"].as_u64()).max();
    assert_eq!(router["context_length"].as_u64(), max_context);
    for m in &free {
        for p in m["supported_parameters"].as_array().expect("params") {
            assert!(router["supported_parameters"].as_array().is_some_and(|r| r.contains(p)), "{p} missing");
        }
    }
    // Each free model's entry is upstream's, untouched.
    let ids: Vec<&str> = free.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, FREE_TEXT_MODELS);
    for m in &free {
        let original = served.iter().find(|e| e["id"] == m["id"]).expect("served");
        assert_eq!(*m, original, "passed through as served");
    }
    assert!(free.iter().any(|m| m["benchmarks"]["artificial_analysis"]["intelligence_index"] == 41.5));

    // A filtered list keeps the envelope and the shape.
    let tools = s.get("/api/v1/models?supported_parameters=tools").await.json();
    assert!(check_schema(&tools).is_empty());
    assert_eq!(tools["total_count"], tools["data"].as_array().map_or(0, Vec::len));

    // The check can fail: the shape the router served before this issue does not pass.
    let old = json!({"data": [{"id": "openrouter/free", "name": "Free Models Router", "created": null,
        "context_length": 8192, "architecture": {"modality": "text->text", "input_modalities": ["text"],
        "output_modalities": ["text"], "tokenizer": "Router"}, "pricing": {"prompt": "0", "completion": "0"},
        "top_provider": {"context_length": 8192, "max_completion_tokens": null},
        "supported_parameters": [], "expiration_date": null}]});
    let problems = check_schema(&old).join("\n");
    for missing in [
        "total_count",
        "canonical_slug",
        "links",
        "per_request_limits",
        "default_parameters",
        "supported_voices",
        "is_moderated",
        "created",
    ] {
        assert!(problems.contains(missing), "{missing} not reported: {problems}");
    }
}

/// A plain request that tries `first`, then `then`, in order.
fn ordered(first: &str, then: &str, stream: bool) -> String {
    json!({"model": first, "models": [then], "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

const A: &str = "meta-llama/llama-3.3-70b-instruct:free";
const B: &str = "qwen/qwen3-coder:free";

fn metric_line<'a>(metrics: &'a str, prefix: &str) -> Option<&'a str> {
    metrics.lines().find(|l| l.starts_with(prefix))
}

#[tokio::test]
async fn an_empty_answer_falls_back_to_another_model() {
    let s = start().await;
    s.upstream.set_behaviour(A, Behaviour::EmptyAnswer);
    for stream in [false, true] {
        let reply = s.chat(&ordered(A, B, stream)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("x-router-model"), Some(B), "stream {stream}");
        assert_eq!(reply.header("x-router-attempts"), Some("2"));
        let text = &reply.text;
        assert!(text.contains(&format!("hello from {B}")) || text.contains("hello"), "{text}");
        assert!(!text.contains("I can't help"), "nothing of the empty answer reaches the client: {text}");
    }
    assert_eq!(s.upstream.calls(A), 2);
    // Counted in /metrics under its own outcome.
    let metrics = s.get("/metrics").await.text;
    assert!(metrics.contains("empty_answer"), "{metrics}");

    // Reasoning alone is empty unless reasoning was asked for.
    s.upstream.set_behaviour(A, Behaviour::ReasoningOnly);
    let reply = s.chat(&ordered(A, B, false)).await;
    assert_eq!(reply.header("x-router-model"), Some(B));
}

#[tokio::test]
async fn a_shared_capacity_429_cools_that_model_only() {
    let s = start().await;
    let shared = |in_band| Behaviour::Limited {
        status: 429,
        source: "openrouter_shared_capacity".into(),
        message: format!("{A} is limited to 8 requests per minute for all users"),
        retry_after: None,
        in_band,
    };
    s.upstream.set_behaviour(A, shared(false));
    let reply = s.chat(&ordered(A, B, false)).await;
    assert_eq!((reply.status, reply.header("x-router-model")), (200, Some(B)), "{}", reply.text);
    let explain = s.post("/api/v1/router/explain", &ordered(A, B, false), &[]).await.json();
    assert!(explain["quota"]["blocked_until"].is_null(), "the account is not blocked: {explain}");
    let cooling = explain["cooling"].as_array().expect("cooling");
    assert!(cooling.iter().any(|c| c["id"] == A), "{explain}");
    // The next request skips the cooling model and is served at once.
    let before = s.upstream.calls(A);
    let reply = s.chat(&ordered(A, B, true)).await;
    assert_eq!((reply.status, reply.header("x-router-model")), (200, Some(B)));
    assert_eq!(s.upstream.calls(A), before);

    // The same error inside a 200 (a stream's first event) is classified the same way.
    let s = start().await;
    s.upstream.set_behaviour(A, shared(true));
    let reply = s.chat(&ordered(A, B, true)).await;
    assert_eq!((reply.status, reply.header("x-router-model")), (200, Some(B)), "{}", reply.text);
    let explain = s.post("/api/v1/router/explain", &ordered(A, B, false), &[]).await.json();
    assert!(explain["quota"]["blocked_until"].is_null(), "{explain}");
}

#[tokio::test]
async fn a_free_tier_daily_429_blocks_the_account() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::Limited {
        status: 429,
        source: "openrouter_free_tier_daily".into(),
        message: "Rate limit exceeded".into(),
        retry_after: None,
        in_band: false,
    });
    s.chat(&ordered(A, B, false)).await.check_error(429, "");
    assert_eq!(s.upstream.total_calls(), 1, "no other model is tried once the account is capped");
    s.chat(&ordered(B, A, false)).await.check_error(429, "");
    assert_eq!(s.upstream.total_calls(), 1, "blocked here until the reset");
}

const META: (&str, &str) = ("x-openrouter-metadata", "enabled");
const SEED: (&str, &str) = ("x-router-seed", "42");

fn metadata_of(reply: &Reply) -> Value {
    reply.json().get("openrouter_metadata").cloned().unwrap_or_else(|| panic!("no metadata: {}", reply.text))
}

#[tokio::test]
async fn router_metadata_only_when_asked() {
    let s = start().await;
    let body = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#;
    let plain = s.post("/api/v1/chat/completions", body, &[SEED]).await;
    assert_eq!(plain.status, 200);
    assert!(!plain.text.contains("openrouter_metadata"), "{}", plain.text);
    let off = s.post("/api/v1/chat/completions", body, &[SEED, ("x-openrouter-metadata", "disabled")]).await;
    assert!(!off.text.contains("openrouter_metadata"));

    for header in [META, ("X-OpenRouter-Experimental-Metadata", "Enabled")] {
        let reply = s.post("/api/v1/chat/completions", body, &[SEED, header]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let m = metadata_of(&reply);
        let model = reply.header("x-router-model").expect("model").to_owned();
        assert_eq!(m["requested"], "openrouter/free");
        assert_eq!(m["strategy"], "free");
        assert_eq!(m["attempt"], 1);
        assert_eq!(m["is_byok"], false);
        assert_eq!(m["endpoints"]["total"], FREE_TEXT_MODELS.len());
        let available = m["endpoints"]["available"].as_array().expect("available");
        let selected: Vec<&Value> = available.iter().filter(|e| e["selected"] == true).collect();
        assert_eq!(selected.len(), 1);
        assert_eq!(selected[0]["model"], model.as_str());
        assert_eq!(m["attempts"], json!([{"provider": "OpenRouter", "model": model, "status": 200}]));
        assert_eq!(m["router"]["seed"], "42");
        assert!(m["router"]["requirements"].is_array() && m["router"]["rejected"].is_array(), "{m}");
        // The rest of the body is upstream's answer.
        assert_eq!(reply.json()["choices"][0]["message"]["content"], format!("hello from {model}"));
    }

    // Rejected models are listed with their reasons.
    let tools = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#;
    let m = metadata_of(&s.post("/api/v1/chat/completions", tools, &[SEED, META]).await);
    let rejected = m["router"]["rejected"].as_array().expect("rejected");
    assert!(!rejected.is_empty(), "{m}");
    assert!(rejected.iter().all(|r| r["reasons"].as_array().is_some_and(|x| !x.is_empty())), "{m}");

    // A stream carries it on its final chunk, before `[DONE]`.
    let stream = r#"{"model":"openrouter/free","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let reply = s.post("/api/v1/chat/completions", stream, &[SEED, META]).await;
    let events = reply.events();
    let last = events.last().expect("events");
    assert!(last.get("openrouter_metadata").is_some(), "{}", reply.text);
    assert!(events[..events.len() - 1].iter().all(|e| e.get("openrouter_metadata").is_none()));
    assert!(reply.text.ends_with("data: [DONE]\n\n"), "{}", reply.text);
    let plain = s.post("/api/v1/chat/completions", stream, &[SEED]).await;
    assert!(!plain.text.contains("openrouter_metadata"));

    // An error carries it beside `error`, with every attempt.
    s.upstream.set_default_behaviour(Behaviour::NoEndpoints);
    let reply = s.post("/api/v1/chat/completions", body, &[SEED, META]).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    let b = reply.json();
    assert!(b["error"].is_object(), "{b}");
    let m = &b["openrouter_metadata"];
    let attempts = m["attempts"].as_array().expect("attempts");
    assert!(!attempts.is_empty() && attempts.iter().all(|a| a["status"] == 404), "{m}");
    assert_eq!(m["attempt"], attempts.len());
    let plain = s.post("/api/v1/chat/completions", body, &[SEED]).await;
    assert!(!plain.text.contains("openrouter_metadata"));
}

/// One reading of the upstream key, as the key watch does.
async fn read_key(s: &TestServer) {
    let reader = s.server.key_reader.as_ref().expect("OpenRouter reads its key");
    router_settings::key_watch::sync_once(&s.server.router, reader, false).await.expect("key read");
}

#[tokio::test]
async fn upstreams_daily_counter_is_believed() {
    let s: TestServer = start().await;
    // 7 of 1000 used upstream: the local count follows, and the source says so.
    s.upstream.set_free_model_daily_requests(7, 1000);
    read_key(&s).await;
    let status = s.get("/api/v1/router/status").await.json();
    assert_eq!(status["quota"]["day_source"], "upstream", "{status}");
    assert_eq!(status["quota"]["day"]["used"], 7);
    assert_eq!(status["quota"]["day"]["remaining"], 993);
    assert_eq!(status["quota"]["upstream_day"]["limit"], 1000);
    let metrics = s.get("/metrics").await.text;
    assert_eq!(
        metric_line(&metrics, "router_quota_day_source{"),
        Some("router_quota_day_source{source=\"upstream\"} 1")
    );
    let explain = s.post("/api/v1/router/explain", &ordered(A, B, false), &[]).await.json();
    assert_eq!(explain["quota"]["day_source"], "upstream");
    let ready = s.get("/readyz").await.json();
    assert_eq!(
        (ready["quota"]["day_source"].as_str(), ready["quota"]["day_remaining"].as_u64()),
        (Some("upstream"), Some(993))
    );
    s.chat(&ordered(A, B, false)).await;
    assert_eq!(s.get("/api/v1/router/status").await.json()["quota"]["day"]["used"], 8, "counted on from upstream's");

    // Nothing remaining upstream: no call goes out until the next 00:00 UTC.
    s.upstream.set_free_model_daily_requests(50, 50);
    read_key(&s).await;
    let before = s.upstream.total_calls();
    s.chat(&ordered(A, B, false)).await.check_error(429, "");
    assert_eq!(s.upstream.total_calls(), before);
}

/// What `@openrouter/sdk`'s `models.list()` makes of the router's list (it throws when
/// the response does not validate against the SDK's schemas).
const SDK_SCRIPT: &str = r#"
import { OpenRouter } from "@openrouter/sdk";
const client = new OpenRouter({ apiKey: "unused", serverURL: process.argv[1] });
const page = await client.models.list();
const list = page.result;
console.log(JSON.stringify({
  ids: list.data.map((m) => m.id),
  total: list.totalCount,
  created: list.data[0].created,
  moderated: list.data[0].topProvider.isModerated,
}));
"#;

/// The official TypeScript SDK lists models through the router. Needs `node` and a
/// folder with `node_modules/@openrouter/sdk` (`npm install @openrouter/sdk@1.3.19`)
/// named by `OPENROUTER_SDK_DIR`, so it is ignored by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and @openrouter/sdk in $OPENROUTER_SDK_DIR/node_modules"]
async fn the_official_typescript_sdk_lists_models_through_the_router() {
    let dir = std::env::var("OPENROUTER_SDK_DIR").expect("OPENROUTER_SDK_DIR names a folder with the SDK installed");
    let s = start().await;
    let base_url = s.url("/api/v1");
    let output = tokio::task::spawn_blocking(move || {
        let mut node = std::process::Command::new("node");
        node.current_dir(dir).args(["--input-type=module", "-e", SDK_SCRIPT, &base_url]);
        crate::support::output_within(node, crate::support::CLIENT_TIMEOUT)
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the SDK failed: {stderr}");
    let out: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let mut expected = vec!["openrouter/free"];
    expected.extend(FREE_TEXT_MODELS);
    assert_eq!(out["ids"], json!(expected));
    assert_eq!(out["total"], expected.len());
    assert!(out["created"].is_i64(), "{out}");
    assert_eq!(out["moderated"], false);
}

#[tokio::test]
async fn the_key_watch_reads_again_right_after_a_daily_cap() {
    let s = start().await;
    s.upstream.set_free_model_daily_requests(3, 50);
    let watch = tokio::spawn(router_settings::key_watch::watch(
        s.server.router.clone(),
        s.server.key_reader.clone().expect("OpenRouter reads its key"),
        false,
        std::time::Duration::from_secs(3600),
    ));
    let upstream_used =
        || async { s.get("/api/v1/router/status").await.json()["quota"]["upstream_day"]["used"].clone() };
    // Read at start.
    for _ in 0..300 {
        if upstream_used().await == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(upstream_used().await, 3);
    // A daily-cap 429: the watch reads the key again soon, not at the next hour.
    s.upstream.set_free_model_daily_requests(50, 50);
    s.upstream.set_default_behaviour(Behaviour::DailyCap { reset_ms: 0 });
    s.chat(&ordered(A, B, false)).await.check_error(429, "");
    for _ in 0..300 {
        if upstream_used().await == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(upstream_used().await, 50, "read again after the daily cap");
    watch.abort();
}
