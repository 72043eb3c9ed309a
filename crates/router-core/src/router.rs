//! The routing service: analyse, filter, select, forward, fall back.

use crate::catalog::CatalogSnapshot;
use crate::error::RouteError;
use crate::filter::{Filtered, Rejection, Shortfall, candidates, check_entry, filter};
use crate::free::not_free_reasons;
use crate::health::{Cooldown, CooldownCause, HealthPolicy, HealthState, QuotaReport};
use crate::model::ModelId;
use crate::ports::{
    Body, ByteStream, Catalog, ChatTransport, Clock, ErrorKind, StateStore, StoreError, TransportError,
    UpstreamResponse,
};
use crate::request::{ChatRequest, Target};
use crate::select::{SelectionRng, pick, rng_from_seed};
use crate::sse::{self, LineSplitter, ModelRewriter};
use crate::time::Timestamp;
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Upstream calls per request, the first one included.
    pub max_attempts: u32,
    /// No new attempt starts after this much time has passed since the request began.
    pub deadline: Duration,
    pub health: HealthPolicy,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { max_attempts: 3, deadline: Duration::from_secs(120), health: HealthPolicy::default() }
    }
}

/// The adapters a router is built from.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // trait objects; nothing useful to print
pub struct Ports {
    pub catalog: Arc<dyn Catalog>,
    pub transport: Arc<dyn ChatTransport>,
    pub clock: Arc<dyn Clock>,
    /// Where resilience state is kept across restarts; `None` keeps it in memory only.
    pub store: Option<Arc<dyn StateStore>>,
}

/// One upstream call and how it went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    pub model: ModelId,
    /// `None` for success, else the failure's kind.
    #[serde(serialize_with = "ser_kind")]
    pub failure: Option<ErrorKind>,
    pub elapsed: Duration,
    /// The failure came back for a model the router already knew was cooling down:
    /// another request found out first, after this one had picked it. Such an attempt
    /// does not count against `max_attempts`; each model is still tried once at most.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub raced: bool,
}

fn ser_kind<S: serde::Serializer>(k: &Option<ErrorKind>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.map_or("ok", ErrorKind::as_str))
}

/// What the router did for one request, success or not.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RouteReport {
    /// The model that answered.
    pub model: Option<ModelId>,
    /// Models that could serve the request (free, meeting its requirements).
    pub candidates: usize,
    pub attempts: Vec<Attempt>,
}

impl RouteReport {
    /// Time spent waiting for upstream across all attempts.
    pub fn upstream_time(&self) -> Duration {
        self.attempts.iter().map(|a| a.elapsed).sum()
    }
}

