//! The router in front of an HTTPS upstream speaking HTTP/2 (as OpenRouter does), with a
//! self-signed CA trusted through `extra_ca_cert` and a small stream limit per
//! connection: 100 held streams all reach the upstream at once (more connections, no
//! silent queue behind `SETTINGS_MAX_CONCURRENT_STREAMS`), then all complete.

use crate::support::{SDK_STREAM, start_with};
use fake_upstream::{Alpn, Behaviour, FakeUpstream, TlsOptions};
use std::time::Duration;

/// The fake's `SETTINGS_MAX_CONCURRENT_STREAMS`.
const SERVER_STREAMS: u32 = 10;
const HELD: usize = 100;

/// Waits (at most 30 s) until the fake holds `n` requests at once; how many it holds.
async fn held(up: &FakeUpstream, n: usize) -> usize {
    for _ in 0..3000 {
        if up.held_now() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    up.held_now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_streams_to_an_h2_upstream_allowing_ten_per_connection_none_waiting() {
    let up = FakeUpstream::start_tls(TlsOptions { alpn: Alpn::H2, max_concurrent_streams: Some(SERVER_STREAMS) }).await;
    let ca_dir = tempfile::tempdir().expect("temp dir");
    let ca = ca_dir.path().join("ca.pem");
    std::fs::write(&ca, up.ca_pem().expect("https")).expect("write the CA");
    let s = start_with(up, |c| {
        c.extra_ca_cert = Some(ca.clone());
        c.upstream_streams_per_connection = SERVER_STREAMS as usize;
    })
    .await;
    // The catalog came over TLS too (`start_with` refreshed it from the fake).
    s.upstream.set_default_behaviour(Behaviour::Held { then: Box::new(Behaviour::Ok) });

    let tasks: Vec<_> = (0..HELD)
        .map(|_| {
            let request = s.client.post(s.url("/api/v1/chat/completions")).header("content-type", "application/json");
            tokio::spawn(async move {
                let resp = request.body(SDK_STREAM).send().await.expect("send");
                let status = resp.status().as_u16();
                (status, resp.text().await.expect("body"))
            })
        })
        .collect();
    let at_once = held(&s.upstream, HELD).await;
    assert_eq!(at_once, HELD, "every stream open at the upstream at once (most ever: {})", s.upstream.max_held());
    assert_eq!(s.upstream.max_held(), HELD);
    s.upstream.release_held();
    for task in tasks {
        let (status, text) = task.await.expect("join");
        assert_eq!(status, 200, "{text}");
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    }
    assert_eq!(s.upstream.total_calls(), HELD, "one upstream call each, no retries");
}
