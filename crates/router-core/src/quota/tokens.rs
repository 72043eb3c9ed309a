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
    /// The shared store's count when it last answered (window index, tokens): while it
    /// does not answer, this instance keeps to its share of what was left then.
    #[serde(skip)]
    pub acked_minute: (u64, u64),
    /// As `acked_minute`, for the quota day.
    #[serde(skip)]
    pub acked_day: (u64, u64),
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

    /// Settles a charge of `charged` tokens, made between `from` and `to`, with what the
    /// answer's `usage` says was `used`: the difference is given back to (or taken from)
    /// each window that surely held the charge (both instants in it) and is still the
    /// current one. A window it may not have been in keeps the charge, which errs safe.
    pub fn settle(&mut self, charged: u64, used: u64, reset: &dyn ResetClock, (from, to): (Timestamp, Timestamp)) {
        let fix = |count: &mut u64| *count = count.saturating_sub(charged).saturating_add(used);
        if from.minute() == to.minute() && self.minute == from.minute() {
            fix(&mut self.minute_used);
        }
        let day = reset.day(from).0;
        if day == reset.day(to).0 && self.day == day {
            fix(&mut self.day_used);
        }
    }

    /// Takes the shared store's counts (every instance's tokens) for the windows of `now`.
    pub fn take_shared(&mut self, minute_used: u64, day_used: u64, reset: &dyn ResetClock, now: Timestamp) {
        let day = reset.day(now).0;
        (self.minute, self.minute_used, self.acked_minute) = (now.minute(), minute_used, (now.minute(), minute_used));
        (self.day, self.day_used, self.acked_day) = (day, day_used, (day, day_used));
    }

    /// Raises the counts of `now`'s windows to at least `minute_used` / `day_used` (the
    /// shared store's word that a budget is spent), so that the pick passes the budget's
    /// other models over without asking the store again.
    pub fn raise(&mut self, minute_used: Option<u64>, day_used: Option<u64>, reset: &dyn ResetClock, now: Timestamp) {
        let (minute, day) = self.used(reset, now);
        (self.minute, self.minute_used) = (now.minute(), minute.max(minute_used.unwrap_or(0)));
        (self.day, self.day_used) = (reset.day(now).0, day.max(day_used.unwrap_or(0)));
    }

    /// Whether this instance stays within its share of what `policy` left when the shared
    /// store last answered (`instances` sharing it), with the store away: in each window,
    /// the store's count then plus `1 / instances` of the rest.
    pub fn within_share(&self, policy: &TokenPolicy, instances: u64, reset: &dyn ResetClock, now: Timestamp) -> bool {
        let (minute_used, day_used) = self.used(reset, now);
        let within = |limit: Option<u64>, (index, acked): (u64, u64), current: u64, used: u64| {
            let acked = if index == current { acked } else { 0 };
            limit.is_none_or(|l| used <= acked.saturating_add(l.saturating_sub(acked) / instances.max(1)))
        };
        within(policy.per_minute, self.acked_minute, now.minute(), minute_used)
            && within(policy.per_day, self.acked_day, reset.day(now).0, day_used)
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

    #[test]
    fn a_charge_is_settled_only_in_windows_that_surely_held_it() {
        let mid = T0.saturating_add(Duration::from_secs(30));
        let mut s = TokenState::default();
        s.charge(7_000, &UtcDays, mid);
        s.settle(7_000, 17, &UtcDays, (mid, mid.saturating_add(Duration::from_secs(1))));
        assert_eq!((s.minute_used, s.day_used), (17, 17));
        // Charged in one minute or the next: the minute keeps it, the day is settled.
        s.charge(7_000, &UtcDays, mid);
        s.settle(7_000, 10, &UtcDays, (mid, mid.saturating_add(Duration::from_secs(40))));
        assert_eq!((s.minute_used, s.day_used), (7_017, 27));
        // A minute already over is left alone.
        let mut s = TokenState::default();
        s.charge(500, &UtcDays, mid);
        s.charge(300, &UtcDays, mid.next_minute());
        s.settle(500, 0, &UtcDays, (mid, mid));
        assert_eq!((s.minute_used, s.day_used), (300, 300));
    }

    #[test]
    fn without_the_store_an_instance_keeps_to_its_share_of_what_was_left() {
        let policy = TokenPolicy { per_minute: Some(8_000), per_day: None };
        let mut s = TokenState::default();
        s.take_shared(2_000, 2_000, &UtcDays, T0);
        s.charge(3_000, &UtcDays, T0);
        assert!(s.within_share(&policy, 2, &UtcDays, T0), "2,000 + 6,000 / 2 = 5,000");
        s.charge(1, &UtcDays, T0);
        assert!(!s.within_share(&policy, 2, &UtcDays, T0));
        // A new minute: the store's count then is not this minute's.
        let next = T0.next_minute();
        s.charge(4_000, &UtcDays, next);
        assert!(s.within_share(&policy, 2, &UtcDays, next));
        s.charge(1, &UtcDays, next);
        assert!(!s.within_share(&policy, 2, &UtcDays, next));
    }
}