#[derive(Debug)]
pub struct Routed {
    pub response: UpstreamResponse,
    pub report: RouteReport,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RouteFailure {
    pub error: RouteError,
    pub report: RouteReport,
}

impl From<RouteError> for RouteFailure {
    fn from(error: RouteError) -> Self {
        RouteFailure { error, report: RouteReport::default() }
    }
}

/// The routing service. Cheap to share (`Arc<Router>`); all state is behind one lock
/// that is never held across an await.
pub struct Router {
    ports: Ports,
    config: RouterConfig,
    /// The quota limits in force (`NO_LIMIT` is none): `config.health`'s until
    /// `set_quota_limits` changes them (the server learns the account's daily cap from
    /// upstream after start). Atomics, so that reading them on every request writes no
    /// shared cache line.
    per_minute: AtomicU64,
    per_day: AtomicU64,
    health: Mutex<HealthState>,
    dirty: AtomicBool,
    stream_errors: Arc<AtomicU64>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One step of a request's plan: a named model, or "any free candidate".
#[derive(Clone, Copy, Debug)]
enum Step {
    Fixed(usize),
    Random,
}

struct Plan {
    /// Indices of the candidates, in id order. The full [`Filtered`] record (a rejection
    /// per model) is only built when a decision must be explained.
    candidates: Vec<usize>,
    steps: Vec<Step>,
}

/// Why the plan produced no model for an attempt.
enum NoPick {
    /// Every remaining model is cooling down; the earliest timed recovery.
    Cooling(Option<Timestamp>),
    Exhausted,
}

impl Router {
    /// Builds a router; resilience state is loaded from the store when there is one.
    pub fn new(ports: Ports, config: RouterConfig) -> Result<Self, StoreError> {
        let state = match &ports.store {
            Some(store) => store.load()?.unwrap_or_default(),
            None => HealthState::default(),
        };
        Ok(Router {
            ports,
            per_minute: AtomicU64::new(encode_limit(config.health.per_minute)),
            per_day: AtomicU64::new(encode_limit(config.health.per_day)),
            config,
            health: Mutex::new(state),
            dirty: AtomicBool::new(false),
            stream_errors: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The configuration the router was built with; see [`policy`](Self::policy) for
    /// the health policy in force now.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The health policy in force (quota limits may have changed since start).
    pub fn policy(&self) -> HealthPolicy {
        HealthPolicy {
            per_minute: decode_limit(self.per_minute.load(Ordering::Relaxed)),
            per_day: decode_limit(self.per_day.load(Ordering::Relaxed)),
            ..self.config.health.clone()
        }
    }

    /// Changes the account's request limits (`None` is unlimited), e.g. once upstream
    /// says the key is not on the free tier and may send 1,000 free requests a day.
    pub fn set_quota_limits(&self, per_minute: Option<u32>, per_day: Option<u32>) {
        self.per_minute.store(encode_limit(per_minute), Ordering::Relaxed);
        self.per_day.store(encode_limit(per_day), Ordering::Relaxed);
    }

    pub fn catalog(&self) -> Arc<CatalogSnapshot> {
        self.ports.catalog.snapshot()
    }

    pub fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    fn health(&self) -> MutexGuard<'_, HealthState> {
        // A panic while holding the lock cannot leave the state half-updated in a way
        // that matters more than losing it; keep serving.
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Saves the resilience state when it changed since the last save.
    pub fn persist(&self) -> Result<bool, StoreError> {
        let Some(store) = &self.ports.store else { return Ok(false) };
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        let state = self.health().clone();
        store.save(&state).inspect_err(|_| self.dirty.store(true, Ordering::Release))?;
        Ok(true)
    }

    pub fn health_snapshot(&self) -> HealthState {
        self.health().clone()
    }

    pub fn quota_report(&self) -> QuotaReport {
        self.health().quota_report(&self.policy(), self.now())
    }

    pub fn cooldowns(&self) -> Vec<(ModelId, Cooldown)> {
        let fetched = self.catalog().fetched_at();
        self.health().cooldowns(self.now(), fetched)
    }

    /// Error chunks seen in streams after they were committed to a client.
    pub fn stream_errors(&self) -> u64 {
        self.stream_errors.load(Ordering::Relaxed)
    }

    /// Resolves the request's targets against the catalog: refuses paid and unknown
    /// models, and filters the candidates.
    fn plan(&self, snap: &CatalogSnapshot, req: &ChatRequest, now: Timestamp) -> Result<Plan, RouteError> {
        let candidates = candidates(snap, req.requirements(), now);
        let mut steps = Vec::with_capacity(req.targets().len());
        for target in req.targets() {
            match target {
                Target::AnyFree => steps.push(Step::Random),
                Target::Model(id) => {
                    let index = snap.index_of(id.as_str()).ok_or_else(|| RouteError::UnknownModel(id.clone()))?;
                    let entry = &snap.entries()[index];
                    // The snapshot knows already; the reasons are only spelled out to refuse.
                    if !entry.is_free(now) {
                        let reasons = not_free_reasons(&entry.info, now);
                        return Err(RouteError::NotFree { model: id.clone(), reasons });
                    }
                    steps.push(Step::Fixed(index));
                }
            }
        }
        let servable = steps.iter().any(|s| match s {
            Step::Random => !candidates.is_empty(),
            Step::Fixed(i) => candidates.binary_search(i).is_ok(),
        });
        if !servable {
            return Err(self.no_candidate(snap, req, &steps, now));
        }
        Ok(Plan { candidates, steps })
    }

    fn no_candidate(&self, snap: &CatalogSnapshot, req: &ChatRequest, steps: &[Step], now: Timestamp) -> RouteError {
        let reqs = req.requirements();
        let requirements = reqs.labels();
        let named: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Fixed(i) => check_entry(snap, *i, reqs, now).map(|r| {
                    let why: Vec<String> = r.reasons(snap, now).iter().map(ToString::to_string).collect();
                    format!("`{}` cannot serve this request: {}", snap.entries()[*i].info.id, why.join(", "))
                }),
                Step::Random => None,
            })
            .collect();
        let mut parts = named;
        if steps.iter().any(|s| matches!(s, Step::Random)) {
            parts.push(Shortfall::of(&filter(snap, reqs, now), reqs).message(reqs));
        }
        RouteError::NoCandidate { message: parts.join("; "), requirements }
    }

    /// The next model to try, or why there is none.
    #[allow(clippy::too_many_arguments)] // private; every argument is per-attempt state
    fn next_pick(
        &self,
        plan: &mut Plan,
        snap: &CatalogSnapshot,
        health: &HealthState,
        tried: &[usize],
        min_context: u64,
        rng: &mut SelectionRng,
        now: Timestamp,
    ) -> Result<usize, NoPick> {
        let fetched = snap.fetched_at();
        let mut earliest: Option<Timestamp> = None;
        let mut cooling = false;
        let mut usable = |i: usize| -> bool {
            if tried.contains(&i) || plan.candidates.binary_search(&i).is_err() {
                return false;
            }
            let e = &snap.entries()[i];
            if e.info.context_length.is_some_and(|c| c < min_context) {
                return false;
            }
            if health.models.is_empty() {
                return true;
            }
            match health.cooldown(&e.info.id, now, fetched) {
                None => true,
                Some(c) => {
                    cooling = true;
                    if let Some(u) = c.until {
                        earliest = Some(earliest.map_or(u, |e| e.min(u)));
                    }
                    false
                }
            }
        };
        while let Some(step) = plan.steps.first().copied() {
            match step {
                Step::Fixed(i) => {
                    plan.steps.remove(0);
                    if usable(i) {
                        return Ok(i);
                    }
                }
                Step::Random => {
                    let eligible: Vec<usize> = plan.candidates.iter().copied().filter(|&i| usable(i)).collect();
                    if let Some(&i) = pick(&eligible, rng) {
                        return Ok(i);
                    }
                    plan.steps.remove(0);
                }
            }
        }
        Err(if cooling { NoPick::Cooling(earliest) } else { NoPick::Exhausted })
    }

    /// Routes one request: picks a free model that meets its requirements, forwards,
    /// and falls back on retryable failures. `seed` makes the picks reproducible.
    pub async fn route(&self, req: &ChatRequest, seed: u64) -> Result<Routed, RouteFailure> {
        let snap = self.ports.catalog.snapshot();
        let start = self.now();
        let mut plan = self.plan(&snap, req, start)?;
        let mut report = RouteReport { model: None, candidates: plan.candidates.len(), attempts: Vec::new() };
        let mut rng = rng_from_seed(seed);
        let mut tried: Vec<usize> = Vec::new();
        let mut min_context = 0;
        let mut last: Option<RouteError> = None;
        let fail = |error: RouteError, report: RouteReport| Err(RouteFailure { error, report });
        // Attempts that count against `max_attempts`: raced ones do not (see `Attempt`).
        let mut spent = 0u32;

        while spent < self.config.max_attempts {
            let now = self.now();
            if !report.attempts.is_empty() && now.saturating_since(start) >= self.config.deadline {
                let error = last.take().unwrap_or(RouteError::Deadline(self.config.deadline));
                return fail(error, report);
            }
            let index = {
                let mut health = self.health();
                match self.next_pick(&mut plan, &snap, &health, &tried, min_context, &mut rng, now) {
                    Ok(i) => {
                        if let Err(block) = health.reserve(&self.policy(), now) {
                            let retry_after = block.until.saturating_since(now);
                            return fail(RouteError::Quota { block, retry_after }, report);
                        }
                        health.begin_attempt(&snap.entries()[i].info.id, now);
                        self.dirty.store(true, Ordering::Release);
                        i
                    }
                    Err(NoPick::Cooling(until)) if report.attempts.is_empty() => {
                        drop(health);
                        return fail(all_cooling(until, now), report);
                    }
                    Err(_) => break,
                }
            };
            tried.push(index);
            let model = snap.entries()[index].info.id.clone();
            let body = Bytes::from(req.body_for(&model));
            let result = match self.ports.transport.send(&model, body, req.is_stream()).await {
                Ok(resp) => self.commit(resp, &model).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(response) => {
                    self.health().record_success(&model);
                    self.dirty.store(true, Ordering::Release);
                    report.attempts.push(Attempt {
                        model: model.clone(),
                        failure: None,
                        elapsed: response.elapsed,
                        raced: false,
                    });
                    report.model = Some(model);
                    return Ok(Routed { response, report });
                }
                Err(error) => {
                    let raced = {
                        let now = self.now();
                        let mut health = self.health();
                        let raced = health
                            .cooldown(&model, now, snap.fetched_at())
                            .is_some_and(|c| c.cause != CooldownCause::ProbeInFlight);
                        health.record_failure(&model, &error, &self.policy(), now);
                        self.dirty.store(true, Ordering::Release);
                        raced
                    };
                    if !raced {
                        spent += 1;
                    }
                    report.attempts.push(Attempt {
                        model: model.clone(),
                        failure: Some(error.kind),
                        elapsed: error.elapsed,
                        raced,
                    });
                    let kind = error.kind;
                    if kind == ErrorKind::ContextTooLong {
                        let ctx = snap.entries()[index].info.context_length.unwrap_or(0);
                        min_context = min_context.max(ctx.saturating_add(1));
                    }
                    if kind.is_account_wide() || !kind.is_retryable() {
                        if matches!(kind, ErrorKind::DailyCapReached | ErrorKind::RateLimitedAccount) {
                            let now = self.now();
                            if let Some(block) = self.health().quota_block(&self.policy(), now) {
                                let retry_after = block.until.saturating_since(now);
                                return fail(RouteError::Quota { block, retry_after }, report);
                            }
                        }
                        return fail(RouteError::Upstream { model, error }, report);
                    }
                    last = Some(RouteError::Upstream { model, error });
                }
            }
        }
        let error = last.unwrap_or_else(|| self.no_candidate(&snap, req, &[], start));
        fail(error, report)
    }

    /// Makes a successful answer the client's: names the chosen model in it and, for a
    /// stream, waits for the first event so that an error before any content can still
    /// fall back to another model.
    async fn commit(&self, resp: UpstreamResponse, model: &ModelId) -> Result<UpstreamResponse, TransportError> {
        let UpstreamResponse { status, headers, body, elapsed } = resp;
        let body = match body {
            Body::Full(bytes) => {
                // A 200 whose body is an error object (a provider failing after the head
                // was sent) is a failure like any other, and may fall back.
                if let Some(err) = sse::error_in_payload(&bytes) {
                    return Err(in_band_error(&err).with_elapsed(elapsed));
                }
                Body::Full(sse::ensure_model(bytes, model.as_str()))
            }
            Body::Stream(mut stream) => {
                let mut head = VecDeque::new();
                let mut lines = LineSplitter::default();
                loop {
                    match stream.next().await {
                        None => break,
                        Some(Err(e)) => return Err(e.with_elapsed(elapsed)),
                        Some(Ok(chunk)) => {
                            let mut verdict: Option<Result<(), TransportError>> = None;
                            lines.feed(&chunk, |line| {
                                if verdict.is_some() {
                                    return;
                                }
                                if let Some(payload) = sse::data_payload(line) {
                                    verdict = Some(match sse::error_in_payload(payload) {
                                        Some(err) => Err(in_band_error(&err).with_elapsed(elapsed)),
                                        None => Ok(()),
                                    });
                                }
                            });
                            head.push_back(chunk);
                            match verdict {
                                Some(Err(e)) => return Err(e),
                                Some(Ok(())) => break,
                                None => {}
                            }
                        }
                    }
                }
                Body::Stream(Box::pin(RoutedStream {
                    head,
                    inner: stream,
                    rewriter: ModelRewriter::new(model.as_str()),
                    model: model.clone(),
                    done: false,
                    errors: self.stream_errors.clone(),
                }))
            }
        };
        Ok(UpstreamResponse { status, headers, body, elapsed })
    }

    /// The routing decision for `req` with `seed`, without forwarding anything. Only a
    /// refused request (a paid or unknown model) is an error; when no model can serve it,
    /// the explanation says why, with `pick: None` and the error the request would get.
    pub fn explain(&self, req: &ChatRequest, seed: u64) -> Result<Explanation, RouteError> {
        let snap = self.ports.catalog.snapshot();
        let now = self.now();
        let health = self.health_snapshot();
        let filtered = filter(&snap, req.requirements(), now);
        let (pick, error) = match self.plan(&snap, req, now) {
            Ok(mut plan) => match self.next_pick(&mut plan, &snap, &health, &[], 0, &mut rng_from_seed(seed), now) {
                Ok(i) => (Some(snap.entries()[i].info.id.clone()), None),
                Err(NoPick::Cooling(until)) => (None, Some(all_cooling(until, now))),
                Err(NoPick::Exhausted) => (None, None),
            },
            Err(e @ RouteError::NoCandidate { .. }) => (None, Some(e)),
            Err(e) => return Err(e),
        };
        let cooling: Vec<CoolingEntry> = filtered
            .candidates
            .iter()
            .filter_map(|&i| {
                let id = &snap.entries()[i].info.id;
                health.cooldown(id, now, snap.fetched_at()).map(|c| CoolingEntry {
                    id: id.clone(),
                    cause: c.cause.to_string(),
                    until: c.until.map(|t| t.to_string()),
                })
            })
            .collect();
        let quota = health.quota_report(&self.policy(), now);
        Ok(Explanation::new(&snap, req, &filtered, now, cooling, (pick, error), seed, quota))
    }
}

/// A quota limit in an atomic: `None` (unlimited) is a value no `u32` can take.
const NO_LIMIT: u64 = u64::MAX;

fn encode_limit(limit: Option<u32>) -> u64 {
    limit.map_or(NO_LIMIT, u64::from)
}

fn decode_limit(v: u64) -> Option<u32> {
    u32::try_from(v).ok()
}

/// Every candidate is cooling down; `until` is the earliest timed recovery. Without one
/// (unavailable models wait for a catalog refresh), the client is told to come back in
/// a minute.
fn all_cooling(until: Option<Timestamp>, now: Timestamp) -> RouteError {
    let until = until.unwrap_or_else(|| now.next_minute());
    let retry_after = until.saturating_since(now).max(Duration::from_secs(1));
    RouteError::AllCoolingDown { until, retry_after }
}

/// An `error` object found in a stream before any content: classified by its code.
fn in_band_error(err: &serde_json::Value) -> TransportError {
    let code = err.get("code").and_then(serde_json::Value::as_u64).and_then(|c| u16::try_from(c).ok());
    let message = err.get("message").and_then(serde_json::Value::as_str).unwrap_or("error in stream");
    let kind = match code {
        Some(429) => ErrorKind::RateLimitedModel,
        Some(404) => ErrorKind::ModelUnavailable,
        Some(408) => ErrorKind::Timeout,
        Some(c) if c >= 500 => ErrorKind::ServerError,
        _ => ErrorKind::Protocol,
    };
    let mut e = TransportError::new(kind, message);
    e.status = code;
    e.metadata = err.get("metadata").cloned();
    e
}

/// A committed stream: replays the chunks read while deciding, then the rest, with
/// `model` rewritten; an upstream failure becomes an in-band error chunk.
struct RoutedStream {
    head: VecDeque<Bytes>,
    inner: ByteStream,
    rewriter: ModelRewriter,
    model: ModelId,
    done: bool,
    errors: Arc<AtomicU64>,
}

impl RoutedStream {
    fn rewrite(&mut self, chunk: &[u8]) -> Bytes {
        let before = self.rewriter.error_events();
        let out = self.rewriter.feed(chunk);
        let found = self.rewriter.error_events() - before;
        if found > 0 {
            self.errors.fetch_add(found, Ordering::Relaxed);
        }
        out
    }
}

impl Stream for RoutedStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(chunk) = this.head.pop_front() {
                let out = this.rewrite(&chunk);
                if out.is_empty() {
                    continue;
                }
                return Poll::Ready(Some(Ok(out)));
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = this.rewrite(&chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    this.errors.fetch_add(1, Ordering::Relaxed);
                    let mut out = this.rewriter.finish().to_vec();
                    if !out.is_empty() && !out.ends_with(b"\n") {
                        out.extend_from_slice(b"\n\n");
                    }
                    out.extend_from_slice(&sse::error_chunk(this.model.as_str(), e.http_status(), &e.message));
                    return Poll::Ready(Some(Ok(Bytes::from(out))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let rest = this.rewriter.finish();
                    return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
                }
            }
        }
    }
}

/// A routing decision in words, for the explain endpoint and `router-cli explain`.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub seed: u64,
    pub requirements: Vec<String>,
    pub estimated_prompt_tokens: u64,
    pub catalog: crate::catalog::CatalogStats,
    pub free_models: usize,
    /// Ids of the free models that meet every requirement, in id order.
    pub candidates: Vec<ModelId>,
    /// Free models that do not meet the requirements, with the reasons.
    pub rejected: Vec<RejectedEntry>,
    /// Paid or expired models, counted but not listed.
    pub not_free: usize,
    /// Candidates that are cooling down now.
    pub cooling: Vec<CoolingEntry>,
    /// The model the first attempt would go to with this seed.
    pub pick: Option<ModelId>,
    /// Why there is no pick, as the error the request would get (OpenRouter's shape).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_route_error")]
    pub error: Option<RouteError>,
    pub quota: QuotaReport,
}

fn ser_route_error<S: serde::Serializer>(e: &Option<RouteError>, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    e.as_ref().map(|e| e.to_json()["error"].clone()).serialize(s)
}

#[derive(Clone, Debug, Serialize)]
pub struct RejectedEntry {
    pub id: ModelId,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CoolingEntry {
    pub id: ModelId,
    pub cause: String,
    pub until: Option<String>,
}

impl Explanation {
    #[allow(clippy::too_many_arguments)]
    fn new(
        snap: &CatalogSnapshot,
        req: &ChatRequest,
        f: &Filtered,
        now: Timestamp,
        cooling: Vec<CoolingEntry>,
        (pick, error): (Option<ModelId>, Option<RouteError>),
        seed: u64,
        quota: QuotaReport,
    ) -> Self {
        let free_rejected: Vec<&Rejection> = f.rejected.iter().filter(|r| !r.not_free).collect();
        Explanation {
            seed,
            requirements: req.requirements().labels(),
            estimated_prompt_tokens: req.requirements().prompt_tokens,
            catalog: snap.stats(now),
            free_models: f.candidates.len() + free_rejected.len(),
            candidates: f.candidates.iter().map(|&i| snap.entries()[i].info.id.clone()).collect(),
            rejected: free_rejected
                .iter()
                .map(|r| RejectedEntry {
                    id: snap.entries()[r.index].info.id.clone(),
                    reasons: r.reasons(snap, now).iter().map(ToString::to_string).collect(),
                })
                .collect(),
            not_free: f.rejected.len() - free_rejected.len(),
            cooling,
            pick,
            error,
            quota,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockCatalog, MockChatTransport, MockClock};

    fn router() -> Router {
        let mut catalog = MockCatalog::new();
        catalog.expect_snapshot().returning(|| Arc::new(CatalogSnapshot::empty()));
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| Timestamp::from_secs(1_800_000_000));
        let ports = Ports {
            catalog: Arc::new(catalog),
            transport: Arc::new(MockChatTransport::new()),
            clock: Arc::new(clock),
            store: None,
        };
        Router::new(ports, RouterConfig::default()).expect("no store to load")
    }

    #[test]
    fn quota_limits_can_change_after_start() {
        let r = router();
        assert_eq!(r.quota_report().day_limit, Some(50));
        r.set_quota_limits(Some(20), Some(1000));
        assert_eq!(r.policy().per_day, Some(1000));
        let report = r.quota_report();
        assert_eq!((report.minute_limit, report.day_limit), (Some(20), Some(1000)));
        // The configuration the router was built with is kept as it was.
        assert_eq!(r.config().health.per_day, Some(50));
        r.set_quota_limits(None, None);
        assert_eq!((r.policy().per_minute, r.policy().per_day), (None, None));
    }
}
