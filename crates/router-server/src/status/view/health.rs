//! The part of the view `/readyz` needs, cheap to read on every probe: the catalog's
//! figures and refreshes, the account's quota, the shared state and the saves.

use super::states::Readiness;
use crate::state::AppState;
use router_core::shared::SharedStatus;
use router_core::{CatalogSnapshot, CatalogSource, QuotaReport, Timestamp};
use serde::Serialize;

/// The account whose quota the ledger keeps, as the ledger names it (the scope it is kept
/// and shared under); declared providers keep their own.
pub const PROVIDER: &str = router_core::shared::DEFAULT_QUOTA_SCOPE;

/// The part of the view `/readyz` needs, cheap to read on every probe.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    pub catalog: CatalogView,
    pub quota: QuotaView,
    /// The link to other instances (Redis), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<SharedStatus>,
    pub state_save: SaveView,
    pub readiness: Readiness,
}

#[derive(Clone, Debug, Serialize)]
pub struct CatalogView {
    pub provider: &'static str,
    /// `live`, `disk_cache`, `embedded`, `file` or `memory`.
    pub source: &'static str,
    /// Where exactly (URL, path, snapshot date), as `/readyz` shows it.
    #[serde(skip)]
    pub origin: CatalogSource,
    pub description: String,
    pub models: usize,
    pub free_models: usize,
    pub skipped: usize,
    pub fetched_at: Timestamp,
    pub age_secs: u64,
    /// The background refreshes as one (see [`router_settings::refreshes::overall`]),
    /// when the server refreshes catalogs.
    pub refresh: Option<RefreshView>,
    /// Each refreshed catalog's own counters, by provider.
    pub refreshes: Vec<router_settings::CatalogRefresh>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RefreshView {
    pub ok: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QuotaView {
    pub provider: &'static str,
    /// The limits are the account's, shared by every model.
    pub scope: &'static str,
    pub minute: WindowView,
    pub day: WindowView,
    /// Set while requests are refused at once (a limit reached here or upstream).
    pub blocked_until: Option<Timestamp>,
    /// Whether today's count was reconciled with upstream's own (`upstream`) or is
    /// counted here only (`local`).
    pub day_source: router_core::DaySource,
    /// Upstream's last reading of `free_model_daily_requests`, when it is from today.
    pub upstream_day: Option<router_core::UpstreamDay>,
    /// The core's own report, as `/readyz` shows it.
    #[serde(skip)]
    pub report: QuotaReport,
}

#[derive(Clone, Debug, Serialize)]
pub struct WindowView {
    pub used: u32,
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    /// When the window's count starts again from zero.
    pub resets_at: Timestamp,
}

/// Saves of the resilience state.
#[derive(Clone, Debug, Serialize)]
pub struct SaveView {
    /// Failed saves so far (each is retried).
    pub failures: u64,
    /// The last save's error, while it is failing.
    pub error: Option<String>,
}

/// The label of a catalog's source: its serde tag (a test holds the two equal).
pub fn source_label(s: &CatalogSource) -> &'static str {
    match s {
        CatalogSource::Live { .. } => "live",
        CatalogSource::DiskCache { .. } => "disk_cache",
        CatalogSource::Embedded { .. } => "embedded",
        CatalogSource::File { .. } => "file",
        CatalogSource::Memory => "memory",
    }
}

impl Health {
    /// Reads the catalog's figures, the quotas, the shared state and the saves.
    pub fn read(state: &AppState) -> Health {
        Health::read_from(state, &state.router.catalog(), state.router.now())
    }

    pub(super) fn read_from(state: &AppState, snap: &CatalogSnapshot, now: Timestamp) -> Health {
        let router = &state.router;
        let stats = snap.stats(now);
        let refreshes = state.catalogs.read();
        let refresh = router_settings::refreshes::overall(&refreshes).map(|s| RefreshView {
            ok: s.refreshes_ok,
            failed: s.refreshes_failed,
            last_error: s.last_error,
            last_attempt_at: s.last_attempt_at,
            last_success_at: s.last_success_at,
        });
        let shared_state = router.shared_status();
        let (failures, error) = router.save_status();
        let readiness = Readiness::of(stats.free_models, shared_state.as_ref(), error.as_deref());
        Health {
            catalog: CatalogView {
                provider: PROVIDER,
                source: source_label(&stats.source),
                description: stats.source.to_string(),
                origin: stats.source,
                models: stats.models,
                free_models: stats.free_models,
                skipped: stats.skipped,
                fetched_at: stats.fetched_at,
                age_secs: stats.age_secs,
                refresh,
                refreshes,
            },
            quota: QuotaView::of(router.quota_report(), now),
            shared_state,
            state_save: SaveView { failures, error },
            readiness,
        }
    }
}

impl QuotaView {
    pub(super) fn of(report: QuotaReport, now: Timestamp) -> QuotaView {
        let window = |used: u32, limit: Option<u32>, resets_at: Timestamp| WindowView {
            used,
            limit,
            remaining: limit.map(|l| l.saturating_sub(used)),
            resets_at,
        };
        QuotaView {
            provider: PROVIDER,
            scope: "account",
            minute: window(report.minute_used, report.minute_limit, now.next_minute()),
            day: WindowView {
                remaining: report.day_remaining,
                ..window(report.day_used, report.day_limit, now.next_utc_midnight())
            },
            blocked_until: report.blocked_until,
            day_source: report.day_source,
            upstream_day: report.upstream,
            report,
        }
    }
}
