//! The routing service: analyse, filter, select, forward, fall back.
//!
//! Read in this order: `config` (the budgets and rules, with their defaults), `plan`
//! (targets, candidates, the next pick), this file (the service, its ports and state),
//! `route` (the attempt loop), then its steps: `attempt` (one request's attempt state),
//! `admit` (pick and reserve), `account` (whose quota an attempt spends: the one place
//! OpenRouter's account differs from a declared provider's), `commit` (making an answer
//! the client's), `settle` (judging and recording an outcome). Then `explain` (the
//! decision without forwarding), `budget` (token budgets), `providers` (holds) and `link`
//! (state shared with other instances).

mod account;
mod admit;
mod attempt;
mod budget;
mod commit;
mod config;
mod explain;
#[cfg(test)]
mod fixture;
mod in_flight;
mod link;
mod plan;
mod providers;
mod route;
mod settle;

pub use crate::report::{Attempt, PickKind, RouteFailure, RouteReport, Routed};
pub use config::{
    DEFAULT_CHEAP_FAILURE_BOUND, DEFAULT_CLAMP_MAX_TOKENS, DEFAULT_DEADLINE, DEFAULT_EMPTY_ANSWERS_FAIL,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_COOLING_WAIT, DEFAULT_MAX_SSE_LINE, DEFAULT_MAX_UPSTREAM_CALLS,
    DEFAULT_MODEL_WEIGHT, DEFAULT_STICKY_SESSIONS, DEFAULT_WAIT_STAGGER, DEFAULT_WEIGHT_BY_SUCCESS, DEFAULT_WEIGHTED,
    MIN_USEFUL_OUTPUT_TOKENS, RouterConfig,
};

use crate::catalog::CatalogSnapshot;
use crate::embeddings::{Dimensions, EmbeddingsRequest, VectorCheck};
use crate::health::{Cooldown, HealthState, SuccessRates};
use crate::model::ModelId;
use crate::ports::{Catalog, ChatTransport, Clock, StateStore, StoreError};
use crate::quota::{QuotaPolicy, QuotaReport};
use crate::request::ChatRequest;
use crate::time::Timestamp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Saves that failed, and the last failure's message while saving fails.
    save_failures: AtomicU64,
    save_error: Mutex<Option<String>>,
    stream_errors: Arc<AtomicU64>,
    /// Daily-cap failures seen (a reason to read upstream's counter again).
    daily_caps: AtomicU64,
    /// State shared with other instances (see [`Router::with_shared`]).
    shared: Option<link::SharedLink>,
    /// Each embedding family's dimension, learned from its first answer.
    dimensions: Mutex<Dimensions>,
    /// Requests in flight to each provider with a `max_concurrent`.
    in_flight: in_flight::InFlight,
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
            in_flight: in_flight::InFlight::new(&config.providers),
            config,
            health: Mutex::new(state),
            success: Mutex::new(SuccessRates::default()),
            dirty: AtomicBool::new(false),
            save_failures: AtomicU64::new(0),
            save_error: Mutex::new(None),
            stream_errors: Arc::new(AtomicU64::new(0)),
            dimensions: Mutex::default(),
            daily_caps: AtomicU64::new(0),
            shared: None,
        })
    }

    /// Each provider with a `max_concurrent`: its name, requests in flight now, and the
    /// bound.
    pub fn in_flight(&self) -> Vec<(String, u32, u32)> {
        self.in_flight.all()
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
        let saved = store.save(&state);
        let mut last = self.save_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match saved {
            Ok(()) => *last = None,
            Err(e) => {
                // Still dirty: the next call tries again.
                self.dirty.store(true, Ordering::Release);
                self.save_failures.fetch_add(1, Ordering::Relaxed);
                *last = Some(crate::secret::redact(&e.to_string(), &[]));
                return Err(e);
            }
        }
        Ok(true)
    }

    /// Saves that failed since start, and the last failure while the state is not saved
    /// (cleared by the next save that succeeds): for `/readyz`, status and the metrics.
    pub fn save_status(&self) -> (u64, Option<String>) {
        let last = self.save_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        (self.save_failures.load(Ordering::Relaxed), last)
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

    /// How an answer to `req` is judged before it becomes the client's; an embeddings
    /// answer's vectors too (its body was read and bounded before routing).
    fn judge<'a>(&'a self, req: &'a ChatRequest, dialect: crate::dialect::Dialect) -> commit::Judge<'a> {
        let vectors = req.family().and_then(|family| {
            let body = EmbeddingsRequest::read(req.raw()).ok()?;
            let (inputs, encoding, dimensions) = (body.inputs, body.encoding, body.dimensions);
            Some(VectorCheck { family, inputs, encoding, dimensions, learned: &self.dimensions })
        });
        commit::Judge {
            dialect,
            now: self.now(),
            empty_fails: self.config.empty_answers_fail,
            reasoning_counts: req.requirements().caps.contains(crate::model::Capability::Reasoning),
            max_line: self.config.max_sse_line,
            vectors,
            spans: req.records_answer_spans(),
        }
    }

    /// Each embedding family's dimension, as learned from its first answer.
    pub fn embedding_dimensions(&self) -> MutexGuard<'_, Dimensions> {
        self.dimensions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
