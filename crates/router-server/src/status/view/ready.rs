//! `/readyz`'s body: the health in the shape that endpoint has always had.

use super::health::Health;
use super::states::Readiness;
use router_core::shared::SharedStatus;
use router_core::{CatalogSource, QuotaReport, Timestamp};
use serde::Serialize;

/// `/readyz`'s body: the health in the shape that endpoint has always had (the source
/// as its tagged object, times as text).
#[derive(Debug, Serialize)]
pub struct ReadyReport<'a> {
    pub status: Readiness,
    pub catalog: ReadyCatalog<'a>,
    pub refresh: Option<ReadyRefresh<'a>>,
    /// Each refreshed catalog's own, by provider (`refresh` is all of them as one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catalogs: Vec<ReadyCatalogRefresh<'a>>,
    pub shared_state: Option<&'a SharedStatus>,
    /// The day's use, limit, remaining and where the count comes from.
    pub quota: &'a QuotaReport,
    pub state_save_error: Option<&'a str>,
}

/// `/readyz` for a request without a client key when keys are set: the status alone.
#[derive(Debug, Serialize)]
pub struct ReadyStatus {
    pub status: Readiness,
}

#[derive(Debug, Serialize)]
pub struct ReadyCatalog<'a> {
    pub source: &'a CatalogSource,
    pub description: &'a str,
    pub models: usize,
    pub free_models: usize,
    pub fetched_at: String,
    pub age_secs: u64,
}

#[derive(Debug, Serialize)]
pub struct ReadyRefresh<'a> {
    pub ok: u64,
    pub failed: u64,
    pub last_error: Option<&'a str>,
    pub last_success_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ReadyCatalogRefresh<'a> {
    pub provider: &'a str,
    pub models: usize,
    #[serde(flatten)]
    pub refresh: ReadyRefresh<'a>,
}

impl<'a> ReadyRefresh<'a> {
    fn of(ok: u64, failed: u64, last_error: Option<&'a str>, last_success_at: Option<Timestamp>) -> Self {
        ReadyRefresh { ok, failed, last_error, last_success_at: last_success_at.map(|t| t.to_string()) }
    }
}

impl Health {
    /// The projection `/readyz` serializes.
    pub fn ready(&self) -> ReadyReport<'_> {
        let c = &self.catalog;
        ReadyReport {
            status: self.readiness,
            catalog: ReadyCatalog {
                source: &c.origin,
                description: &c.description,
                models: c.models,
                free_models: c.free_models,
                fetched_at: c.fetched_at.to_string(),
                age_secs: c.age_secs,
            },
            refresh: c
                .refresh
                .as_ref()
                .map(|r| ReadyRefresh::of(r.ok, r.failed, r.last_error.as_deref(), r.last_success_at)),
            catalogs: c
                .refreshes
                .iter()
                .map(|r| {
                    let n = &r.counters;
                    let refresh = ReadyRefresh::of(
                        n.refreshes_ok,
                        n.refreshes_failed,
                        n.last_error.as_deref(),
                        n.last_success_at,
                    );
                    ReadyCatalogRefresh { provider: &r.provider, models: r.models, refresh }
                })
                .collect(),
            shared_state: self.shared_state.as_ref(),
            quota: &self.quota.report,
            state_save_error: self.state_save.error.as_deref(),
        }
    }
}
