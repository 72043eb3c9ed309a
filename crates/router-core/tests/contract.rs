//! OpenRouter's 2026 contract in the core: empty answers fall back (whole bodies and
//! stream heads), errors inside a 200 are classified like HTTP errors, and the free rule
//! is checked again at the time of each attempt.

use bytes::Bytes;
use futures_executor::block_on;
use futures_util::StreamExt;
use router_core::{
    Body, ByteStream, CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, ErrorKind, FixedCatalog,
    ModelId, ModelInfo, Ports, QuotaPolicy, RouteError, RouteFailure, Routed, Router, RouterConfig, Timestamp,
    TransportError, UpstreamResponse,
};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Noon of a UTC day.
const T0: Timestamp = Timestamp::from_secs(1_800_000_000 / 86_400 * 86_400 + 12 * 3600);

struct Time(AtomicU64);

#[async_trait::async_trait]
impl Clock for Time {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

type Script = dyn Fn(&str, &Time) -> Result<UpstreamResponse, TransportError> + Send + Sync;

/// Answers each call with `script(model, clock)` and records the models called.
struct Scripted {
    script: Box<Script>,
    time: Arc<Time>,
    calls: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ChatTransport for Scripted {
    async fn send(&self, model: &ModelId, _body: Bytes, _stream: bool) -> Result<UpstreamResponse, TransportError> {
        self.calls.lock().expect("calls").push(model.to_string());
        (self.script)(model.as_str(), &self.time)
    }
}

fn model(id: &str, expires: Option<String>) -> ModelInfo {
    let mut m = ModelInfo::new(id);
    m.context_length = Some(32_000);
    m.input_modalities = vec!["text".into()];
    m.output_modalities = vec!["text".into()];
    m.supported_parameters = vec!["reasoning".into(), "include_reasoning".into()];
    m.pricing.0.insert("prompt".into(), json!("0"));
    m.pricing.0.insert("completion".into(), json!("0"));
    m.expiration_date = expires;
    m
}

struct Setup {
    router: Router,
    transport: Arc<Scripted>,
}

fn setup(
    empty_answers_fail: bool,
    script: impl Fn(&str, &Time) -> Result<UpstreamResponse, TransportError> + Send + Sync + 'static,
) -> Setup {
    let time = Arc::new(Time(AtomicU64::new(T0.as_millis())));
    let models = vec![
        model("e/expiring:free", Some(T0.date_string())),
        model("s/steady:free", None),
        model("t/third:free", None),
    ];
    let snap = Arc::new(CatalogSnapshot::new(models, CatalogSource::Memory, T0));
    let transport = Arc::new(Scripted { script: Box::new(script), time: time.clone(), calls: Mutex::default() });
    let ports = Ports { catalog: Arc::new(FixedCatalog(snap)), transport: transport.clone(), clock: time, store: None };
    let config = RouterConfig { empty_answers_fail, quota: QuotaPolicy::UNLIMITED, ..RouterConfig::default() };
    Setup { router: Router::new(ports, config).expect("router"), transport }
}

impl Setup {
    fn calls(&self) -> Vec<String> {
        self.transport.calls.lock().expect("calls").clone()
    }

