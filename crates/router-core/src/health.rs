//! Per-model resilience: rate-limit cooldowns, "unavailable until the catalog lists it
//! again", and a circuit breaker with a half-open probe. The account's quotas are in
//! [`quota`](crate::quota); both live in one [`HealthState`].
//!
//! Pure data plus the rules that change it; every method takes `now`. The router keeps
//! one [`HealthState`] behind a lock and a [`StateStore`](crate::StateStore) persists it,
//! so that a restart neither forgets a cooldown nor resets the day's request count.

use crate::model::ModelId;
use crate::quota::{
    DEFAULT_PROVIDER_AUTH_BLOCK, ProviderBlock, ProviderPolicy, ProviderState, QuotaBlock, QuotaPolicy, QuotaReport,
    QuotaState,
};
use crate::time::Timestamp;
use crate::upstream::{ErrorKind, TransportError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The rules: backoffs and the circuit breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// First cooldown of a rate-limited model without `Retry-After`; doubles per repeat.
    pub backoff_base: Duration,
    /// The longest a rate-limit backoff grows to.
    pub backoff_max: Duration,
    /// Failures (5xx, timeouts, connection errors) within `breaker_window` that open the breaker.
    pub breaker_threshold: u32,
    /// How far back failures count towards `breaker_threshold`.
    pub breaker_window: Duration,
    /// How long an opened breaker stays open before one probe may go.
    pub breaker_open: Duration,
}

/// How long a model's breaker stays open before one probe may go, by default.
pub const DEFAULT_BREAKER_OPEN: Duration = Duration::from_secs(60);

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(600),
            breaker_threshold: 3,
            breaker_window: Duration::from_secs(60),
            breaker_open: DEFAULT_BREAKER_OPEN,
        }
    }
}

/// A model's circuit breaker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Breaker {
    /// Requests go as normal.
    #[default]
    Closed,
    /// Too many recent failures: the model is left out.
    Open {
        /// When the open period ends and the breaker turns half-open.
        until: Timestamp,
    },
    /// The open period is over; one probe request may go. `probe_since` is set while
    /// a probe is in flight.
    HalfOpen {
        /// When the probe in flight began; `None` when none is.
        probe_since: Option<Timestamp>,
    },
}

/// What the router remembers of one model; a model with no entry is healthy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelHealth {
    /// Rate limited: left out until this instant.
    #[serde(default)]
    pub rate_limited_until: Option<Timestamp>,
    /// Consecutive rate limits; the next backoff is `base * 2^level`.
    #[serde(default)]
    pub backoff_level: u32,
    /// Answered "unavailable" at this instant; left out until a catalog fetched later
    /// lists it again.
    #[serde(default)]
    pub unavailable_since: Option<Timestamp>,
    /// When recent failures (5xx, timeouts, protocol errors) happened, within the breaker's
    /// window; cleared when the breaker opens.
    #[serde(default)]
    pub recent_failures: Vec<Timestamp>,
    /// The model's circuit breaker.
    #[serde(default)]
    pub breaker: Breaker,
}

/// Why a model is left out of selection for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CooldownCause {
    /// The model answered "rate limited"; it cools down until its `Retry-After` or backoff ends.
    RateLimited,
    /// The model answered "unavailable"; it waits for a later catalog to list it again.
    Unavailable,
    /// Repeated failures opened its circuit breaker.
    CircuitOpen,
    /// Its breaker is half-open and another request is probing it.
    ProbeInFlight,
}

impl fmt::Display for CooldownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CooldownCause::RateLimited => "rate limited",
            CooldownCause::Unavailable => "unavailable until the catalog lists it again",
            CooldownCause::CircuitOpen => "circuit open after repeated failures",
            CooldownCause::ProbeInFlight => "a recovery probe is in flight",
        })
    }
}

/// Why a model is left out for now, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Cooldown {
    /// Why it is left out.
    pub cause: CooldownCause,
    /// When the model becomes eligible again; `None` when that depends on a catalog
    /// refresh or on a probe finishing.
    pub until: Option<Timestamp>,
}

/// Everything the router remembers between requests, and across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    /// Each model with something to remember, by id; a healthy model has no entry.
    #[serde(default)]
    pub models: BTreeMap<ModelId, ModelHealth>,
    /// The account's counts and block, stored beside the models as they always were.
    #[serde(flatten)]
    pub quota: QuotaState,
    /// Each declared provider's quota counts and host breaker, by provider name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, ProviderState>,
}

/// How long a probe may stay unanswered before another request may probe instead
/// (the first probe's caller may have gone away without a verdict).
pub const PROBE_STALE: Duration = Duration::from_secs(60);

