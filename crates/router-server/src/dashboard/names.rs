//! The names the dashboard filters and colours by, checked against the Rust names they
//! come from (the serialized names of the pool states, the error kinds and types, the
//! decision outcomes, the catalog sources, the day sources): a rename on either side
//! fails here instead of silently emptying a filter or greying a colour.

use super::{APP_CSS, APP_JS, INDEX_HTML};
use crate::events::{Decision, DecisionContext};
use crate::status::view::{PoolState, source_label};
use router_core::{
    CatalogSource, DaySource, ErrorKind, ModelId, QuotaBlock, QuotaScope, RequestError, RouteError, RouteReport,
    Timestamp, TransportError,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// The text after `start` up to the next `end`; fails the test when either is missing,
/// so that moving the markup cannot make a check pass vacuously.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("`{start}` not found")) + start.len();
    let len = text[from..].find(end).unwrap_or_else(|| panic!("no `{end}` after `{start}`"));
    &text[from..from + len]
}

fn word(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The literals the page compares `expr` with (`expr === '…'` or `expr !== '…'`).
fn compared(expr: &str) -> BTreeSet<&'static str> {
    let mut found = BTreeSet::new();
    for op in [" === '", " !== '"] {
        let needle = format!("{expr}{op}");
        for (at, _) in APP_JS.match_indices(&needle) {
            let rest = &APP_JS[at + needle.len()..];
            found.insert(&rest[..rest.find('\'').expect("a closing quote")]);
        }
    }
    assert!(!found.is_empty(), "app.js no longer compares `{expr}`: update this test");
    found
}

fn serialized<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).expect("serializes").as_str().expect("a string").to_owned()
}

fn pool_states() -> BTreeSet<String> {
    PoolState::ALL.iter().map(serialized).collect()
}

fn decision(status: u16, error: Option<(&'static str, String)>) -> Decision {
    Decision {
        id: 0,
        at: Timestamp::from_millis(0),
        context: DecisionContext { requirements: Default::default(), targets: vec![], seed: 0, stream: false, error },
        report: RouteReport::default(),
        status,
        total: Duration::ZERO,
        overhead: Duration::ZERO,
    }
}

/// The outcome of an answered request (and of a successful attempt).
fn success() -> &'static str {
    decision(200, None).outcome()
}

/// Every `outcome` a decision (and an attempt) can have: `ok`, the error types of every
/// route error (each upstream kind among them) and a failure without one.
fn outcomes() -> BTreeSet<String> {
    let model = ModelId::new("a/b:free");
    let mut errors = vec![
        RouteError::Request(RequestError::NotAnObject),
        RouteError::UnknownModel(model.clone()),
        RouteError::NotFree { model: model.clone(), reasons: vec![] },
        RouteError::NoCandidate { message: String::new(), requirements: vec![] },
        RouteError::AllCoolingDown { until: Timestamp::from_millis(0), retry_after: Duration::ZERO },
        RouteError::Quota {
            block: QuotaBlock { scope: QuotaScope::Minute { limit: 1 }, until: Timestamp::from_millis(0) },
            retry_after: Duration::ZERO,
        },
        RouteError::Deadline(Duration::ZERO),
    ];
    for kind in ErrorKind::ALL {
        errors.push(RouteError::Upstream { model: model.clone(), error: TransportError::new(kind, "") });
    }
    let mut names: BTreeSet<String> =
        errors.iter().map(|e| decision(400, Some((e.error_type(), String::new()))).outcome().to_owned()).collect();
    names.insert(success().to_owned());
    names.insert(decision(502, None).outcome().to_owned());
    names
}

#[test]
fn the_state_filter_offers_exactly_the_pool_states() {
    let select = between(INDEX_HTML, "<select id=\"f-state\"", "</select>");
    let offered: BTreeSet<String> = select
        .split("value=\"")
        .skip(1)
        .map(|s| s[..s.find('"').expect("quote")].to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    assert_eq!(offered, pool_states(), "the page's state filter (left) against PoolState (right)");
}

#[test]
fn every_pool_state_has_a_colour_and_every_colour_a_state() {
    let coloured: BTreeSet<String> = APP_CSS.split(".state.").skip(1).map(|s| word(s).to_owned()).collect();
    assert_eq!(coloured, pool_states(), "the stylesheet's `.state.*` (left) against PoolState (right)");
    assert!(APP_JS.contains(&format!("s.{}", PoolState::Ready.as_str())), "the pool count reads the ready state");
}

#[test]
fn every_coloured_outcome_is_one_the_router_reports() {
    let known = outcomes();
    let colours = between(APP_JS, "const OUTCOME_COLORS = {", "}");
    let keys: Vec<&str> = colours.split(',').map(|kv| kv.split(':').next().unwrap_or("").trim()).collect();
    assert!(keys.len() > 3, "OUTCOME_COLORS not read: {keys:?}");
    for key in keys {
        assert!(known.contains(key), "app.js colours the outcome `{key}`, which no decision has: {known:?}");
    }
    for expr in ["d.outcome", "a.outcome", "(a", " b"] {
        assert_eq!(compared(expr), BTreeSet::from([success()]), "{expr}");
    }
    let css_outcomes: BTreeSet<&str> = APP_CSS.split(".outcome.").skip(1).map(word).collect();
    assert_eq!(css_outcomes, BTreeSet::from([success()]), "the stylesheet's `.outcome.*`");
}

#[test]
fn the_sources_and_upstream_the_page_compares_with_exist() {
    let sources: BTreeSet<&str> = [
        CatalogSource::Live { url: String::new() },
        CatalogSource::DiskCache { path: String::new() },
        CatalogSource::Embedded { snapshot_date: String::new() },
        CatalogSource::File { path: String::new() },
        CatalogSource::Memory,
    ]
    .iter()
    .map(source_label)
    .collect();
    assert!(compared("c.source").is_subset(&sources), "catalog sources: {sources:?}");
    let days: BTreeSet<String> = [DaySource::Local, DaySource::Upstream].iter().map(serialized).collect();
    for d in compared("q.day_source") {
        assert!(days.contains(d), "day source `{d}` is not one of {days:?}");
    }
    assert!(!APP_JS.contains("'openrouter'"), "the page names no provider: the upstream of a model is data");
}
