//! Token budgets: free tiers that count tokens per minute and per day, and charge a
//! request's prompt and its whole `max_tokens` when it arrives (Groq, Cerebras). A
//! request the budget cannot take now is not sent (the provider would refuse it and
//! still charge the minute); the count is corrected from the provider's own
//! `x-ratelimit-*-tokens` headers when it sends them.

use super::clock::ResetClock;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A provider's (or one of its models') token limits; none by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Tokens per minute (prompt plus the output asked for).
    pub per_minute: Option<u64>,
    /// Tokens per quota day, on the provider's day clock.
    pub per_day: Option<u64>,
}

impl TokenPolicy {
    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.per_minute.is_some() || self.per_day.is_some()
    }

    /// The most one request may ever take: the smaller limit.
    pub fn ceiling(&self) -> Option<u64> {
        match (self.per_minute, self.per_day) {
            (Some(m), Some(d)) => Some(m.min(d)),
            (m, d) => m.or(d),
        }
    }
}

/// Tokens counted in the current minute and quota day (persisted with the rest).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenState {
    /// The minute (since the epoch) `minute_used` counts.
    #[serde(default)]
    pub minute: u64,
    /// Tokens sent in that minute.
    #[serde(default)]
    pub minute_used: u64,
    /// The quota day (the reset clock's index) `day_used` counts.
    #[serde(default)]
    pub day: u64,
    /// Tokens sent in that day.
    #[serde(default)]
    pub day_used: u64,
}

/// What a budget leaves now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// Tokens that may still be sent.
    pub tokens: u64,
    /// When the window that holds it back resets.
    pub until: Timestamp,
}

impl TokenState {
    fn used(&self, reset: &dyn ResetClock, now: Timestamp) -> (u64, u64) {
        let minute = if self.minute == now.minute() { self.minute_used } else { 0 };
        let day = if self.day == reset.day(now).0 { self.day_used } else { 0 };
        (minute, day)
    }

    /// The tokens left now under `policy`; `None` when nothing is limited.
    pub fn room(&self, policy: &TokenPolicy, reset: &dyn ResetClock, now: Timestamp) -> Option<Room> {
        let (minute_used, day_used) = self.used(reset, now);
        let minute =
            policy.per_minute.map(|l| Room { tokens: l.saturating_sub(minute_used), until: now.next_minute() });
        let day = policy.per_day.map(|l| Room { tokens: l.saturating_sub(day_used), until: reset.day(now).1 });
        match (minute, day) {
            (Some(m), Some(d)) => Some(if d.tokens < m.tokens { d } else { m }),
            (m, d) => m.or(d),
        }
    }

    /// Counts `tokens` sent at `now`.
    pub fn charge(&mut self, tokens: u64, reset: &dyn ResetClock, now: Timestamp) {
        let (minute_used, day_used) = self.used(reset, now);
        (self.minute, self.minute_used) = (now.minute(), minute_used.saturating_add(tokens));
        (self.day, self.day_used) = (reset.day(now).0, day_used.saturating_add(tokens));
    }

    /// The provider's own word on this minute: `remaining` of `limit` tokens left
    /// (`x-ratelimit-remaining-tokens` / `-limit-tokens`). It wins over the local
    /// count, which only estimates.
    pub fn observe_minute(&mut self, limit: u64, remaining: u64, now: Timestamp) {
        (self.minute, self.minute_used) = (now.minute(), limit.saturating_sub(remaining));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::UtcDays;
    use std::time::Duration;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    #[test]
    fn budgets_count_per_minute_and_per_day_and_reset() {
        let policy = TokenPolicy { per_minute: Some(8_000), per_day: Some(20_000) };
        let mut s = TokenState::default();
        assert_eq!(s.room(&policy, &UtcDays, T0).map(|r| r.tokens), Some(8_000));
        s.charge(6_000, &UtcDays, T0);
        assert_eq!(s.room(&policy, &UtcDays, T0), Some(Room { tokens: 2_000, until: T0.next_minute() }));
        // The next minute: the minute is back, the day keeps counting.
        let later = T0.next_minute();
        s.charge(7_000, &UtcDays, later);
        s.charge(6_000, &UtcDays, later.next_minute());
        let room = s.room(&policy, &UtcDays, later.next_minute()).expect("limited");
        assert_eq!((room.tokens, room.until), (1_000, later.next_minute().next_utc_midnight()));
        // The provider's own count wins.
        s.observe_minute(8_000, 7_500, later.next_minute());
        assert_eq!(s.room(&policy, &UtcDays, later.next_minute()).map(|r| r.tokens), Some(1_000));
        let tomorrow = T0.next_utc_midnight().saturating_add(Duration::from_secs(5));
        assert_eq!(s.room(&policy, &UtcDays, tomorrow).map(|r| r.tokens), Some(8_000));
        assert_eq!(TokenState::default().room(&TokenPolicy::default(), &UtcDays, T0), None);
        assert_eq!(policy.ceiling(), Some(8_000));
    }
}
