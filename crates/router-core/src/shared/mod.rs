//! State shared between several router instances (behind the
//! [`SharedState`](crate::ports::SharedState) port): the vocabulary that crosses it, and
//! the pure rules that merge it into one instance's [`HealthState`].
//!
//! Each instance keeps picking from its own copy of the health state, synchronously. What
//! must be atomic across instances (counting a request against the account's quotas,
//! claiming the one half-open probe of a model) is one call to the shared store per
//! upstream attempt; what every instance must learn quickly (a cooldown, a breaker that
//! opened, an account block) is published as a [`SharedEvent`] and merged with
//! [`apply_event`]. When the shared store cannot be reached, each instance falls back to
//! its local counts under [`FallbackLimits`]: its share of what was left.

use crate::health::{Breaker, HealthState, ModelHealth};
use crate::model::ModelId;
use crate::quota::{AccountBlock, QuotaBlock, QuotaPolicy, QuotaScope, Window};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

mod backlog;
mod tokens;

pub use backlog::{AttemptIds, Backlog, Batch, MAX_BATCHES_PER_MESSAGE};
pub use tokens::{BudgetUnit, SharedBudget, TokenCorrection, TokenOutcome, TokenReserve};

/// How long requests on the shared quota are held, and asked to come back after, while
/// the shared store refuses this instance's credentials (a configuration error).
pub const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// The quota scope of the one upstream account there is today (one per provider once
/// the multi-provider pool exists).
pub const DEFAULT_QUOTA_SCOPE: &str = "openrouter";

/// Something one instance learned that every instance must know. Timestamps are wall
/// clock: instances are assumed to keep their clocks in sync (NTP), as the per-day
/// quota already requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SharedEvent {
    /// Upstream rate-limited `model` until `until` (its `Retry-After`, or the backoff).
    RateLimited {
        /// The model rate-limited.
        model: ModelId,
        /// When its cooldown ends.
        until: Timestamp,
    },
    /// `model`'s circuit breaker opened (or re-opened after a failed probe) until `until`.
    CircuitOpen {
        /// The model whose breaker opened.
        model: ModelId,
        /// When the breaker lets a probe through.
        until: Timestamp,
    },
    /// `model` answered "unavailable" at `since`; left out until a later catalog lists it.
    Unavailable {
        /// The model that answered "unavailable".
        model: ModelId,
        /// When it answered so.
        since: Timestamp,
    },
    /// `model` answered: its breaker closes everywhere.
    Recovered {
        /// The model that answered.
        model: ModelId,
    },
    /// Upstream said the account may send nothing until `until`.
    AccountBlocked {
        /// When the block ends.
        until: Timestamp,
        /// Why, in words, for the client's error message.
        reason: String,
    },
}

impl SharedEvent {
    /// The model the event is about, if any.
    pub fn model(&self) -> Option<&ModelId> {
        match self {
            SharedEvent::RateLimited { model, .. }
            | SharedEvent::CircuitOpen { model, .. }
            | SharedEvent::Unavailable { model, .. }
            | SharedEvent::Recovered { model } => Some(model),
            SharedEvent::AccountBlocked { .. } => None,
        }
    }

    /// When the event stops mattering, if it says (a shared store expires it then).
    pub fn until(&self) -> Option<Timestamp> {
        match self {
            SharedEvent::RateLimited { until, .. }
            | SharedEvent::CircuitOpen { until, .. }
            | SharedEvent::AccountBlocked { until, .. } => Some(*until),
            SharedEvent::Unavailable { .. } | SharedEvent::Recovered { .. } => None,
        }
    }
}

/// Where a shared-state adapter delivers the events other instances publish (the
/// [`Router`](crate::Router) is one).
pub trait EventSink: Send + Sync {
    /// Merges an event another instance published into this instance's state.
    fn apply_remote(&self, event: &SharedEvent);

    /// What this instance knows now that others must too (see [`active_events`]): sent
    /// again when the shared store (re)connects, in case it lost what it held.
    fn current_events(&self) -> Vec<SharedEvent>;

    /// A message that counts nothing new and brings the store this instance's backlog and
    /// counts (sent by the adapter's heartbeat, so that a backlog merges and a lost count
    /// is rebuilt without waiting for traffic); `None` when there is nothing to bring.
    fn sync_request(&self) -> Option<ReserveRequest> {
        None
    }

