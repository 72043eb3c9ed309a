//! A declared provider's quotas and host breaker: its own limits counted on its own
//! day clock (midnight in its time zone), a block after it refused the key, and a
//! breaker that leaves an unreachable host out for a while.

use super::account::{QuotaBlock, QuotaPolicy, QuotaScope, QuotaState};
use super::clock::{ResetClock, UtcDays};
use super::tokens::{TokenPolicy, TokenState};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long a declared provider that refused the key (401/403) is left out before it is
/// tried again, by default.
pub const DEFAULT_PROVIDER_AUTH_BLOCK: Duration = Duration::from_secs(600);
/// Connection failures within [`HealthPolicy::breaker_window`](crate::HealthPolicy) that
/// open a declared provider's host breaker, by default.
pub const DEFAULT_HOST_BREAKER_THRESHOLD: u32 = 2;
/// How long an open host breaker keeps a provider out, by default; after it one request
/// probes, and one more connection failure opens it again.
pub const DEFAULT_HOST_BREAKER_OPEN: Duration = Duration::from_secs(30);

/// One declared provider's rules: its account's limits and day clock, and its host
/// breaker. OpenRouter's models keep the router's own [`QuotaPolicy`].
#[derive(Clone, Debug)]
pub struct ProviderPolicy {
    /// The provider account's limits; unlimited by default.
    pub quota: QuotaPolicy,
    /// When the provider's quota day starts and ends; midnight UTC by default.
    pub reset: Arc<dyn ResetClock>,
    /// Connection failures within the breaker window that open the host breaker.
    pub breaker_threshold: u32,
    /// How long an open host breaker keeps the provider out.
    pub breaker_open: Duration,
    /// Its token budgets (prompt plus output asked for, charged up front).
    pub tokens: TokenPolicy,
    /// The requests it may have in flight at once (a local server of bounded capacity);
    /// beyond them its models are passed over for a moment, nothing sent.
    pub max_concurrent: Option<u32>,
    /// A fingerprint of the provider's configuration and key: a "not free" mark holds
    /// while it is the same, and lapses when the operator changes either.
    pub identity: u64,
}

impl Default for ProviderPolicy {
    fn default() -> Self {
        ProviderPolicy {
            quota: QuotaPolicy::UNLIMITED,
            reset: Arc::new(UtcDays),
            breaker_threshold: DEFAULT_HOST_BREAKER_THRESHOLD,
            breaker_open: DEFAULT_HOST_BREAKER_OPEN,
            identity: 0,
            tokens: TokenPolicy::default(),
            max_concurrent: None,
        }
    }
}

impl PartialEq for ProviderPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.quota == other.quota
            && self.reset.name() == other.reset.name()
            && self.breaker_threshold == other.breaker_threshold
            && self.breaker_open == other.breaker_open
            && self.identity == other.identity
            && self.tokens == other.tokens
            && self.max_concurrent == other.max_concurrent
    }
}

/// What a declared provider's state says about sending to it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderBlock {
    /// Its quota is spent (or it said so, or it refused the key) until the block's end.
    Quota(QuotaBlock),
    /// Its host's breaker is open after connection failures.
    Unreachable {
        /// When the breaker lets one probe through.
        until: Timestamp,
    },
    /// It asked for payment: not free, out of the pool until its configuration or key
    /// changes (no end in time).
    NotFree {
        /// When it asked.
        since: Timestamp,
        /// Its words (redacted).
        reason: String,
    },
}

impl ProviderBlock {
    /// When the block ends.
    pub fn until(&self) -> Timestamp {
        match self {
            ProviderBlock::Quota(b) => b.until,
            ProviderBlock::Unreachable { until } => *until,
            ProviderBlock::NotFree { .. } => Timestamp::from_millis(u64::MAX),
        }
    }
}

/// A declared provider's persisted state: its quota counts and host breaker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderState {
    /// The provider account's counts and block.
    #[serde(default)]
    pub quota: QuotaState,
    /// Recent connection failures, within the breaker window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connection_failures: Vec<Timestamp>,
    /// The host breaker: open until then; once passed, the next failure opens it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_until: Option<Timestamp>,
    /// Tokens sent this minute and quota day, against its token budgets.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tokens: TokenState,
    /// Set when the provider asked for payment; holds while its identity is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_free: Option<NotFreeMark>,
}

