//! The transport against an HTTPS fake upstream speaking HTTP/2 with a small
//! `SETTINGS_MAX_CONCURRENT_STREAMS`: past it, streams go out on more connections
//! (lanes) instead of waiting behind the limit. Deterministic: the fake holds every
//! request until the test releases them and counts how many it holds at once.

use bytes::Bytes;
use fake_upstream::{Alpn, Behaviour, FakeUpstream, TlsOptions};
use futures_util::StreamExt;
use router_core::{Body, ChatTransport, ModelId};
use std::sync::Arc;
use std::time::Duration;
use transport_http::{HttpTransport, TransportConfig};

const MODEL: &str = "vendor/model:free";
/// The fake's stream limit per connection.
const SERVER_STREAMS: u32 = 10;
/// Held at once, ten times the limit.
const HELD: usize = 100;

async fn h2_fake() -> FakeUpstream {
    let up = FakeUpstream::start_tls(TlsOptions { alpn: Alpn::H2, max_concurrent_streams: Some(SERVER_STREAMS) }).await;
    up.set_default_behaviour(Behaviour::Held { then: Box::new(Behaviour::Ok) });
    up
}

fn transport(up: &FakeUpstream) -> Arc<HttpTransport> {
    let ca = reqwest::Certificate::from_pem(up.ca_pem().expect("https").as_bytes()).expect("pem");
    let config = TransportConfig {
        base_url: up.base_url(),
        streams_per_connection: SERVER_STREAMS as usize,
        extra_roots: vec![ca],
        ..TransportConfig::default()
    };
    Arc::new(HttpTransport::new(config).expect("transport"))
}

/// Sends `n` streamed requests at once and returns their tasks: each ends with the
/// status and the whole streamed text.
fn send_all(t: &Arc<HttpTransport>, n: usize) -> Vec<tokio::task::JoinHandle<(u16, String)>> {
    let body = serde_json::json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let body = Bytes::from(body.to_string());
    (0..n)
        .map(|_| {
            let (t, body) = (t.clone(), body.clone());
            tokio::spawn(async move {
                let resp = t.send(&ModelId::new(MODEL), body, true).await.expect("an answer");
                let Body::Stream(mut s) = resp.body else { panic!("expected a stream") };
                let mut text = Vec::new();
                while let Some(chunk) = s.next().await {
                    text.extend_from_slice(&chunk.expect("chunk"));
                }
                (resp.status, String::from_utf8(text).expect("utf8"))
            })
        })
        .collect()
}

/// Waits (at most 30 s) until the fake holds `n` requests at once.
async fn wait_held(up: &FakeUpstream, n: usize) -> usize {
    for _ in 0..3000 {
        if up.held_now() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    up.held_now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_servers_limit_open_more_connections_instead_of_waiting() {
    let up = h2_fake().await;
    let t = transport(&up);
    let tasks = send_all(&t, HELD);
    assert_eq!(wait_held(&up, HELD).await, HELD, "every stream open at the fake at the same time");
    assert_eq!(up.max_held(), HELD);
    // Ten streams per connection: exactly ten lanes.
    assert_eq!(t.lanes(), HELD / SERVER_STREAMS as usize);
    up.release_held();
    for task in tasks {
        let (status, text) = task.await.expect("join");
        assert_eq!(status, 200);
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    }
    // Every place freed: the next burst reuses the open lanes.
    let again = send_all(&t, HELD);
    assert_eq!(wait_held(&up, 0).await, 0, "released for good");
    for task in again {
        assert_eq!(task.await.expect("join").0, 200);
    }
    assert_eq!(t.lanes(), HELD / SERVER_STREAMS as usize);
}

/// Without the fake's CA among the extra roots, the lanes' shared TLS configuration
/// (the system's roots alone) refuses the fake's certificate: it verifies, and it is the
/// one in use. A lane past the first refuses it too.
#[tokio::test]
async fn the_shared_tls_configuration_trusts_the_system_roots_alone() {
    let up = FakeUpstream::start_tls(TlsOptions { alpn: Alpn::H2, max_concurrent_streams: Some(1) }).await;
    let config = TransportConfig { base_url: up.base_url(), streams_per_connection: 1, ..TransportConfig::default() };
    let t = Arc::new(HttpTransport::new(config).expect("transport"));
    let body =
        Bytes::from(serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).to_string());
    let model = ModelId::new(MODEL);
    let sends = (0..2).map(|_| t.send(&model, body.clone(), false));
    for result in futures_util::future::join_all(sends).await {
        let err = result.expect_err("the fake's certificate refused");
        assert!(err.message.to_lowercase().contains("certificate"), "{}", err.message);
    }
    assert_eq!(t.lanes(), 2, "the second request took a second lane");
    assert_eq!(up.total_calls(), 0, "no request reached the fake");
}