impl HealthState {
    /// Whether `id` is left out at `now`. `catalog_fetched_at` is when the current
    /// catalog was fetched: an "unavailable" mark older than it no longer counts.
    pub fn cooldown(&self, id: &ModelId, now: Timestamp, catalog_fetched_at: Timestamp) -> Option<Cooldown> {
        let h = self.models.get(id)?;
        if let Some(until) = h.rate_limited_until.filter(|&u| now < u) {
            return Some(Cooldown { cause: CooldownCause::RateLimited, until: Some(until) });
        }
        if h.unavailable_since.is_some_and(|since| catalog_fetched_at <= since) {
            return Some(Cooldown { cause: CooldownCause::Unavailable, until: None });
        }
        match h.breaker {
            Breaker::Open { until } if now < until => {
                Some(Cooldown { cause: CooldownCause::CircuitOpen, until: Some(until) })
            }
            Breaker::HalfOpen { probe_since: Some(t) } if now < t.saturating_add(PROBE_STALE) => {
                Some(Cooldown { cause: CooldownCause::ProbeInFlight, until: None })
            }
            _ => None,
        }
    }

    /// The account-wide block in force at `now`, if any, without counting a request.
    pub fn quota_block(&self, policy: &QuotaPolicy, now: Timestamp) -> Option<QuotaBlock> {
        self.quota.block(policy, now)
    }

    /// Counts one upstream request against the quotas, or says which one is spent.
    /// Check and count happen under one lock, so concurrent requests cannot overshoot.
    pub fn reserve(&mut self, policy: &QuotaPolicy, now: Timestamp) -> Result<(), QuotaBlock> {
        self.quota.reserve(policy, now)
    }

    /// Quota use at `now`.
    pub fn quota_report(&self, policy: &QuotaPolicy, now: Timestamp) -> QuotaReport {
        self.quota.report(policy, now)
    }

    /// Gives back the account quota reserved at `at` (see [`QuotaState::release`]).
    pub fn release(&mut self, at: Timestamp) {
        self.quota.release(at);
    }

    /// An attempt that never left this machine: a probe it took is released, as if it
    /// had not begun.
    pub fn abandon_attempt(&mut self, id: &ModelId) {
        if let Some(h) = self.models.get_mut(id)
            && let Breaker::HalfOpen { probe_since } = &mut h.breaker
        {
            *probe_since = None;
        }
    }

    /// Marks the start of an attempt; a half-open model becomes "probing".
    pub fn begin_attempt(&mut self, id: &ModelId, now: Timestamp) {
        if let Some(h) = self.models.get_mut(id) {
            if let Breaker::Open { until } = h.breaker
                && now >= until
            {
                h.breaker = Breaker::HalfOpen { probe_since: None };
            }
            if let Breaker::HalfOpen { probe_since } = &mut h.breaker {
                *probe_since = Some(now);
            }
        }
    }

    /// Forgets everything held against `id` after it answered: cooldowns, failures, breaker.
    pub fn record_success(&mut self, id: &ModelId) {
        // A healthy model needs no entry at all; this keeps the state small.
        self.models.remove(id);
    }

    /// Cools `id` until `until` after an answer that said no request is left before
    /// then (its provider's request limit is spent): no backoff, as nothing failed.
    pub fn cool_until(&mut self, id: &ModelId, until: Timestamp) {
        let h = self.models.entry(id.clone()).or_default();
        h.rate_limited_until = Some(h.rate_limited_until.map_or(until, |u| u.max(until)));
    }

