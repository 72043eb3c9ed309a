//! Every catalog in force, whatever its adapter (OpenRouter's is one of them): their
//! refresh loops, a one-shot process's refreshes (the CLI's), and their refreshes by
//! provider as `/readyz`, `/metrics` and the status page show them.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub use catalog_refresh::{Counters, Failed, Outcome, Refresh, Refreshed};

/// One catalog's refreshes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CatalogRefresh {
    /// The provider whose model list it is.
    pub provider: String,
    /// Models in its current list.
    pub models: usize,
    #[serde(flatten)]
    pub counters: Counters,
}

/// The catalogs a running process refreshes, in the order the pool lists their providers.
#[derive(Clone, Default)]
pub struct Catalogs(Vec<Arc<dyn Refreshed>>);

impl fmt::Debug for Catalogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|c| c.provider())).finish()
    }
}

impl Catalogs {
    pub(crate) fn new(list: Vec<Arc<dyn Refreshed>>) -> Self {
        Catalogs(list)
    }

    /// Each catalog in force, in the pool's order.
    pub fn list(&self) -> &[Arc<dyn Refreshed>] {
        &self.0
    }

    /// Each catalog's counters now.
    pub fn read(&self) -> Vec<CatalogRefresh> {
        let one = |c: &Arc<dyn Refreshed>| {
            let (models, counters) = c.refreshes();
            CatalogRefresh { provider: c.provider().to_owned(), models, counters }
        };
        self.0.iter().map(one).collect()
    }

    /// Refreshes `provider`'s catalog once now: `Some(false)` when that failed (it keeps
    /// its last good list), `None` when no catalog in force lists that provider.
    pub async fn refresh(&self, provider: &str) -> Option<bool> {
        let catalog = self.0.iter().find(|c| c.provider() == provider)?;
        Some(catalog.refresh_once().await.is_ok())
    }

    /// Each catalog's refresh loop.
    pub fn spawn_loops(&self) -> Vec<JoinHandle<()>> {
        self.0.iter().map(|c| Arc::clone(c).spawn_loop()).collect()
    }
}

/// The pool's refreshes as one: the sums, the last attempt, and the oldest last success
/// (the pool is as fresh as its stalest catalog; `None` while one never succeeded). Of
/// several catalogs, a last error is named by its provider. `None` with no catalog.
pub fn overall(list: &[CatalogRefresh]) -> Option<Counters> {
    let first = list.first()?;
    let mut all = Counters { last_success_at: first.counters.last_success_at, ..Counters::default() };
    for c in list {
        let n = &c.counters;
        all.refreshes_ok += n.refreshes_ok;
        all.refreshes_failed += n.refreshes_failed;
        all.last_attempt_at = all.last_attempt_at.max(n.last_attempt_at);
        all.last_success_at = match (all.last_success_at, n.last_success_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        if all.last_error.is_none() {
            all.last_error = match &n.last_error {
                Some(e) if list.len() > 1 => Some(format!("{}: {e}", c.provider)),
                other => other.clone(),
            };
        }
    }
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::Timestamp;

    fn at(s: u64) -> Option<Timestamp> {
        Some(Timestamp::from_millis(s * 1000))
    }

    fn refresh(
        provider: &str,
        ok: u64,
        failed: u64,
        error: Option<&str>,
        success: Option<Timestamp>,
    ) -> CatalogRefresh {
        let counters = Counters {
            refreshes_ok: ok,
            refreshes_failed: failed,
            last_error: error.map(str::to_owned),
            last_attempt_at: at(100 + ok + failed),
            last_success_at: success,
        };
        CatalogRefresh { provider: provider.into(), models: 1, counters }
    }

    fn check(list: &[CatalogRefresh], expected: Option<Counters>) {
        assert_eq!(overall(list), expected);
    }

    #[test]
    fn one_catalog_is_shown_as_it_is() {
        let one = refresh("openrouter", 3, 1, Some("HTTP 500"), at(50));
        check(std::slice::from_ref(&one), Some(one.counters.clone()));
        check(&[], None);
    }

    #[test]
    fn several_add_up_and_are_as_fresh_as_the_stalest() {
        let list = [refresh("openrouter", 3, 0, None, at(50)), refresh("groq", 1, 2, Some("HTTP 401"), at(20))];
        let expected = Counters {
            refreshes_ok: 4,
            refreshes_failed: 2,
            last_error: Some("groq: HTTP 401".into()),
            last_attempt_at: at(103),
            last_success_at: at(20),
        };
        check(&list, Some(expected));
        let never = [refresh("openrouter", 3, 0, None, at(50)), refresh("ollama", 0, 1, Some("refused"), None)];
        assert_eq!(overall(&never).and_then(|c| c.last_success_at), None, "one catalog never refreshed");
    }
}
