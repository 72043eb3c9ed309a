//! The fake over real loopback HTTP: catalogs, chat (JSON and SSE), the key, clients that
//! leave mid-stream, and HTTPS by ALPN with held requests.

use super::*;
use std::time::Duration;

async fn json(resp: reqwest::Response) -> Value {
    serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json")
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("client")
}

async fn chat(up: &FakeUpstream, model: &str, stream: bool) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", up.base_url()))
        .bearer_auth("sk-test")
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
                .to_string(),
        )
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn serves_models_chat_and_key() {
    let up = FakeUpstream::start().await;
    let models = json(client().get(format!("{}/models", up.base_url())).send().await.expect("models")).await;
    assert!(models["data"].as_array().is_some_and(|d| d.len() == default_models().len()));
    assert_eq!(up.models_fetches(), 1);

    let resp = chat(&up, "a/b:free", false).await;
    assert_eq!(resp.status(), 200);
    let body = json(resp).await;
    assert_eq!(body["model"], "a/b:free");
    assert_eq!(body["choices"][0]["message"]["content"], "hello from a/b:free");
    let rec = up.requests();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert!(!rec[0].stream);
    assert_eq!(up.calls("a/b:free"), 1);

    up.set_behaviour("c/d:free", Behaviour::DailyCap { reset_ms: 1234 });
    let resp = chat(&up, "c/d:free", false).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-ratelimit-reset"], "1234");
    assert_eq!(up.total_calls(), 2);

    let key = json(client().get(format!("{}/key", up.base_url())).send().await.expect("key")).await;
    assert_eq!(key["data"]["is_free_tier"], true);
    up.shutdown().await;
}

#[tokio::test]
async fn streams_sse_and_counts_clients_that_leave() {
    let up = FakeUpstream::start().await;
    let resp = chat(&up, "a/b:free", true).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.expect("text");
    assert!(text.starts_with(": OPENROUTER PROCESSING\n\n"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(up.open_connections_closed(), 0);

    up.set_default_behaviour(Behaviour::SlowStream { chunks: 3, gap: Duration::from_secs(30) });
    let mut resp = chat(&up, "slow:free", true).await;
    let first = resp.chunk().await.expect("chunk").expect("some");
    assert!(!first.is_empty());
    drop(resp);
    // Bound the wait generously: the server notices the closed socket promptly.
    for _ in 0..500 {
        if up.open_connections_closed() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(up.open_connections_closed(), 1);
}

fn tls_client(up: &FakeUpstream) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(up.ca_pem().expect("https mode").as_bytes()).expect("pem");
    reqwest::Client::builder().tls_certs_only([ca]).build().expect("client")
}

#[tokio::test]
async fn serves_https_by_alpn_and_holds_until_released() {
    for (alpn, version) in [(Alpn::H2, reqwest::Version::HTTP_2), (Alpn::Http1, reqwest::Version::HTTP_11)] {
        let up = FakeUpstream::start_tls(TlsOptions { alpn, max_concurrent_streams: Some(4) }).await;
        assert!(up.base_url().starts_with("https://127.0.0.1:"), "{}", up.base_url());
        let client = tls_client(&up);
        let resp = client.get(format!("{}/models", up.base_url())).send().await.expect("models");
        assert_eq!((resp.status().as_u16(), resp.version()), (200, version));

        up.set_default_behaviour(Behaviour::Held { then: Box::new(Behaviour::Ok) });
        let body = serde_json::json!({"model": "a/b:free", "messages": []}).to_string();
        let send = || client.post(format!("{}/chat/completions", up.base_url())).body(body.clone()).send();
        let (first, second) = (tokio::spawn(send()), tokio::spawn(send()));
        for _ in 0..3000 {
            if up.held_now() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((up.held_now(), up.max_held()), (2, 2));
        up.release_held();
        for resp in [first, second] {
            assert_eq!(resp.await.expect("join").expect("send").status(), 200);
        }
        assert_eq!(up.held_now(), 0);
    }
    // Plaintext stays the default.
    assert!(FakeUpstream::start().await.ca_pem().is_none());
}