/// A provider's payment request: under which configuration, when, and its words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotFreeMark {
    /// The provider's [`ProviderPolicy::identity`] when it asked.
    pub identity: u64,
    /// When it asked.
    pub since: Timestamp,
    /// Its words (redacted).
    pub reason: String,
}

impl ProviderState {
    /// Marks the provider not free under `identity` (the first payment request is kept).
    pub fn mark_not_free(&mut self, identity: u64, now: Timestamp, reason: String) {
        if self.not_free.as_ref().is_none_or(|m| m.identity != identity) {
            self.not_free = Some(NotFreeMark { identity, since: now, reason });
        }
    }

    /// Why `name` may not be sent to at `now`, if it may not.
    pub fn block(&self, name: &str, policy: &ProviderPolicy, now: Timestamp) -> Option<ProviderBlock> {
        if let Some(mark) = self.not_free.as_ref().filter(|m| m.identity == policy.identity) {
            return Some(ProviderBlock::NotFree { since: mark.since, reason: mark.reason.clone() });
        }
        if let Some(until) = self.unreachable_until.filter(|&u| now < u) {
            return Some(ProviderBlock::Unreachable { until });
        }
        self.quota.block_at(&policy.quota, &*policy.reset, now).map(|b| ProviderBlock::Quota(named(name, b)))
    }

    /// Counts one request against the provider's quota, or says why it may not go.
    pub fn reserve(&mut self, name: &str, policy: &ProviderPolicy, now: Timestamp) -> Result<(), ProviderBlock> {
        if let Some(b) = self.block(name, policy, now) {
            return Err(b);
        }
        self.quota.reserve_at(&policy.quota, &*policy.reset, now).map_err(|b| ProviderBlock::Quota(named(name, b)))
    }

    /// A connection to the provider's host failed: feeds its breaker.
    pub fn connection_failed(&mut self, policy: &ProviderPolicy, window: Duration, now: Timestamp) {
        if self.unreachable_until.is_some_and(|u| now < u) {
            return; // began before the breaker opened
        }
        let start = Timestamp::from_millis(now.as_millis().saturating_sub(duration_ms(window)));
        self.connection_failures.retain(|&t| t > start);
        self.connection_failures.push(now);
        let half_open = self.unreachable_until.is_some();
        if half_open || self.connection_failures.len() >= policy.breaker_threshold.max(1) as usize {
            self.unreachable_until = Some(now.saturating_add(policy.breaker_open));
            self.connection_failures.clear();
        }
    }

    /// An answer came back: the host is reachable.
    pub fn reached(&mut self) {
        self.connection_failures.clear();
        self.unreachable_until = None;
    }
}

