//! A declared provider's request quota when several instances share state: the shared
//! store's counts taken as this instance's, raised when the store says a quota is spent,
//! and this instance's share of what was left while the store does not answer (the same
//! rules as for token budgets, over request counts).

use super::account::{QuotaPolicy, QuotaState, Window};
use super::clock::ResetClock;
use crate::time::Timestamp;

impl QuotaState {
    /// Takes the shared store's counts (every instance's requests, this one's included)
    /// for the windows of `now`.
    pub fn take_shared(&mut self, minute: u64, day: u64, reset: &dyn ResetClock, now: Timestamp) {
        let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        self.minute = Window { index: now.minute(), count: count(minute) };
        self.day = Window { index: reset.day(now).0, count: count(day) };
        self.acked = (self.minute, self.day);
    }

    /// Raises the counts of `now`'s windows to at least `minute` / `day` (the shared
    /// store's word that a quota is spent), so that the pick passes the provider's other
    /// models over without asking the store again.
    pub fn raise_to(&mut self, minute: Option<u64>, day: Option<u64>, reset: &dyn ResetClock, now: Timestamp) {
        let count = |n: Option<u64>| u32::try_from(n.unwrap_or(0)).unwrap_or(u32::MAX);
        let (m, d) = (now.minute(), reset.day(now).0);
        self.minute = Window { index: m, count: self.minute.current(m).max(count(minute)) };
        self.day = Window { index: d, count: self.day.current(d).max(count(day)) };
    }

    /// Whether this instance stays within its share of what `policy` left when the shared
    /// store last answered (`instances` sharing it), with the store away: in each window,
    /// the store's count then plus `1 / instances` of the rest.
    pub fn within_share(&self, policy: &QuotaPolicy, instances: u32, reset: &dyn ResetClock, now: Timestamp) -> bool {
        let within = |limit: Option<u32>, acked: Window, current: Window, index: u64| {
            let (acked, used) = (acked.current(index), current.current(index));
            limit.is_none_or(|l| used <= acked.saturating_add(l.saturating_sub(acked) / instances.max(1)))
        };
        let (m, d) = (now.minute(), reset.day(now).0);
        within(policy.per_minute, self.acked.0, self.minute, m) && within(policy.per_day, self.acked.1, self.day, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::UtcDays;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);
    const POLICY: QuotaPolicy = QuotaPolicy { per_minute: Some(10), per_day: Some(100) };

    fn check(state: &QuotaState, instances: u32, expected: bool) {
        assert_eq!(state.within_share(&POLICY, instances, &UtcDays, T0), expected, "{state:?}");
    }

    #[test]
    fn the_stores_counts_become_this_instances_and_its_share_holds_while_it_is_away() {
        let mut s = QuotaState::default();
        s.reserve_at(&POLICY, &UtcDays, T0).expect("room");
        s.take_shared(6, 40, &UtcDays, T0);
        assert_eq!((s.minute.current(T0.minute()), s.day.current(T0.utc_day())), (6, 40));
        // Away: 4 left this minute, 2 of them this instance's (of two).
        check(&s, 2, true);
        for _ in 0..2 {
            s.reserve_at(&POLICY, &UtcDays, T0).expect("room");
        }
        check(&s, 2, true);
        s.reserve_at(&POLICY, &UtcDays, T0).expect("room locally");
        check(&s, 2, false);
        check(&s, 1, true);
    }

    #[test]
    fn a_spent_quota_raises_the_count_and_never_lowers_it() {
        let mut s = QuotaState::default();
        s.raise_to(Some(10), None, &UtcDays, T0);
        assert!(s.block_at(&POLICY, &UtcDays, T0).is_some(), "the minute is spent here too");
        s.raise_to(Some(3), Some(50), &UtcDays, T0);
        assert_eq!((s.minute.current(T0.minute()), s.day.current(T0.utc_day())), (10, 50));
    }
}
