//! The one read model of the router's state, read once per call from the router, the
//! catalog adapter and the server's counters. Every operator view is a projection of
//! it: `GET /api/v1/router/status` (hence the dashboard) serializes [`RouterView`]
//! whole, `/readyz` serializes [`Health::ready`], and `/metrics` renders it in
//! `crate::prom`. The rules of what the operator sees are decided here only: a `:free`
//! model past its date is `expired` (not cooling), a model of a provider that asked for
//! payment is `not_free`, Redis away or a failing save is `degraded`. Upstream keys are
//! not part of it.

//!
//! `router` the whole view, `pool` its models, `health` the part `/readyz` needs,
//! `ready` `/readyz`'s projection, `states` the rules that name a model's and the
//! router's state.

mod health;
mod pool;
mod ready;
mod router;
mod states;

pub use health::{CatalogView, Health, PROVIDER, QuotaView, RefreshView, SaveView, WindowView, source_label};
pub use pool::PoolEntry;
pub use ready::{ReadyCatalog, ReadyCatalogRefresh, ReadyRefresh, ReadyReport, ReadyStatus};
pub use router::{CooldownCounts, InFlightView, RouterView};
pub use states::{PoolState, Readiness};

#[cfg(test)]
mod tests;
