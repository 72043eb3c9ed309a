//! `/v1/embeddings` through the server: routed by family (the named model's, else the
//! default), failing over only between endpoints of that family (OpenRouter's and a
//! declared local server's), never to another family's vectors, never to a paid model;
//! plus the official Python `openai` client's `embeddings.create` (float and base64).

use crate::support::{Reply, TestServer, start_with};
use fake_upstream::{Behaviour, FakeUpstream, openai_models_json};
use router_settings::{ModelSettings, ProviderKind, ProviderSettings};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The family OpenRouter and the local server both serve.
const NOMIC: &str = "nomic-ai/nomic-embed-text-v1.5:free";
/// The same model on the local server, exposed under its provider's name.
const LOCAL_NOMIC: &str = "ollama/nomic-embed-text";
/// Another free family, first by name (the default when none is configured).
const SMALL: &str = "acme/embed-small:free";
/// A paid embedding model.
const PAID: &str = "voyageai/voyage-code-4";
const NOMIC_DIM: usize = 16;
const SMALL_DIM: usize = 8;

/// An entry of OpenRouter's `/embeddings/models` list.
fn entry(id: &str, price: &str) -> Value {
    json!({
        "id": id, "name": id, "created": 1_786_636_912, "context_length": 8192,
        "architecture": {"modality": "text->embeddings", "input_modalities": ["text"],
                         "output_modalities": ["embeddings"], "tokenizer": "Other"},
        "pricing": {"prompt": price, "completion": "0"},
        "top_provider": {"context_length": 8192, "max_completion_tokens": null, "is_moderated": false},
        "supported_parameters": [], "expiration_date": null,
    })
}

/// The server in front of an OpenRouter fake listing three embedding models and a local
/// server (`ollama`, `local = true`) serving `nomic-embed-text` as the `NOMIC` family.
async fn serve(default_family: Option<&str>) -> (TestServer, FakeUpstream) {
    let or = FakeUpstream::start().await;
    or.set_embedding_models(
        json!({"data": [entry(NOMIC, "0"), entry(SMALL, "0"), entry(PAID, "0.00000012")]}).to_string(),
    );
    or.set_embedding_dimension(NOMIC, NOMIC_DIM);
    or.set_embedding_dimension(SMALL, SMALL_DIM);
    let local = FakeUpstream::start().await;
    local.set_models(openai_models_json(&["nomic-embed-text", "qwen3:8b"]).to_string());
    local.set_embedding_dimension("nomic-embed-text", NOMIC_DIM);
    let ollama = ProviderSettings {
        local: true,
        models: vec![ModelSettings {
            id: "nomic-embed-text".into(),
            output_modalities: Some(vec!["embeddings".into()]),
            family: Some(NOMIC.into()),
            ..ModelSettings::default()
        }],
        ..ProviderSettings::new("ollama", ProviderKind::Openai, Some(local.openai_base_url()))
    };
    let family = default_family.map(str::to_owned);
    let openrouter = ProviderSettings::new("openrouter", ProviderKind::Openrouter, Some(or.base_url()));
    let server = start_with(or, move |c| {
        c.providers = vec![openrouter, ollama];
        c.default_embedding_family = family;
    })
    .await;
    for p in &server.server.providers.catalogs {
        let _ = p.refresh().await;
    }
    (server, local)
}

async fn embed(server: &TestServer, body: &Value, seed: u64) -> Reply {
    server.post("/v1/embeddings", &body.to_string(), &[("x-router-seed", &seed.to_string())]).await
}

/// The answer's vectors' dimensions and `model`, after checking its shape.
fn check(reply: &Reply, inputs: usize) -> (BTreeSet<usize>, String) {
    assert_eq!(reply.status, 200, "{}", reply.text);
    let v = reply.json();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().expect("data");
    assert_eq!(data.len(), inputs, "{v}");
    for (i, d) in data.iter().enumerate() {
        assert_eq!((d["object"].as_str(), d["index"].as_u64()), (Some("embedding"), Some(i as u64)), "{d}");
    }
    let dims = data.iter().map(|d| d["embedding"].as_array().expect("floats").len()).collect();
    let model = v["model"].as_str().expect("model").to_owned();
    assert_eq!(reply.header("x-router-model"), Some(model.as_str()), "the header and the body agree");
    (dims, model)
}