/// A block's reason with the provider named, so that the client and explain say whose.
fn named(name: &str, block: QuotaBlock) -> QuotaBlock {
    // A model's own limit is keyed by its exposed id, `<provider>/<upstream id>`.
    let whose = if name.contains('/') { "model" } else { "provider" };
    let reason = match &block.scope {
        QuotaScope::Minute { limit } => format!("{whose} `{name}`: limit of {limit} requests per minute reached"),
        QuotaScope::Day { limit } => format!("{whose} `{name}`: limit of {limit} requests per day reached"),
        QuotaScope::Upstream { reason } if reason.starts_with(&format!("{whose} `")) => reason.clone(),
        QuotaScope::Upstream { reason } => format!("{whose} `{name}`: {reason}"),
    };
    QuotaBlock { scope: QuotaScope::Upstream { reason }, until: block.until }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn is_default(t: &TokenState) -> bool {
    *t == TokenState::default()
}

#[cfg(test)]
mod provider_tests {
    use super::*;

    #[test]
    fn a_payment_request_holds_until_the_providers_identity_changes() {
        let now = Timestamp::from_millis(1_000_000);
        let policy = ProviderPolicy { identity: 7, ..ProviderPolicy::default() };
        let mut state = ProviderState::default();
        state.mark_not_free(7, now, "add a payment method".into());
        let later = now.saturating_add(Duration::from_secs(86_400 * 365));
        let held = state.block("groq", &policy, later);
        assert_eq!(held, Some(ProviderBlock::NotFree { since: now, reason: "add a payment method".into() }));
        assert!(state.reserve("groq", &policy, later).is_err(), "no time lifts it");
        // A new key or URL is another account: it may be tried again.
        let changed = ProviderPolicy { identity: 8, ..ProviderPolicy::default() };
        assert_eq!(state.block("groq", &changed, later), None);
        // The first request is kept; a new identity's replaces it.
        state.mark_not_free(7, later, "again".into());
        assert_eq!(state.not_free.as_ref().map(|m| m.since), Some(now));
        state.mark_not_free(8, later, "again".into());
        assert_eq!(state.not_free.as_ref().map(|m| (m.identity, m.since)), Some((8, later)));
    }

    /// Days that end at 08:00 UTC (midnight Pacific standard time), for the test.
    #[derive(Debug)]
    struct ShiftedDays;

    impl ResetClock for ShiftedDays {
        fn day(&self, now: Timestamp) -> (u64, Timestamp) {
            let shifted = Timestamp::from_millis(now.as_millis().saturating_sub(8 * 3_600_000));
            (shifted.utc_day(), shifted.next_utc_midnight().saturating_add(Duration::from_secs(8 * 3600)))
        }

        fn name(&self) -> &str {
            "UTC-8"
        }
    }

    #[test]
    fn a_provider_day_ends_on_its_own_clock() {
        let policy = ProviderPolicy {
            quota: QuotaPolicy { per_minute: None, per_day: Some(2) },
            reset: Arc::new(ShiftedDays),
            ..ProviderPolicy::default()
        };
        let midnight = Timestamp::from_secs(1_790_035_200); // 00:00 UTC
        assert_eq!(midnight.as_secs() % 86_400, 0);
        let mut s = ProviderState::default();
        s.reserve("gemini", &policy, midnight).expect("first");
        s.reserve("gemini", &policy, midnight).expect("second");
        let Err(ProviderBlock::Quota(b)) = s.reserve("gemini", &policy, midnight) else { panic!("spent") };
        assert_eq!(b.until, midnight.saturating_add(Duration::from_secs(8 * 3600)), "ends at 08:00 UTC, not midnight");
        assert!(b.to_string().contains("provider `gemini`: limit of 2 requests per day"), "{b}");
        // UTC midnight passing changes nothing; 08:00 UTC does.
        assert!(s.block("gemini", &policy, midnight.saturating_add(Duration::from_secs(3600))).is_some());
        assert!(s.reserve("gemini", &policy, midnight.saturating_add(Duration::from_secs(8 * 3600))).is_ok());
    }

    #[test]
    fn provider_counts_persist_with_the_state_and_old_files_still_read() {
        let policy =
            ProviderPolicy { quota: QuotaPolicy { per_minute: None, per_day: Some(5) }, ..ProviderPolicy::default() };
        let t0 = Timestamp::from_secs(1_790_000_000);
        let mut state = crate::health::HealthState::default();
        state.provider_mut("groq").reserve("groq", &policy, t0).expect("within quota");
        state.provider_mut("ollama").connection_failed(&policy, Duration::from_secs(60), t0);
        let text = serde_json::to_string(&state).expect("serialise");
        let back: crate::health::HealthState = serde_json::from_str(&text).expect("read back");
        assert_eq!(back, state);
        assert_eq!(back.providers["groq"].quota.day.count, 1);
        // A state file written before providers existed reads as none.
        let old: crate::health::HealthState =
            serde_json::from_str(r#"{"models":{},"minute":{"index":1,"count":1}}"#).expect("old file");
        assert!(old.providers.is_empty());
        assert!(!serde_json::to_string(&old).expect("serialise").contains("providers"));
    }

    #[test]
    fn connection_failures_open_the_host_breaker() {
        let policy = ProviderPolicy::default();
        let window = Duration::from_secs(60);
        let t0 = Timestamp::from_secs(1_790_000_000);
        let mut s = ProviderState::default();
        s.connection_failed(&policy, window, t0);
        assert!(s.block("ollama", &policy, t0).is_none(), "one failure is a blip");
        s.connection_failed(&policy, window, t0);
        let until = t0.saturating_add(DEFAULT_HOST_BREAKER_OPEN);
        assert_eq!(s.block("ollama", &policy, t0), Some(ProviderBlock::Unreachable { until }));
        // Half-open after the open period: one more failure opens it again at once.
        assert!(s.block("ollama", &policy, until).is_none());
        s.connection_failed(&policy, window, until);
        assert!(s.block("ollama", &policy, until).is_some());
        s.reached();
        assert!(s.block("ollama", &policy, until).is_none());
    }
}
