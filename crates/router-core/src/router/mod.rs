//! The routing service: analyse, filter, select, forward, fall back.
//!
//! Read in this order: `report` (what a request's routing produced), `plan` (targets,
//! candidates, the next pick), `commit` (making an answer the client's), then this file
//! (the service and its attempt loop).

mod commit;
mod plan;
mod report;

pub use report::{Attempt, RouteFailure, RouteReport, Routed};

use crate::catalog::CatalogSnapshot;
use crate::error::RouteError;
use crate::explain::{CoolingEntry, Explanation};
use crate::filter::filter;
use crate::health::{Cooldown, CooldownCause, HealthPolicy, HealthState};
use crate::model::ModelId;
use crate::ports::{Catalog, ChatTransport, Clock, StateStore, StoreError};
use crate::quota::{QuotaPolicy, QuotaReport};
use crate::request::ChatRequest;
use crate::select::rng_from_seed;
use crate::time::Timestamp;
use crate::upstream::ErrorKind;
use bytes::Bytes;
use commit::commit;
use plan::{NoPick, all_cooling, next_pick, no_candidate, plan};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Upstream calls per request, the first one included, by default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// How long after a request began a new attempt may still start, by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
/// Whether an empty answer (no content, no tool calls) falls back like a 5xx, by default.
pub const DEFAULT_EMPTY_ANSWERS_FAIL: bool = true;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Upstream calls per request, the first one included.
    pub max_attempts: u32,
    /// No new attempt starts after this much time has passed since the request began.
    pub deadline: Duration,
    pub health: HealthPolicy,
    /// The account's limits at start (see [`Router::set_quota_limits`]).
    pub quota: QuotaPolicy,
    /// A 200 without content or tool calls (a refusal, a filter, reasoning alone when
    /// none was asked for) is a failure that falls back to another model.
    pub empty_answers_fail: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            deadline: DEFAULT_DEADLINE,
            health: HealthPolicy::default(),
            quota: QuotaPolicy::default(),
            empty_answers_fail: DEFAULT_EMPTY_ANSWERS_FAIL,
        }
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
            dirty: AtomicBool::new(false),
            stream_errors: Arc::new(AtomicU64::new(0)),
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
        self.health().quota_report(&self.quota_policy(), self.now())
    }

    pub fn cooldowns(&self) -> Vec<(ModelId, Cooldown)> {
        let fetched = self.catalog().fetched_at();
        self.health().cooldowns(self.now(), fetched)
    }

    /// How an answer to `req` is judged before it becomes the client's.
    fn judge(&self, req: &ChatRequest) -> commit::Judge {
        commit::Judge {
            now: self.now(),
            empty_fails: self.config.empty_answers_fail,
            reasoning_counts: req.requirements().caps.contains(crate::model::Capability::Reasoning),
        }
    }

    /// Error chunks seen in streams after they were committed to a client.
    pub fn stream_errors(&self) -> u64 {
        self.stream_errors.load(Ordering::Relaxed)
    }

    /// Routes one request: picks a free model that meets its requirements, forwards,
    /// and falls back on retryable failures. `seed` makes the picks reproducible.
    pub async fn route(&self, req: &ChatRequest, seed: u64) -> Result<Routed, RouteFailure> {
        let snap = self.ports.catalog.snapshot();
        let start = self.now();
        let mut plan = plan(&snap, req, start)?;
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
                match next_pick(&mut plan, &snap, &health, &tried, min_context, &mut rng, now) {
                    // The free rule again at the time of this call: a model that expired
                    // while the request was falling back is never called.
                    Ok(i) if !snap.entries()[i].is_free(now) => {
                        tried.push(i);
                        continue;
                    }
                    Ok(i) => {
                        if let Err(block) = health.reserve(&self.quota_policy(), now) {
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
                Ok(resp) => commit(resp, &model, &self.stream_errors, self.judge(req)).await,
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
                        health.record_failure(&model, &error, &self.config.health, now);
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
        let error = last.unwrap_or_else(|| no_candidate(&snap, req, &[], start));
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
        let (pick, error) = match plan(&snap, req, now) {
            Ok(mut plan) => match next_pick(&mut plan, &snap, &health, &[], 0, &mut rng_from_seed(seed), now) {
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
        let quota = health.quota_report(&self.quota_policy(), now);
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
