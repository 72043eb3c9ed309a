//! The account's quotas: requests per minute and per UTC day counted locally, and a
//! block until a reset time when upstream says the account is limited.
//!
//! Pure data plus the rules that change it; every method takes `now`. The counts live
//! in [`HealthState`](crate::HealthState) so that one store persists them with the
//! cooldowns.

use super::clock::{ResetClock, UtcDays};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// OpenRouter's free-tier limit of requests per minute, across all `:free` models.
pub const DEFAULT_PER_MINUTE: u32 = 20;
/// OpenRouter's daily free-model cap for an account that never bought credits.
pub const DEFAULT_PER_DAY: u32 = 50;
/// OpenRouter's daily free-model cap once the account has bought credits.
pub const PAID_ACCOUNT_PER_DAY: u32 = 1_000;

/// The account's limits in force; `None` is unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// Requests sent upstream per minute.
    pub per_minute: Option<u32>,
    /// Requests sent upstream per UTC day.
    pub per_day: Option<u32>,
}

impl QuotaPolicy {
    /// No limit at all.
    pub const UNLIMITED: QuotaPolicy = QuotaPolicy { per_minute: None, per_day: None };
}

impl Default for QuotaPolicy {
    fn default() -> Self {
        QuotaPolicy { per_minute: Some(DEFAULT_PER_MINUTE), per_day: Some(DEFAULT_PER_DAY) }
    }
}

/// A fixed counting window (a minute or a UTC day), identified by its index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The window counted in: a minute or a quota-day index.
    pub index: u64,
    /// Requests counted in that window.
    pub count: u32,
}

impl Window {
    /// The count in window `index`: zero once the stored window is another one.
    pub fn current(self, index: u64) -> u32 {
        if self.index == index { self.count } else { 0 }
    }

    fn add(&mut self, index: u64) {
        if self.index != index {
            *self = Window { index, count: 0 };
        }
        self.count = self.count.saturating_add(1);
    }

    fn remove(&mut self, index: u64) {
        if self.index == index {
            self.count = self.count.saturating_sub(1);
        }
    }
}

/// Upstream said the account may send nothing until `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBlock {
    /// When the block ends.
    pub until: Timestamp,
    /// Why, in words, for the client's error message.
    pub reason: String,
}

/// The quota counts and the account block, as persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaState {
    /// Requests sent in the current minute.
    #[serde(default)]
    pub minute: Window,
    /// Requests sent in the current quota day.
    #[serde(default)]
    pub day: Window,
    /// The block upstream imposed on the account, if any; it lapses at its `until`.
    #[serde(default)]
    pub account_block: Option<AccountBlock>,
    /// What upstream last said about the day's free-model requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_day: Option<UpstreamDay>,
    /// A declared provider's counts as the shared store last gave them (minute, day):
    /// while it does not answer, this instance keeps to its share of what was left.
    #[serde(skip)]
    pub acked: (Window, Window),
}

/// Upstream's own count of the day's free-model requests (`GET /key`'s
/// `free_model_daily_requests`), read at `at`. Its day resets at 00:00 UTC; failed
/// attempts count; the count lags about a minute behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamDay {
    /// Requests counted today, failed attempts included.
    pub used: u32,
    /// The account's daily limit (it depends on credits bought).
    pub limit: u32,
    /// Requests left today.
    pub remaining: u32,
    /// When the reading was taken.
    pub at: Timestamp,
}

/// Where a day's count comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DaySource {
    /// Counted here only.
    Local,
    /// Reconciled today with upstream's count.
    Upstream,
}

impl DaySource {
    /// `local` or `upstream`, as `/metrics` and the status show it.
    pub fn as_str(self) -> &'static str {
        match self {
            DaySource::Local => "local",
            DaySource::Upstream => "upstream",
        }
    }
}

/// Which account limit stopped a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuotaScope {
    /// The per-minute limit is reached.
    Minute {
        /// Requests allowed per minute.
        limit: u32,
    },
    /// The per-day limit is reached.
    Day {
        /// Requests allowed per quota day.
        limit: u32,
    },
    /// Upstream said the account is limited (daily cap, per-minute limit), or a declared
    /// provider's limit is reached (the reason names the provider).
    Upstream {
        /// What upstream said, or which provider's limit it is.
        reason: String,
    },
}

/// A quota that refuses requests, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaBlock {
    /// Which limit is reached.
    pub scope: QuotaScope,
    /// When the limit resets: the next minute, the end of the quota day, or the end of
    /// upstream's block.
    pub until: Timestamp,
}

