//! The last step of an attempt: judge its outcome and record it in the model's and its
//! account's state, then say whether the request is answered, failed, or goes on.

use super::Router;
use super::account::Account;
use super::attempt::Run;
use crate::catalog::CatalogSnapshot;
use crate::dialect::Dialect;
use crate::error::RouteError;
use crate::health::CooldownCause;
use crate::model::ModelInfo;
use crate::time::Timestamp;
use crate::upstream::{ErrorKind, TransportError, UpstreamResponse};
use std::sync::atomic::Ordering;

/// What an attempt's outcome means for the request.
#[derive(Debug)]
pub(super) enum Settled {
    /// The client's answer.
    Answered(UpstreamResponse),
    /// The request fails with this error; no other model would fare better.
    Failed(RouteError),
    /// Try another model.
    Next,
}

/// Failures that cost little when they come back fast: another model may answer at once.
fn is_cheap(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::RateLimitedModel | ErrorKind::ModelUnavailable | ErrorKind::ServerError)
}

impl Router {
    /// Settles the attempt on the model at `index`, reserved and sent at `times`.
    pub(super) fn settle(
        &self,
        snap: &CatalogSnapshot,
        index: usize,
        result: Result<UpstreamResponse, TransportError>,
        (reserved_at, sent_at): (Timestamp, Timestamp),
        run: &mut Run,
    ) -> Settled {
        let info = &snap.entries()[index].info;
        match result {
            Ok(response) => {
                self.record_answer(info, &response, reserved_at);
                run.attempted(&info.id, None, false, response.elapsed);
                Settled::Answered(response)
            }
            // Nothing left this machine (no descriptor, no memory): no model is to blame
            // and none would fare better. The reservation is given back, the model's
            // health is left alone, and the client is told to come back.
            Err(error) if error.kind == ErrorKind::LocalResource => {
                {
                    let mut health = self.health();
                    self.release_account(&mut health, info, reserved_at);
                    health.abandon_attempt(&info.id);
                }
                self.dirty.store(true, Ordering::Release);
                run.attempted(&info.id, Some(&error), false, error.elapsed);
                Settled::Failed(RouteError::Upstream { model: info.id.clone(), error })
            }
            Err(error) => self.settle_failure(snap, info, error, sent_at, run),
        }
    }

    /// Records an answer: the model is well, its account reached, its budget observed.
    fn record_answer(&self, info: &ModelInfo, response: &UpstreamResponse, now: Timestamp) {
        {
            let mut health = self.health();
            let watch = self.watch(&health, &info.id);
            health.record_success(&info.id);
            // The answer may say its provider's request limit is now spent: the model
            // cools until the reset it states (kept, shared and shown like any cooldown).
            let header = |name: &str| response.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
            if let Some(wait) = Dialect::of(info).requests_spent_for(&header) {
                health.cool_until(&info.id, self.now().saturating_add(wait));
            }
            self.observe_budget(&mut health, info, &response.headers, now);
            if let Some(p) = health.providers.get_mut(info.provider_name()) {
                p.reached();
            }
            self.publish_changes(watch, &health, &info.id, self.now());
        }
        self.success_rates().record(&info.id, Ok(()));
        self.dirty.store(true, Ordering::Release);
    }

    /// Records a failure and says what it means: a spent, refused or paying account's
    /// models leave the plan (another account may serve), a request the upstream cannot
    /// serve fails, and anything else tries another model.
    fn settle_failure(
        &self,
        snap: &CatalogSnapshot,
        info: &ModelInfo,
        error: TransportError,
        sent_at: Timestamp,
        run: &mut Run,
    ) -> Settled {
        let now = self.now();
        let raced = self.record_failure(snap, info, &error, now);
        let took = now.saturating_since(sent_at).max(error.elapsed);
        if !raced {
            self.success_rates().record(&info.id, Err(error.kind));
            if !(is_cheap(error.kind) && took < self.config.cheap_failure_bound) {
                run.spent += 1;
            }
        }
        run.attempted(&info.id, Some(&error), raced, error.elapsed);
        let kind = error.kind;
        if kind == ErrorKind::ContextTooLong {
            run.min_context = run.min_context.max(info.context_length.unwrap_or(0).saturating_add(1));
        }
        let failed = RouteError::Upstream { model: info.id.clone(), error };
        if kind.is_account_wide() || kind == ErrorKind::PaymentRequired {
            let account = Account::of(info);
            let hold = self.account_hold(&self.health(), account, self.now());
            run.pass_account(snap, account.name(), hold);
        } else if !kind.is_retryable() {
            return Settled::Failed(failed);
        }
        run.last = Some(failed);
        Settled::Next
    }

