//! Key and channel names, and how long each key lives.

use router_core::shared::{BudgetUnit, SharedEvent};
use router_core::{ModelId, Timestamp};
use std::time::Duration;

/// How long a window's counter outlives its window (clocks of instances differ a little).
const COUNTER_SLACK: Duration = Duration::from_secs(60);

fn unit_name(unit: BudgetUnit) -> &'static str {
    match unit {
        BudgetUnit::Tokens => "tokens",
        BudgetUnit::Requests => "requests",
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Keys { prefix: prefix.to_owned() }
    }

    pub(crate) fn channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    pub(crate) fn instances(&self) -> String {
        format!("{}instances", self.prefix)
    }

    /// When each instance last had nothing it sent without Redis left uncounted (a sorted
    /// set: instance id by wall-clock milliseconds).
    pub(crate) fn merged(&self) -> String {
        format!("{}merged", self.prefix)
    }

    pub(crate) fn minute(&self, scope: &str, now: Timestamp) -> String {
        format!("{}quota:{scope}:m:{}", self.prefix, now.minute())
    }

    pub(crate) fn day(&self, scope: &str, now: Timestamp) -> String {
        format!("{}quota:{scope}:d:{}", self.prefix, now.utc_day())
    }

    /// Each instance's own count in the day (a hash: instance id to count), from which a
    /// lost day counter is rebuilt.
    pub(crate) fn day_by_instance(&self, scope: &str, now: Timestamp) -> String {
        format!("{}quota:{scope}:i:{}", self.prefix, now.utc_day())
    }

    /// The attempt ids of `instance` counted in the day of `now` (a bitmap by id).
    pub(crate) fn counted(&self, instance: &str, now: Timestamp) -> String {
        format!("{}counted:{instance}:{}", self.prefix, now.utc_day())
    }

    /// What is counted against budget `name` (a provider's or a model's: its tokens, or
    /// its requests) in `now`'s minute.
    pub(crate) fn budget_minute(&self, unit: BudgetUnit, name: &str, now: Timestamp) -> String {
        format!("{}{}:{name}:m:{}", self.prefix, unit_name(unit), now.minute())
    }

    /// What is counted against budget `name` in quota day `day` of its own clock.
    pub(crate) fn budget_day(&self, unit: BudgetUnit, name: &str, day: u64) -> String {
        format!("{}{}:{name}:d:{day}", self.prefix, unit_name(unit))
    }

    pub(crate) fn block(&self, scope: &str) -> String {
        format!("{}block:{scope}", self.prefix)
    }

    pub(crate) fn probe(&self, model: &ModelId) -> String {
        format!("{}probe:{}", self.prefix, model.as_str())
    }

    /// A probe key no attempt claims (the script always takes four keys).
    pub(crate) fn probe_none(&self) -> String {
        format!("{}probe:", self.prefix)
    }

    /// The pattern of every cooldown key, for the reload after a (re)connection.
    pub(crate) fn cool_pattern(&self) -> String {
        format!("{}cool:*", self.prefix)
    }

    /// Where an event is kept until it expires; `None` for events that only remove.
    pub(crate) fn of_event(&self, event: &SharedEvent, scope: &str) -> Option<String> {
        let kind = match event {
            SharedEvent::RateLimited { .. } => "rate_limited",
            SharedEvent::CircuitOpen { .. } => "circuit_open",
            SharedEvent::Unavailable { .. } => "unavailable",
            SharedEvent::AccountBlocked { .. } => return Some(self.block(scope)),
            SharedEvent::Recovered { .. } => return None,
        };
        let model = event.model()?;
        Some(format!("{}cool:{}:{kind}", self.prefix, model.as_str()))
    }

    pub(crate) fn circuit_open(&self, model: &ModelId) -> String {
        format!("{}cool:{}:circuit_open", self.prefix, model.as_str())
    }
}

/// Milliseconds a window's counter lives from `now`: to the window's end, plus slack.
pub(crate) fn minute_ttl(now: Timestamp) -> u64 {
    ttl_to(now, now.next_minute())
}

pub(crate) fn day_ttl(now: Timestamp) -> u64 {
    ttl_to(now, now.next_utc_midnight())
}

/// Milliseconds a counter of a window ending at `end` lives from `now`.
pub(crate) fn day_ttl_to(now: Timestamp, end: Timestamp) -> u64 {
    ttl_to(now, end)
}

fn ttl_to(now: Timestamp, end: Timestamp) -> u64 {
    let d = end.saturating_since(now).saturating_add(COUNTER_SLACK);
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_and_counters_expire_after_their_window() {
        let k = Keys::new("fmr:");
        let now = Timestamp::from_secs(1_800_000_030);
        assert_eq!(k.minute("openrouter", now), format!("fmr:quota:openrouter:m:{}", now.minute()));
        assert_eq!(k.channel(), "fmr:events");
        let e = SharedEvent::RateLimited { model: ModelId::new("a/b:free"), until: now };
        assert_eq!(k.of_event(&e, "openrouter").as_deref(), Some("fmr:cool:a/b:free:rate_limited"));
        assert_eq!(minute_ttl(now), 30_000 + 60_000);
        assert!(day_ttl(now) <= 86_400_000 + 60_000);
    }
}
