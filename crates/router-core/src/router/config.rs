//! How a router routes: attempt budgets, waiting, picking, health rules and quotas, each
//! with its default as a named constant (the settings crate reads them from here).

use crate::health::HealthPolicy;
use crate::model::ModelId;
use crate::quota::{ProviderPolicy, QuotaPolicy};
use std::collections::BTreeMap;
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

/// How a [`Router`](super::Router) routes: attempt budgets, waiting, picking, health rules and quotas.
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
    /// The account's limits at start (see [`Router::set_quota_limits`](super::Router::set_quota_limits)).
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
