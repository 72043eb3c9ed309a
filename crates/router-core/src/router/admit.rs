//! The first step of an attempt: pick the next model and reserve its account, in the
//! local counts under the lock, then in the shared store when the account is shared.

use super::Router;
use super::account::{Account, Pass};
use super::attempt::Run;
use super::link::Refusal;
use super::plan::{Chooser, NoPick, next_pick};
use crate::catalog::CatalogSnapshot;
use crate::dialect::openai::LOCAL_BUSY_BACKOFF;
use crate::quota::ProviderBlock;
use crate::report::PickKind;
use crate::request::ChatRequest;
use crate::time::Timestamp;
use std::sync::atomic::Ordering;

/// What admission made of the next pick.
#[derive(Debug, PartialEq)]
pub(super) enum Admit {
    /// Send to the model at `index`; `cap` is the output a token budget leaves.
    Go { index: usize, kind: PickKind, cap: Option<u64> },
    /// The pick was passed over (not free any more, or its account or own limit is
    /// held): pick again.
    Passed,
    /// Every remaining model is cooling; the earliest timed recovery.
    Cooling(Option<Timestamp>),
    /// Nothing is left to pick.
    Exhausted,
}

impl Router {
    /// Picks the next model of `run`'s plan and reserves its account's local counts.
    pub(super) fn admit(
        &self,
        snap: &CatalogSnapshot,
        req: &ChatRequest,
        run: &mut Run,
        chooser: Chooser<'_>,
        now: Timestamp,
    ) -> Admit {
        let mut health = self.health();
        let picked = next_pick(&mut run.plan, snap, &health, &run.tried, run.min_context, &mut run.rng, chooser, now);
        let (index, kind) = match picked {
            Ok(pick) => pick,
            Err(NoPick::Cooling(until)) => return Admit::Cooling(until),
            Err(NoPick::Exhausted) => return Admit::Exhausted,
        };
        let entry = &snap.entries()[index];
        // The free rule again at the time of this call: a model that expired while the
        // request was falling back is never called.
        if !entry.is_free(now) {
            run.pass_model(index, None);
            return Admit::Passed;
        }
        // A server at its capacity: its models wait a moment, nothing is sent.
        let provider = entry.info.provider_name();
        let slot = match self.in_flight.take(provider, now, LOCAL_BUSY_BACKOFF) {
            Ok(slot) => slot,
            Err(busy) => {
                run.pass_account(snap, provider, Some(busy));
                return Admit::Passed;
            }
        };
        match self.reserve_account(&mut health, req.requirements(), &entry.info, snap.is_union(), now) {
            Ok(cap) => {
                run.slot = slot;
                if self.shared_account(&entry.info).is_none() {
                    health.begin_attempt(&entry.info.id, now);
                    self.dirty.store(true, Ordering::Release);
                }
                run.tried.push(index);
                Admit::Go { index, kind, cap }
            }
            Err(Pass::Model(held)) => {
                run.pass_model(index, held);
                Admit::Passed
            }
            Err(Pass::Account(name, block)) => {
                run.pass_account(snap, &name, Some(block));
                Admit::Passed
            }
        }
    }

    /// Reserves the attempt on the model at `index` in the shared store, where its
    /// account's quota (OpenRouter's requests), its declared provider's request quotas or
    /// its token budgets (`cap` left by them) are shared; `false` when the pick must be
    /// made again.
    pub(super) async fn admit_shared(
        &self,
        snap: &CatalogSnapshot,
        (index, cap): (usize, Option<u64>),
        req: &ChatRequest,
        run: &mut Run,
        now: Timestamp,
    ) -> bool {
        let info = &snap.entries()[index].info;
        if let Err(held) = self.share_budget(info, req.requirements(), cap, now).await {
            run.pass_model(index, Some(held));
            return false;
        }
        let Some(link) = self.shared_account(info) else { return true };
        match self.reserve_shared(link, &info.id, now).await {
            Ok(()) => true,
            Err(Refusal::Quota(block)) => {
                run.pass_account(snap, Account::of(info).name(), Some(ProviderBlock::Quota(block)));
                false
            }
            // Another instance is probing the model: it is cooling here too now, and the
            // next pick says so (a 429 when nothing else can serve).
            Err(Refusal::ProbeTaken) => {
                run.tried.pop();
                run.plan.rewind();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::fixture::{self, T0, chat, chooser, free, router};

    /// Admits picks of `req` over `models` until one goes or none is left, and returns
    /// the outcomes.
    fn check(r: &Router, req: &ChatRequest, expected: &[Admit]) -> Run {
        let snap = r.catalog();
        let mut run = fixture::run(r, req);
        let got: Vec<Admit> = expected.iter().map(|_| r.admit(&snap, req, &mut run, chooser(), T0)).collect();
        assert_eq!(got, expected);
        run
    }

    #[test]
    fn a_spent_provider_leaves_the_plan_and_the_other_serves() {
        let r = router(vec![free("g/a", Some("g")), free("o/b:free", None)], None, &[("g", 0)]);
        let req = chat("g/a");
        let run = check(&r, &req, &[Admit::Passed, Admit::Exhausted]);
        assert_eq!(run.plan.candidates, [1], "the named model's provider is out, OpenRouter's model is not");
        let failure = run.exhausted::<()>(&r.catalog(), req.requirements(), T0).expect_err("spent");
        assert!(matches!(failure.error, crate::error::RouteError::Quota { .. }), "{:?}", failure.error);
        // Drawn from both accounts: `g`'s model is passed over, whichever comes first.
        let req = chat("openrouter/free");
        let (snap, mut run) = (r.catalog(), fixture::run(&r, &req));
        let go = (0..3).map(|_| r.admit(&snap, &req, &mut run, chooser(), T0)).find(|a| *a != Admit::Passed);
        assert_eq!(go, Some(Admit::Go { index: 1, kind: PickKind::Uniform, cap: None }));
    }

    #[test]
    fn a_reservation_is_counted_once_in_its_own_account() {
        let r = router(vec![free("g/a", Some("g")), free("o/b:free", None)], Some(5), &[("g", 5)]);
        check(&r, &chat("o/b:free"), &[Admit::Go { index: 1, kind: PickKind::Named, cap: None }]);
        let health = r.health_snapshot();
        assert_eq!(r.quota_report().minute_used, 1);
        assert!(health.providers.get("g").is_none_or(|p| p.quota.minute.current(T0.minute()) == 0));
    }

    #[test]
    fn openrouters_spent_account_fails_the_request_with_its_block() {
        let r = router(vec![free("o/b:free", None)], Some(0), &[]);
        let req = chat("openrouter/free");
        let run = check(&r, &req, &[Admit::Passed, Admit::Exhausted]);
        let failure = run.exhausted::<()>(&r.catalog(), req.requirements(), T0).expect_err("spent");
        assert!(matches!(failure.error, crate::error::RouteError::Quota { .. }), "{:?}", failure.error);
    }
}
