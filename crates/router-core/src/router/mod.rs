//! The routing service: analyse, filter, select, forward, fall back.
//!
//! Read in this order: `plan` (targets,
//! candidates, the next pick), `commit` (making an answer the client's), then this file
//! (the service and its attempt loop).

mod commit;
mod link;
mod plan;
mod providers;

pub use crate::report::{Attempt, PickKind, RouteFailure, RouteReport, Routed};

use crate::catalog::CatalogSnapshot;
use crate::error::RouteError;
use crate::explain::{CoolingEntry, Explanation, WeightEntry};
use crate::filter::filter;
use crate::health::{Cooldown, CooldownCause, HealthPolicy, HealthState, SuccessRates};
use crate::model::ModelId;
use crate::ports::{Catalog, ChatTransport, Clock, StateStore, StoreError};
use crate::quota::{ProviderBlock, ProviderPolicy, QuotaPolicy, QuotaReport};
use crate::request::ChatRequest;
use crate::select::rng_from_seed;
use crate::time::Timestamp;
use crate::upstream::ErrorKind;
use bytes::Bytes;
use commit::commit;
use plan::{Chooser, NoPick, Weight, all_cooling, next_pick, no_candidate, plan};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Upstream calls per request, the first one included, by default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// How long after a request began a new attempt may still start, by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
/// Whether an empty answer (no content, no tool calls) falls back like a 5xx, by default.
pub const DEFAULT_EMPTY_ANSWERS_FAIL: bool = true;
/// The longest line of an upstream event stream, by default: a longer `data:` line is a
/// protocol failure (a fallback before commit, an in-band error after), not an
/// ever-growing buffer.
pub const DEFAULT_MAX_SSE_LINE: usize = 4 * 1024 * 1024;
/// The hard cap on upstream calls for one request, cheap failures included, by default.
pub const DEFAULT_MAX_UPSTREAM_CALLS: u32 = 10;
/// A failure answered within this long (a 429, "no endpoints", a quick 5xx) is cheap and
/// does not use up `max_attempts`, by default.
pub const DEFAULT_CHEAP_FAILURE_BOUND: Duration = Duration::from_secs(2);
/// When every candidate is cooling, how soon the earliest must recover for the request
/// to wait for it rather than answer 429, by default.
pub const DEFAULT_MAX_COOLING_WAIT: Duration = Duration::from_secs(5);
/// The most a waiting request adds to its wait (drawn from its seed), so that a burst
/// of waiters reaches the recovered model spread out rather than all at once, by default.
pub const DEFAULT_WAIT_STAGGER: Duration = Duration::from_millis(500);
/// Whether a request with a session key keeps to its session's model, by default.
pub const DEFAULT_STICKY_SESSIONS: bool = true;
/// Whether the pick is weighted by quality rather than uniform, by default (uniform, as
/// `openrouter/free` is).
pub const DEFAULT_WEIGHTED: bool = false;
/// Whether a weighted pick also weighs each model's recent success rate, by default.
pub const DEFAULT_WEIGHT_BY_SUCCESS: bool = true;
/// The weight of a model that `model_weights` does not name.
pub const DEFAULT_MODEL_WEIGHT: f64 = 1.0;