    /// Applies the consequences of a failed attempt on `id`.
    pub fn record_failure(&mut self, id: &ModelId, err: &TransportError, policy: &HealthPolicy, now: Timestamp) {
        match err.kind {
            ErrorKind::RateLimitedModel => {
                let h = self.models.entry(id.clone()).or_default();
                if let Some(until) = h.rate_limited_until.filter(|&u| now < u) {
                    // Already cooling: this call was picked before the cooldown was known.
                    // A burst of such answers is one rate limit, not a run of repeats, so
                    // the backoff does not escalate; an explicit later `Retry-After` wins.
                    let asked = err.retry_after.map(|d| now.saturating_add(d));
                    h.rate_limited_until = Some(asked.map_or(until, |a| a.max(until)));
                    return;
                }
                let backoff = policy
                    .backoff_base
                    .saturating_mul(1u32.checked_shl(h.backoff_level).unwrap_or(u32::MAX))
                    .min(policy.backoff_max);
                let wait = err.retry_after.unwrap_or(backoff);
                h.rate_limited_until = Some(now.saturating_add(wait));
                h.backoff_level = h.backoff_level.saturating_add(1);
            }
            ErrorKind::ModelUnavailable => {
                self.models.entry(id.clone()).or_default().unavailable_since = Some(now);
            }
            // Every model is reached through the same upstream host: failing to connect
            // to it (or losing the connection) says nothing about this model, and counting
            // it would open the breaker of every model a network blip happens to touch.
            ErrorKind::Connection => {}
            ErrorKind::ServerError | ErrorKind::Timeout | ErrorKind::Protocol => {
                let h = self.models.entry(id.clone()).or_default();
                if matches!(h.breaker, Breaker::Open { until } if now < until) {
                    // Calls that began before the breaker opened add nothing to it.
                    return;
                }
                let window_start = Timestamp::from_millis(
                    now.as_millis()
                        .saturating_sub(u64::try_from(policy.breaker_window.as_millis()).unwrap_or(u64::MAX)),
                );
                h.recent_failures.retain(|&t| t > window_start);
                h.recent_failures.push(now);
                let half_open = matches!(h.breaker, Breaker::HalfOpen { .. });
                if half_open || h.recent_failures.len() >= policy.breaker_threshold as usize {
                    h.breaker = Breaker::Open { until: now.saturating_add(policy.breaker_open) };
                    h.recent_failures.clear();
                }
            }
            ErrorKind::RateLimitedAccount => {
                let until = err.retry_after.map_or_else(|| now.next_minute(), |d| now.saturating_add(d));
                self.quota.block_account(until, "upstream per-minute rate limit reached");
            }
            ErrorKind::DailyCapReached => {
                let until = err.reset_at.filter(|&t| t > now).unwrap_or_else(|| now.next_utc_midnight());
                self.quota.block_account(until, "upstream daily free-model cap reached");
            }
            // An empty answer is this request's refusal or filter, not the model's health.
            ErrorKind::ContextTooLong
            | ErrorKind::BadRequest
            | ErrorKind::Auth
            | ErrorKind::EmptyAnswer
            | ErrorKind::PaymentRequired
            | ErrorKind::TooLargeForBudget
            | ErrorKind::LocalResource => {}
        }
    }

    /// Models cooling down at `now`, in id order.
    pub fn cooldowns(&self, now: Timestamp, catalog_fetched_at: Timestamp) -> Vec<(ModelId, Cooldown)> {
        self.models
            .keys()
            .filter_map(|id| self.cooldown(id, now, catalog_fetched_at).map(|c| (id.clone(), c)))
            .collect()
    }
}

impl HealthState {
    /// A declared provider's state, created on first use.
    pub fn provider_mut(&mut self, name: &str) -> &mut ProviderState {
        self.providers.entry(name.to_owned()).or_default()
    }

    /// Why the declared provider `name` may not be sent to at `now`, if it may not.
    pub fn provider_block(&self, name: &str, policy: &ProviderPolicy, now: Timestamp) -> Option<ProviderBlock> {
        self.providers.get(name).and_then(|p| p.block(name, policy, now))
    }

    /// Applies a failed attempt on `id`, a model of the declared provider `provider`:
    /// what concerns the provider's host or account (a connection failure, its rate or
    /// daily limit, a refused key) is the provider's; the rest is the model's.
    pub fn record_provider_failure(
        &mut self,
        provider: &str,
        id: &ModelId,
        err: &TransportError,
        policy: &HealthPolicy,
        provider_policy: &ProviderPolicy,
        now: Timestamp,
    ) {
        let until = |default: Timestamp| {
            err.retry_after.map(|d| now.saturating_add(d)).or(err.reset_at.filter(|&t| t > now)).unwrap_or(default)
        };
        match err.kind {
            ErrorKind::Connection => {
                self.provider_mut(provider).connection_failed(provider_policy, policy.breaker_window, now);
            }
            ErrorKind::RateLimitedAccount => {
                let until = until(now.next_minute());
                self.provider_mut(provider).quota.block_account(until, "upstream per-minute rate limit reached");
            }
            ErrorKind::DailyCapReached => {
                let until = until(provider_policy.reset.day(now).1);
                self.provider_mut(provider).quota.block_account(until, "upstream daily limit reached");
            }
            ErrorKind::Auth => {
                let until = now.saturating_add(DEFAULT_PROVIDER_AUTH_BLOCK);
                self.provider_mut(provider).quota.block_account(until, "the provider refused the key");
            }
            ErrorKind::PaymentRequired => {
                let reason = crate::secret::redact(&err.message, &[]);
                self.provider_mut(provider).mark_not_free(provider_policy.identity, now, reason);
            }
            _ => self.record_failure(id, err, policy, now),
        }
    }
}

