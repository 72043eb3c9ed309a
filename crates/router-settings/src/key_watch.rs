//! Upstream's own count of the day's free-model requests (`GET /key`'s
//! `free_model_daily_requests`), read at start, every few minutes and right after a
//! daily-cap 429, and reconciled with the router's count (see
//! [`Router::reconcile_daily`]).

use router_core::{Router, TransportError};
use std::sync::Arc;
use std::time::Duration;
use transport_http::{FreeModelDailyRequests, HttpTransport, KeyInfo};

/// How often upstream's counter is read, by default.
pub const DEFAULT_KEY_REFRESH: Duration = Duration::from_secs(5 * 60);
/// How often the watch looks whether a daily-cap 429 arrived since the last reading.
pub const DAILY_CAP_POLL: Duration = Duration::from_secs(5);

/// Applies one reading of the key: the daily limit from the tier (or upstream's own
/// `limit`) when `adopt_limit`, and the day's count reconciled with upstream's.
pub fn apply(router: &Router, info: &KeyInfo, adopt_limit: bool) {
    match info.free_model_daily_requests {
        Some(FreeModelDailyRequests { used, limit, remaining }) => {
            router.reconcile_daily(used, limit, remaining, adopt_limit);
            tracing::info!(used, limit, remaining, "upstream's daily free-model count read");
        }
        None if adopt_limit => {
            let per_day = info.daily_free_requests();
            let policy = router.quota_policy();
            if policy.per_day.is_some() && policy.per_day != Some(per_day) {
                router.set_quota_limits(policy.per_minute, Some(per_day));
            }
            tracing::info!(free_tier = info.is_free_tier, per_day, "upstream key checked");
        }
        None => {}
    }
}

/// Reads the key once and applies it.
pub async fn sync_once(
    router: &Router,
    transport: &HttpTransport,
    adopt_limit: bool,
) -> Result<KeyInfo, TransportError> {
    let info = transport.key_info().await?;
    apply(router, &info, adopt_limit);
    Ok(info)
}

/// Reads the key at once, then every `every` and soon after each daily-cap failure;
/// runs until aborted. A failed reading is logged once until one succeeds again.
pub async fn watch(router: Arc<Router>, transport: Arc<HttpTransport>, adopt_limit: bool, every: Duration) {
    let mut failing = false;
    let mut caps = router.daily_caps_seen();
    let mut since = Duration::ZERO;
    let mut first = true;
    loop {
        let now_caps = router.daily_caps_seen();
        if first || since >= every || now_caps != caps {
            first = false;
            caps = now_caps;
            since = Duration::ZERO;
            match sync_once(&router, &transport, adopt_limit).await {
                Ok(_) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot read upstream's key; keeping the local daily count");
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(DAILY_CAP_POLL).await;
        since += DAILY_CAP_POLL;
    }
}
