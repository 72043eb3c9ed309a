//! `openrouter_metadata`: OpenRouter's router metadata (asked for with the header
//! `X-OpenRouter-Metadata: enabled`), built from what the router did for a request
//! ([`RouteReport`]) and why ([`Explanation`]), plus a `router` member with what only
//! this router knows: the seed, the requirements found, every rejected model and why.

use crate::error::RouteError;
use crate::explain::Explanation;
use crate::request::{ChatRequest, ROUTER_MODEL_ID, Target};
use crate::router::RouteReport;
use serde_json::{Value, json};

/// The request header that asks for `openrouter_metadata`.
pub const METADATA_HEADER: &str = "x-openrouter-metadata";
/// The header's earlier name, still accepted.
pub const LEGACY_METADATA_HEADER: &str = "x-openrouter-experimental-metadata";
/// The response member that carries it.
pub const METADATA_MEMBER: &str = "openrouter_metadata";
/// The routing strategy this router reports (OpenRouter's name for `openrouter/free`).
pub const STRATEGY: &str = "free";
/// The provider every attempt goes to: the upstream itself.
pub const PROVIDER: &str = "OpenRouter";

/// Whether a metadata header value asks for the metadata: `enabled`, any case; any
/// other value (`disabled`, a typo, empty) does not.
pub fn is_enabled(value: &[u8]) -> bool {
    value.trim_ascii().eq_ignore_ascii_case(b"enabled")
}

/// The model id the client asked for, as OpenRouter's `requested` names it.
pub fn requested(req: &ChatRequest) -> String {
    match req.targets().first() {
        Some(Target::Model(id)) => id.to_string(),
        Some(Target::AnyFree) | None => ROUTER_MODEL_ID.to_owned(),
    }
}

/// The `openrouter_metadata` object for a request whose routing produced `report` (and
/// `error`, when it failed). `why` is the routing decision in words; without it (a
/// refused request) the `router` member has only the seed.
pub fn openrouter_metadata(
    requested: &str,
    report: &RouteReport,
    error: Option<&RouteError>,
    seed: u64,
    why: Option<&Explanation>,
) -> Value {
    let selected = report.model.as_ref().map(|m| m.as_str());
    // 1-based index of the attempt that answered; on failure the last one tried; 0 when
    // no provider was reached.
    let attempt = report.attempts.iter().position(|a| a.failure.is_none()).map_or(report.attempts.len(), |i| i + 1);
    let attempts: Vec<Value> = report
        .attempts
        .iter()
        .map(|a| {
            let mut v = json!({
                "provider": PROVIDER,
                "model": a.model.as_str(),
                "status": a.failure.map_or(200, |k| k.default_status()),
            });
            if let Some(kind) = a.failure {
                v["reason"] = json!(kind.as_str());
            }
            v
        })
        .collect();
    let available: Vec<Value> = why
        .map(|w| {
            w.candidates
                .iter()
                .map(
                    |id| json!({"provider": PROVIDER, "model": id.as_str(), "selected": Some(id.as_str()) == selected}),
                )
                .collect()
        })
        .unwrap_or_default();
    let summary = match (selected, error) {
        (Some(model), _) => format!("free: candidates={}, attempts={}, selected={model}", report.candidates, attempt),
        (None, Some(e)) => {
            format!("free: candidates={}, attempts={}, failed: {}", report.candidates, attempt, e.error_type())
        }
        (None, None) => format!("free: candidates={}, attempts={}", report.candidates, attempt),
    };
    // A string, as in explain and the events: JavaScript numbers cannot hold every `u64`.
    let mut router = json!({ "seed": seed.to_string() });
    if let Some(w) = why {
        router["requirements"] = json!(w.requirements);
        router["estimated_prompt_tokens"] = json!(w.estimated_prompt_tokens);
        router["rejected"] = json!(w.rejected);
        router["not_free"] = json!(w.not_free);
        router["cooling"] = json!(w.cooling);
        router["quota"] = json!(w.quota);
    }
    if let Some(e) = error {
        router["error_type"] = json!(e.error_type());
    }
    json!({
        "requested": requested,
        "strategy": STRATEGY,
        "region": null,
        "summary": summary,
        "attempt": attempt,
        "is_byok": false,
        "endpoints": {"total": report.candidates, "available": available},
        "attempts": attempts,
        "pipeline": [{
            "type": "routing",
            "name": "free-models-router",
            "summary": format!("{} candidate(s) after the free rule and the request's requirements", report.candidates),
        }],
        "router": router,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelId;
    use crate::router::Attempt;
    use crate::upstream::ErrorKind;
    use std::time::Duration;

    fn attempt(model: &str, failure: Option<ErrorKind>) -> Attempt {
        Attempt { model: ModelId::new(model), failure, elapsed: Duration::ZERO, raced: false }
    }

    #[test]
    fn header_values() {
        assert!(is_enabled(b"enabled") && is_enabled(b"Enabled ") && is_enabled(b"ENABLED"));
        assert!(!is_enabled(b"disabled") && !is_enabled(b"") && !is_enabled(b"enable"));
    }

    #[test]
    fn reports_attempts_in_openrouters_shape() {
        let report = RouteReport {
            model: Some(ModelId::new("b/b:free")),
            candidates: 3,
            attempts: vec![attempt("a/a:free", Some(ErrorKind::EmptyAnswer)), attempt("b/b:free", None)],
            ..RouteReport::default()
        };
        let m = openrouter_metadata("openrouter/free", &report, None, 7, None);
        assert_eq!(m["attempt"], 2);
        assert_eq!(m["strategy"], "free");
        assert_eq!(m["is_byok"], false);
        assert_eq!(m["endpoints"]["total"], 3);
        assert_eq!(
            m["attempts"][0],
            json!({"provider": "OpenRouter", "model": "a/a:free", "status": 502, "reason": "empty_answer"})
        );
        assert_eq!(m["attempts"][1]["status"], 200);
        assert_eq!(m["router"]["seed"], "7");
        assert!(m["summary"].as_str().is_some_and(|s| s.contains("selected=b/b:free")), "{}", m["summary"]);

        let none = openrouter_metadata("openrouter/free", &RouteReport::default(), None, 1, None);
        assert_eq!(none["attempt"], 0, "no provider reached");
    }
}