    /// Whether every request this instance sent without the store is counted there now.
    fn merged(&self) -> bool {
        true
    }

    /// The store's answer to a [`sync_request`](Self::sync_request) message.
    fn synced(&self, request: &ReserveRequest, outcome: &Result<ReserveOutcome, SharedError>) {
        let _ = (request, outcome);
    }
}

/// The cooldowns, open breakers and account block in force at `now`, as events.
pub fn active_events(state: &HealthState, now: Timestamp) -> Vec<SharedEvent> {
    let mut out = Vec::new();
    for (model, h) in &state.models {
        if let Some(until) = h.rate_limited_until.filter(|&u| u > now) {
            out.push(SharedEvent::RateLimited { model: model.clone(), until });
        }
        if let Breaker::Open { until } = h.breaker
            && until > now
        {
            out.push(SharedEvent::CircuitOpen { model: model.clone(), until });
        }
    }
    if let Some(b) = state.quota.account_block.as_ref().filter(|b| b.until > now) {
        out.push(SharedEvent::AccountBlocked { until: b.until, reason: b.reason.clone() });
    }
    out
}

/// Merges an event another instance published into this instance's state. Merging is
/// monotonic (a later deadline wins, nothing is shortened), so an event applied twice,
/// late, or by the instance that published it changes nothing more.
pub fn apply_event(state: &mut HealthState, event: &SharedEvent, now: Timestamp) {
    match event {
        SharedEvent::RateLimited { model, until } => {
            let h = state.models.entry(model.clone()).or_default();
            h.rate_limited_until = Some(h.rate_limited_until.map_or(*until, |u| u.max(*until)));
        }
        SharedEvent::CircuitOpen { model, until } => {
            let h = state.models.entry(model.clone()).or_default();
            let later = match h.breaker {
                Breaker::Open { until: mine } => mine < *until,
                Breaker::Closed | Breaker::HalfOpen { .. } => true,
            };
            if later {
                h.breaker = Breaker::Open { until: *until };
                h.recent_failures.clear();
            }
        }
        SharedEvent::Unavailable { model, since } => {
            let h = state.models.entry(model.clone()).or_default();
            h.unavailable_since = Some(h.unavailable_since.map_or(*since, |s| s.max(*since)));
        }
        SharedEvent::Recovered { model } => {
            // Only the breaker: a rate limit learned meanwhile still stands.
            if let Some(h) = state.models.get_mut(model) {
                let over = match h.breaker {
                    Breaker::Open { until } => now >= until,
                    Breaker::HalfOpen { .. } => true,
                    Breaker::Closed => false,
                };
                if over {
                    h.breaker = Breaker::Closed;
                    h.recent_failures.clear();
                }
            }
        }
        SharedEvent::AccountBlocked { until, reason } => state.quota.block_account(*until, reason),
    }
}

/// What the instance knew about one model and the account before an outcome, so that
/// [`Watch::events`] can say what changed and must be published.
#[derive(Clone, Debug)]
pub struct Watch {
    model: Option<ModelHealth>,
    block: Option<AccountBlock>,
}

impl Watch {
    /// Takes note of what `state` holds about `model` and the account now.
    pub fn of(state: &HealthState, model: &ModelId) -> Self {
        Watch { model: state.models.get(model).cloned(), block: state.quota.account_block.clone() }
    }

    /// The events that take `state` from what was watched to what it is now.
    pub fn events(&self, state: &HealthState, model: &ModelId, now: Timestamp) -> Vec<SharedEvent> {
        let mut out = Vec::new();
        let before = self.model.clone().unwrap_or_default();
        match state.models.get(model) {
            Some(after) => {
                if let Some(until) = after.rate_limited_until.filter(|&u| u > now)
                    && before.rate_limited_until != after.rate_limited_until
                {
                    out.push(SharedEvent::RateLimited { model: model.clone(), until });
                }
                if let Breaker::Open { until } = after.breaker
                    && before.breaker != after.breaker
                {
                    out.push(SharedEvent::CircuitOpen { model: model.clone(), until });
                }
                if let Some(since) = after.unavailable_since
                    && before.unavailable_since != after.unavailable_since
                {
                    out.push(SharedEvent::Unavailable { model: model.clone(), since });
                }
            }
            // The entry went away: the model answered. Worth telling only when it was
            // held back by a breaker somewhere.
            None if before.breaker != Breaker::Closed => out.push(SharedEvent::Recovered { model: model.clone() }),
            None => {}
        }
        if let Some(b) = &state.quota.account_block
            && self.block.as_ref() != Some(b)
            && b.until > now
        {
            out.push(SharedEvent::AccountBlocked { until: b.until, reason: b.reason.clone() });
        }
        out
    }
}

