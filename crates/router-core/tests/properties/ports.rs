//! The ports the properties drive the router with: a recording transport with a fault
//! script, a settable clock, a fixed catalog; and the oracle's candidates.

use crate::catalogs::*;
use crate::now;
use crate::requests::*;
use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::select;
use router_core::filter::{check_entry, filter};
use router_core::{
    Body, ByteStream, CatalogSnapshot, ChatRequest, ChatTransport, Clock, ErrorKind, FixedCatalog, HealthPolicy,
    ModelId, Ports, QuotaPolicy, Router, RouterConfig, Timestamp, TransportError, UpstreamResponse,
};
use serde_json::{Value, json};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What upstream does on one call.
#[derive(Clone, Debug)]
pub(crate) enum Fault {
    Answer,
    /// A stream whose first event is an error, or a 200 whose whole body is one.
    ErrorFirst(u16),
    /// A stream that fails after its first content chunk.
    FailMidStream,
    Fail(ErrorKind, Option<u16>),
}

pub(crate) static KINDS: [ErrorKind; 11] = [
    ErrorKind::RateLimitedModel,
    ErrorKind::RateLimitedAccount,
    ErrorKind::DailyCapReached,
    ErrorKind::ModelUnavailable,
    ErrorKind::ServerError,
    ErrorKind::Timeout,
    ErrorKind::Connection,
    ErrorKind::ContextTooLong,
    ErrorKind::BadRequest,
    ErrorKind::Auth,
    ErrorKind::Protocol,
];

pub(crate) fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::Answer),
        1 => select(vec![429u16, 404, 500, 400]).prop_map(Fault::ErrorFirst),
        1 => Just(Fault::FailMidStream),
        5 => (select(&KINDS[..]), prop::option::of(select(vec![400u16, 401, 404, 429, 500, 502, 503])))
            .prop_map(|(k, s)| Fault::Fail(k, s)),
    ]
}

#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) model: String,
    pub(crate) body: Value,
    pub(crate) stream: bool,
}

/// Plays a fault script (then answers) and records every call it gets.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) script: Mutex<VecDeque<Fault>>,
    pub(crate) calls: Mutex<Vec<Call>>,
}

impl Recorder {
    pub(crate) fn new(script: Vec<Fault>) -> Arc<Self> {
        Arc::new(Recorder { script: Mutex::new(script.into()), calls: Mutex::default() })
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

pub(crate) fn sse(items: Vec<Result<String, TransportError>>) -> Result<UpstreamResponse, TransportError> {
    let items: Vec<Result<Bytes, TransportError>> = items.into_iter().map(|i| i.map(Bytes::from)).collect();
    let body: ByteStream = Box::pin(futures_util::stream::iter(items));
    Ok(UpstreamResponse { status: 200, headers: Vec::new(), body: Body::Stream(body), elapsed: Duration::ZERO })
}

#[async_trait::async_trait]
impl ChatTransport for Recorder {
    async fn send(&self, model: &ModelId, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError> {
        let parsed: Value = serde_json::from_slice(&body).expect("forwarded bodies are json");
        self.calls.lock().expect("calls").push(Call { model: model.to_string(), body: parsed, stream });
        let fault = self.script.lock().expect("script").pop_front().unwrap_or(Fault::Answer);
        let chunk = |text: &str| {
            format!("data: {}\n\n", json!({"model": "upstream/other-name", "choices": [{"delta": {"content": text}}]}))
        };
        match fault {
            Fault::Answer if stream => sse(vec![Ok(chunk("hel")), Ok(chunk("lo")), Ok("data: [DONE]\n\n".into())]),
            Fault::Answer => Ok(UpstreamResponse {
                status: 200,
                headers: Vec::new(),
                body: Body::Full(Bytes::from(
                    json!({"model": "upstream/other-name", "choices": [{"message": {"content": "hello"}}]}).to_string(),
                )),
                elapsed: Duration::ZERO,
            }),
            Fault::ErrorFirst(code) => {
                let event = json!({"error": {"code": code, "message": "provider error"}});
                if stream {
                    sse(vec![Ok(": OPENROUTER PROCESSING\n\n".into()), Ok(format!("data: {event}\n\n"))])
                } else {
                    Ok(UpstreamResponse {
                        status: 200,
                        headers: Vec::new(),
                        body: Body::Full(Bytes::from(event.to_string())),
                        elapsed: Duration::ZERO,
                    })
                }
            }
            Fault::FailMidStream if stream => {
                sse(vec![Ok(chunk("hel")), Err(TransportError::new(ErrorKind::Connection, "reset"))])
            }
            Fault::FailMidStream => Err(TransportError::new(ErrorKind::Connection, "reset")),
            Fault::Fail(kind, status) => {
                let mut e = TransportError::new(kind, "scripted failure").with_retry_after(Duration::from_secs(30));
                e.status = status;
                Err(e)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Time(pub(crate) Arc<AtomicU64>);

impl Clock for Time {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

pub(crate) fn router(snap: Arc<CatalogSnapshot>, transport: Arc<Recorder>, config: RouterConfig) -> (Router, Time) {
    let time = Time(Arc::new(AtomicU64::new(now().as_millis())));
    let ports = Ports { catalog: Arc::new(FixedCatalog(snap)), transport, clock: Arc::new(time.clone()), store: None };
    (Router::new(ports, config).expect("no store to fail"), time)
}

pub(crate) fn router_config(max_attempts: u32, per_minute: Option<u32>) -> RouterConfig {
    RouterConfig {
        max_attempts,
        deadline: Duration::from_secs(120),
        health: HealthPolicy::default(),
        quota: QuotaPolicy { per_minute, per_day: None },
        // The oracle is the request's own limits; clamping has its own property.
        clamp_max_tokens: false,
        ..RouterConfig::default()
    }
}

/// The candidates by the oracle: free by generation, meeting every generated need, and
/// within the token limits (those come from the core's estimate, which is not a rule).
pub(crate) fn oracle_candidates(
    models: &[Gen],
    snap: &CatalogSnapshot,
    req: &ChatRequest,
    needs: &BTreeSet<Need>,
) -> BTreeSet<String> {
    models
        .iter()
        .filter(|g| g.free && needs.iter().all(|n| n.met_by(&g.info)))
        .filter(|g| {
            let i = snap.index_of(g.info.id.as_str()).expect("listed");
            check_entry(snap, i, req.requirements(), now())
                .is_none_or(|r| r.context_needed.is_none() && r.completion_needed.is_none())
        })
        .map(|g| g.info.id.to_string())
        .collect()
}

pub(crate) fn candidate_ids(snap: &CatalogSnapshot, req: &ChatRequest, at: Timestamp) -> Vec<String> {
    filter(snap, req.requirements(), at).candidates.iter().map(|&i| snap.entries()[i].info.id.to_string()).collect()
}