    /// Applies a failure to the model's and its account's state; `true` when the call
    /// raced a cooldown another call had already set (it says nothing new).
    fn record_failure(&self, snap: &CatalogSnapshot, info: &ModelInfo, error: &TransportError, now: Timestamp) -> bool {
        let mut health = self.health();
        let raced =
            health.cooldown(&info.id, now, snap.fetched_at()).is_some_and(|c| c.cause != CooldownCause::ProbeInFlight);
        let watch = self.watch(&health, &info.id);
        self.record_account_failure(&mut health, info, error, snap.is_union(), now);
        self.publish_changes(watch, &health, &info.id, now);
        self.dirty.store(true, Ordering::Release);
        raced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::fixture::{self, T0, chat, free, router};
    use crate::upstream::Body;
    use bytes::Bytes;
    use std::time::Duration;

    fn failure(kind: ErrorKind, elapsed: Duration) -> Result<UpstreamResponse, TransportError> {
        Err(TransportError::new(kind, "upstream said no").with_elapsed(elapsed))
    }

    fn answer() -> Result<UpstreamResponse, TransportError> {
        let body = Body::Full(Bytes::from_static(br#"{"choices":[{"message":{"content":"hi"}}]}"#));
        Ok(UpstreamResponse { status: 200, headers: Vec::new(), body, elapsed: Duration::from_millis(5) })
    }

    /// Settles `result` of an attempt on the model at `index` of a two-account router,
    /// and returns what it said and the run after it.
    fn check(index: usize, result: Result<UpstreamResponse, TransportError>) -> (Router, Settled, Run) {
        let r = router(vec![free("g/a", Some("g")), free("o/b:free", None)], Some(10), &[("g", 10)]);
        let mut run = fixture::run(&r, &chat("openrouter/free"));
        let settled = r.settle(&r.catalog(), index, result, (T0, T0), &mut run);
        assert_eq!(run.report.attempts.len(), 1, "every settled attempt is reported");
        (r, settled, run)
    }

    #[test]
    fn an_answer_is_the_clients_and_the_model_is_well() {
        let (_, settled, run) = check(1, answer());
        assert!(matches!(settled, Settled::Answered(_)));
        assert_eq!(run.report.attempts[0].failure, None);
    }

    #[test]
    fn an_answer_that_spends_the_providers_requests_cools_its_model_until_the_reset() {
        let headers =
            vec![("x-ratelimit-remaining-requests", "0".to_owned()), ("x-ratelimit-reset-requests", "2m".to_owned())];
        let body = Body::Full(Bytes::from_static(br#"{"choices":[{"message":{"content":"hi"}}]}"#));
        let spent = Ok(UpstreamResponse { status: 200, headers, body, elapsed: Duration::ZERO });
        let (r, settled, _) = check(0, spent);
        assert!(matches!(settled, Settled::Answered(_)), "the answer is still the client's");
        let cooling = r.cooldowns();
        assert_eq!(cooling.len(), 1, "{cooling:?}");
        assert_eq!(
            (cooling[0].0.as_str(), cooling[0].1.until),
            ("g/a", Some(T0.saturating_add(Duration::from_secs(120))))
        );
        // OpenRouter's own headers are its account's, not one model's.
        let (r, _, _) = check(1, answer());
        assert!(r.cooldowns().is_empty());
    }

    #[test]
    fn an_account_wide_failure_takes_that_account_out_and_goes_on() {
        let (_, settled, run) = check(0, failure(ErrorKind::Auth, Duration::ZERO));
        assert!(matches!(settled, Settled::Next));
        assert_eq!(run.plan.candidates, [1], "`g`'s models leave the plan; OpenRouter's stay");
        assert!(matches!(run.last, Some(RouteError::Upstream { .. })));
    }

    #[test]
    fn a_request_no_model_can_serve_fails_at_once() {
        let (_, settled, _) = check(1, failure(ErrorKind::BadRequest, Duration::ZERO));
        assert!(matches!(settled, Settled::Failed(RouteError::Upstream { .. })));
    }

    #[test]
    fn only_costly_failures_use_up_the_attempts() {
        let (_, _, fast) = check(1, failure(ErrorKind::RateLimitedModel, Duration::from_millis(1)));
        assert_eq!(fast.spent, 0, "a fast rate limit is cheap");
        let (_, _, slow) = check(1, failure(ErrorKind::Timeout, Duration::from_secs(60)));
        assert_eq!(slow.spent, 1);
    }

    #[test]
    fn a_local_failure_gives_the_reservation_back() {
        let r = router(vec![free("o/b:free", None)], Some(10), &[]);
        let req = chat("openrouter/free");
        let mut run = fixture::run(&r, &req);
        let admitted = r.admit(&r.catalog(), &req, &mut run, fixture::chooser(), T0);
        assert!(matches!(admitted, super::super::admit::Admit::Go { .. }));
        assert_eq!(r.quota_report().minute_used, 1);
        let settled = r.settle(&r.catalog(), 0, failure(ErrorKind::LocalResource, Duration::ZERO), (T0, T0), &mut run);
        assert!(matches!(settled, Settled::Failed(_)));
        assert_eq!(r.quota_report().minute_used, 0, "nothing left this machine");
    }
}