/// Whether the next attempt on `model` at `now` would be its breaker's half-open probe
/// (the one call that must be claimed across instances).
pub fn is_probe(state: &HealthState, model: &ModelId, now: Timestamp) -> bool {
    state.models.get(model).is_some_and(|h| match h.breaker {
        Breaker::Open { until } => now >= until,
        Breaker::HalfOpen { .. } => true,
        Breaker::Closed => false,
    })
}

/// Asks the shared store to count one upstream request, atomically across instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveRequest {
    /// Whose quota: [`DEFAULT_QUOTA_SCOPE`] today.
    pub scope: String,
    /// The limits to count against.
    pub limits: QuotaPolicy,
    /// The instant to count at; it picks the minute and the day.
    pub now: Timestamp,
    /// This attempt's id (unique within the instance's day, [`AttemptIds`]): the store
    /// counts the attempt at most once under it, also when the answer comes too late and
    /// the request joins the backlog under the same id.
    pub id: u64,
    /// Whether the message counts a request (`false`: it only brings the backlog and
    /// this instance's counts, as the heartbeat does).
    pub count: bool,
    /// Requests this instance sent without the store's count, in batches the store counts
    /// once each, unconditionally (they were sent), before anything else.
    pub batches: Vec<Batch>,
    /// The account's counts in the current minute and day that the store last
    /// acknowledged to this instance: a store that lost its data (restarted without
    /// persistence, flushed) is raised to them.
    pub known_minute: u32,
    /// As `known_minute`, for the current UTC day.
    pub known_day: u32,
    /// The requests this instance sent today that the store acknowledged counting: its own
    /// share of the day's count, kept per instance in the store so that a lost day count
    /// is rebuilt from every instance's.
    pub own_day: u32,
    /// When the attempt is a half-open probe: claim it, and count nothing when another
    /// instance holds the claim.
    pub probe: Option<ProbeClaim>,
}

/// The claim on a model's half-open probe, held until the probe's verdict (or `ttl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeClaim {
    /// The model whose probe is claimed.
    pub model: ModelId,
    /// How long the claim holds without a verdict, so that a lost instance cannot keep it.
    pub ttl: Duration,
}

/// The shared store's answer to a [`ReserveRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Counted (merged only, for a message that counts nothing); the account's counts in
    /// this minute and day, this request included.
    Reserved {
        /// Requests counted in the current minute.
        minute: u32,
        /// Requests counted in the current day.
        day: u32,
    },
    /// Not counted: a limit is spent (the counts as they stand) or the account is blocked.
    Blocked(QuotaBlock, Option<(u32, u32)>),
    /// Not counted: another instance is probing this model.
    ProbeTaken,
}

/// Why the shared store did not answer; the router then decides locally, within its
/// share, except when the store refuses it ([`SharedError::Refused`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    /// The store could not be reached and the request was not sent; the adapter's message.
    #[error("shared state unreachable: {0}")]
    Unavailable(String),
    /// The store did not answer within this long; the request may still be counted.
    #[error("shared state did not answer within {0:?}")]
    Timeout(Duration),
    /// The message failed on its way or in the store (a broken connection, an error
    /// answer); the adapter's message. It may have been counted.
    #[error("shared state failed: {0}")]
    Failed(String),
    /// The store's answer could not be understood; what was wrong with it.
    #[error("shared state answered something unexpected: {0}")]
    Protocol(String),
    /// The store refuses this instance (a wrong password or user: a configuration
    /// error, not an outage); the adapter's message. The request was not counted.
    #[error("shared state refuses this instance: {0}")]
    Refused(String),
}