    fn route(&self, body: Value) -> Result<Routed, RouteFailure> {
        block_on(self.router.route(&ChatRequest::from_value(body).expect("request"), 1))
    }
}

fn full(body: &str) -> Result<UpstreamResponse, TransportError> {
    Ok(UpstreamResponse {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: Body::Full(Bytes::from(body.to_owned())),
        elapsed: Duration::from_millis(5),
    })
}

fn stream(events: &[&str]) -> Result<UpstreamResponse, TransportError> {
    let items: Vec<Result<Bytes, TransportError>> = events.iter().map(|e| Ok(Bytes::from(e.to_string()))).collect();
    let body: ByteStream = Box::pin(futures_util::stream::iter(items));
    Ok(UpstreamResponse {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body: Body::Stream(body),
        elapsed: Duration::from_millis(5),
    })
}

const ANSWER: &str = r#"{"id":"g","choices":[{"message":{"content":"hello"},"finish_reason":"stop"}]}"#;
const REFUSAL: &str = r#"{"id":"g","choices":[{"message":{"content":null,"refusal":"no"},"finish_reason":"stop"}],"usage":{"completion_tokens":0}}"#;
const REASONING_ONLY: &str =
    r#"{"id":"g","choices":[{"message":{"content":"","reasoning":"let me think"},"finish_reason":"stop"}]}"#;

/// A plain request naming `first`, then `rest`, in order.
fn ordered(first: &str, rest: &[&str]) -> Value {
    json!({"model": first, "models": rest, "messages": [{"role": "user", "content": "hi"}]})
}

#[test]
fn an_empty_answer_falls_back_to_another_model() {
    let s = setup(true, |m, _| full(if m == "s/steady:free" { REFUSAL } else { ANSWER }));
    let routed = s.route(ordered("s/steady:free", &["t/third:free"])).expect("routed");
    assert_eq!(s.calls(), ["s/steady:free", "t/third:free"]);
    let kinds: Vec<Option<ErrorKind>> = routed.report.attempts.iter().map(|a| a.failure).collect();
    assert_eq!(kinds, [Some(ErrorKind::EmptyAnswer), None], "the report shows the empty answer");
    assert_eq!(routed.report.model.as_ref().map(ModelId::as_str), Some("t/third:free"));

    // Only empty answers: the request fails with 502 rather than passing one on.
    let s = setup(true, |_, _| full(REFUSAL));
    let failed = s.route(ordered("s/steady:free", &["t/third:free"])).expect_err("all empty");
    match &failed.error {
        RouteError::Upstream { error, .. } => {
            assert_eq!((error.kind, error.http_status()), (ErrorKind::EmptyAnswer, 502))
        }
        other => panic!("{other:?}"),
    }

    // The setting off: the empty answer is the client's, as before.
    let s = setup(false, |_, _| full(REFUSAL));
    s.route(ordered("s/steady:free", &["t/third:free"])).expect("passed on");
    assert_eq!(s.calls(), ["s/steady:free"]);
}

#[test]
fn reasoning_alone_is_an_answer_only_when_reasoning_was_asked_for() {
    let s = setup(true, |m, _| full(if m == "s/steady:free" { REASONING_ONLY } else { ANSWER }));
    s.route(ordered("s/steady:free", &["t/third:free"])).expect("routed");
    assert_eq!(s.calls(), ["s/steady:free", "t/third:free"]);

    let s = setup(true, |m, _| full(if m == "s/steady:free" { REASONING_ONLY } else { ANSWER }));
    let mut body = ordered("s/steady:free", &["t/third:free"]);
    body["reasoning"] = json!({"effort": "high"});
    s.route(body).expect("routed");
    assert_eq!(s.calls(), ["s/steady:free"]);
}

const PROCESSING: &str = ": OPENROUTER PROCESSING\n\n";
const ROLE: &str =
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
const STOP: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n";
const HELLO: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hello\"},\"finish_reason\":null}]}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn drain(routed: Routed) -> String {
    let Body::Stream(s) = routed.response.body else { panic!("expected a stream") };
    let chunks: Vec<Result<Bytes, TransportError>> = block_on(s.collect());
    chunks.into_iter().map(|c| String::from_utf8_lossy(&c.expect("chunk")).into_owned()).collect()
}

#[test]
fn an_empty_stream_head_falls_back_before_anything_is_sent() {
    for empty in [
        vec![PROCESSING, ROLE, STOP, DONE],
        vec![PROCESSING, ROLE, DONE],
        vec![PROCESSING],
        vec![ROLE, "data: {\"choices\":[{\"delta\":{\"reasoning\":\"hmm\"},\"finish_reason\":null}]}\n\n", STOP, DONE],
    ] {
        let s = setup(
            true,
            move |m, _| if m == "s/steady:free" { stream(&empty) } else { stream(&[ROLE, HELLO, STOP, DONE]) },
        );
        let routed = s.route(ordered("s/steady:free", &["t/third:free"])).expect("routed");
        assert_eq!(s.calls(), ["s/steady:free", "t/third:free"]);
        let text = drain(routed);
        assert!(text.contains("hello") && !text.contains("hmm"), "only the second model's stream: {text}");
    }
    // Content after a role-only delta commits; the held head is replayed in order.
    let s = setup(true, |_, _| stream(&[PROCESSING, ROLE, HELLO, STOP, DONE]));
    let text = drain(s.route(ordered("s/steady:free", &[])).expect("routed"));
    assert_eq!(text, [PROCESSING, ROLE, HELLO, STOP, DONE].concat());
    // With the setting off the first event commits, as before.
    let s = setup(false, |_, _| stream(&[PROCESSING, ROLE, STOP, DONE]));
    let text = drain(s.route(ordered("s/steady:free", &["t/third:free"])).expect("routed"));
    assert_eq!(s.calls(), ["s/steady:free"]);
    assert!(text.ends_with(DONE));
}

#[test]
fn errors_inside_a_200_follow_the_http_rules() {
    // A shared-capacity 429 inside a stream cools that model only: the next one answers.
    let shared = "data: {\"error\":{\"code\":429,\"message\":\"limited to 8 requests per minute\",\"metadata\":{\"limit_source\":\"openrouter_shared_capacity\"}}}\n\n";
    let s = setup(true, move |m, _| if m == "s/steady:free" { stream(&[PROCESSING, shared]) } else { full(ANSWER) });
    let routed = s.route(ordered("s/steady:free", &["t/third:free"])).expect("routed");
    assert_eq!(routed.report.attempts[0].failure, Some(ErrorKind::RateLimitedModel));
    let cooling = s.router.cooldowns();
    assert_eq!(cooling.len(), 1);
    assert_eq!(cooling[0].1.until, Some(T0.saturating_add(Duration::from_secs(60))), "the stated window");
    assert!(s.router.quota_report().blocked_until.is_none(), "the account is not blocked");

    // The daily cap inside a 200 blocks the account, as the HTTP 429 does.
    let daily = r#"{"error":{"code":429,"message":"Rate limit exceeded","metadata":{"limit_source":"openrouter_free_tier_daily"}}}"#;
    let s = setup(true, move |_, _| full(daily));
    let failed = s.route(ordered("s/steady:free", &["t/third:free"])).expect_err("blocked");
    assert!(matches!(failed.error, RouteError::Quota { .. }), "{:?}", failed.error);
    assert_eq!(s.calls(), ["s/steady:free"]);
}

#[test]
fn the_free_rule_is_checked_again_for_each_attempt() {
    // The first call fails after the clock passed midnight: `e/expiring:free` expired
    // meanwhile and is never called.
    let s = setup(true, |m, time| {
        if m == "s/steady:free" {
            time.0.store(T0.next_utc_midnight().as_millis() + 1000, Ordering::SeqCst);
            return Err(TransportError::new(ErrorKind::ServerError, "boom").with_status(500));
        }
        full(ANSWER)
    });
    let failed = s.route(ordered("s/steady:free", &["e/expiring:free"])).expect_err("nothing else is free");
    assert_eq!(s.calls(), ["s/steady:free"]);
    assert!(matches!(failed.error, RouteError::Upstream { .. }), "{:?}", failed.error);

    // Before midnight the same fallback goes to it.
    let s = setup(true, |m, _| {
        if m == "s/steady:free" {
            return Err(TransportError::new(ErrorKind::ServerError, "boom").with_status(500));
        }
        full(ANSWER)
    });
    s.route(ordered("s/steady:free", &["e/expiring:free"])).expect("routed");
    assert_eq!(s.calls(), ["s/steady:free", "e/expiring:free"]);
}
