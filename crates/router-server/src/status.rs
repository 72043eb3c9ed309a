//! The read model behind `GET /api/v1/router/status`, the dashboard and the router's
//! families in `/metrics` (rendered here), and the two dashboard APIs' handlers: the pool with each model's state, the quotas, the catalog's
//! freshness, uptime and version, read once per call from the router and the server's
//! counters. Upstream keys are not part of it.

use crate::events::decision_stream;
use crate::metrics::{MinuteView, RecentView};
use crate::prom::{escape, family};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use router_core::{Capability, CatalogSource, Cooldown, CooldownCause, ModelId, NotFree, Timestamp, not_free_reasons};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::Duration;

/// The upstream whose account holds the quotas shown (declared providers keep their own).
pub const PROVIDER: &str = router_core::OPENROUTER_PROVIDER;

/// Everything the dashboard shows besides the live decisions.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub version: &'static str,
    /// Milliseconds since the Unix epoch, by the router's clock.
    pub now: Timestamp,
    pub started_at: Timestamp,
    pub uptime_secs: u64,
    pub catalog: CatalogView,
    pub quota: QuotaView,
    /// Free models (and `:free` ones past their expiration date), in id order.
    pub pool: Vec<PoolEntry>,
    /// Pool entries by state.
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
    pub not_free_providers: BTreeMap<String, router_core::quota::NotFreeMark>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CatalogView {
    pub provider: &'static str,
    /// `live`, `disk_cache`, `embedded`, `file` or `memory`.
    pub source: &'static str,
    pub description: String,
    pub models: usize,
    pub free_models: usize,
    pub skipped: usize,
    pub fetched_at: Timestamp,
    pub age_secs: u64,
    /// The background refresh, when the server runs the live catalog.
    pub refresh: Option<RefreshView>,
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
    pub day_source: &'static str,
    /// Upstream's last reading of `free_model_daily_requests`, when it is from today.
    pub upstream_day: Option<router_core::UpstreamDay>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WindowView {
    pub used: u32,
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    /// When the window's count starts again from zero.
    pub resets_at: Timestamp,
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
    /// `ready`, `cooling`, `breaker_open`, `probing`, `unavailable` or `expired`.
    pub state: &'static str,
    /// When it is eligible again, for the timed states.
    pub until: Option<Timestamp>,
    pub reason: Option<String>,
    pub expires: Option<String>,
    pub recent: Option<RecentView>,
}

fn state_of(cooldown: Option<&Cooldown>) -> &'static str {
    match cooldown.map(|c| c.cause) {
        None => "ready",
        Some(CooldownCause::RateLimited) => "cooling",
        Some(CooldownCause::CircuitOpen) => "breaker_open",
        Some(CooldownCause::ProbeInFlight) => "probing",
        Some(CooldownCause::Unavailable) => "unavailable",
    }
}

fn source_label(s: &CatalogSource) -> &'static str {
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

impl StatusReport {
    /// Reads the router, the catalog adapter and the counters once.
    pub fn read(state: &AppState) -> StatusReport {
        let router = &state.router;
        let now = router.now();
        let snap = router.catalog();
        let stats = snap.stats(now);
        let cooldowns = router.cooldowns();
        let quota = router.quota_report();
        let recent = state.metrics.recent_by_model();
        let uptime = state.metrics.uptime();

        let mut counts = CooldownCounts::default();
        for (_, c) in &cooldowns {
            counts.add(c.cause);
        }
        let by_id: HashMap<&ModelId, &Cooldown> = cooldowns.iter().map(|(id, c)| (id, c)).collect();
        let not_free = router.not_free_providers();

        let mut pool = Vec::new();
        let mut pool_states = BTreeMap::new();
        for entry in snap.entries() {
            let info = &entry.info;
            let expired = if entry.is_free(now) {
                false
            } else if info.id.is_free_variant() && only_expired(&not_free_reasons(info, now)) {
                true
            } else {
                continue;
            };
            let cooldown = by_id.get(&info.id).copied();
            let unpaid = not_free.get(info.provider_name());
            let state = match (expired, unpaid) {
                (true, _) => "expired",
                (false, Some(_)) => "not_free",
                (false, None) => state_of(cooldown),
            };
            let caps = entry.capabilities();
            *pool_states.entry(state).or_insert(0) += 1;
            pool.push(PoolEntry {
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
                state,
                until: if expired { None } else { cooldown.and_then(|c| c.until) },
                reason: if expired {
                    Some(format!("expired on {}", info.expiration_date.as_deref().unwrap_or("?")))
                } else if let Some(mark) = unpaid {
                    Some(format!("its provider asked for payment at {}: {}", mark.since, mark.reason))
                } else {
                    cooldown.map(|c| c.cause.to_string())
                },
                expires: info.expiration_date.clone(),
                recent: recent.get(&info.id).cloned(),
            });
        }

        let window = |used: u32, limit: Option<u32>, resets_at: Timestamp| WindowView {
            used,
            limit,
            remaining: limit.map(|l| l.saturating_sub(used)),
            resets_at,
        };
        let refresh = state.catalog.as_ref().map(|c| {
            let s = c.stats();
            RefreshView {
                ok: s.refreshes_ok,
                failed: s.refreshes_failed,
                last_error: s.last_error,
                last_attempt_at: s.last_attempt_at,
                last_success_at: s.last_success_at,
            }
        });
        StatusReport {
            version: env!("CARGO_PKG_VERSION"),
            now,
            started_at: Timestamp::from_millis(
                now.as_millis().saturating_sub(u64::try_from(uptime.as_millis()).unwrap_or(u64::MAX)),
            ),
            uptime_secs: uptime.as_secs(),
            catalog: CatalogView {
                provider: PROVIDER,
                source: source_label(&stats.source),
                description: stats.source.to_string(),
                models: stats.models,
                free_models: stats.free_models,
                skipped: stats.skipped,
                fetched_at: stats.fetched_at,
                age_secs: stats.age_secs,
                refresh,
            },
            quota: QuotaView {
                provider: PROVIDER,
                scope: "account",
                minute: window(quota.minute_used, quota.minute_limit, now.next_minute()),
                day: WindowView {
                    remaining: quota.day_remaining,
                    ..window(quota.day_used, quota.day_limit, now.next_utc_midnight())
                },
                blocked_until: quota.blocked_until,
                day_source: quota.day_source.as_str(),
                upstream_day: quota.upstream,
            },
            pool,
            pool_states,
            cooldowns: counts,
            stream_errors: router.stream_errors(),
            trends: state.metrics.trends(now),
            event_subscribers: state.metrics.decisions().subscribers(),
            not_free_providers: not_free,
        }
    }
}

