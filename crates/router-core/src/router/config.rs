//! How a router routes: attempt budgets, waiting, picking, health rules and quotas, each
//! with its default as a named constant (the settings crate reads them from here).

use crate::health::HealthPolicy;
use crate::model::{ModelId, ModelInfo};
use crate::quota::{ProviderPolicy, QuotaPolicy};
use crate::request::Requirements;
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
/// Whether `max_tokens` / `max_completion_tokens` is lowered, per candidate, to what the
/// model can produce (its completion limit, its context less the prompt), by default.
/// Coding agents ask for 32,000-128,000 output tokens, which most free models cannot give
/// and some free tiers charge up front.
pub const DEFAULT_CLAMP_MAX_TOKENS: bool = true;
/// With clamping, the least output a candidate must leave room for after the prompt (or
/// the output asked for, when less): a model that fits the prompt with no room to answer
/// is no candidate.
pub const MIN_USEFUL_OUTPUT_TOKENS: u64 = 1024;
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
    /// Lower the output asked for to what each candidate can produce (see
    /// [`DEFAULT_CLAMP_MAX_TOKENS`]).
    pub clamp_max_tokens: bool,
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
            clamp_max_tokens: DEFAULT_CLAMP_MAX_TOKENS,
        }
    }
}

impl RouterConfig {
    /// What a candidate must offer for `reqs`: with clamping, room for the prompt and
    /// [`MIN_USEFUL_OUTPUT_TOKENS`] (or the output asked for, when less), since the rest
    /// of the output asked for is lowered to fit; without, everything asked for.
    pub fn candidate_requirements(&self, reqs: &Requirements) -> Requirements {
        if !self.clamp_max_tokens {
            return *reqs;
        }
        Requirements { max_output_tokens: reqs.max_output_tokens.map(|n| n.min(MIN_USEFUL_OUTPUT_TOKENS)), ..*reqs }
    }

    /// The output to ask `model` for, when it is less than the request asked for: its
    /// completion limit, or its context less the prompt estimate. `None` leaves the
    /// request's own value (clamping off, nothing asked, or the model can give it all).
    pub fn clamped_output(&self, reqs: &Requirements, model: &ModelInfo) -> Option<u64> {
        let asked = reqs.max_output_tokens.filter(|_| self.clamp_max_tokens)?;
        let room = model.context_length.map_or(u64::MAX, |c| c.saturating_sub(reqs.prompt_tokens));
        let limit = model.max_completion_tokens.unwrap_or(u64::MAX).min(room);
        (limit < asked).then_some(limit.max(1))
    }

    /// The configured quality weight of `id`.
    pub fn model_weight(&self, id: &ModelId) -> f64 {
        self.model_weights.get(id).copied().unwrap_or(DEFAULT_MODEL_WEIGHT)
    }
}

#[cfg(test)]
mod tests {
    use super::{MIN_USEFUL_OUTPUT_TOKENS, RouterConfig};
    use crate::model::ModelInfo;
    use crate::request::Requirements;

    /// A model with `context` and `max_completion` and a request of `prompt` tokens asking
    /// for `asked`: the output clamped to, with clamping on and off.
    fn check(
        context: Option<u64>,
        max_completion: Option<u64>,
        prompt: u64,
        asked: Option<u64>,
        expected: Option<u64>,
    ) {
        let mut model = ModelInfo::new("m:free");
        model.context_length = context;
        model.max_completion_tokens = max_completion;
        let reqs = Requirements { prompt_tokens: prompt, max_output_tokens: asked, ..Requirements::default() };
        assert_eq!(RouterConfig::default().clamped_output(&reqs, &model), expected, "{context:?} {max_completion:?}");
        let off = RouterConfig { clamp_max_tokens: false, ..RouterConfig::default() };
        assert_eq!(off.clamped_output(&reqs, &model), None);
    }

    #[test]
    fn the_output_asked_for_is_lowered_to_what_the_model_can_give() {
        // Claude Code's request on a 131,072-token model with 8,192 completion tokens.
        check(Some(131_072), Some(8_192), 12_000, Some(128_000), Some(8_192));
        // The context less the prompt, when that is less.
        check(Some(32_768), None, 12_000, Some(128_000), Some(20_768));
        check(Some(32_768), Some(8_192), 30_000, Some(32_000), Some(2_768));
        // Nothing to lower: it fits, nothing is known, or nothing was asked.
        check(Some(131_072), Some(8_192), 100, Some(4_000), None);
        check(None, None, 100, Some(128_000), None);
        check(Some(1_000), Some(10), 100, None, None);
    }

    #[test]
    fn candidates_need_room_for_a_useful_output_only() {
        let reqs = Requirements { prompt_tokens: 12_000, max_output_tokens: Some(128_000), ..Requirements::default() };
        let relaxed = RouterConfig::default().candidate_requirements(&reqs);
        assert_eq!(relaxed.max_output_tokens, Some(MIN_USEFUL_OUTPUT_TOKENS));
        assert_eq!(relaxed.context_needed(), 12_000 + MIN_USEFUL_OUTPUT_TOKENS);
        let small = Requirements { max_output_tokens: Some(100), ..reqs };
        assert_eq!(RouterConfig::default().candidate_requirements(&small).max_output_tokens, Some(100));
        let off = RouterConfig { clamp_max_tokens: false, ..RouterConfig::default() };
        assert_eq!(off.candidate_requirements(&reqs), reqs);
    }
}
