//! The one read model of the router's state, read once per call from the router, the
//! catalog adapter and the server's counters. Every operator view is a projection of
//! it: `GET /api/v1/router/status` (hence the dashboard) serializes [`RouterView`]
//! whole, `/readyz` serializes [`Health::ready`], and `/metrics` renders it in
//! `crate::prom`. The rules of what the operator sees are decided here only: a `:free`
//! model past its date is `expired` (not cooling), a model of a provider that asked for
//! payment is `not_free`, Redis away or a failing save is `degraded`. Upstream keys are
//! not part of it.

use crate::metrics::{MinuteView, RecentView};
use crate::state::AppState;
use router_core::quota::NotFreeMark;
use router_core::shared::SharedStatus;
use router_core::{
    Capability, CatalogSnapshot, CatalogSource, Cooldown, CooldownCause, ModelId, NotFree, QuotaReport, Timestamp,
    not_free_reasons,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The upstream whose account holds the quotas shown (declared providers keep their own).
pub const PROVIDER: &str = router_core::OPENROUTER_PROVIDER;

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

/// One model of the pool.
#[derive(Clone, Debug, Serialize)]
pub struct PoolEntry {
    pub id: ModelId,
    pub name: String,
    /// The id's prefix (`meta-llama` of `meta-llama/llama-3.3-70b-instruct:free`).
    pub provider: String,
    /// The upstream it is reached through: `openrouter` or a declared provider's name.
    pub upstream: String,
    pub context_length: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub vision: bool,
    pub tools: bool,
    pub structured_outputs: bool,
    pub reasoning: bool,
    /// Every capability the catalog lists for it.
    pub capabilities: Vec<&'static str>,
    pub state: PoolState,
    /// When it is eligible again, for the timed states.
    pub until: Option<Timestamp>,
    pub reason: Option<String>,
    pub expires: Option<String>,
    pub recent: Option<RecentView>,
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

/// A `:free` variant that is free in every respect but its expiration date.
fn only_expired(reasons: &[NotFree]) -> bool {
    !reasons.is_empty() && reasons.iter().all(|r| matches!(r, NotFree::Expired(_) | NotFree::BadExpiration(_)))
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

/// What the pool's entries are judged by, read once.
struct Pool<'a> {
    cooldowns: HashMap<&'a ModelId, &'a Cooldown>,
    not_free: &'a BTreeMap<String, NotFreeMark>,
    recent: HashMap<ModelId, RecentView>,
}

impl<'a> Pool<'a> {
    fn new(
        cooldowns: &'a [(ModelId, Cooldown)],
        not_free: &'a BTreeMap<String, NotFreeMark>,
        recent: HashMap<ModelId, RecentView>,
    ) -> Self {
        Pool { cooldowns: cooldowns.iter().map(|(id, c)| (id, c)).collect(), not_free, recent }
    }

    /// The free models, and the `:free` variants free in all but their date.
    fn read(&self, snap: &CatalogSnapshot, now: Timestamp) -> Vec<PoolEntry> {
        let mut pool = Vec::new();
        for entry in snap.entries() {
            let info = &entry.info;
            let expired = if entry.is_free(now) {
                false
            } else if info.id.is_free_variant() && only_expired(&not_free_reasons(info, now)) {
                true
            } else {
                continue;
            };
            pool.push(self.entry(entry, expired));
        }
        pool
    }

    fn entry(&self, entry: &router_core::catalog::Entry, expired: bool) -> PoolEntry {
        let info = &entry.info;
        let cooldown = self.cooldowns.get(&info.id).copied();
        let unpaid = self.not_free.get(info.provider_name());
        let caps = entry.capabilities();
        let reason = if expired {
            Some(format!("expired on {}", info.expiration_date.as_deref().unwrap_or("?")))
        } else if let Some(mark) = unpaid {
            Some(format!("its provider asked for payment at {}: {}", mark.since, mark.reason))
        } else {
            cooldown.map(|c| c.cause.to_string())
        };
        PoolEntry {
            id: info.id.clone(),
            name: info.name.clone(),
            provider: info.id.as_str().split_once('/').map_or("", |(p, _)| p).to_owned(),
            upstream: info.provider_name().to_owned(),
            context_length: info.context_length,
            max_completion_tokens: info.max_completion_tokens,
            vision: caps.contains(Capability::ImageInput),
            tools: caps.contains(Capability::Tools),
            structured_outputs: caps.contains(Capability::StructuredOutputs),
            reasoning: caps.contains(Capability::Reasoning),
            capabilities: caps.iter().map(Capability::label).collect(),
            state: PoolState::of(expired, unpaid.is_some(), cooldown),
            until: if expired { None } else { cooldown.and_then(|c| c.until) },
            reason,
            expires: info.expiration_date.clone(),
            recent: self.recent.get(&info.id).cloned(),
        }
    }
}

impl Health {
    /// Reads the catalog's figures, the quotas, the shared state and the saves.
    pub fn read(state: &AppState) -> Health {
        Health::read_from(state, &state.router.catalog(), state.router.now())
    }

    fn read_from(state: &AppState, snap: &CatalogSnapshot, now: Timestamp) -> Health {
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

impl QuotaView {
    fn of(report: QuotaReport, now: Timestamp) -> QuotaView {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_the_serialized_one() {
        for s in PoolState::ALL {
            assert_eq!(serde_json::to_value(s).expect("state"), s.as_str());
        }
        let sources = [
            CatalogSource::Live { url: String::new() },
            CatalogSource::DiskCache { path: String::new() },
            CatalogSource::Embedded { snapshot_date: String::new() },
            CatalogSource::File { path: String::new() },
            CatalogSource::Memory,
        ];
        for s in &sources {
            assert_eq!(serde_json::to_value(s).expect("source")["kind"], source_label(s));
        }
    }

    #[test]
    fn expired_wins_then_payment_then_the_cooldown() {
        let cooling = Cooldown { cause: CooldownCause::RateLimited, until: None };
        assert_eq!(PoolState::of(true, true, Some(&cooling)), PoolState::Expired);
        assert_eq!(PoolState::of(false, true, Some(&cooling)), PoolState::NotFree);
        assert_eq!(PoolState::of(false, false, Some(&cooling)), PoolState::Cooling);
        assert_eq!(PoolState::of(false, false, None), PoolState::Ready);
        let open = Cooldown { cause: CooldownCause::CircuitOpen, until: None };
        assert_eq!(PoolState::of(false, false, Some(&open)), PoolState::BreakerOpen);
    }

    #[test]
    fn no_free_model_is_not_ready_whatever_else_holds() {
        assert_eq!(Readiness::of(0, None, None), Readiness::NotReady);
        assert_eq!(Readiness::of(3, None, None), Readiness::Ready);
        assert_eq!(Readiness::of(3, None, Some("disk full")), Readiness::Degraded);
    }

    /// `/readyz`'s shape is what load balancers and scripts read: the source as its
    /// tagged object, times as text, and every key present.
    #[test]
    fn readyz_keeps_its_shape() {
        let at = Timestamp::from_millis(1_700_000_000_000);
        let report = QuotaReport {
            minute_used: 1,
            minute_limit: Some(20),
            day_used: 3,
            day_limit: Some(50),
            day_remaining: Some(47),
            day_source: router_core::DaySource::Local,
            upstream: None,
            blocked_until: None,
        };
        let health = Health {
            catalog: CatalogView {
                provider: PROVIDER,
                source: "live",
                origin: CatalogSource::Live { url: "http://127.0.0.1:1/models".into() },
                description: "live (http://127.0.0.1:1/models)".into(),
                models: 4,
                free_models: 2,
                skipped: 0,
                fetched_at: at,
                age_secs: 5,
                refresh: Some(RefreshView {
                    ok: 1,
                    failed: 0,
                    last_error: None,
                    last_attempt_at: Some(at),
                    last_success_at: Some(at),
                }),
                refreshes: Vec::new(),
            },
            quota: QuotaView::of(report, at),
            shared_state: None,
            state_save: SaveView { failures: 0, error: None },
            readiness: Readiness::Ready,
        };
        let v = serde_json::to_value(health.ready()).expect("ready");
        let keys = |v: &serde_json::Value| v.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&v), ["catalog", "quota", "refresh", "shared_state", "state_save_error", "status"]);
        assert_eq!(v["status"], "ready");
        assert_eq!(keys(&v["catalog"]), ["age_secs", "description", "fetched_at", "free_models", "models", "source"]);
        assert_eq!(v["catalog"]["source"]["kind"], "live");
        assert_eq!(v["catalog"]["fetched_at"], at.to_string());
        assert_eq!(keys(&v["refresh"]), ["failed", "last_error", "last_success_at", "ok"]);
        assert_eq!(v["refresh"]["last_success_at"], at.to_string());
        assert_eq!(v["quota"]["day_used"], 3);
        assert_eq!(v["quota"]["day_source"], "local");
        assert!(v["shared_state"].is_null() && v["state_save_error"].is_null());
    }
}