/// How much the latest outcome moves a model's recent success rate: about the last five
/// outcomes make up two thirds of it.
pub const SUCCESS_RATE_ALPHA: f64 = 0.2;
/// The least a model's recent success rate counts for in a weighted pick: a model that
/// keeps failing is drawn rarely, never excluded (it may have recovered).
pub const SUCCESS_RATE_FLOOR: f64 = 0.05;

/// Whether a failure of this kind says something about the model itself (as opposed to
/// the account, the network, or the request).
pub fn is_models_fault(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::RateLimitedModel
            | ErrorKind::ModelUnavailable
            | ErrorKind::ServerError
            | ErrorKind::Timeout
            | ErrorKind::Protocol
    )
}

/// Each model's recent success rate: an exponentially weighted average of its outcomes
/// (1 for an answer, 0 for a failure that was the model's), starting at 1 for a model
/// with no history. Kept in memory only: it steers an opt-in weighting, nothing else.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SuccessRates {
    rates: BTreeMap<ModelId, f64>,
}

impl SuccessRates {
    /// Records one outcome on `id`; failures that are not the model's are ignored.
    pub fn record(&mut self, id: &ModelId, outcome: Result<(), ErrorKind>) {
        let sample = match outcome {
            Ok(()) => 1.0,
            Err(kind) if is_models_fault(kind) => 0.0,
            Err(_) => return,
        };
        match self.rates.get_mut(id) {
            Some(r) => *r += SUCCESS_RATE_ALPHA * (sample - *r),
            None => {
                self.rates.insert(id.clone(), 1.0 + SUCCESS_RATE_ALPHA * (sample - 1.0));
            }
        }
    }

    /// The recent success rate of `id`, in [0, 1]; 1 without history.
    pub fn rate(&self, id: &ModelId) -> f64 {
        self.rates.get(id).copied().unwrap_or(1.0)
    }

