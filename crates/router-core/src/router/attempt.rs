//! One request's attempt state: its plan, what was tried, what was held, what was
//! spent, and the report it builds; the loop in `route` only moves it along.

use super::RouterConfig;
use super::in_flight::Slot;
use super::plan::{Plan, no_candidate};
use super::providers::{Held, drop_provider};
use crate::catalog::CatalogSnapshot;
use crate::error::RouteError;
use crate::model::ModelId;
use crate::quota::ProviderBlock;
use crate::report::{Attempt, RouteFailure, RouteReport};
use crate::request::Requirements;
use crate::select::SelectionRng;
use crate::time::Timestamp;
use crate::upstream::TransportError;

/// The state of one request's attempts.
pub(super) struct Run {
    pub(super) plan: Plan,
    pub(super) report: RouteReport,
    pub(super) rng: SelectionRng,
    /// Snapshot indices tried (or passed over) in this request.
    pub(super) tried: Vec<usize>,
    /// The least context a model needs after one said the prompt is too long.
    pub(super) min_context: u64,
    /// The last failure worth telling the client.
    pub(super) last: Option<RouteError>,
    /// The accounts and models passed over, with the earliest each recovers.
    pub(super) held: Held,
    /// Attempts that count against `max_attempts`: raced and cheap ones do not.
    pub(super) spent: u32,
    pub(super) start: Timestamp,
    /// The admitted attempt's slot at a provider with a `max_concurrent`.
    pub(super) slot: Option<Slot>,
}

impl Run {
    pub(super) fn new(plan: Plan, rng: SelectionRng, start: Timestamp) -> Self {
        let report = RouteReport { candidates: plan.candidates.len(), ..RouteReport::default() };
        let held = Held::default();
        Run { plan, report, rng, tried: Vec::new(), min_context: 0, last: None, held, spent: 0, start, slot: None }
    }

    /// Whether the budget of attempts and upstream calls allows another.
    pub(super) fn may_try(&self, config: &RouterConfig) -> bool {
        let cap = usize::try_from(config.max_upstream_calls.max(1)).unwrap_or(usize::MAX);
        self.spent < config.max_attempts && self.report.attempts.len() < cap
    }

    /// The deadline's error, once an attempt was made and the deadline passed: no
    /// attempt starts after it.
    pub(super) fn past_deadline(&mut self, config: &RouterConfig, now: Timestamp) -> Option<RouteError> {
        let passed = !self.report.attempts.is_empty() && now.saturating_since(self.start) >= config.deadline;
        passed.then(|| self.last.take().unwrap_or(RouteError::Deadline(config.deadline)))
    }

    /// Passes over the model at `index` for the rest of the request.
    pub(super) fn pass_model(&mut self, index: usize, held: Option<(String, ProviderBlock)>) {
        if let Some((name, block)) = held {
            self.held.note_named(&name, block);
        }
        self.tried.push(index);
    }

    /// Passes over every model of account `name` for the rest of the request.
    pub(super) fn pass_account(&mut self, snap: &CatalogSnapshot, name: &str, block: Option<ProviderBlock>) {
        if let Some(block) = block {
            self.held.note_named(name, block);
        }
        drop_provider(&mut self.plan, snap, name);
    }

    /// Records an attempt on `model` in the report.
    pub(super) fn attempted(
        &mut self,
        model: &ModelId,
        failure: Option<&TransportError>,
        raced: bool,
        elapsed: std::time::Duration,
    ) {
        let attempt = Attempt { model: model.clone(), failure: failure.map(|e| e.kind), elapsed, raced };
        self.report.attempts.push(attempt);
    }

    /// The request failed with `error`.
    pub(super) fn fail<T>(self, error: RouteError) -> Result<T, RouteFailure> {
        Err(RouteFailure { error, report: self.report })
    }

    /// Nothing is left to try: the earliest recovery of what was held, the last failure,
    /// or why no candidate serves the request.
    pub(super) fn exhausted<T>(
        mut self,
        snap: &CatalogSnapshot,
        reqs: &Requirements,
        now: Timestamp,
    ) -> Result<T, RouteFailure> {
        let held = std::mem::take(&mut self.held);
        let error = held.into_error(self.last.take(), now).unwrap_or_else(|| no_candidate(snap, reqs, &[], self.start));
        self.fail(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::fixture::{self, T0, chat, free, router};
    use std::time::Duration;

    fn check(config: &RouterConfig, spent: u32, attempts: usize, elapsed: Duration) -> (bool, Option<RouteError>) {
        let r = router(vec![free("o/b:free", None)], None, &[]);
        let mut run = fixture::run(&r, &chat("openrouter/free"));
        run.spent = spent;
        for _ in 0..attempts {
            run.attempted(&ModelId::new("o/b:free"), None, false, Duration::ZERO);
        }
        (run.may_try(config), run.past_deadline(config, T0.saturating_add(elapsed)))
    }

    #[test]
    fn attempts_stop_at_either_budget_and_the_deadline_after_the_first() {
        let config = RouterConfig { max_attempts: 2, max_upstream_calls: 3, ..RouterConfig::default() };
        assert!(check(&config, 1, 2, Duration::ZERO).0);
        assert!(!check(&config, 2, 2, Duration::ZERO).0, "the attempts are spent");
        assert!(!check(&config, 0, 3, Duration::ZERO).0, "the calls are spent");
        let late = config.deadline;
        assert!(check(&config, 0, 0, late).1.is_none(), "the first attempt always starts");
        assert!(matches!(check(&config, 0, 1, late).1, Some(RouteError::Deadline(_))));
    }
}