/// The link to the shared store as its adapter sees it, for `/readyz` and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SharedStatus {
    /// Whether the store is reachable now.
    pub connected: bool,
    /// Why not, when it is not.
    pub reason: Option<String>,
    /// Instances seen alive recently (this one included); at least 1.
    pub instances: u32,
    /// Reservations decided locally because the store did not answer in time.
    pub local_reservations: u64,
    /// Events from other instances merged into this one's state.
    pub events_received: u64,
    /// The store answers again after this instance decided requests locally, and some
    /// live instance may not have brought its own local requests back yet: until every
    /// one has, this instance still keeps to its share.
    pub settling: bool,
}

/// The limits an instance keeps to while the shared store is unreachable: in each
/// window, the count it last knew plus its share of what was left, i.e.
/// `known + (limit - known) / instances`. With the counts it knew up to date, the
/// instances together cannot exceed the limit; what they can overspend is what other
/// instances sent between this one's last answer from the store and the outage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FallbackLimits {
    minute: Option<(u64, Option<u32>)>,
    day: Option<(u64, Option<u32>)>,
}

impl FallbackLimits {
    /// The limits in force at `now`, fixing each window's share the first time it is
    /// asked for in that window (later local counts must not raise the base).
    pub fn policy(&mut self, policy: &QuotaPolicy, known: (u32, u32), instances: u32, now: Timestamp) -> QuotaPolicy {
        let share = |limit: Option<u32>, known: u32| {
            limit.map(|l| known.saturating_add(l.saturating_sub(known) / instances.max(1)))
        };
        let minute = match self.minute {
            Some((i, l)) if i == now.minute() => l,
            _ => {
                let l = share(policy.per_minute, known.0);
                self.minute = Some((now.minute(), l));
                l
            }
        };
        let day = match self.day {
            Some((i, l)) if i == now.utc_day() => l,
            _ => {
                let l = share(policy.per_day, known.1);
                self.day = Some((now.utc_day(), l));
                l
            }
        };
        QuotaPolicy { per_minute: minute, per_day: day }
    }

    /// The store answered again: the next outage starts from fresh counts.
    pub fn clear(&mut self) {
        *self = FallbackLimits::default();
    }
}

/// Raises the local counts to the account's counts the shared store reported.
pub fn sync_counts(state: &mut HealthState, minute: u32, day: u32, now: Timestamp) {
    for (w, index, count) in
        [(&mut state.quota.minute, now.minute(), minute), (&mut state.quota.day, now.utc_day(), day)]
    {
        let mine = w.current(index);
        *w = Window { index, count: mine.max(count) };
    }
}

