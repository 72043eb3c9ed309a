//! The one refresh engine of the router's catalogs (OpenRouter's and each declared
//! provider's): a background loop that refreshes now, then every interval with ±10%
//! jitter (so that many routers started together do not fetch in step), and sooner after
//! a failure (a retry base doubling up to the interval); and the counters every catalog
//! keeps of its refreshes. A catalog says how to fetch and what to keep; a failed
//! refresh keeps its last good list (never empty because upstream hiccuped).

use router_core::{CatalogSource, ModelId, Timestamp};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;

/// A catalog the loop refreshes.
#[async_trait::async_trait]
pub trait Refresh: Send + Sync + 'static {
    /// One refresh: what it changed, or why it failed (the catalog keeps its last good
    /// list).
    async fn refresh_once(&self) -> Result<Outcome, Failed>;
}

/// A catalog as a process sees it, whatever its adapter: named by its provider,
/// refreshed by its own loop, counted. A one-shot process (the CLI) reads here whether
/// its disk cache is fresh enough and where it fetches and saves.
pub trait Refreshed: Refresh {
    /// The provider whose model list it is.
    fn provider(&self) -> &str;

    /// Where its list is fetched from (`…/models`).
    fn models_url(&self) -> &str;

    /// Where its last good list is saved, when it is.
    fn cache_path(&self) -> Option<&Path>;

    /// Where its current list came from, and when that was fetched.
    fn origin(&self) -> (CatalogSource, Timestamp);

    /// How many models its current list holds, and what its refreshes did.
    fn refreshes(&self) -> (usize, Counters);

    /// When its loop refreshes it.
    fn schedule(&self) -> Schedule;

    /// Starts its refresh loop on its own schedule (see [`spawn`]).
    fn spawn_loop(self: Arc<Self>) -> JoinHandle<()>;
}

/// What one successful refresh changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub models: usize,
    pub free_models: usize,
    /// Malformed entries left out of this fetch.
    pub skipped: usize,
    /// Ids new since the previous list, in id order.
    pub added: Vec<ModelId>,
    /// Ids gone since the previous list, in id order.
    pub removed: Vec<ModelId>,
    /// Set when the list was swapped in but could not be saved to the disk cache.
    pub cache_error: Option<String>,
}

impl Outcome {
    /// The ids a refresh from the list `before` to the list `after` added and removed,
    /// each in id order: the one rule of every catalog's outcome.
    pub fn changed<'a>(
        before: impl IntoIterator<Item = &'a ModelId>,
        after: impl IntoIterator<Item = &'a ModelId>,
    ) -> (Vec<ModelId>, Vec<ModelId>) {
        let (before, after): (BTreeSet<&ModelId>, BTreeSet<&ModelId>) =
            (before.into_iter().collect(), after.into_iter().collect());
        let ids = |a: &BTreeSet<&ModelId>, b: &BTreeSet<&ModelId>| a.difference(b).map(|id| (*id).clone()).collect();
        (ids(&after, &before), ids(&before, &after))
    }

    /// Several catalogs' refreshes as one: the counts summed, the ids and cache errors
    /// one after the other.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Outcome>) -> Outcome {
        let mut out = Outcome::default();
        for o in all {
            out.models += o.models;
            out.free_models += o.free_models;
            out.skipped += o.skipped;
            out.added.extend(o.added.iter().cloned());
            out.removed.extend(o.removed.iter().cloned());
            out.cache_error = match (out.cache_error.take(), &o.cache_error) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.or_else(|| b.clone()),
            };
        }
        out
    }
}

/// Why a refresh failed, redacted by the catalog (no key, no password of a URL): safe
/// to keep, show and log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// When a catalog is refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Between two successful refreshes (before jitter).
    pub interval: Duration,
    /// The first retry after a failure; doubles at each failure, up to the interval.
    pub retry_base: Duration,
}

impl Schedule {
    /// The pause before the next refresh after `failures` failures in a row, before jitter.
    pub fn next_delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return self.interval;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.retry_base.saturating_mul(factor).min(self.interval)
    }
}

/// Refreshes `catalog` now, then on `schedule`. Stops when the catalog is dropped.
pub fn spawn<T: Refresh>(catalog: &Arc<T>, schedule: Schedule, now: Timestamp) -> JoinHandle<()> {
    let catalog: Weak<T> = Arc::downgrade(catalog);
    let mut jitter = Jitter::from_entropy(now);
    tokio::spawn(async move {
        let mut failures: u32 = 0;
        loop {
            let Some(this) = catalog.upgrade() else { break };
            let ok = this.refresh_once().await.is_ok();
            drop(this);
            failures = if ok { 0 } else { failures.saturating_add(1) };
            tokio::time::sleep(jitter.apply(schedule.next_delay(failures))).await;
        }
    })
}

/// What a catalog's refreshes did, for `/readyz`, `/metrics`, the status page and the CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub refreshes_ok: u64,
    pub refreshes_failed: u64,
    /// The last refresh error, if the last refresh failed (redacted by the catalog).
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
}

impl Counters {
    /// Counts one refresh at `now`: a success clears the last error.
    pub fn record(&mut self, now: Timestamp, outcome: Result<(), String>) {
        self.last_attempt_at = Some(now);
        match outcome {
            Ok(()) => {
                self.refreshes_ok += 1;
                self.last_success_at = Some(now);
                self.last_error = None;
            }
            Err(e) => {
                self.refreshes_failed += 1;
                self.last_error = Some(e);
            }
        }
    }
}

