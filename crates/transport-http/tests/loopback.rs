//! The transport against the fake OpenRouter on loopback: forwarding, streaming without
//! buffering, timeouts, cancellation and error classification over real HTTP.

use bytes::Bytes;
use fake_upstream::{Behaviour, FakeUpstream};
use futures_util::StreamExt;
use router_core::{Body, ByteStream, ChatTransport, ErrorKind, ModelId, Secret, Timestamp, TransportError};
use std::time::Duration;
use transport_http::{HttpTransport, TransportConfig};

const KEY: &str = "sk-or-v1-test-key-0123";
const MODEL: &str = "vendor/model:free";

fn config(up: &FakeUpstream) -> TransportConfig {
    TransportConfig {
        base_url: up.base_url(),
        api_key: Some(Secret::new(KEY)),
        referer: Some("https://example.invalid/app".into()),
        title: Some("Free Models Router".into()),
        ..TransportConfig::default()
    }
}

fn transport(up: &FakeUpstream) -> HttpTransport {
    HttpTransport::new(config(up)).expect("transport")
}

fn request(model: &str, stream: bool) -> Bytes {
    let body = serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    Bytes::from(body.to_string())
}

async fn send(t: &HttpTransport, model: &str, stream: bool) -> Result<router_core::UpstreamResponse, TransportError> {
    t.send(&ModelId::new(model), request(model, stream), stream).await
}

fn full_text(body: Body) -> String {
    match body {
        Body::Full(b) => String::from_utf8(b.to_vec()).expect("utf8"),
        Body::Stream(_) => panic!("expected a whole body"),
    }
}

fn stream_of(body: Body) -> ByteStream {
    match body {
        Body::Stream(s) => s,
        Body::Full(b) => panic!("expected a stream, got {b:?}"),
    }
}

/// Reads a stream to its end: the text and the error that ended it, if any.
async fn drain(mut s: ByteStream) -> (String, Option<TransportError>) {
    let mut text = String::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), s.next()).await.expect("stream stalled") {
        match item {
            Ok(chunk) => text.push_str(std::str::from_utf8(&chunk).expect("utf8")),
            Err(e) => return (text, Some(e)),
        }
    }
    (text, None)
}

/// Waits (at most 20 s) for `cond`; the bound only keeps a broken build from hanging.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// Scripts `behaviour` for the model, sends a request, and checks the error's kind and
/// status, and that the key appears nowhere in it.
async fn check(behaviour: Behaviour, stream: bool, kind: ErrorKind, status: Option<u16>) -> TransportError {
    let up = FakeUpstream::start().await;
    up.set_behaviour(MODEL, behaviour.clone());
    let t = transport(&up);
    let err = send(&t, MODEL, stream).await.expect_err("an error");
    assert_eq!(err.kind, kind, "{behaviour:?}: {err:?}");
    assert_eq!(err.status, status, "{behaviour:?}: {err:?}");
    assert!(!format!("{err:?} {err}").contains(KEY), "key leaked: {err:?}");
    err
}