/// How a [`Router`] routes: attempt budgets, waiting, picking, health rules and quotas.
#[derive(Clone, Debug, PartialEq)]
pub struct RouterConfig {
    /// Upstream calls per request that may cost time: the first one included, cheap and
    /// raced failures not (see [`cheap_failure_bound`](Self::cheap_failure_bound)).
    pub max_attempts: u32,
    /// No new attempt starts after this much time has passed since the request began.
    pub deadline: Duration,
    /// Upstream calls per request, whatever they cost.
    pub max_upstream_calls: u32,
    /// A rate limit, an "unavailable" or a server error answered within this long does
    /// not count against `max_attempts`.
    pub cheap_failure_bound: Duration,
    /// When every candidate is cooling and the earliest recovers within this long (and
    /// before the deadline), wait for it instead of answering 429. Zero never waits.
    pub max_cooling_wait: Duration,
    /// The most a waiter adds to its wait, drawn from its seed, to stagger a burst.
    pub wait_stagger: Duration,
    /// Keep a request with a session key on its session's model (rendezvous hashing).
    pub sticky_sessions: bool,
    /// Draw candidates by quality weight instead of uniformly (a request may override).
    pub weighted: bool,
    /// In a weighted pick, multiply each model's weight by its recent success rate.
    pub weight_by_success: bool,
    /// Configured quality weights; a model not named weighs [`DEFAULT_MODEL_WEIGHT`].
    pub model_weights: BTreeMap<ModelId, f64>,
    /// Backoffs and the per-model circuit breaker.
    pub health: HealthPolicy,
    /// The account's limits at start (see [`Router::set_quota_limits`]).
    pub quota: QuotaPolicy,
    /// Each declared provider's limits, day clock and host breaker, by provider name (a
    /// provider not named is unlimited); OpenRouter's models keep `quota`. An entry keyed
    /// by a model's exposed id (`groq/llama-3.1-8b-instant`) is that model's own limit,
    /// counted beside its provider's.
    pub providers: BTreeMap<String, ProviderPolicy>,
    /// A 200 without content or tool calls (a refusal, a filter, reasoning alone when
    /// none was asked for) is a failure that falls back to another model.
    pub empty_answers_fail: bool,
    /// The longest line of an upstream event stream, in bytes.
    pub max_sse_line: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            deadline: DEFAULT_DEADLINE,
            max_upstream_calls: DEFAULT_MAX_UPSTREAM_CALLS,
            cheap_failure_bound: DEFAULT_CHEAP_FAILURE_BOUND,
            max_cooling_wait: DEFAULT_MAX_COOLING_WAIT,
            wait_stagger: DEFAULT_WAIT_STAGGER,
            sticky_sessions: DEFAULT_STICKY_SESSIONS,
            weighted: DEFAULT_WEIGHTED,
            weight_by_success: DEFAULT_WEIGHT_BY_SUCCESS,
            model_weights: BTreeMap::new(),
            health: HealthPolicy::default(),
            quota: QuotaPolicy::default(),
            providers: BTreeMap::new(),
            empty_answers_fail: DEFAULT_EMPTY_ANSWERS_FAIL,
            max_sse_line: DEFAULT_MAX_SSE_LINE,
        }
    }
}

impl RouterConfig {
    /// The configured quality weight of `id`.
    pub fn model_weight(&self, id: &ModelId) -> f64 {
        self.model_weights.get(id).copied().unwrap_or(DEFAULT_MODEL_WEIGHT)
    }
}