    /// The factor a weighted pick applies: the rate, but never below the floor.
    pub fn weight(&self, id: &ModelId) -> f64 {
        self.rate(id).max(SUCCESS_RATE_FLOOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::QuotaScope;

    const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(T0.as_secs() + secs)
    }

    fn err(kind: ErrorKind) -> TransportError {
        TransportError::new(kind, "x")
    }

    /// Replays `events` (seconds after T0, what happened) on model `m` and checks its
    /// cooldown at `probe` seconds.
    fn check(events: &[(u64, TransportError)], probe: u64, expected: Option<Cooldown>) {
        let policy = HealthPolicy::default();
        let mut s = HealthState::default();
        let m = ModelId::new("m:free");
        for (t, e) in events {
            s.begin_attempt(&m, at(*t));
            s.record_failure(&m, e, &policy, at(*t));
        }
        assert_eq!(s.cooldown(&m, at(probe), T0), expected, "{events:?} @ {probe}");
    }

    fn cd(cause: CooldownCause, until: Option<u64>) -> Option<Cooldown> {
        Some(Cooldown { cause, until: until.map(at) })
    }

    #[test]
    fn rate_limit_backoff_doubles_and_respects_retry_after() {
        let rl = || err(ErrorKind::RateLimitedModel);
        check(&[(0, rl())], 10, cd(CooldownCause::RateLimited, Some(30)));
        check(&[(0, rl())], 30, None);
        check(&[(0, rl()), (30, rl())], 31, cd(CooldownCause::RateLimited, Some(90)));
        check(&[(0, rl()), (30, rl()), (90, rl())], 91, cd(CooldownCause::RateLimited, Some(210)));
        let many: Vec<_> = (0..10).map(|i| (i * 1000, rl())).collect();
        check(&many, 9001, cd(CooldownCause::RateLimited, Some(9600)));
        let ra = rl().with_retry_after(Duration::from_secs(7));
        check(&[(0, ra)], 1, cd(CooldownCause::RateLimited, Some(7)));
        // A 429 that lands inside the cooldown was picked before it was known: one burst
        // is one rate limit, so neither the cooldown nor the next backoff grows...
        check(&[(0, rl()), (5, rl())], 6, cd(CooldownCause::RateLimited, Some(30)));
        check(&[(0, rl()), (5, rl()), (30, rl())], 31, cd(CooldownCause::RateLimited, Some(90)));
        // ...but an explicit later Retry-After is still honoured.
        let later = rl().with_retry_after(Duration::from_secs(100));
        check(&[(0, rl()), (5, later)], 6, cd(CooldownCause::RateLimited, Some(105)));
    }

    #[test]
    fn breaker_opens_after_three_failures_in_a_minute() {
        let se = || err(ErrorKind::ServerError);
        check(&[(0, se()), (10, se())], 11, None);
        check(&[(0, se()), (61, se()), (122, se())], 123, None);
        check(&[(0, se()), (10, err(ErrorKind::Timeout)), (20, se())], 21, cd(CooldownCause::CircuitOpen, Some(80)));
        // After the open period the next attempt is the half-open probe; its failure re-opens.
        check(&[(0, se()), (10, se()), (20, se()), (80, se())], 81, cd(CooldownCause::CircuitOpen, Some(140)));
        // Connection failures are the upstream host's, not the model's.
        let conn = || err(ErrorKind::Connection);
        check(&[(0, conn()), (10, conn()), (20, conn())], 21, None);
        // Failures of calls that began before the breaker opened do not extend it.
        check(&[(0, se()), (10, se()), (20, se()), (30, se())], 31, cd(CooldownCause::CircuitOpen, Some(80)));
    }

    #[test]
    fn unavailable_until_a_later_catalog() {
        let policy = HealthPolicy::default();
        let mut s = HealthState::default();
        let m = ModelId::new("m:free");
        s.record_failure(&m, &err(ErrorKind::ModelUnavailable), &policy, at(5));
        assert_eq!(s.cooldown(&m, at(600), at(0)), cd(CooldownCause::Unavailable, None));
        assert_eq!(s.cooldown(&m, at(600), at(6)), None);
    }

    #[test]
    fn quotas_count_per_minute_and_per_day() {
        let policy = QuotaPolicy { per_minute: Some(2), per_day: Some(3) };
        let mut s = HealthState::default();
        let start = Timestamp::from_secs(1_800_000_000 / 86_400 * 86_400); // a midnight
        assert!(s.reserve(&policy, start).is_ok());
        assert!(s.reserve(&policy, start).is_ok());
        let blocked = s.reserve(&policy, start).expect_err("minute limit");
        assert_eq!(blocked, QuotaBlock { scope: QuotaScope::Minute { limit: 2 }, until: start.next_minute() });
        assert!(s.reserve(&policy, start.next_minute()).is_ok());
        let blocked = s.reserve(&policy, start.next_minute().next_minute()).expect_err("day limit");
        assert_eq!(blocked.until, start.next_utc_midnight());
        assert!(s.reserve(&policy, start.next_utc_midnight()).is_ok());
    }

    #[test]
    fn daily_cap_blocks_the_account_until_reset() {
        let policy = HealthPolicy::default();
        let mut s = HealthState::default();
        let cap = err(ErrorKind::DailyCapReached).with_reset_at(at(3600));
        s.record_failure(&ModelId::new("m:free"), &cap, &policy, at(0));
        let quota = QuotaPolicy::default();
        let b = s.quota_block(&quota, at(10)).expect("blocked");
        assert_eq!(b.until, at(3600));
        assert!(s.quota_block(&quota, at(3600)).is_none());
    }

    #[test]
    fn state_round_trips_through_json() {
        let policy = HealthPolicy::default();
        let mut s = HealthState::default();
        s.record_failure(&ModelId::new("m:free"), &err(ErrorKind::RateLimitedModel), &policy, at(0));
        s.reserve(&QuotaPolicy::default(), at(0)).expect("quota");
        // The quota counts sit beside the models, as in files written before they moved.
        assert!(serde_json::to_value(&s).expect("serialise").get("day").is_some());
        let json = serde_json::to_string(&s).expect("serialise");
        let back: HealthState = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, s);
    }

    #[test]
    fn success_rates_fall_with_the_models_failures_only() {
        let m = ModelId::new("m:free");
        let mut r = SuccessRates::default();
        assert_eq!(r.rate(&m), 1.0);
        r.record(&m, Err(ErrorKind::Connection));
        r.record(&m, Err(ErrorKind::BadRequest));
        assert_eq!(r.rate(&m), 1.0, "not the model's fault");
        r.record(&m, Err(ErrorKind::ServerError));
        assert!((r.rate(&m) - 0.8).abs() < 1e-9);
        for _ in 0..50 {
            r.record(&m, Err(ErrorKind::Timeout));
        }
        assert!(r.rate(&m) < 0.01);
        assert_eq!(r.weight(&m), SUCCESS_RATE_FLOOR, "drawn rarely, never excluded");
        r.record(&m, Ok(()));
        assert!((r.rate(&m) - 0.2).abs() < 0.01);
    }
}