#[tokio::test]
async fn free_calls_get_one_family_and_a_named_family_is_kept() {
    let (server, local) = serve(Some(NOMIC)).await;
    let listed = server.get("/api/v1/embeddings/models").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let ids: BTreeSet<String> = listed.json()["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, [LOCAL_NOMIC, SMALL, NOMIC].into_iter().map(str::to_owned).collect(), "free ones, every provider");

    // Twenty `free` calls: the configured family only, one dimension, either endpoint.
    let mut models = BTreeSet::new();
    for seed in 0..20 {
        let reply = embed(&server, &json!({"model": "openrouter/free", "input": ["a", "b"]}), seed).await;
        let (dims, model) = check(&reply, 2);
        assert_eq!(dims, BTreeSet::from([NOMIC_DIM]), "{model}");
        assert_eq!(reply.header("x-router-embedding-family"), Some(NOMIC));
        models.insert(model);
    }
    assert_eq!(models, BTreeSet::from([LOCAL_NOMIC.to_owned(), NOMIC.to_owned()]), "both endpoints of the family");
    assert_eq!(server.upstream.calls(SMALL), 0, "another family is never drawn");
    // The local server was sent its own id and the client's members.
    let sent = local.requests();
    assert!(sent.iter().all(|r| r.model == "nomic-embed-text" && r.body["input"] == json!(["a", "b"])), "{sent:?}");

    // A named family (by its id or by an endpoint's) stays in it.
    for model in [SMALL, "acme/embed-small:free"] {
        let (dims, answered) = check(&embed(&server, &json!({"model": model, "input": "x"}), 1).await, 1);
        assert_eq!((dims, answered.as_str()), (BTreeSet::from([SMALL_DIM]), SMALL));
    }
    let (dims, _) = check(&embed(&server, &json!({"model": LOCAL_NOMIC, "input": [[1, 2, 3]]}), 2).await, 1);
    assert_eq!(dims, BTreeSet::from([NOMIC_DIM]));
    let short = embed(&server, &json!({"model": NOMIC, "input": "x", "dimensions": 4}), 3).await;
    assert_eq!(check(&short, 1).0, BTreeSet::from([4]), "`dimensions` is passed on");

    // Counted as embeddings requests, and each routed one as a decision like chat's.
    let metrics = server.get("/metrics").await.text;
    assert!(metrics.contains("router_requests_total{endpoint=\"embeddings\",status=\"200\"} 25"), "{metrics}");
    assert!(
        metrics.contains(&format!("router_upstream_attempts_total{{model=\"{LOCAL_NOMIC}\",outcome=\"ok\"}}")),
        "{metrics}"
    );
}

#[tokio::test]
async fn explain_gives_the_decision_within_the_family_and_sends_nothing() {
    let (server, local) = serve(None).await;
    let reply =
        server.post("/api/v1/embeddings/explain", &json!({"model": NOMIC, "input": "x"}).to_string(), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let x = reply.json();
    assert_eq!(x["family"], NOMIC);
    assert_eq!(x["candidates"], json!([NOMIC, LOCAL_NOMIC]), "{x}");
    assert!([NOMIC, LOCAL_NOMIC].contains(&x["pick"].as_str().expect("pick")), "{x}");
    let small = x["rejected"].as_array().expect("rejected").iter().find(|r| r["id"] == SMALL).expect("small rejected");
    assert_eq!(small["reasons"], json!([format!("embedding family `{SMALL}`, not `{NOMIC}`")]));
    assert_eq!((server.upstream.total_calls(), local.total_calls()), (0, 0));
}

#[tokio::test]
async fn numbers_from_a_server_that_ignores_base64_are_re_encoded() {
    let (server, local) = serve(Some(NOMIC)).await;
    // Like Ollama: numbers whatever `encoding_format` says.
    let floats = json!({"object": "list", "model": "nomic-embed-text",
        "data": [{"object": "embedding", "index": 0, "embedding": vec![1.0; NOMIC_DIM]}]});
    local.set_behaviour("nomic-embed-text", Behaviour::Status { status: 200, body: floats.to_string() });
    let body = json!({"model": LOCAL_NOMIC, "input": "x", "encoding_format": "base64"});
    let reply = embed(&server, &body, 1).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let v = reply.json();
    // Sixteen f32s of 1.0 (00 00 80 3f each) in base64.
    assert_eq!(v["data"][0]["embedding"], "AACAPwAAgD8AAIA/".repeat(5) + "AACAPw==");
    assert_eq!(v["model"], LOCAL_NOMIC);
}

#[tokio::test]
async fn openrouter_alone_serves_its_free_embedding_models() {
    // No `[[providers]]`: OpenRouter's own transport posts to `/embeddings` (the sharded
    // one of several serving threads is unit-tested in router-server's `shard.rs`).
    let or = FakeUpstream::start().await;
    or.set_embedding_models(json!({"data": [entry(NOMIC, "0"), entry(PAID, "0.00000012")]}).to_string());
    or.set_embedding_dimension(NOMIC, NOMIC_DIM);
    let server = start_with(or, |_| {}).await;
    let reply = embed(&server, &json!({"input": ["a", "b", "c"]}), 1).await;
    assert_eq!(check(&reply, 3), (BTreeSet::from([NOMIC_DIM]), NOMIC.to_owned()));
    assert_eq!(server.upstream.calls(NOMIC), 1);
    embed(&server, &json!({"model": PAID, "input": "x"}), 1).await.check_error(400, "never forwards to a paid model");
    assert_eq!(server.upstream.total_calls(), 1, "the paid model was never called");
}

#[tokio::test]
async fn without_a_default_the_first_free_family_by_name_answers() {
    let (server, _local) = serve(None).await;
    for seed in 0..5 {
        let reply = embed(&server, &json!({"input": "hello"}), seed).await;
        assert_eq!(check(&reply, 1), (BTreeSet::from([SMALL_DIM]), SMALL.to_owned()));
        assert_eq!(reply.header("x-router-embedding-family"), Some(SMALL));
    }
}

#[tokio::test]
async fn failover_stays_in_the_family_and_ends_with_an_error_naming_it() {
    let (server, local) = serve(Some(NOMIC)).await;
    server.upstream.set_behaviour(NOMIC, Behaviour::RateLimited { retry_after: Some(60) });
    for seed in 0..6 {
        let reply = embed(&server, &json!({"model": NOMIC, "input": "q"}), seed).await;
        assert_eq!(check(&reply, 1), (BTreeSet::from([NOMIC_DIM]), LOCAL_NOMIC.to_owned()), "seed {seed}");
    }
    assert!(server.upstream.calls(NOMIC) >= 1, "OpenRouter's endpoint was tried and is cooling");

    local.set_behaviour("nomic-embed-text", Behaviour::Status { status: 503, body: "down".into() });
    let reply = embed(&server, &json!({"model": "free", "input": "q"}), 9).await;
    assert!(reply.status >= 400, "{}", reply.text);
    let message = reply.json()["error"]["message"].as_str().expect("message").to_owned();
    assert!(message.contains(&format!("embedding family `{NOMIC}`")), "{message}");
    assert_eq!(reply.json()["error"]["metadata"]["family"], NOMIC);
    assert_eq!(server.upstream.calls(SMALL), 0, "no other family's vectors stand in");
}

#[tokio::test]
async fn paid_chat_and_malformed_requests_are_refused_before_anything_is_sent() {
    let (server, local) = serve(Some(NOMIC)).await;
    let paid = embed(&server, &json!({"model": PAID, "input": "x"}), 1).await;
    paid.check_error(400, "never forwards to a paid model");
    let chat_model = embed(&server, &json!({"model": "qwen/qwen3-coder:free", "input": "x"}), 1).await;
    chat_model.check_error(404, "is not an embedding model");
    for (body, needle) in [
        (json!({"input": []}), "`input` is required"),
        (json!({"input": [1, "a"]}), "`input` must be"),
        (json!({"input": "a", "encoding_format": "int8"}), "`encoding_format`"),
        (json!({"input": vec!["a"; 2049]}), "at most 2048"),
    ] {
        embed(&server, &body, 1).await.check_error(400, needle);
    }
    assert_eq!((server.upstream.total_calls(), local.total_calls()), (0, 0), "nothing was sent");

    // Chat never reaches an embedding model, named or drawn.
    let named =
        server.chat(&format!(r#"{{"model":"{LOCAL_NOMIC}","messages":[{{"role":"user","content":"hi"}}]}}"#)).await;
    assert_eq!(named.status, 404, "{}", named.text);
    for seed in 0..10 {
        let body = r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#;
        let reply = server.post("/v1/chat/completions", body, &[("x-router-seed", &seed.to_string())]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    assert_eq!(server.upstream.calls(NOMIC) + server.upstream.calls(SMALL) + local.calls("nomic-embed-text"), 0);
}

#[tokio::test]
async fn an_endpoint_answering_another_dimension_is_not_passed_on() {
    let (server, local) = serve(Some(NOMIC)).await;
    let first = embed(&server, &json!({"model": NOMIC, "input": "x"}), 1).await;
    assert_eq!(check(&first, 1).0, BTreeSet::from([NOMIC_DIM]));
    local.set_embedding_dimension("nomic-embed-text", 12);
    server.upstream.set_behaviour(NOMIC, Behaviour::RateLimited { retry_after: Some(60) });
    let reply = embed(&server, &json!({"model": NOMIC, "input": "x"}), 2).await;
    reply.check_error(502, "answered with 16 dimensions before, and now with 12");
}

/// An endpoint of the family that answers vectors of another size than the family's
/// (learned from its first answer) is a failed attempt: the request falls back to another
/// endpoint of the family, and the client never sees the odd vectors.
#[tokio::test]
async fn a_dimension_mismatch_fails_over_inside_the_family() {
    let (server, local) = serve(Some(NOMIC)).await;
    // The family's first answer (from either endpoint, both at 16) fixes its dimension.
    let first = embed(&server, &json!({"model": NOMIC, "input": "x"}), 0).await;
    assert_eq!(check(&first, 1).0, BTreeSet::from([NOMIC_DIM]));
    // The local endpoint now answers with 12: every request is still answered with 16.
    local.set_embedding_dimension("nomic-embed-text", 12);
    let before = local.calls("nomic-embed-text");
    for seed in 1..13 {
        let reply = embed(&server, &json!({"model": NOMIC, "input": ["a", "b"]}), seed).await;
        assert_eq!(check(&reply, 2), (BTreeSet::from([NOMIC_DIM]), NOMIC.to_owned()), "seed {seed}");
    }
    assert!(local.calls("nomic-embed-text") > before, "the local endpoint was tried, and fell over");
    assert_eq!(server.upstream.calls(SMALL), 0, "no other family stood in");
}

/// NVIDIA's retrieval models (NV-Embed-QA, E5) need `input_type` (`query` or `passage`),
/// which OpenAI's API lacks (NVIDIA's NeMo Retriever docs, "Passage and Query Modes"); the
/// router adds no default of its own, but what a client sends (the `openai` SDK's
/// `extra_body`) reaches the endpoint as sent, beside `model` replaced.
#[tokio::test]
async fn a_clients_input_type_reaches_the_endpoint_as_sent() {
    let (server, local) = serve(Some(NOMIC)).await;
    server.upstream.set_behaviour(NOMIC, Behaviour::RateLimited { retry_after: Some(60) });
    let body = json!({"model": NOMIC, "input": ["a"], "input_type": "passage", "truncate": "END"});
    let reply = embed(&server, &body, 1).await;
    assert_eq!(check(&reply, 1).1, LOCAL_NOMIC);
    let sent = local.requests().into_iter().last().expect("sent").body;
    assert_eq!((sent["input_type"].as_str(), sent["truncate"].as_str()), (Some("passage"), Some("END")), "{sent}");
    assert_eq!(sent["model"], "nomic-embed-text");
}

/// Gemini's embedding model, as its OpenAI-compatible endpoint knows it.
const GEMINI_EMBED: &str = "gemini-embedding-001";
/// Its exposed id (and so its family).
const GEMINI_FAMILY: &str = "gemini/gemini-embedding-001";
const GEMINI_DIM: usize = 12;

/// The server in front of OpenRouter (no embedding model), Google AI Studio's fake
/// refusing more than 100 inputs a call as Gemini does (declared `max_batch_inputs =
/// 100`, `per_day` requests a day), and, with `local`, a local server serving the same
/// family without a batch limit.
async fn serve_gemini(per_day: u32, local: bool) -> (TestServer, FakeUpstream, FakeUpstream) {
    let gemini = FakeUpstream::start().await;
    gemini.set_models(openai_models_json(&[GEMINI_EMBED]).to_string());
    gemini.set_embedding_dimension(GEMINI_EMBED, GEMINI_DIM);
    gemini.set_embedding_batch_limit(GEMINI_EMBED, 100);
    let embedding = Some(vec!["embeddings".to_owned()]);
    let google = ProviderSettings {
        free_tier: true,
        per_day: Some(per_day),
        models: vec![ModelSettings {
            id: GEMINI_EMBED.into(),
            output_modalities: embedding.clone(),
            max_batch_inputs: std::num::NonZeroU32::new(100),
            ..ModelSettings::default()
        }],
        ..ProviderSettings::new("gemini", ProviderKind::Openai, Some(gemini.openai_base_url()))
    };
    let ollama = FakeUpstream::start().await;
    ollama.set_models(openai_models_json(&["embed-local"]).to_string());
    ollama.set_embedding_dimension("embed-local", GEMINI_DIM);
    let mut providers = vec![ProviderSettings::new("openrouter", ProviderKind::Openrouter, None), google];
    if local {
        providers.push(ProviderSettings {
            local: true,
            models: vec![ModelSettings {
                id: "embed-local".into(),
                output_modalities: embedding,
                family: Some(GEMINI_FAMILY.into()),
                ..ModelSettings::default()
            }],
            ..ProviderSettings::new("ollama", ProviderKind::Openai, Some(ollama.openai_base_url()))
        });
    }
    let or = FakeUpstream::start().await;
    let or_url = or.base_url();
    let server = start_with(or, move |c| {
        providers[0].base_url = Some(or_url);
        c.providers = providers;
    })
    .await;
    for p in &server.server.providers.catalogs {
        let _ = p.refresh().await;
    }
    (server, gemini, ollama)
}

/// `n` distinct inputs.
fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("text number {i}")).collect()
}

/// Checks that `reply` holds the fake's vector of each of `n` inputs at its own index.
fn check_in_order(reply: &Reply, n: usize, base64: bool) {
    assert_eq!(reply.status, 200, "{}", reply.text);
    let v = reply.json();
    let data = v["data"].as_array().expect("data");
    assert_eq!(data.len(), n);
    for (i, (d, text)) in data.iter().zip(texts(n)).enumerate() {
        assert_eq!(d["index"].as_u64(), Some(i as u64), "{d}");
        let want = fake_upstream::vector(&text, GEMINI_DIM);
        if base64 {
            assert_eq!(d["embedding"].as_str(), Some(fake_upstream::encode_base64(&want).as_str()), "input {i}");
        } else {
            let got: Vec<f32> =
                d["embedding"].as_array().expect("floats").iter().map(|x| x.as_f64().expect("number") as f32).collect();
            assert_eq!(got, want, "input {i}");
        }
    }
}

/// The number of inputs of each `/embeddings` call `up` received.
fn batch_sizes(up: &FakeUpstream) -> Vec<usize> {
    up.requests().iter().map(|r| r.body["input"].as_array().map_or(1, Vec::len)).collect()
}

/// Gemini's OpenAI-compatible endpoint answers 400 past 100 inputs (vercel/ai#16101,
/// getzep/graphiti#647): with `max_batch_inputs = 100`, 250 inputs go as three calls to
/// the one model, joined into one answer in input order, each call counted in the
/// provider's quota.
#[tokio::test]
async fn a_batch_past_geminis_limit_is_sent_in_chunks_to_one_model_and_joined() {
    let (server, gemini, _) = serve_gemini(100, false).await;
    let reply = embed(&server, &json!({"model": GEMINI_FAMILY, "input": texts(250)}), 1).await;
    check_in_order(&reply, 250, false);
    let v = reply.json();
    assert_eq!((v["object"].as_str(), v["model"].as_str()), (Some("list"), Some(GEMINI_FAMILY)));
    // Explain says where the batch is cut, and sends nothing.
    let body = json!({"input": texts(250)}).to_string();
    let x = server.post("/api/v1/embeddings/explain", &body, &[]).await.json();
    assert_eq!((x["first_call_inputs"].as_u64(), x["pick"].as_str()), (Some(100), Some(GEMINI_FAMILY)), "{x}");
    let x = server.post("/api/v1/embeddings/explain", &json!({"input": texts(100)}).to_string(), &[]).await.json();
    assert!(x.get("first_call_inputs").is_none(), "not cut: {x}");
    assert_eq!(reply.header("x-router-model"), Some(GEMINI_FAMILY));
    // Each input is `text number N`: 14 to 16 bytes, 4 tokens by the fake's count.
    assert_eq!(v["usage"], json!({"prompt_tokens": 1000, "total_tokens": 1000}), "summed over the calls");
    assert_eq!(batch_sizes(&gemini), [100, 100, 50]);
    // Counted as the three requests sent, in the quota and in the attempts.
    let state = server.server.router.health_snapshot();
    assert_eq!(state.providers.get("gemini").map(|p| p.quota.day.count), Some(3));
    let metrics = server.get("/metrics").await.text;
    let ok = format!("router_upstream_attempts_total{{model=\"{GEMINI_FAMILY}\",outcome=\"ok\"}} 3");
    assert!(metrics.contains(&ok), "{metrics}");
    assert!(metrics.contains("router_requests_total{endpoint=\"embeddings\",status=\"200\"} 1"), "{metrics}");

    // Base64 as asked, and a batch within the limit goes whole.
    let reply = embed(&server, &json!({"input": texts(150), "encoding_format": "base64"}), 2).await;
    check_in_order(&reply, 150, true);
    let reply = embed(&server, &json!({"input": texts(100)}), 3).await;
    check_in_order(&reply, 100, false);
    assert_eq!(batch_sizes(&gemini), [100, 100, 50, 100, 50, 100]);
    // The fake refuses 101 inputs as Gemini does: a batch sent whole would fail.
    let direct = server
        .client
        .post(format!("{}/embeddings", gemini.openai_base_url()))
        .json(&json!({"model": GEMINI_EMBED, "input": texts(101)}))
        .send()
        .await
        .expect("sent");
    assert_eq!(direct.status().as_u16(), 400);
    assert!(direct.text().await.expect("body").contains(fake_upstream::GEMINI_BATCH_ERROR));
}

/// A seed whose pick for an embeddings body of `family` is `model` (by the explain
/// endpoint, which sends nothing).
async fn seed_picking(server: &TestServer, family: &str, model: &str) -> u64 {
    for seed in 0..64u64 {
        let body = json!({"model": family, "input": ["x", "y"]}).to_string();
        let x = server.post("/api/v1/embeddings/explain", &body, &[("x-router-seed", &seed.to_string())]).await;
        if x.json()["pick"] == model {
            return seed;
        }
    }
    panic!("no seed picks {model}");
}

/// A chunk refused after the first (Gemini's day spent mid-batch) sends the whole batch
/// again to the family's other endpoint: the answer's 250 vectors all come from it.
#[tokio::test]
async fn a_chunk_refused_mid_batch_sends_the_whole_batch_to_another_endpoint_of_the_family() {
    let (server, gemini, local) = serve_gemini(4, true).await;
    let seed = seed_picking(&server, GEMINI_FAMILY, GEMINI_FAMILY).await;
    let reply = embed(&server, &json!({"model": GEMINI_FAMILY, "input": texts(250)}), seed).await;
    check_in_order(&reply, 250, false);
    assert_eq!(reply.json()["model"], GEMINI_FAMILY);
    assert_eq!(batch_sizes(&gemini), [100, 100, 50]);

    // One request left on Gemini's day: its first chunk goes, the second is refused.
    let seed = seed_picking(&server, GEMINI_FAMILY, GEMINI_FAMILY).await;
    let reply = embed(&server, &json!({"model": GEMINI_FAMILY, "input": texts(250)}), seed).await;
    check_in_order(&reply, 250, false);
    assert_eq!(reply.json()["model"], "ollama/embed-local", "one model's vectors, never a mix");
    assert_eq!(reply.header("x-router-model"), Some("ollama/embed-local"));
    assert_eq!(batch_sizes(&gemini), [100, 100, 50, 100]);
    assert_eq!(batch_sizes(&local), [250], "the whole batch again, in one call (no limit declared)");
    let state = server.server.router.health_snapshot();
    assert_eq!(state.providers.get("gemini").map(|p| p.quota.day.count), Some(4));
}

/// NVIDIA's retrieval models need `input_type` (NeMo Retriever embedding NIM, API
/// reference: "NV-Embed-QA and E5 models operate in passage or query mode, and thus
/// require the input_type parameter"); a model's declared one is added when the client
/// (an OpenAI client never sends it) says none, and the client's own wins.
#[tokio::test]
async fn a_models_declared_input_type_is_added_unless_the_client_sends_one() {
    let nvidia = FakeUpstream::start().await;
    nvidia.set_models(openai_models_json(&["nvidia/nv-embedqa-e5-v5"]).to_string());
    let nv = ProviderSettings {
        free_tier: true,
        // A token budget caps a chat request's output; an embeddings body gets no `max_tokens`.
        tokens_per_minute: Some(100_000),
        models: vec![ModelSettings {
            id: "nvidia/nv-embedqa-e5-v5".into(),
            output_modalities: Some(vec!["embeddings".into()]),
            input_type: Some("passage".into()),
            ..ModelSettings::default()
        }],
        ..ProviderSettings::new("nvidia", ProviderKind::Openai, Some(nvidia.openai_base_url()))
    };
    let or = FakeUpstream::start().await;
    let openrouter = ProviderSettings::new("openrouter", ProviderKind::Openrouter, Some(or.base_url()));
    let server = start_with(or, move |c| c.providers = vec![openrouter, nv]).await;
    for p in &server.server.providers.catalogs {
        let _ = p.refresh().await;
    }
    for (body, sent) in
        [(json!({"input": ["a"]}), "passage"), (json!({"input": ["a"], "input_type": "query"}), "query")]
    {
        let reply = embed(&server, &body, 1).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("x-router-max-tokens"), None, "no output is asked for");
        let got = nvidia.requests().into_iter().last().expect("sent").body;
        assert_eq!((got["input_type"].as_str(), got["model"].as_str()), (Some(sent), Some("nvidia/nv-embedqa-e5-v5")));
        assert!(got.get("max_tokens").is_none(), "{got}");
    }
    // Charged its input, then settled to the answer's `usage` (one token per input here).
    let state = server.server.router.health_snapshot();
    assert_eq!(state.providers.get("nvidia").map(|p| p.tokens.day_used), Some(2));
}

/// The official Python client, unchanged; run by `cargo xtask ci`'s `sdk compatibility`
/// step (its filter `sdk::` matches this module).
mod sdk {
    use super::{GEMINI_DIM, GEMINI_FAMILY, NOMIC, NOMIC_DIM, serve, serve_gemini};
    use serde_json::Value;

    /// Runs `script` with the router's base URL; its printed JSON.
    async fn python(script: String, base_url: String) -> Value {
        let output = tokio::task::spawn_blocking(move || {
            let mut python = std::process::Command::new("python3");
            python.arg("-c").arg(script).arg(base_url);
            crate::support::output_within(python, crate::support::CLIENT_TIMEOUT)
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "python failed: {stderr}");
        serde_json::from_slice(&output.stdout).expect("the script prints json")
    }

    /// 250 inputs in one `embeddings.create` (base64 on the wire, the SDK's default),
    /// against an endpoint that takes 100 a call; each vector compared with the same
    /// input embedded alone.
    const BATCH_SCRIPT: &str = r#"
import json, sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key="client-key-not-checked")
texts = ["text number %d" % i for i in range(250)]
r = client.embeddings.create(model=sys.argv[2], input=texts)
alone = {i: client.embeddings.create(model=sys.argv[2], input=[texts[i]]).data[0].embedding for i in (0, 99, 100, 137, 249)}
close = lambda x, y: len(x) == len(y) and all(abs(p - q) < 1e-6 for p, q in zip(x, y))
print(json.dumps({
    "model": r.model,
    "count": len(r.data),
    "indices_in_order": [d.index for d in r.data] == list(range(250)),
    "dims": sorted({len(d.embedding) for d in r.data}),
    "same_as_alone": all(close(r.data[i].embedding, v) for i, v in alone.items()),
    "prompt_tokens": r.usage.prompt_tokens,
}))
"#;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs python3 with the openai package; `cargo xtask ci` installs it and runs this test"]
    async fn the_official_python_openai_client_gets_a_batch_sent_in_chunks() {
        let (s, gemini, _) = serve_gemini(100, false).await;
        let script = BATCH_SCRIPT.replace("sys.argv[2]", &format!("{GEMINI_FAMILY:?}"));
        let out = python(script, format!("{}/v1", s.base)).await;
        assert_eq!(out["model"], GEMINI_FAMILY, "{out}");
        assert_eq!((out["count"].as_u64(), out["indices_in_order"].as_bool()), (Some(250), Some(true)), "{out}");
        assert_eq!(out["dims"], serde_json::json!([GEMINI_DIM]), "{out}");
        assert_eq!(out["same_as_alone"], true, "{out}");
        assert_eq!(out["prompt_tokens"], 1000, "{out}");
        let sizes: Vec<usize> =
            gemini.requests().iter().map(|r| r.body["input"].as_array().map_or(1, Vec::len)).collect();
        assert_eq!(sizes, [100, 100, 50, 1, 1, 1, 1, 1], "three calls for the batch, then one per single input");
    }

    /// Without `encoding_format` the SDK asks for base64 itself and decodes it; with
    /// `base64` it hands the string over; with `float` it gets numbers.
    const SCRIPT: &str = r#"
import base64, json, struct, sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key="client-key-not-checked")
out = {}
r = client.embeddings.create(model="openrouter/free", input=["hello", "world"])
out["model"] = r.model
out["dims"] = sorted({len(d.embedding) for d in r.data})
out["indices"] = [d.index for d in r.data]
f = client.embeddings.create(model="openrouter/free", input="hello", encoding_format="float")
b = client.embeddings.create(model="openrouter/free", input="hello", encoding_format="base64")
raw = base64.b64decode(b.data[0].embedding)
decoded = list(struct.unpack("<%df" % (len(raw) // 4), raw))
out["base64_dims"] = len(decoded)
close = lambda x, y: len(x) == len(y) and all(abs(p - q) < 1e-6 for p, q in zip(x, y))
out["same"] = close(decoded, f.data[0].embedding) and close(r.data[0].embedding, f.data[0].embedding)
print(json.dumps(out))
"#;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs python3 with the openai package; `cargo xtask ci` installs it and runs this test"]
    async fn the_official_python_openai_client_gets_embeddings() {
        let (s, _local) = serve(Some(NOMIC)).await;
        let out = python(SCRIPT.to_owned(), format!("{}/api/v1", s.base)).await;
        assert!(["ollama/nomic-embed-text", NOMIC].contains(&out["model"].as_str().expect("model")), "{out}");
        assert_eq!(out["dims"], serde_json::json!([NOMIC_DIM]), "{out}");
        assert_eq!(out["indices"], serde_json::json!([0, 1]));
        // The same vector whichever way it travelled.
        assert_eq!(out["base64_dims"], NOMIC_DIM, "{out}");
        assert_eq!(out["same"], true, "{out}");
    }
}
