//! Property tests over arbitrary catalogs and requests: the free rule against an
//! independent oracle, the pick is always a candidate, a non-free or unfit model is never
//! forwarded whatever upstream does, the pick depends only on the seed and the candidate
//! set, and picks are uniform (chi-square).
//!
//! Every generated catalog entry carries the verdict of the free rule and the
//! capabilities it was generated with, so that the oracle here does not reuse the core's
//! own code to decide what is free or what a request needs.

mod catalogs;
mod forwarding;
mod free_and_pick;
mod ports;
mod providers;
mod requests;
mod uniformity;

use proptest::test_runner::Config;
use router_core::Timestamp;
use router_core::time::parse_date;
use std::time::Duration;

pub(crate) const CASES: u32 = 1_000;

pub(crate) fn config() -> Config {
    Config { cases: CASES, failure_persistence: None, ..Config::default() }
}

/// 2026-08-19T12:00:00Z, the generated catalogs' "now".
pub(crate) fn now() -> Timestamp {
    parse_date("2026-08-19").expect("date").saturating_add(Duration::from_secs(12 * 3600))
}