impl fmt::Display for QuotaBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            QuotaScope::Minute { limit } => {
                write!(f, "free-tier limit of {limit} requests per minute reached; retry after {}", self.until)
            }
            QuotaScope::Day { limit } => {
                write!(f, "free-tier limit of {limit} requests per day reached; retry after {}", self.until)
            }
            QuotaScope::Upstream { reason } => write!(f, "{reason}; retry after {}", self.until),
        }
    }
}

/// Quota use, for `/metrics` and the explain output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuotaReport {
    /// Requests sent in the current minute.
    pub minute_used: u32,
    /// The per-minute limit; `None` is unlimited.
    pub minute_limit: Option<u32>,
    /// Requests sent in the current UTC day, upstream's count included once reconciled.
    pub day_used: u32,
    /// The per-day limit; `None` is unlimited.
    pub day_limit: Option<u32>,
    /// Requests left today: the limit minus the count, or upstream's own `remaining`
    /// when that is lower.
    pub day_remaining: Option<u32>,
    /// Whether today's count was reconciled with upstream's.
    pub day_source: DaySource,
    /// Upstream's last reading, when it is from today.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamDay>,
    /// When the account-wide block in force ends; `None` when nothing blocks.
    pub blocked_until: Option<Timestamp>,
}

impl QuotaState {
    /// The account-wide block in force at `now`, if any, without counting a request.
    pub fn block(&self, policy: &QuotaPolicy, now: Timestamp) -> Option<QuotaBlock> {
        self.block_at(policy, &UtcDays, now)
    }

    /// [`block`](Self::block) with the day counted by `reset` (a provider's clock).
    pub fn block_at(&self, policy: &QuotaPolicy, reset: &dyn ResetClock, now: Timestamp) -> Option<QuotaBlock> {
        if let Some(b) = self.account_block.as_ref().filter(|b| now < b.until) {
            return Some(QuotaBlock { scope: QuotaScope::Upstream { reason: b.reason.clone() }, until: b.until });
        }
        let (day, day_ends) = reset.day(now);
        if let Some(limit) = policy.per_day.filter(|&l| self.day.current(day) >= l) {
            return Some(QuotaBlock { scope: QuotaScope::Day { limit }, until: day_ends });
        }
        if let Some(limit) = policy.per_minute.filter(|&l| self.minute.current(now.minute()) >= l) {
            return Some(QuotaBlock { scope: QuotaScope::Minute { limit }, until: now.next_minute() });
        }
        None
    }

    /// Counts one upstream request against the quotas, or says which one is spent.
    /// Check and count happen under one lock, so concurrent requests cannot overshoot.
    pub fn reserve(&mut self, policy: &QuotaPolicy, now: Timestamp) -> Result<(), QuotaBlock> {
        self.reserve_at(policy, &UtcDays, now)
    }

    /// [`reserve`](Self::reserve) with the day counted by `reset` (a provider's clock).
    pub fn reserve_at(
        &mut self,
        policy: &QuotaPolicy,
        reset: &dyn ResetClock,
        now: Timestamp,
    ) -> Result<(), QuotaBlock> {
        if let Some(block) = self.block_at(policy, reset, now) {
            return Err(block);
        }
        self.minute.add(now.minute());
        self.day.add(reset.day(now).0);
        Ok(())
    }

    /// Gives back a reservation made at `at` for a call that never left this machine.
    pub fn release(&mut self, at: Timestamp) {
        self.release_at(&UtcDays, at);
    }

    /// [`release`](Self::release) with the day counted by `reset`.
    pub fn release_at(&mut self, reset: &dyn ResetClock, at: Timestamp) {
        self.minute.remove(at.minute());
        self.day.remove(reset.day(at).0);
    }

    /// Blocks the account until `until` for `reason`, unless a block that ends later is
    /// already in force.
    pub fn block_account(&mut self, until: Timestamp, reason: &str) {
        let later = self.account_block.as_ref().is_none_or(|b| b.until < until);
        if later {
            self.account_block = Some(AccountBlock { until, reason: reason.to_owned() });
        }
    }

