//! The view's names and rules, and `/readyz`'s shape.

use super::*;
use router_core::{CatalogSource, Cooldown, CooldownCause, QuotaReport, Timestamp};

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
