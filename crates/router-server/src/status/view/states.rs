//! The rules of what the operator sees: a pool entry's state (expired, then a payment
//! request, then its cooldown) and the router's readiness.

use router_core::shared::SharedStatus;
use router_core::{Cooldown, CooldownCause};
use serde::Serialize;

/// A pool entry's state: what the dashboard filters and colours by, and the `state`
/// label of `router_pool_models`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolState {
    Ready,
    /// Rate limited, until its `Retry-After` or backoff ends.
    Cooling,
    BreakerOpen,
    /// Its breaker is half-open and a request is probing it.
    Probing,
    /// Until a later catalog lists it again.
    Unavailable,
    /// A `:free` variant past its expiration date.
    Expired,
    /// Its provider asked for payment.
    NotFree,
}

impl PoolState {
    pub const ALL: [PoolState; 7] = [
        PoolState::Ready,
        PoolState::Cooling,
        PoolState::BreakerOpen,
        PoolState::Probing,
        PoolState::Unavailable,
        PoolState::Expired,
        PoolState::NotFree,
    ];

    /// The serialized name (a test holds the two equal).
    pub fn as_str(self) -> &'static str {
        match self {
            PoolState::Ready => "ready",
            PoolState::Cooling => "cooling",
            PoolState::BreakerOpen => "breaker_open",
            PoolState::Probing => "probing",
            PoolState::Unavailable => "unavailable",
            PoolState::Expired => "expired",
            PoolState::NotFree => "not_free",
        }
    }

    /// The rule: expired wins over everything (the model is gone whatever else holds),
    /// then its provider's payment request, then its own cooldown.
    pub fn of(expired: bool, unpaid: bool, cooldown: Option<&Cooldown>) -> PoolState {
        match (expired, unpaid, cooldown.map(|c| c.cause)) {
            (true, _, _) => PoolState::Expired,
            (false, true, _) => PoolState::NotFree,
            (false, false, None) => PoolState::Ready,
            (false, false, Some(CooldownCause::RateLimited)) => PoolState::Cooling,
            (false, false, Some(CooldownCause::CircuitOpen)) => PoolState::BreakerOpen,
            (false, false, Some(CooldownCause::ProbeInFlight)) => PoolState::Probing,
            (false, false, Some(CooldownCause::Unavailable)) => PoolState::Unavailable,
        }
    }
}

/// Whether the router takes traffic, as `/readyz` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    Ready,
    /// Serving, but Redis is away (local state) or the state cannot be saved (a full
    /// disk: a restart would lose it).
    Degraded,
    /// No catalog with free models is loaded.
    NotReady,
}

impl Readiness {
    pub fn of(free_models: usize, shared: Option<&SharedStatus>, save_error: Option<&str>) -> Readiness {
        if free_models == 0 {
            Readiness::NotReady
        } else if shared.is_some_and(|s| !s.connected) || save_error.is_some() {
            Readiness::Degraded
        } else {
            Readiness::Ready
        }
    }
}
