//! When a quota day starts and ends: the port a provider's day clock implements, and
//! OpenRouter's (midnight UTC).

use crate::time::Timestamp;
use std::fmt;

/// When a quota day starts and ends: midnight UTC, or midnight in a provider's time zone
/// (Google AI Studio resets at midnight Pacific time). The zone's rules are an adapter's
/// (a time-zone database); the core only asks which day `now` is in.
pub trait ResetClock: Send + Sync + fmt::Debug {
    /// The index of the quota day holding `now` (one more each day) and when it ends.
    fn day(&self, now: Timestamp) -> (u64, Timestamp);
    /// The clock's name, e.g. `UTC` or `America/Los_Angeles`.
    fn name(&self) -> &str;
}

/// Days that end at midnight UTC (OpenRouter's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UtcDays;

impl ResetClock for UtcDays {
    fn day(&self, now: Timestamp) -> (u64, Timestamp) {
        (now.utc_day(), now.next_utc_midnight())
    }

    fn name(&self) -> &str {
        "UTC"
    }
}