    /// Reconciles today's count with upstream's reading `up`: the count never goes
    /// below the local one (upstream lags a minute behind), and a reading with nothing
    /// remaining blocks the account until the next 00:00 UTC. A reading from another
    /// day than `now`'s changes nothing.
    pub fn reconcile_day(&mut self, up: UpstreamDay, now: Timestamp) {
        let today = now.utc_day();
        if up.at.utc_day() != today {
            return;
        }
        let local = self.day.current(today);
        self.day = Window { index: today, count: local.max(up.used) };
        if up.remaining == 0 {
            let reason = format!("upstream's free-model requests for today are spent ({} of {})", up.used, up.limit);
            self.block_account(now.next_utc_midnight(), &reason);
        }
        self.upstream_day = Some(up);
    }

    fn upstream_today(&self, now: Timestamp) -> Option<UpstreamDay> {
        self.upstream_day.filter(|u| u.at.utc_day() == now.utc_day())
    }

    /// Quota use at `now` under `policy`.
    pub fn report(&self, policy: &QuotaPolicy, now: Timestamp) -> QuotaReport {
        let day_used = self.day.current(now.utc_day());
        let upstream = self.upstream_today(now);
        let local_left = policy.per_day.map(|l| l.saturating_sub(day_used));
        let day_remaining = match (local_left, upstream) {
            (Some(l), Some(u)) => Some(l.min(u.remaining)),
            (l, u) => l.or(u.map(|u| u.remaining)),
        };
        QuotaReport {
            minute_used: self.minute.current(now.minute()),
            minute_limit: policy.per_minute,
            day_used,
            day_limit: policy.per_day,
            day_remaining,
            day_source: if upstream.is_some() { DaySource::Upstream } else { DaySource::Local },
            upstream,
            blocked_until: self.block(policy, now).map(|b| b.until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noon of a UTC day.
    const NOON: Timestamp = Timestamp::from_secs(1_800_000_000 / 86_400 * 86_400 + 12 * 3600);

    fn up(used: u32, limit: u32, at: Timestamp) -> UpstreamDay {
        UpstreamDay { used, limit, remaining: limit.saturating_sub(used), at }
    }

    #[test]
    fn upstreams_count_is_reconciled_never_below_the_local_one() {
        let policy = QuotaPolicy { per_minute: None, per_day: Some(1000) };
        let mut q = QuotaState::default();
        for _ in 0..5 {
            q.reserve(&policy, NOON).expect("room");
        }
        q.reconcile_day(up(40, 1000, NOON), NOON);
        let r = q.report(&policy, NOON);
        assert_eq!((r.day_used, r.day_remaining, r.day_source), (40, Some(960), DaySource::Upstream));
        // Upstream lags: a lower reading keeps the local count.
        q.reconcile_day(up(3, 1000, NOON), NOON);
        assert_eq!(q.report(&policy, NOON).day_used, 40);
        // Yesterday's reading changes nothing today.
        let mut fresh = QuotaState::default();
        fresh.reconcile_day(up(999, 1000, Timestamp::from_secs(NOON.as_secs() - 86_400)), NOON);
        assert_eq!(fresh.report(&policy, NOON).day_source, DaySource::Local);
        assert_eq!(fresh.report(&policy, NOON).day_used, 0);
    }

    #[test]
    fn nothing_remaining_upstream_blocks_until_midnight() {
        let policy = QuotaPolicy { per_minute: None, per_day: Some(1000) };
        let mut q = QuotaState::default();
        q.reconcile_day(UpstreamDay { used: 10, limit: 1000, remaining: 0, at: NOON }, NOON);
        let block = q.block(&policy, NOON).expect("blocked");
        assert_eq!(block.until, NOON.next_utc_midnight());
        assert!(matches!(block.scope, QuotaScope::Upstream { .. }));
        assert_eq!(q.report(&policy, NOON).day_remaining, Some(0));
        assert!(q.reserve(&policy, NOON.next_utc_midnight()).is_ok(), "the next day is free again");
    }

    #[test]
    fn a_released_reservation_is_given_back_in_its_own_windows() {
        let policy = QuotaPolicy { per_minute: Some(1), per_day: Some(2) };
        let mut q = QuotaState::default();
        q.reserve(&policy, NOON).expect("room");
        assert!(q.reserve(&policy, NOON).is_err(), "the minute is full");
        q.release(NOON);
        let r = q.report(&policy, NOON);
        assert_eq!((r.minute_used, r.day_used), (0, 0));
        q.reserve(&policy, NOON).expect("room again");
        // A release from an earlier minute leaves this minute's count alone.
        let later = Timestamp::from_secs(NOON.as_secs() + 60);
        q.reserve(&policy, later).expect("a new minute");
        q.release(NOON);
        let r = q.report(&policy, later);
        assert_eq!((r.minute_used, r.day_used), (1, 1));
    }
}