/// The block an account-block answer from the store stands for.
pub fn upstream_block(until: Timestamp, reason: String) -> QuotaBlock {
    QuotaBlock { scope: QuotaScope::Upstream { reason }, until }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthPolicy;
    use crate::upstream::{ErrorKind, TransportError};

    const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(T0.as_secs() + secs)
    }

    #[test]
    fn a_rate_limit_becomes_an_event_that_cools_the_model_elsewhere() {
        let m = ModelId::new("m:free");
        let mut a = HealthState::default();
        let watch = Watch::of(&a, &m);
        let err = TransportError::new(ErrorKind::RateLimitedModel, "429").with_retry_after(Duration::from_secs(20));
        a.record_failure(&m, &err, &HealthPolicy::default(), at(0));
        let events = watch.events(&a, &m, at(0));
        assert_eq!(events, vec![SharedEvent::RateLimited { model: m.clone(), until: at(20) }]);
        let mut b = HealthState::default();
        for e in &events {
            apply_event(&mut b, e, at(0));
        }
        assert!(b.cooldown(&m, at(19), at(0)).is_some());
        assert!(b.cooldown(&m, at(20), at(0)).is_none());
        // Applying an older, shorter cooldown changes nothing.
        apply_event(&mut b, &SharedEvent::RateLimited { model: m.clone(), until: at(5) }, at(0));
        assert!(b.cooldown(&m, at(19), at(0)).is_some());
    }

    #[test]
    fn breaker_openings_and_recoveries_travel() {
        let m = ModelId::new("m:free");
        let policy = HealthPolicy::default();
        let mut a = HealthState::default();
        let se = TransportError::new(ErrorKind::ServerError, "500");
        let mut events = Vec::new();
        for t in 0..3 {
            let w = Watch::of(&a, &m);
            a.record_failure(&m, &se, &policy, at(t));
            events.extend(w.events(&a, &m, at(t)));
        }
        assert_eq!(events, vec![SharedEvent::CircuitOpen { model: m.clone(), until: at(62) }]);
        let mut b = HealthState::default();
        apply_event(&mut b, &events[0], at(2));
        assert!(b.cooldown(&m, at(3), at(0)).is_some());
        assert!(is_probe(&b, &m, at(62)) && !is_probe(&b, &m, at(61)));
        // A's probe answers: B's breaker closes too.
        let w = Watch::of(&a, &m);
        a.record_success(&m);
        let recovered = w.events(&a, &m, at(63));
        assert_eq!(recovered, vec![SharedEvent::Recovered { model: m.clone() }]);
        apply_event(&mut b, &recovered[0], at(63));
        assert!(!is_probe(&b, &m, at(63)));
        // A success on a model without a breaker says nothing worth publishing.
        assert!(Watch::of(&HealthState::default(), &m).events(&HealthState::default(), &m, at(0)).is_empty());
    }

    #[test]
    fn account_blocks_travel() {
        let m = ModelId::new("m:free");
        let mut a = HealthState::default();
        let w = Watch::of(&a, &m);
        let cap = TransportError::new(ErrorKind::DailyCapReached, "cap").with_reset_at(at(3600));
        a.record_failure(&m, &cap, &HealthPolicy::default(), at(0));
        let events = w.events(&a, &m, at(0));
        assert!(matches!(events.as_slice(), [SharedEvent::AccountBlocked { until, .. }] if *until == at(3600)));
        let mut b = HealthState::default();
        apply_event(&mut b, &events[0], at(0));
        assert!(b.quota_block(&QuotaPolicy::default(), at(10)).is_some());
    }

    #[test]
    fn fallback_limits_are_the_instances_share_of_what_was_left() {
        let policy = QuotaPolicy { per_minute: Some(20), per_day: Some(50) };
        let mut f = FallbackLimits::default();
        let p = f.policy(&policy, (4, 30), 2, at(0));
        assert_eq!(p, QuotaPolicy { per_minute: Some(12), per_day: Some(40) });
        // The base is fixed for the window: local counts rising do not move it.
        assert_eq!(f.policy(&policy, (10, 36), 2, at(1)), p);
        // A new minute shares the whole minute limit again; the day's share stays.
        let next = at(0).next_minute();
        assert_eq!(f.policy(&policy, (0, 36), 2, next), QuotaPolicy { per_minute: Some(10), per_day: Some(40) });
        f.clear();
        assert_eq!(f.policy(&QuotaPolicy::UNLIMITED, (0, 0), 3, next), QuotaPolicy::UNLIMITED);
        // With one instance the fallback is the limit itself.
        f.clear();
        assert_eq!(f.policy(&policy, (4, 30), 1, at(0)), policy);
    }

    #[test]
    fn what_is_in_force_is_told_again() {
        let m = ModelId::new("m:free");
        let mut s = HealthState::default();
        apply_event(&mut s, &SharedEvent::RateLimited { model: m.clone(), until: at(30) }, at(0));
        apply_event(&mut s, &SharedEvent::CircuitOpen { model: m.clone(), until: at(60) }, at(0));
        s.quota.block_account(at(90), "cap");
        assert_eq!(active_events(&s, at(0)).len(), 3);
        assert_eq!(
            active_events(&s, at(45)),
            vec![
                SharedEvent::CircuitOpen { model: m.clone(), until: at(60) },
                SharedEvent::AccountBlocked { until: at(90), reason: "cap".into() },
            ]
        );
        assert!(active_events(&s, at(90)).is_empty());
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = SharedEvent::CircuitOpen { model: ModelId::new("m:free"), until: at(5) };
        let json = serde_json::to_string(&e).expect("serialise");
        assert!(json.contains("\"event\":\"circuit_open\""), "{json}");
        assert_eq!(serde_json::from_str::<SharedEvent>(&json).expect("parse"), e);
    }
}