#[tokio::test]
async fn forwards_with_key_and_attribution_headers() {
    let up = FakeUpstream::start().await;
    let t = transport(&up);
    let resp = send(&t, MODEL, false).await.expect("ok");
    assert_eq!(resp.status, 200);
    assert!(resp.headers.iter().any(|(k, v)| *k == "content-type" && v.starts_with("application/json")));
    let body: serde_json::Value = serde_json::from_str(&full_text(resp.body)).expect("json");
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["choices"][0]["message"]["content"], format!("hello from {MODEL}"));

    let rec = up.requests();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].model, MODEL);
    assert_eq!(rec[0].body["messages"][0]["content"], "hi");
    assert_eq!(rec[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    let header = |name: &str| rec[0].headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(header("http-referer").as_deref(), Some("https://example.invalid/app"));
    assert_eq!(header("x-title").as_deref(), Some("Free Models Router"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));

    // Requests share the pooled client.
    send(&t, MODEL, false).await.expect("ok again");
    assert_eq!(up.calls(MODEL), 2);
}

#[tokio::test]
async fn sends_no_authorization_without_a_key() {
    let up = FakeUpstream::start().await;
    let t = HttpTransport::new(TransportConfig { api_key: None, referer: None, title: None, ..config(&up) })
        .expect("transport");
    send(&t, MODEL, false).await.expect("ok");
    let rec = up.requests();
    assert_eq!(rec[0].authorization, None);
    assert!(!rec[0].headers.iter().any(|(k, _)| k == "x-title" || k == "http-referer"));
}

#[tokio::test]
async fn streams_comments_content_usage_and_done() {
    let up = FakeUpstream::start().await;
    let t = transport(&up);
    let resp = send(&t, MODEL, true).await.expect("ok");
    assert!(resp.headers.iter().any(|(k, v)| *k == "content-type" && v.starts_with("text/event-stream")));
    let (text, err) = drain(stream_of(resp.body)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(text.starts_with(": OPENROUTER PROCESSING\n\n"), "{text}");
    assert!(text.contains("\"content\":\"hello\""), "{text}");
    assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
    assert!(text.contains("\"usage\":{"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[tokio::test]
async fn passes_a_mid_stream_error_through_as_it_came() {
    let up = FakeUpstream::start().await;
    up.set_behaviour(MODEL, Behaviour::MidStreamError);
    let t = transport(&up);
    let resp = send(&t, MODEL, true).await.expect("a 200 stream");
    let (text, err) = drain(stream_of(resp.body)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(text.contains("\"content\":\"hello\""), "{text}");
    assert!(text.contains("\"error\":{\"code\":502,\"message\":\"Provider disconnected\"}"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    // An error as the very first event is recognised the same way.
    up.set_behaviour(MODEL, Behaviour::ErrorFirstInStream { code: 503 });
    let (text, _) = drain(stream_of(send(&t, MODEL, true).await.expect("a 200 stream").body)).await;
    assert!(text.contains("\"code\":503"), "{text}");
}

#[tokio::test]
async fn tool_calls_whole_and_streamed() {
    let up = FakeUpstream::start().await;
    up.set_behaviour(MODEL, Behaviour::ToolCall);
    let t = transport(&up);
    let body: serde_json::Value =
        serde_json::from_str(&full_text(send(&t, MODEL, false).await.expect("ok").body)).expect("json");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let args = body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].as_str().expect("string");
    assert_eq!(serde_json::from_str::<serde_json::Value>(args).expect("args json")["city"], "Paris");

    let (text, err) = drain(stream_of(send(&t, MODEL, true).await.expect("ok").body)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(text.contains("\"tool_calls\""), "{text}");
    assert!(text.contains("\"finish_reason\":\"tool_calls\""), "{text}");
}

#[tokio::test]
async fn first_chunk_arrives_before_upstream_sends_the_rest() {
    let up = FakeUpstream::start().await;
    // The second content chunk comes a minute after the first: any buffering would
    // hold the first one back until then.
    up.set_behaviour(MODEL, Behaviour::SlowStream { chunks: 3, gap: Duration::from_secs(60) });
    let t = transport(&up);
    let resp = tokio::time::timeout(Duration::from_secs(20), send(&t, MODEL, true)).await.expect("head without delay");
    let mut s = stream_of(resp.expect("ok").body);
    let mut text = String::new();
    while !text.contains("tok0") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), s.next())
            .await
            .expect("the first chunk must not wait for the rest")
            .expect("stream open")
            .expect("chunk");
        text.push_str(std::str::from_utf8(&chunk).expect("utf8"));
    }
    assert!(!text.contains("tok1"), "{text}");
    // Upstream has sent the comment and the first chunk only, and the stream is still open.
    assert_eq!(up.sse_events_sent(), 2);
    assert!(tokio::time::timeout(Duration::from_millis(300), s.next()).await.is_err(), "stream ended early");
}

#[tokio::test]
async fn slow_first_byte_hits_the_timeout_and_closes_upstream() {
    let up = FakeUpstream::start().await;
    up.set_behaviour(MODEL, Behaviour::Delay { first_byte: Duration::from_secs(30), then: Box::new(Behaviour::Ok) });
    let t = HttpTransport::new(TransportConfig { first_byte_timeout: Duration::from_millis(200), ..config(&up) })
        .expect("transport");
    let err = send(&t, MODEL, true).await.expect_err("timeout");
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
    assert!(err.message.contains("no response from upstream"), "{}", err.message);
    assert!(err.elapsed >= Duration::from_millis(200), "{:?}", err.elapsed);
    // The abandoned request was dropped, so upstream saw its client go away.
    eventually("upstream saw the request dropped", || up.open_connections_closed() == 1).await;
}

#[tokio::test]
async fn request_timeout_bounds_a_whole_answer() {
    let up = FakeUpstream::start().await;
    up.set_behaviour(MODEL, Behaviour::Hang);
    let t = HttpTransport::new(TransportConfig { request_timeout: Duration::from_millis(200), ..config(&up) })
        .expect("transport");
    let err = send(&t, MODEL, false).await.expect_err("timeout");
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
}

#[tokio::test]
async fn idle_gap_in_a_stream_times_out() {
    let up = FakeUpstream::start().await;
    up.set_behaviour(MODEL, Behaviour::SlowStream { chunks: 2, gap: Duration::from_secs(30) });
    let t = HttpTransport::new(TransportConfig { idle_timeout: Duration::from_millis(200), ..config(&up) })
        .expect("transport");
    let (text, err) = drain(stream_of(send(&t, MODEL, true).await.expect("ok").body)).await;
    assert!(text.contains("tok0"), "{text}");
    let err = err.expect("an idle timeout");
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
    eventually("upstream saw the stream dropped", || up.open_connections_closed() == 1).await;
}

#[tokio::test]
async fn a_stream_longer_than_the_idle_timeout_with_short_gaps_is_not_cut() {
    // The idle timer is re-armed lazily (from the last chunk when it fires): a stream
    // whose chunks keep coming runs past `idle_timeout` in total without being cut.
    let up = FakeUpstream::start().await;
    up.set_behaviour(MODEL, Behaviour::SlowStream { chunks: 8, gap: Duration::from_millis(200) });
    let t =
        HttpTransport::new(TransportConfig { idle_timeout: Duration::from_secs(1), ..config(&up) }).expect("transport");
    let (text, err) = drain(stream_of(send(&t, MODEL, true).await.expect("ok").body)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(text.contains("tok7") && text.contains("[DONE]"), "{text}");
}

#[tokio::test]
async fn client_going_away_mid_stream_closes_upstream() {
    let up = FakeUpstream::start().await;
    up.set_behaviour(MODEL, Behaviour::SlowStream { chunks: 5, gap: Duration::from_secs(30) });
    let t = transport(&up);
    let mut s = stream_of(send(&t, MODEL, true).await.expect("ok").body);
    let first = tokio::time::timeout(Duration::from_secs(20), s.next()).await.expect("a chunk");
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    assert_eq!(up.open_connections_closed(), 0);
    drop(s);
    eventually("upstream saw the stream dropped", || up.open_connections_closed() == 1).await;
}

#[tokio::test]
async fn connection_refused_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let config = TransportConfig {
        base_url: format!("http://{addr}/api/v1"),
        api_key: Some(Secret::new(KEY)),
        ..TransportConfig::default()
    };
    let t = HttpTransport::new(config).expect("transport");
    let err = send(&t, MODEL, false).await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Connection, "{err:?}");
    assert_eq!(err.status, None);
    assert!(!err.message.contains(KEY) && !err.message.contains(&addr.to_string()), "{}", err.message);
}

#[tokio::test]
async fn classifies_rate_limits() {
    let err =
        check(Behaviour::RateLimited { retry_after: Some(4) }, false, ErrorKind::RateLimitedModel, Some(429)).await;
    assert_eq!(err.retry_after, Some(Duration::from_secs(4)));
    assert!(err.message.contains(&format!("{MODEL} is temporarily rate-limited upstream")), "{}", err.message);
    let meta = err.metadata.expect("metadata");
    assert!(meta["raw"].as_str().is_some_and(|r| r.contains("rate-limited upstream")), "{meta}");
    assert!(meta["provider_name"].is_string(), "{meta}");

    let reset_ms = 1_900_000_000_000;
    let err = check(Behaviour::DailyCap { reset_ms }, true, ErrorKind::DailyCapReached, Some(429)).await;
    assert_eq!(err.reset_at, Some(Timestamp::from_millis(reset_ms)));
    assert!(err.message.contains("free-models-per-day"), "{}", err.message);

    let err = check(Behaviour::MinuteCap, false, ErrorKind::RateLimitedAccount, Some(429)).await;
    assert!(err.reset_at.is_some());
}

#[tokio::test]
async fn classifies_unavailable_server_and_request_errors() {
    let err = check(Behaviour::NoEndpoints, false, ErrorKind::ModelUnavailable, Some(404)).await;
    assert_eq!(err.message, format!("No endpoints found for {MODEL}."));
    let status = |status: u16, message: &str| Behaviour::Status {
        status,
        body: serde_json::json!({"error": {"code": status, "message": message}}).to_string(),
    };
    for code in [500, 502, 503, 524, 529] {
        check(status(code, "Internal Server Error"), false, ErrorKind::ServerError, Some(code)).await;
    }
    check(
        status(400, "This endpoint's maximum context length is 8192 tokens"),
        false,
        ErrorKind::ContextTooLong,
        Some(400),
    )
    .await;
    check(status(422, "Invalid request"), true, ErrorKind::BadRequest, Some(422)).await;
    for code in [401, 402, 403] {
        check(status(code, "No auth credentials found"), false, ErrorKind::Auth, Some(code)).await;
    }
    // Upstream echoing the key back never carries it into the error.
    let err = check(status(401, &format!("Invalid key {KEY}")), false, ErrorKind::Auth, Some(401)).await;
    assert_eq!(err.message, "Invalid key ***");
}

#[tokio::test]
async fn reads_key_info() {
    let up = FakeUpstream::start().await;
    let t = transport(&up);
    let info = t.key_info().await.expect("key info");
    assert!(info.is_free_tier);
    assert_eq!(info.daily_free_requests(), 50);
    up.set_key_info(serde_json::json!({"data": {"is_free_tier": false, "limit": null, "usage": 12.5, "label": "k"}}));
    let info = t.key_info().await.expect("key info");
    assert_eq!((info.is_free_tier, info.daily_free_requests(), info.usage), (false, 1000, Some(12.5)));
}