/// The adapters a router is built from.
#[derive(Clone)]
#[expect(missing_debug_implementations, reason = "trait objects; nothing useful to print")]
pub struct Ports {
    /// The catalog the router picks from.
    pub catalog: Arc<dyn Catalog>,
    /// Sends requests upstream.
    pub transport: Arc<dyn ChatTransport>,
    /// The router's only source of the current time, and of waiting.
    pub clock: Arc<dyn Clock>,
    /// Where resilience state is kept across restarts; `None` keeps it in memory only.
    pub store: Option<Arc<dyn StateStore>>,
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
    /// Recent success rates, for the opt-in weighted pick; in memory only.
    success: Mutex<SuccessRates>,
    dirty: AtomicBool,
    stream_errors: Arc<AtomicU64>,
    /// Daily-cap failures seen (a reason to read upstream's counter again).
    daily_caps: AtomicU64,
    /// State shared with other instances (see [`Router::with_shared`]).
    shared: Option<link::SharedLink>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("config", &self.config).finish_non_exhaustive()
    }
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
            per_minute: AtomicU64::new(encode_limit(config.quota.per_minute)),
            per_day: AtomicU64::new(encode_limit(config.quota.per_day)),
            config,
            health: Mutex::new(state),
            success: Mutex::new(SuccessRates::default()),
            dirty: AtomicBool::new(false),
            stream_errors: Arc::new(AtomicU64::new(0)),
            daily_caps: AtomicU64::new(0),
            shared: None,
        })
    }

    /// The configuration the router was built with; see [`quota_policy`](Self::quota_policy)
    /// for the limits in force now.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The quota limits in force (they may have changed since start).
    pub fn quota_policy(&self) -> QuotaPolicy {
        QuotaPolicy {
            per_minute: decode_limit(self.per_minute.load(Ordering::Relaxed)),
            per_day: decode_limit(self.per_day.load(Ordering::Relaxed)),
        }
    }

    /// Changes the account's request limits (`None` is unlimited), e.g. once upstream
    /// says the key is not on the free tier and may send 1,000 free requests a day.
    pub fn set_quota_limits(&self, per_minute: Option<u32>, per_day: Option<u32>) {
        self.per_minute.store(encode_limit(per_minute), Ordering::Relaxed);
        self.per_day.store(encode_limit(per_day), Ordering::Relaxed);
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<CatalogSnapshot> {
        self.ports.catalog.snapshot()
    }

    /// The current time, from the clock port.
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

    /// A copy of the resilience state (cooldowns, breakers, quota counts).
    pub fn health_snapshot(&self) -> HealthState {
        self.health().clone()
    }

    /// The account's quota use now, under the limits in force.
    pub fn quota_report(&self) -> QuotaReport {
        self.health().quota_report(&self.quota_policy(), self.now())
    }

    /// Models cooling down now, in id order, judged against the current catalog.
    pub fn cooldowns(&self) -> Vec<(ModelId, Cooldown)> {
        let fetched = self.catalog().fetched_at();
        self.health().cooldowns(self.now(), fetched)
    }

    /// Error chunks seen in streams after they were committed to a client.
    pub fn stream_errors(&self) -> u64 {
        self.stream_errors.load(Ordering::Relaxed)
    }

    /// Reconciles the day's request count with upstream's `free_model_daily_requests`
    /// (`GET /key`): the count never goes below the local one (upstream lags), with
    /// `adopt_limit` upstream's `limit` replaces the daily limit in force (when one is:
    /// not when it was configured), and `remaining: 0` blocks every request until the
    /// next 00:00 UTC.
    pub fn reconcile_daily(&self, used: u32, limit: u32, remaining: u32, adopt_limit: bool) {
        let now = self.now();
        let policy = self.quota_policy();
        if adopt_limit && policy.per_day.is_some_and(|l| l != limit) {
            self.set_quota_limits(policy.per_minute, Some(limit));
        }
        let reading = crate::quota::UpstreamDay { used, limit, remaining, at: now };
        self.health().quota.reconcile_day(reading, now);
        self.dirty.store(true, Ordering::Release);
    }

    /// Daily-cap failures seen since start: when it changes, upstream's counter is
    /// worth reading again.
    pub fn daily_caps_seen(&self) -> u64 {
        self.daily_caps.load(Ordering::Relaxed)
    }

    /// How an answer to `req` is judged before it becomes the client's.
    fn judge(&self, req: &ChatRequest) -> commit::Judge {
        commit::Judge {
            now: self.now(),
            empty_fails: self.config.empty_answers_fail,
            reasoning_counts: req.requirements().caps.contains(crate::model::Capability::Reasoning),
            max_line: self.config.max_sse_line,
        }
    }

    fn success_rates(&self) -> MutexGuard<'_, SuccessRates> {
        self.success.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Each model's recent success rate (what a weighted pick may weigh).
    pub fn success_rates_snapshot(&self) -> SuccessRates {
        self.success_rates().clone()
    }

    /// Whether `req` gets a quality-weighted pick: its own choice, else the router's.
    fn is_weighted(&self, req: &ChatRequest) -> bool {
        req.weighted().unwrap_or(self.config.weighted)
    }

    /// The session key that steers `req`, when sticky sessions are on.
    fn session<'r>(&self, req: &'r ChatRequest) -> Option<&'r str> {
        req.session_key().filter(|_| self.config.sticky_sessions)
    }

    /// How long to wait for the earliest of the cooling candidates (`until`), or `None`
    /// to answer now: only when it recovers within `max_cooling_wait`, the total wait
    /// stays within that bound (plus the stagger) and the deadline is not passed. The
    /// stagger, drawn from the seed, spreads a burst of waiters.
    fn cooling_wait(
        &self,
        until: Option<Timestamp>,
        now: Timestamp,
        start: Timestamp,
        waited: Duration,
        seed: u64,
    ) -> Option<Duration> {
        let bound = self.config.max_cooling_wait;
        let until = until?;
        let base = until.saturating_since(now);
        if bound.is_zero() || base > bound {
            return None;
        }
        let stagger_ms = u64::try_from(self.config.wait_stagger.as_millis()).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(splitmix64(seed ^ waited.as_millis() as u64) % stagger_ms.saturating_add(1));
        let wait = base.saturating_add(jitter).max(Duration::from_millis(1));
        if waited.saturating_add(wait) > bound.saturating_add(self.config.wait_stagger) {
            return None;
        }
        if now.saturating_add(wait).saturating_since(start) >= self.config.deadline {
            return None;
        }
        Some(wait)
    }

    /// Routes one request: picks a free model that meets its requirements, forwards,
    /// and falls back on retryable failures. `seed` makes the picks reproducible.
    ///
    /// The attempts are budgeted by what they cost: a cheap failure (a rate limit, an
    /// "unavailable" or a server error answered within `cheap_failure_bound`) and a raced
    /// one do not count against `max_attempts`; every call counts against
    /// `max_upstream_calls`; no attempt starts after the deadline; each model is tried
    /// once at most. When every candidate is cooling and one recovers soon, the request
    /// waits for it (see [`RouterConfig::max_cooling_wait`]).
    pub async fn route(&self, req: &ChatRequest, seed: u64) -> Result<Routed, RouteFailure> {
        let snap = self.ports.catalog.snapshot();
        let start = self.now();
        let mut plan = plan(&snap, req, start)?;
        let mut report = RouteReport { candidates: plan.candidates.len(), ..RouteReport::default() };
        let mut rng = rng_from_seed(seed);
        let weighted = self.is_weighted(req);
        let rates = (weighted && self.config.weight_by_success).then(|| self.success_rates_snapshot());
        let configured = |i: usize| self.config.model_weight(&snap.entries()[i].info.id);
        let measured = |i: usize| {
            let id = &snap.entries()[i].info.id;
            self.config.model_weight(id) * rates.as_ref().map_or(1.0, |r| r.weight(id))
        };
        let chooser = Chooser {
            session: self.session(req),
            weight: weighted.then_some(&measured as &Weight<'_>),
            sticky_weight: weighted.then_some(&configured as &Weight<'_>),
        };
        let mut tried: Vec<usize> = Vec::new();
        let mut min_context = 0;
        let mut last: Option<RouteError> = None;
        let mut held = providers::Held::default();
        let fail = |error: RouteError, report: RouteReport| Err(RouteFailure { error, report });
        // Attempts that count against `max_attempts`: raced and cheap ones do not.
        let mut spent = 0u32;
        let cap = usize::try_from(self.config.max_upstream_calls.max(1)).unwrap_or(usize::MAX);

        while spent < self.config.max_attempts && report.attempts.len() < cap {
            let now = self.now();
            if !report.attempts.is_empty() && now.saturating_since(start) >= self.config.deadline {
                let error = last.take().unwrap_or(RouteError::Deadline(self.config.deadline));
                return fail(error, report);
            }
            let picked = {
                let mut health = self.health();
                match next_pick(&mut plan, &snap, &health, &tried, min_context, &mut rng, chooser, now) {
                    // The free rule again at the time of this call: a model that expired
                    // while the request was falling back is never called.
                    Ok((i, _)) if !snap.entries()[i].is_free(now) => {
                        tried.push(i);
                        continue;
                    }
                    // A declared provider's quota and host breaker: a spent or unreachable
                    // provider's candidates leave the pick, and the others keep serving.
                    Ok((i, kind)) if snap.entries()[i].info.provider.is_some() => {
                        let name = snap.entries()[i].info.provider_name();
                        let id = snap.entries()[i].info.id.as_str();
                        // A model's own limit, when one is configured: only that model waits.
                        if let Some(block) = self.model_hold(&health, id, now) {
                            held.note(block);
                            tried.push(i);
                            continue;
                        }
                        match health.provider_mut(name).reserve(name, &self.provider_policy(name), now) {
                            Ok(()) => {
                                self.count_model(&mut health, id, now);
                                health.begin_attempt(&snap.entries()[i].info.id, now);
                                self.dirty.store(true, Ordering::Release);
                                Ok((i, kind))
                            }
                            Err(block) => {
                                held.note(block);
                                providers::drop_provider(&mut plan, &snap, name);
                                continue;
                            }
                        }
                    }
                    // In a union, OpenRouter's host has a breaker like any provider's.
                    Ok((i, _)) if snap.is_union() && providers::openrouter_unreachable(&health, now).is_some() => {
                        held.extend(providers::openrouter_unreachable(&health, now));
                        debug_assert!(snap.entries()[i].info.provider.is_none());
                        providers::drop_provider(&mut plan, &snap, crate::model::OPENROUTER_PROVIDER);
                        continue;
                    }
                    // OpenRouter's shared quota is reserved below, out of the lock.
                    Ok((i, kind)) if self.shared.is_some() => Ok((i, kind)),
                    Ok((i, kind)) => {
                        if let Err(block) = health.reserve(&self.quota_policy(), now) {
                            if snap.is_union() {
                                held.note(ProviderBlock::Quota(block));
                                providers::drop_provider(&mut plan, &snap, crate::model::OPENROUTER_PROVIDER);
                                continue;
                            }
                            let retry_after = block.until.saturating_since(now);
                            return fail(RouteError::Quota { block, retry_after }, report);
                        }
                        health.begin_attempt(&snap.entries()[i].info.id, now);
                        self.dirty.store(true, Ordering::Release);
                        Ok((i, kind))
                    }
                    Err(NoPick::Cooling(until)) => Err(until),
                    Err(NoPick::Exhausted) => break,
                }
            };
            let (index, kind) = match picked {
                Ok(p) => p,
                Err(until) => {
                    // Nothing is held while waiting: no lock, no upstream connection.
                    if let Some(wait) = self.cooling_wait(until, now, start, report.waited, seed)
                        && self.ports.clock.sleep(wait).await
                    {
                        report.waited += wait;
                        plan.rewind();
                        continue;
                    }
                    if report.attempts.is_empty() {
                        return fail(all_cooling(until, now), report);
                    }
                    break;
                }
            };
            tried.push(index);
            if let Some(link) = &self.shared
                && snap.entries()[index].info.provider.is_none()
            {
                match self.reserve_shared(link, &snap.entries()[index].info.id, now).await {
                    Ok(()) => {}
                    Err(link::Refusal::Quota(block)) => {
                        let retry_after = block.until.saturating_since(now);
                        return fail(RouteError::Quota { block, retry_after }, report);
                    }
                    // Another instance is probing the model: it is cooling here too now,
                    // and the next pick says so (a 429 when nothing else can serve).
                    Err(link::Refusal::ProbeTaken) => {
                        tried.pop();
                        plan.rewind();
                        continue;
                    }
                }
            }
            report.pick = kind;
            let model = snap.entries()[index].info.id.clone();
            let info = &snap.entries()[index].info;
            let body = Bytes::from(req.body_for_upstream(info.upstream_id(), info.provider.is_some()));
            let sent_at = self.now();
            let result = match self.ports.transport.send(&model, body, req.is_stream()).await {
                Ok(resp) => commit(resp, &model, &self.stream_errors, self.judge(req)).await,
                Err(e) => Err(e),
            };
            match result {
                // Nothing left this machine (no descriptor, no memory): no model is to
                // blame and none would fare better. The reservation is given back, the
                // model's health is left alone, and the client is told to come back.
                Err(error) if error.kind == ErrorKind::LocalResource => {
                    {
                        let mut health = self.health();
                        match &snap.entries()[index].info.provider {
                            Some(p) => {
                                let policy = self.provider_policy(&p.provider);
                                health.provider_mut(&p.provider).quota.release_at(&*policy.reset, now);
                            }
                            // A shared store's count is not given back: it may be another process's.
                            None if self.shared.is_none() => health.release(now),
                            None => {}
                        }
                        health.abandon_attempt(&model);
                    }
                    self.dirty.store(true, Ordering::Release);
                    report.attempts.push(Attempt {
                        model: model.clone(),
                        failure: Some(error.kind),
                        elapsed: error.elapsed,
                        raced: false,
                    });
                    return fail(RouteError::Upstream { model, error }, report);
                }
                Ok(response) => {
                    {
                        let mut health = self.health();
                        let watch = self.watch(&health, &model);
                        health.record_success(&model);
                        let provider = snap.entries()[index].info.provider_name();
                        if let Some(p) = health.providers.get_mut(provider) {
                            p.reached();
                        }
                        self.publish_changes(watch, &health, &model, self.now());
                    }
                    self.success_rates().record(&model, Ok(()));
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
                    let now = self.now();
                    let raced = {
                        let mut health = self.health();
                        let raced = health
                            .cooldown(&model, now, snap.fetched_at())
                            .is_some_and(|c| c.cause != CooldownCause::ProbeInFlight);
                        let watch = self.watch(&health, &model);
                        match &snap.entries()[index].info.provider {
                            Some(p) => {
                                let policy = self.provider_policy(&p.provider);
                                health.record_provider_failure(
                                    &p.provider,
                                    &model,
                                    &error,
                                    &self.config.health,
                                    &policy,
                                    now,
                                );
                            }
                            None => {
                                if error.kind == ErrorKind::Connection && snap.is_union() {
                                    providers::openrouter_connection_failed(&mut health, &self.config.health, now);
                                }
                                health.record_failure(&model, &error, &self.config.health, now);
                            }
                        }
                        self.publish_changes(watch, &health, &model, now);
                        self.dirty.store(true, Ordering::Release);
                        raced
                    };
                    let took = now.saturating_since(sent_at).max(error.elapsed);
                    let cheap = is_cheap(error.kind) && took < self.config.cheap_failure_bound;
                    if !raced {
                        self.success_rates().record(&model, Err(error.kind));
                        if !cheap {
                            spent += 1;
                        }
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
                    if kind.is_account_wide() && snap.is_union() {
                        // One provider's account is spent or refused: the others may serve.
                        let name = snap.entries()[index].info.provider_name();
                        if let Some(block) = self.provider_hold(&self.health(), name, self.now()) {
                            held.note(block);
                        }
                        providers::drop_provider(&mut plan, &snap, name);
                        last = Some(RouteError::Upstream { model, error });
                        continue;
                    }
                    if kind.is_account_wide() || !kind.is_retryable() {
                        if kind == ErrorKind::DailyCapReached {
                            self.daily_caps.fetch_add(1, Ordering::Relaxed);
                        }
                        if matches!(kind, ErrorKind::DailyCapReached | ErrorKind::RateLimitedAccount) {
                            let now = self.now();
                            if let Some(block) = self.health().quota_block(&self.quota_policy(), now) {
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
        let error = held.into_error(last, self.now()).unwrap_or_else(|| no_candidate(&snap, req, &[], start));
        fail(error, report)
    }

    /// The routing decision for `req` with `seed`, without forwarding anything. Only a
    /// refused request (a paid or unknown model) is an error; when no model can serve it,
    /// the explanation says why, with `pick: None` and the error the request would get.
    pub fn explain(&self, req: &ChatRequest, seed: u64) -> Result<Explanation, RouteError> {
        let snap = self.ports.catalog.snapshot();
        let now = self.now();
        let health = self.health_snapshot();
        let filtered = filter(&snap, req.requirements(), now);
        let weighted = self.is_weighted(req);
        let rates = (weighted && self.config.weight_by_success).then(|| self.success_rates_snapshot());
        let weight_of = |id: &ModelId| self.config.model_weight(id) * rates.as_ref().map_or(1.0, |r| r.weight(id));
        let configured = |i: usize| self.config.model_weight(&snap.entries()[i].info.id);
        let measured = |i: usize| weight_of(&snap.entries()[i].info.id);
        let chooser = Chooser {
            session: self.session(req),
            weight: weighted.then_some(&measured as &Weight<'_>),
            sticky_weight: weighted.then_some(&configured as &Weight<'_>),
        };
        let mut kind = None;
        let mut wait = None;
        let holds = self.holds(&snap, &health, now);
        let (pick, error) = match plan(&snap, req, now) {
            Ok(mut plan) => {
                // As `route` would: a held provider's candidates leave the pick.
                let mut held = providers::Held::default();
                for (name, block) in &holds {
                    providers::drop_provider(&mut plan, &snap, name);
                    held.note(block.clone());
                }
                match next_pick(&mut plan, &snap, &health, &[], 0, &mut rng_from_seed(seed), chooser, now) {
                    Ok((i, k)) => {
                        kind = Some(k);
                        (Some(snap.entries()[i].info.id.clone()), None)
                    }
                    Err(NoPick::Cooling(until)) => {
                        wait = self.cooling_wait(until, now, now, Duration::ZERO, seed);
                        (None, Some(all_cooling(until, now)))
                    }
                    Err(NoPick::Exhausted) => (None, held.into_error(None, now)),
                }
            }
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
        let (provider_entries, held_cooling) = providers::explain_providers(&snap, &filtered.candidates, &holds);
        let held_cooling: Vec<CoolingEntry> =
            held_cooling.into_iter().filter(|h| !cooling.iter().any(|c| c.id == h.id)).collect();
        let mut cooling = cooling;
        cooling.extend(held_cooling);
        let quota = health.quota_report(&self.quota_policy(), now);
        let mut explanation = Explanation::new(&snap, req, &filtered, now, cooling, (pick, error), seed, quota);
        explanation.providers = provider_entries;
        explanation.pick_kind = kind;
        explanation.wait_ms = wait.map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX));
        explanation.session = chooser.session.is_some();
        if weighted {
            explanation.weights = filtered
                .candidates
                .iter()
                .map(|&i| {
                    let id = &snap.entries()[i].info.id;
                    WeightEntry { id: id.clone(), weight: weight_of(id) }
                })
                .collect();
        }
        Ok(explanation)
    }
}

/// Failures that cost little when they come back fast: another model may answer at once.
fn is_cheap(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::RateLimitedModel | ErrorKind::ModelUnavailable | ErrorKind::ServerError)
}

/// SplitMix64's output function: a well-spread `u64` from any `u64` (the wait stagger).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A quota limit in an atomic: `None` (unlimited) is a value no `u32` can take.
const NO_LIMIT: u64 = u64::MAX;

fn encode_limit(limit: Option<u32>) -> u64 {
    limit.map_or(NO_LIMIT, u64::from)
}

fn decode_limit(v: u64) -> Option<u32> {
    u32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockCatalog, MockChatTransport, MockClock};
    use crate::quota::QuotaPolicy;

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
        assert_eq!(r.quota_policy().per_day, Some(1000));
        let report = r.quota_report();
        assert_eq!((report.minute_limit, report.day_limit), (Some(20), Some(1000)));
        // The configuration the router was built with is kept as it was.
        assert_eq!(r.config().quota.per_day, Some(50));
        r.set_quota_limits(None, None);
        assert_eq!(r.quota_policy(), QuotaPolicy::UNLIMITED);
    }
}
