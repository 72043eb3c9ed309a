//! The whole view: what the dashboard shows besides the live decisions, and what
//! `/metrics` renders of the router, read once per call.

use super::health::Health;
use super::pool::{Pool, PoolEntry};
use crate::metrics::MinuteView;
use crate::state::AppState;
use router_core::quota::NotFreeMark;
use router_core::{CooldownCause, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the dashboard shows besides the live decisions; also what `/metrics`
/// renders of the router.
#[derive(Clone, Debug, Serialize)]
pub struct RouterView {
    pub version: &'static str,
    /// Milliseconds since the Unix epoch, by the router's clock.
    pub now: Timestamp,
    pub started_at: Timestamp,
    pub uptime_secs: u64,
    /// The catalog, quotas, shared state, saves and readiness.
    #[serde(flatten)]
    pub health: Health,
    /// Free models (and `:free` ones past their expiration date), in id order.
    pub pool: Vec<PoolEntry>,
    /// Pool entries by state (every state seen, by name).
    pub pool_states: BTreeMap<&'static str, usize>,
    /// Every model the router is leaving out now, by cause (also those no longer listed).
    pub cooldowns: CooldownCounts,
    pub stream_errors: u64,
    /// Requests per minute over the last hour, oldest first.
    pub trends: Vec<MinuteView>,
    /// Live subscribers to the decisions stream.
    pub event_subscribers: usize,
    /// Declared providers that asked for payment: out of the pool until their
    /// configuration or key changes.
    pub not_free_providers: BTreeMap<String, NotFreeMark>,
    /// Providers with a `max_concurrent`: requests in flight now, and the bound.
    pub in_flight: Vec<InFlightView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InFlightView {
    pub provider: String,
    pub in_flight: u32,
    pub max_concurrent: u32,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CooldownCounts {
    pub rate_limited: usize,
    pub unavailable: usize,
    pub circuit_open: usize,
    pub probe_in_flight: usize,
}

impl CooldownCounts {
    pub fn get(&self, cause: CooldownCause) -> usize {
        match cause {
            CooldownCause::RateLimited => self.rate_limited,
            CooldownCause::Unavailable => self.unavailable,
            CooldownCause::CircuitOpen => self.circuit_open,
            CooldownCause::ProbeInFlight => self.probe_in_flight,
        }
    }

    fn add(&mut self, cause: CooldownCause) {
        let n = match cause {
            CooldownCause::RateLimited => &mut self.rate_limited,
            CooldownCause::Unavailable => &mut self.unavailable,
            CooldownCause::CircuitOpen => &mut self.circuit_open,
            CooldownCause::ProbeInFlight => &mut self.probe_in_flight,
        };
        *n += 1;
    }
}

impl RouterView {
    /// Reads the router, the catalog adapter and the counters once.
    pub fn read(state: &AppState) -> RouterView {
        let router = &state.router;
        let now = router.now();
        let snap = router.catalog();
        let health = Health::read_from(state, &snap, now);
        let cooldowns = router.cooldowns();
        let mut counts = CooldownCounts::default();
        for (_, c) in &cooldowns {
            counts.add(c.cause);
        }
        let not_free = router.not_free_providers();
        let pool = Pool::new(&cooldowns, &not_free, state.metrics.recent_by_model()).read(&snap, now);
        let mut pool_states = BTreeMap::new();
        for entry in &pool {
            *pool_states.entry(entry.state.as_str()).or_insert(0) += 1;
        }
        let uptime = state.metrics.uptime();
        RouterView {
            version: env!("CARGO_PKG_VERSION"),
            now,
            started_at: Timestamp::from_millis(
                now.as_millis().saturating_sub(u64::try_from(uptime.as_millis()).unwrap_or(u64::MAX)),
            ),
            uptime_secs: uptime.as_secs(),
            health,
            pool,
            pool_states,
            cooldowns: counts,
            stream_errors: router.stream_errors(),
            trends: state.metrics.trends(now),
            event_subscribers: state.metrics.decisions().subscribers(),
            not_free_providers: not_free,
            in_flight: router
                .in_flight()
                .into_iter()
                .map(|(provider, in_flight, max_concurrent)| InFlightView { provider, in_flight, max_concurrent })
                .collect(),
        }
    }
}
