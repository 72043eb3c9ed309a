//! The account's quotas: requests per minute and per UTC day counted locally, and a
//! block until a reset time when upstream says the account is limited.
//!
//! Pure data plus the rules that change it; every method takes `now`. The counts live
//! in [`HealthState`](crate::HealthState) so that one store persists them with the
//! cooldowns.

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
    pub index: u64,
    pub count: u32,
}

impl Window {
    pub fn current(self, index: u64) -> u32 {
        if self.index == index { self.count } else { 0 }
    }

    fn add(&mut self, index: u64) {
        if self.index != index {
            *self = Window { index, count: 0 };
        }
        self.count = self.count.saturating_add(1);
    }
}

/// Upstream said the account may send nothing until `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBlock {
    pub until: Timestamp,
    pub reason: String,
}

/// The quota counts and the account block, as persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaState {
    #[serde(default)]
    pub minute: Window,
    #[serde(default)]
    pub day: Window,
    #[serde(default)]
    pub account_block: Option<AccountBlock>,
}

/// Which account limit stopped a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuotaScope {
    Minute {
        limit: u32,
    },
    Day {
        limit: u32,
    },
    /// Upstream said the account is limited (daily cap, per-minute limit).
    Upstream {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaBlock {
    pub scope: QuotaScope,
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
    pub minute_used: u32,
    pub minute_limit: Option<u32>,
    pub day_used: u32,
    pub day_limit: Option<u32>,
    pub blocked_until: Option<Timestamp>,
}

impl QuotaState {
    /// The account-wide block in force at `now`, if any, without counting a request.
    pub fn block(&self, policy: &QuotaPolicy, now: Timestamp) -> Option<QuotaBlock> {
        if let Some(b) = self.account_block.as_ref().filter(|b| now < b.until) {
            return Some(QuotaBlock { scope: QuotaScope::Upstream { reason: b.reason.clone() }, until: b.until });
        }
        if let Some(limit) = policy.per_day.filter(|&l| self.day.current(now.utc_day()) >= l) {
            return Some(QuotaBlock { scope: QuotaScope::Day { limit }, until: now.next_utc_midnight() });
        }
        if let Some(limit) = policy.per_minute.filter(|&l| self.minute.current(now.minute()) >= l) {
            return Some(QuotaBlock { scope: QuotaScope::Minute { limit }, until: now.next_minute() });
        }
        None
    }

    /// Counts one upstream request against the quotas, or says which one is spent.
    /// Check and count happen under one lock, so concurrent requests cannot overshoot.
    pub fn reserve(&mut self, policy: &QuotaPolicy, now: Timestamp) -> Result<(), QuotaBlock> {
        if let Some(block) = self.block(policy, now) {
            return Err(block);
        }
        self.minute.add(now.minute());
        self.day.add(now.utc_day());
        Ok(())
    }

    pub fn block_account(&mut self, until: Timestamp, reason: &str) {
        let later = self.account_block.as_ref().is_none_or(|b| b.until < until);
        if later {
            self.account_block = Some(AccountBlock { until, reason: reason.to_owned() });
        }
    }

    pub fn report(&self, policy: &QuotaPolicy, now: Timestamp) -> QuotaReport {
        QuotaReport {
            minute_used: self.minute.current(now.minute()),
            minute_limit: policy.per_minute,
            day_used: self.day.current(now.utc_day()),
            day_limit: policy.per_day,
            blocked_until: self.block(policy, now).map(|b| b.until),
        }
    }
}