/// A small generator (splitmix64) for the jitter: no shared random state, and seeded
/// once per loop.
#[derive(Debug)]
struct Jitter(u64);

impl Jitter {
    fn from_entropy(now: Timestamp) -> Self {
        Jitter(getrandom::u64().unwrap_or_else(|_| now.as_millis()))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `d` times a factor uniform in [0.9, 1.1).
    fn apply(&mut self, d: Duration) -> Duration {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.9 + 0.2 * unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_up_to_the_interval() {
        let s = Schedule { interval: Duration::from_secs(600), retry_base: Duration::from_secs(30) };
        let delays: Vec<u64> = (0..8).map(|f| s.next_delay(f).as_secs()).collect();
        assert_eq!(delays, [600, 30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(s.next_delay(u32::MAX), Duration::from_secs(600), "no overflow");
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let mut j = Jitter(7);
        let base = Duration::from_secs(600);
        let delays: BTreeSet<Duration> = (0..1000).map(|_| j.apply(base)).collect();
        assert!(delays.len() > 900, "jitter varies");
        for d in &delays {
            assert!(*d >= Duration::from_secs(540) && *d < Duration::from_secs(660), "{d:?}");
        }
        let lo = delays.iter().filter(|d| **d < base).count();
        assert!((300..700).contains(&lo), "roughly half below the interval: {lo}");
    }

    #[test]
    fn counters_keep_the_last_error_until_a_success() {
        let mut c = Counters::default();
        c.record(Timestamp::from_secs(1), Err("down".into()));
        c.record(Timestamp::from_secs(2), Err("still down".into()));
        assert_eq!((c.refreshes_failed, c.last_error.as_deref()), (2, Some("still down")));
        assert_eq!((c.last_attempt_at, c.last_success_at), (Some(Timestamp::from_secs(2)), None));
        c.record(Timestamp::from_secs(3), Ok(()));
        assert_eq!((c.refreshes_ok, c.last_error.as_deref()), (1, None));
        assert_eq!(c.last_success_at, Some(Timestamp::from_secs(3)));
    }

    /// Fails twice, then succeeds: one refresh at once, retries after the backoff, and
    /// the loop ends when the catalog is dropped.
    struct Flaky(AtomicU32);

    #[async_trait::async_trait]
    impl Refresh for Flaky {
        async fn refresh_once(&self) -> Result<Outcome, Failed> {
            let ok = self.0.fetch_add(1, Ordering::SeqCst) >= 2;
            if ok { Ok(Outcome::default()) } else { Err(Failed("down".into())) }
        }
    }

    #[test]
    fn a_change_of_list_gives_the_ids_added_and_removed_in_id_order() {
        let ids = |all: &[&str]| all.iter().map(|s| ModelId::new(s)).collect::<Vec<_>>();
        let (before, after) = (ids(&["c", "a", "b"]), ids(&["d", "b", "a", "e"]));
        assert_eq!(Outcome::changed(&before, &after), (ids(&["d", "e"]), ids(&["c"])));
        assert_eq!(Outcome::changed(&after, &after), (Vec::new(), Vec::new()));
    }

    #[test]
    fn several_outcomes_sum_up() {
        let id = |s: &str| ModelId::new(s);
        let a = Outcome { models: 3, free_models: 2, added: vec![id("a")], ..Outcome::default() };
        let b = Outcome {
            models: 1,
            free_models: 1,
            skipped: 4,
            removed: vec![id("b")],
            cache_error: Some("disk full".into()),
            ..Outcome::default()
        };
        let c = Outcome { cache_error: Some("read-only".into()), ..Outcome::default() };
        let all = Outcome::sum([&a, &b, &c]);
        assert_eq!((all.models, all.free_models, all.skipped), (4, 3, 4));
        assert_eq!((all.added, all.removed), (vec![id("a")], vec![id("b")]));
        assert_eq!(all.cache_error.as_deref(), Some("disk full; read-only"));
        assert_eq!(Outcome::sum([&a]), a, "one is itself");
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_retries_sooner_after_a_failure_and_stops_with_its_catalog() {
        let flaky = Arc::new(Flaky(AtomicU32::new(0)));
        let schedule = Schedule { interval: Duration::from_secs(600), retry_base: Duration::from_secs(30) };
        let task = spawn(&flaky, schedule, Timestamp::default());
        tokio::task::yield_now().await;
        assert_eq!(flaky.0.load(Ordering::SeqCst), 1, "refreshed at once");
        // The jitter is random, so each check sits outside every window it allows:
        // the retries land in [27, 33) s and 54 to 66 s later, in [81, 99) s; the next
        // refresh, at least 540 s after that, not before 621 s, and less than 660 s after
        // it, before 759 s.
        tokio::time::sleep(Duration::from_secs(34)).await;
        assert_eq!(flaky.0.load(Ordering::SeqCst), 2, "retried within 30 s ± 10%");
        tokio::time::sleep(Duration::from_secs(100 - 34)).await;
        assert_eq!(flaky.0.load(Ordering::SeqCst), 3, "then within 60 s ± 10%");
        tokio::time::sleep(Duration::from_secs(620 - 100)).await;
        assert_eq!(flaky.0.load(Ordering::SeqCst), 3, "after a success, the interval (at least 540 s)");
        tokio::time::sleep(Duration::from_secs(760 - 620)).await;
        assert_eq!(flaky.0.load(Ordering::SeqCst), 4, "and within 600 s ± 10%");
        drop(flaky);
        tokio::time::sleep(Duration::from_secs(700)).await;
        assert!(task.is_finished(), "the loop ends with its catalog");
    }
}
