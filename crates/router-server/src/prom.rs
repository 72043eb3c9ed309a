//! Every family of `/metrics`, rendered here and nowhere else, in the Prometheus text
//! format written by hand (a few dozen families do not justify a metrics framework on
//! the hot path): the server's counters ([`Metrics`]), the serving loop's
//! ([`ServeStats`]), and the router's state from its read model ([`RouterView`]), the
//! one `GET /api/v1/router/status` also serializes.

use crate::limits::ServeStats;
use crate::metrics::Metrics;
use crate::status::view::{RouterView, SaveView};
use router_core::CooldownCause;
use router_core::shared::SharedStatus;
use std::fmt::Write as _;

/// The `cause` labels of `router_models_in_cooldown`: the causes' serialized names (a
/// test holds them equal).
const COOLDOWN_CAUSES: [(CooldownCause, &str); 4] = [
    (CooldownCause::RateLimited, "rate_limited"),
    (CooldownCause::Unavailable, "unavailable"),
    (CooldownCause::CircuitOpen, "circuit_open"),
    (CooldownCause::ProbeInFlight, "probe_in_flight"),
];

/// The whole exposition.
pub(crate) fn render(metrics: &Metrics, view: &RouterView) -> String {
    let mut out = String::with_capacity(4096);
    counters(metrics, &mut out);
    serving(&metrics.serve, &mut out);
    router(view, &mut out);
    if let Some(shared) = &view.health.shared_state {
        shared_state(shared, &mut out);
    }
    saves(&view.health.state_save, &mut out);
    out
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The server's request counters and the overhead histogram.
pub(crate) fn counters(metrics: &Metrics, out: &mut String) {
    family(out, "router_requests_total", "counter", "HTTP requests answered, by endpoint and status");
    metrics.for_each_request(|endpoint, status, n| {
        let _ = writeln!(out, "router_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}", endpoint.as_str());
    });
    family(out, "router_upstream_attempts_total", "counter", "Upstream calls, by model and outcome");
    metrics.for_each_attempt(|model, outcome, n| {
        let _ = writeln!(
            out,
            "router_upstream_attempts_total{{model=\"{}\",outcome=\"{outcome}\"}} {n}",
            escape(model.as_str())
        );
    });
    family(out, "router_fallbacks_total", "counter", "Attempts on another model after a failed one");
    let _ = writeln!(out, "router_fallbacks_total {}", metrics.fallbacks());
    family(
        out,
        "router_raced_attempts_total",
        "counter",
        "Failed attempts on a model another request had meanwhile found cooling (not counted against max_attempts)",
    );
    let _ = writeln!(out, "router_raced_attempts_total {}", metrics.raced());

    let name = "router_overhead_seconds";
    family(out, name, "histogram", "Time the router added to a routed request: total minus upstream time");
    let h = metrics.overhead();
    let mut cumulative = 0;
    for (bound, n) in h.bounds.iter().zip(&h.counts) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += h.counts.last().copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum {}", h.sum_secs);
    let _ = writeln!(out, "{name}_count {cumulative}");
}

/// The serving loop's connections and local exhaustion.
fn serving(s: &ServeStats, out: &mut String) {
    use std::sync::atomic::Ordering::Relaxed;
    family(out, "router_client_connections", "gauge", "Client connections open now");
    let _ = writeln!(out, "router_client_connections {}", s.open.load(Relaxed));
    family(
        out,
        "router_client_connections_refused_total",
        "counter",
        "Client connections refused (503) for being over max_connections",
    );
    let _ = writeln!(out, "router_client_connections_refused_total {}", s.refused.load(Relaxed));
    family(
        out,
        "router_local_resource_errors_total",
        "counter",
        "Failures for want of local resources (open files, memory): accepting a client, or opening an \
         upstream connection; never charged to a model",
    );
    let accept = s.accept_resource_errors.load(Relaxed);
    let _ = writeln!(out, "router_local_resource_errors_total{{where=\"accept\"}} {accept}");
    let upstream = router_settings::adapters::local_resource_failures();
    let _ = writeln!(out, "router_local_resource_errors_total{{where=\"upstream\"}} {upstream}");
}

/// The router's families from the read model: cooldowns, quotas, the catalog, the pool.
fn router(view: &RouterView, out: &mut String) {
    family(out, "router_stream_errors_total", "counter", "Error chunks in streams already sent to a client");
    let _ = writeln!(out, "router_stream_errors_total {}", view.stream_errors);

    family(out, "router_provider_not_free", "gauge", "Declared providers out of the pool since they asked for payment");
    for name in view.not_free_providers.keys() {
        let _ = writeln!(out, "router_provider_not_free{{provider=\"{}\"}} 1", escape(name));
    }

    if !view.in_flight.is_empty() {
        family(out, "router_provider_in_flight", "gauge", "Requests in flight to a provider with a max_concurrent");
        for f in &view.in_flight {
            let _ = writeln!(out, "router_provider_in_flight{{provider=\"{}\"}} {}", escape(&f.provider), f.in_flight);
        }
        family(out, "router_provider_max_concurrent", "gauge", "A provider's max_concurrent");
        for f in &view.in_flight {
            let p = escape(&f.provider);
            let _ = writeln!(out, "router_provider_max_concurrent{{provider=\"{p}\"}} {}", f.max_concurrent);
        }
    }

    family(out, "router_models_in_cooldown", "gauge", "Models left out of selection now, by cause");
    for (cause, label) in COOLDOWN_CAUSES {
        let n = view.cooldowns.get(cause);
        let _ = writeln!(out, "router_models_in_cooldown{{cause=\"{label}\"}} {n}");
    }
    quota(view, out);
    catalog(view, out);

    family(out, "router_pool_models", "gauge", "Models in the dashboard's pool, by state");
    for (state, n) in &view.pool_states {
        let _ = writeln!(out, "router_pool_models{{state=\"{state}\"}} {n}");
    }
    family(out, "router_uptime_seconds", "gauge", "Time since the server started");
    let _ = writeln!(out, "router_uptime_seconds {}", view.uptime_secs);
}

fn quota(view: &RouterView, out: &mut String) {
    let q = &view.health.quota;
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
    let _ = writeln!(out, "router_quota_day_source{{source=\"{}\"}} 1", q.day_source.as_str());
    family(out, "router_quota_blocked", "gauge", "1 while the account is blocked (a limit reached upstream or here)");
    let _ = writeln!(out, "router_quota_blocked {}", u8::from(q.blocked_until.is_some()));
}

fn catalog(view: &RouterView, out: &mut String) {
    let c = &view.health.catalog;
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
    if c.refreshes.is_empty() {
        return;
    }
    family(out, "router_provider_catalog_models", "gauge", "Models in each provider's catalog");
    for r in &c.refreshes {
        let _ = writeln!(out, "router_provider_catalog_models{{provider=\"{}\"}} {}", escape(&r.provider), r.models);
    }
    family(out, "router_provider_catalog_refreshes_total", "counter", "Each provider's catalog refreshes, by result");
    for r in &c.refreshes {
        let (p, n) = (escape(&r.provider), &r.counters);
        let _ = writeln!(
            out,
            "router_provider_catalog_refreshes_total{{provider=\"{p}\",result=\"ok\"}} {}",
            n.refreshes_ok
        );
        let _ = writeln!(
            out,
            "router_provider_catalog_refreshes_total{{provider=\"{p}\",result=\"failed\"}} {}",
            n.refreshes_failed
        );
    }
}

/// The link to the state shared with other instances (Redis).
fn shared_state(s: &SharedStatus, out: &mut String) {
    family(out, "router_shared_state_up", "gauge", "Whether the shared state (Redis) answers.");
    let _ = writeln!(out, "router_shared_state_up {}", u8::from(s.connected));
    family(out, "router_shared_state_instances", "gauge", "Router instances seen alive recently.");
    let _ = writeln!(out, "router_shared_state_instances {}", s.instances);
    family(
        out,
        "router_shared_state_local_reservations_total",
        "counter",
        "Quota reservations decided locally because the shared state did not answer.",
    );
    let _ = writeln!(out, "router_shared_state_local_reservations_total {}", s.local_reservations);
    family(
        out,
        "router_shared_state_events_received_total",
        "counter",
        "Cooldowns, breakers and blocks learned from other instances.",
    );
    let _ = writeln!(out, "router_shared_state_events_received_total {}", s.events_received);
}

/// The saving of the resilience state.
fn saves(s: &SaveView, out: &mut String) {
    family(
        out,
        "router_state_save_failures_total",
        "counter",
        "Saves of the resilience state that failed (each is retried).",
    );
    let _ = writeln!(out, "router_state_save_failures_total {}", s.failures);
    family(out, "router_state_save_failing", "gauge", "Whether the last save of the resilience state failed.");
    let _ = writeln!(out, "router_state_save_failing {}", u8::from(s.error.is_some()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_labels_are_the_causes_names() {
        let counts = serde_json::to_value(crate::status::view::CooldownCounts::default()).expect("counts");
        for (cause, label) in COOLDOWN_CAUSES {
            assert_eq!(serde_json::to_value(cause).expect("cause"), label);
            assert!(counts.get(label).is_some(), "the status's cooldown counts lack `{label}`");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