/// A comment line this often keeps idle event streams (and proxies) open.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// `GET /api/v1/router/status`.
pub async fn status(State(state): State<AppState>) -> Response {
    Json(StatusReport::read(&state)).into_response()
}

/// `GET /api/v1/router/events`: the decisions log as Server-Sent Events.
pub async fn events(State(state): State<AppState>) -> Response {
    if state.metrics.decisions().subscribers() >= crate::events::MAX_SUBSCRIBERS {
        let mut e = crate::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("at most {} live-events subscribers at once; retry later", crate::events::MAX_SUBSCRIBERS),
            "too_many_subscribers",
        );
        e.retry_after = Some(std::time::Duration::from_secs(5));
        return e.into_response();
    }
    let stream = decision_stream(state.metrics.decisions());
    let mut resp = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_EVERY)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// The router's families, from the read model: cooldowns, quotas, the catalog, the pool.
pub(crate) fn render_metrics(report: &StatusReport, out: &mut String) {
    family(out, "router_stream_errors_total", "counter", "Error chunks in streams already sent to a client");
    let _ = writeln!(out, "router_stream_errors_total {}", report.stream_errors);

    family(out, "router_provider_not_free", "gauge", "Declared providers out of the pool since they asked for payment");
    for name in report.not_free_providers.keys() {
        let _ = writeln!(out, "router_provider_not_free{{provider=\"{}\"}} 1", escape(name));
    }

    family(out, "router_models_in_cooldown", "gauge", "Models left out of selection now, by cause");
    for (cause, label) in [
        (CooldownCause::RateLimited, "rate_limited"),
        (CooldownCause::Unavailable, "unavailable"),
        (CooldownCause::CircuitOpen, "circuit_open"),
        (CooldownCause::ProbeInFlight, "probe_in_flight"),
    ] {
        let n = report.cooldowns.get(cause);
        let _ = writeln!(out, "router_models_in_cooldown{{cause=\"{label}\"}} {n}");
    }

    let q = &report.quota;
    family(out, "router_quota_used", "gauge", "Upstream requests counted in the current window");
    let _ = writeln!(out, "router_quota_used{{window=\"minute\"}} {}", q.minute.used);
    let _ = writeln!(out, "router_quota_used{{window=\"day\"}} {}", q.day.used);
    family(out, "router_quota_limit", "gauge", "Configured upstream request limit per window (absent: none)");
    family(out, "router_quota_remaining", "gauge", "Upstream requests left in the current window");
    for (window, w) in [("minute", &q.minute), ("day", &q.day)] {
        if let (Some(limit), Some(remaining)) = (w.limit, w.remaining) {
            let _ = writeln!(out, "router_quota_limit{{window=\"{window}\"}} {limit}");
            let _ = writeln!(out, "router_quota_remaining{{window=\"{window}\"}} {remaining}");
        }
    }
    family(
        out,
        "router_quota_day_source",
        "gauge",
        "1 for where today's count comes from: upstream (reconciled) or local",
    );
    let _ = writeln!(out, "router_quota_day_source{{source=\"{}\"}} 1", q.day_source);
    family(out, "router_quota_blocked", "gauge", "1 while the account is blocked (a limit reached upstream or here)");
    let _ = writeln!(out, "router_quota_blocked {}", u8::from(q.blocked_until.is_some()));

    let c = &report.catalog;
    family(out, "router_catalog_info", "gauge", "The catalog in use, by source");
    let _ = writeln!(out, "router_catalog_info{{source=\"{}\"}} 1", escape(c.source));
    family(out, "router_catalog_models", "gauge", "Models in the catalog");
    let _ = writeln!(out, "router_catalog_models {}", c.models);
    family(out, "router_catalog_free_models", "gauge", "Free models in the catalog");
    let _ = writeln!(out, "router_catalog_free_models {}", c.free_models);
    family(out, "router_catalog_age_seconds", "gauge", "Time since the catalog's data was fetched");
    let _ = writeln!(out, "router_catalog_age_seconds {}", c.age_secs);
    if let Some(r) = &c.refresh {
        family(out, "router_catalog_refreshes_total", "counter", "Catalog refreshes, by result");
        let _ = writeln!(out, "router_catalog_refreshes_total{{result=\"ok\"}} {}", r.ok);
        let _ = writeln!(out, "router_catalog_refreshes_total{{result=\"failed\"}} {}", r.failed);
    }

    family(out, "router_pool_models", "gauge", "Models in the dashboard's pool, by state");
    for (state, n) in &report.pool_states {
        let _ = writeln!(out, "router_pool_models{{state=\"{state}\"}} {n}");
    }
    family(out, "router_uptime_seconds", "gauge", "Time since the server started");
    let _ = writeln!(out, "router_uptime_seconds {}", report.uptime_secs);
}
