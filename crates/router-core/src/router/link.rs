//! The router's side of the state shared with other instances: one reservation per
//! upstream attempt (falling back to the local counts, within this instance's share,
//! when the shared store does not answer), the events its outcomes publish, and the
//! events other instances publish merged into the local copy.

use super::Router;
use crate::health::{HealthState, PROBE_STALE};
use crate::model::ModelId;
use crate::ports::SharedState;
use crate::quota::{QuotaBlock, QuotaPolicy, QuotaScope, Window};
use crate::shared::{
    AttemptIds, Backlog, DEFAULT_QUOTA_SCOPE, EventSink, FallbackLimits, ProbeClaim, REFUSED_RETRY, ReserveOutcome,
    ReserveRequest, SharedError, SharedEvent, SharedStatus, Watch, active_events, apply_event, is_probe, sync_counts,
    upstream_block,
};
use crate::time::Timestamp;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The shared store and what this instance did without it.
pub(super) struct SharedLink {
    pub(super) port: Arc<dyn SharedState>,
    local: Mutex<Local>,
}

#[derive(Debug, Default)]
struct Local {
    /// Requests sent without the store's count, until it acknowledges them.
    backlog: Backlog,
    /// The limits kept to while the store does not answer.
    fallback: FallbackLimits,
    ids: AttemptIds,
    /// The account's counts the store last acknowledged (what it is raised to if it
    /// loses them).
    acked_minute: Window,
    acked_day: Window,
    /// This instance's own requests today that the store acknowledged counting.
    own_day: Window,
}

impl Local {
    /// A message at `now` that counts a request or not: a new id, the backlog's batches
    /// (when it may reach the store: carrying closes them), the acknowledged counts.
    fn message(
        &mut self,
        limits: QuotaPolicy,
        now: Timestamp,
        (count, reachable): (bool, bool),
        probe: Option<ProbeClaim>,
    ) -> ReserveRequest {
        ReserveRequest {
            scope: DEFAULT_QUOTA_SCOPE.to_owned(),
            limits,
            now,
            id: self.ids.next(now),
            count,
            batches: if reachable { self.backlog.carry(now) } else { Vec::new() },
            known_minute: self.acked_minute.current(now.minute()),
            known_day: self.acked_day.current(now.utc_day()),
            own_day: self.own_day.current(now.utc_day()),
            probe,
        }
    }

    /// The store answered `request`: what it carried is counted there, and its counts are
    /// the account's. The share is kept while the store is `settling`.
    fn answered(&mut self, request: &ReserveRequest, outcome: &ReserveOutcome, settling: bool) {
        let now = request.now;
        let mut mine = self.backlog.acknowledge(&request.batches, now);
        let counts = match outcome {
            ReserveOutcome::Reserved { minute, day } => {
                if request.count {
                    mine = mine.saturating_add(1);
                }
                Some((*minute, *day))
            }
            ReserveOutcome::Blocked(_, counts) => *counts,
            ReserveOutcome::ProbeTaken => None,
        };
        let own = self.own_day.current(now.utc_day()).saturating_add(mine);
        raise(&mut self.own_day, now.utc_day(), own);
        if let Some((minute, day)) = counts {
            raise(&mut self.acked_minute, now.minute(), minute);
            raise(&mut self.acked_day, now.utc_day(), day);
        }
        if self.backlog.is_empty() && !settling {
            // Everything this instance sent alone is counted: the next outage starts
            // from fresh counts.
            self.fallback.clear();
        }
    }
}

/// Raises `w` to `count` in window `index` (a count never goes down within its window).
fn raise(w: &mut Window, index: u64, count: u32) {
    *w = Window { index, count: w.current(index).max(count) };
}

/// Why an attempt may not go.
pub(super) enum Refusal {
    /// The account's quota is spent or blocked.
    Quota(QuotaBlock),
    /// Another instance is sending the model's half-open probe.
    ProbeTaken,
}

impl SharedLink {
    pub(super) fn new(port: Arc<dyn SharedState>) -> Self {
        SharedLink { port, local: Mutex::new(Local::default()) }
    }

    fn local(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Router {
    /// Shares quotas, cooldowns and breakers with the other instances that use `port`.
    #[must_use]
    pub fn with_shared(mut self, port: Arc<dyn SharedState>) -> Self {
        self.shared = Some(SharedLink::new(port));
        self
    }

    /// The link to the shared store, when there is one.
    pub fn shared_status(&self) -> Option<SharedStatus> {
        self.shared.as_ref().map(|l| l.port.status())
    }

    /// Has the shared-state adapter deliver other instances' events to this router (and
    /// start listening, inside an async runtime). Does nothing without shared state.
    pub fn attach_shared(self: &Arc<Self>) {
        if let Some(link) = &self.shared {
            let sink: Arc<dyn EventSink> = self.clone();
            link.port.attach(Arc::downgrade(&sink));
        }
    }

    /// Reserves one attempt on `model` at `now`: in the shared store, or locally within
    /// this instance's share when the store does not answer. On success the attempt has
    /// begun (a half-open model is now probing).
    pub(super) async fn reserve_shared(
        &self,
        link: &SharedLink,
        model: &ModelId,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let limits = self.quota_policy();
        let probe = is_probe(&self.health(), model, now).then(|| ProbeClaim { model: model.clone(), ttl: PROBE_STALE });
        let status = link.port.status();
        if status.settling {
            // Back from local decisions, and others may not have brought theirs yet: the
            // share still holds, besides the store's count. The local count is this
            // instance's view as in the outage (what it knew then plus what it sent since):
            // the store's answers do not raise it until every instance has merged.
            let health = self.health();
            let known = (health.quota.minute.current(now.minute()), health.quota.day.current(now.utc_day()));
            let share = link.local().fallback.policy(&limits, known, status.instances.max(1), now);
            if let Some(block) = health.quota_block(&share, now) {
                return Err(Refusal::Quota(account_block(block, &limits)));
            }
        }
        // While the store is known to be away the message goes nowhere: the backlog's open
        // batch stays open, so an outage's requests share one batch.
        let request = link.local().message(limits, now, (true, status.connected), probe);
        let outcome = link.port.reserve(&request).await;
        let mut health = self.health();
        let result = match outcome {
            Ok(outcome) => {
                link.local().answered(&request, &outcome, status.settling);
                match outcome {
                    ReserveOutcome::Reserved { .. } if status.settling => {
                        // Sent: counted in this instance's own view (no limit: the store
                        // has just said yes).
                        let _ = health.reserve(&QuotaPolicy::UNLIMITED, now);
                        Ok(())
                    }
                    ReserveOutcome::Reserved { minute, day } => {
                        sync_counts(&mut health, minute, day, now);
                        Ok(())
                    }
                    ReserveOutcome::Blocked(block, counts) => {
                        if let Some((minute, day)) = counts.filter(|_| !status.settling) {
                            sync_counts(&mut health, minute, day, now);
                        }
                        if let QuotaScope::Upstream { reason } = &block.scope {
                            health.quota.block_account(block.until, reason);
                        }
                        Err(Refusal::Quota(block))
                    }
                    ReserveOutcome::ProbeTaken => {
                        // Someone else's probe is in flight: the same as our own, here.
                        health.begin_attempt(model, now);
                        return Err(Refusal::ProbeTaken);
                    }
                }
            }
            // A misconfigured store is not an outage: without it nobody can tell how much
            // of the account the other instances spend, so nothing is sent on it.
            Err(SharedError::Refused(reason)) => {
                let reason = format!("the shared state (Redis) refuses this instance, check redis_url: {reason}");
                Err(Refusal::Quota(upstream_block(now.saturating_add(REFUSED_RETRY), reason)))
            }
            // Not sent: the store cannot have counted it. Anything else may yet be counted
            // there: the request is kept under its own id.
            Err(e) => reserve_locally(&mut health, link, &limits, &request, !matches!(e, SharedError::Unavailable(_))),
        };
        if result.is_ok() {
            health.begin_attempt(model, now);
        }
        self.dirty.store(true, Ordering::Release);
        result
    }

    /// Publishes what changed since `watch` about `model` and the account.
    pub(super) fn publish_changes(&self, watch: Option<Watch>, health: &HealthState, model: &ModelId, now: Timestamp) {
        if let (Some(link), Some(watch)) = (&self.shared, watch) {
            for event in watch.events(health, model, now) {
                link.port.publish(event);
            }
        }
    }

    /// What to compare against after an outcome, when there are others to tell.
    pub(super) fn watch(&self, health: &HealthState, model: &ModelId) -> Option<Watch> {
        self.shared.as_ref().map(|_| Watch::of(health, model))
    }
}

/// The store did not answer: count locally, within this instance's share of what was
/// left when it stopped answering, and keep the request for the store's return (alone
/// under its attempt's id when the store may have `seen` the attempt).
fn reserve_locally(
    health: &mut HealthState,
    link: &SharedLink,
    limits: &QuotaPolicy,
    request: &ReserveRequest,
    seen: bool,
) -> Result<(), Refusal> {
    let now = request.now;
    let instances = link.port.status().instances.max(1);
    let known = (health.quota.minute.current(now.minute()), health.quota.day.current(now.utc_day()));
    let mut local = link.local();
    let policy = local.fallback.policy(limits, known, instances, now);
    match health.reserve(&policy, now) {
        Ok(()) => {
            local.backlog.add(request.id, now, seen);
            Ok(())
        }
        Err(block) => Err(Refusal::Quota(account_block(block, limits))),
    }
}

/// A block of the share as the client hears of it: with the account's limit.
fn account_block(block: QuotaBlock, limits: &QuotaPolicy) -> QuotaBlock {
    match block.scope {
        QuotaScope::Minute { .. } => {
            QuotaBlock { scope: QuotaScope::Minute { limit: limits.per_minute.unwrap_or(0) }, ..block }
        }
        QuotaScope::Day { .. } => QuotaBlock { scope: QuotaScope::Day { limit: limits.per_day.unwrap_or(0) }, ..block },
        QuotaScope::Upstream { .. } => block,
    }
}

impl EventSink for Router {
    /// Merges an event another instance published.
    fn apply_remote(&self, event: &SharedEvent) {
        let now = self.now();
        apply_event(&mut self.health(), event, now);
        self.dirty.store(true, Ordering::Release);
    }

    fn current_events(&self) -> Vec<SharedEvent> {
        active_events(&self.health(), self.now())
    }

    fn sync_request(&self) -> Option<ReserveRequest> {
        let link = self.shared.as_ref()?;
        let now = self.now();
        let limits = self.quota_policy();
        let mut local = link.local();
        // Nothing to merge and nothing this instance would restore: no message.
        if local.backlog.is_empty() && local.own_day.current(now.utc_day()) == 0 {
            return None;
        }
        Some(local.message(limits, now, (false, true), None))
    }

    fn merged(&self) -> bool {
        self.shared.as_ref().is_none_or(|link| link.local().backlog.is_empty())
    }

    fn synced(&self, request: &ReserveRequest, outcome: &Result<ReserveOutcome, SharedError>) {
        let (Some(link), Ok(outcome)) = (&self.shared, outcome) else { return };
        let settling = link.port.status().settling;
        link.local().answered(request, outcome, settling);
        if let ReserveOutcome::Reserved { minute, day } = outcome
            && !settling
        {
            sync_counts(&mut self.health(), *minute, *day, request.now);
            self.dirty.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CatalogSnapshot, CatalogSource};
    use crate::error::RouteError;
    use crate::ports::{ChatTransport, Clock, FixedCatalog};
    use crate::quota::{QuotaPolicy, QuotaScope};
    use crate::request::ChatRequest;
    use crate::router::fixture::free;
    use crate::router::{Ports, RouterConfig};
    use crate::shared::Batch;
    use crate::upstream::{Body, ErrorKind, TransportError, UpstreamResponse};
    use bytes::Bytes;
    use std::collections::VecDeque;
    use std::sync::Weak;
    use std::time::Duration;

    const T0: Timestamp = Timestamp::from_secs(1_800_000_000);
    const X: &str = "x/one:free";
    const Y: &str = "y/two:free";

    struct FixedClock;

    #[async_trait::async_trait]
    impl Clock for FixedClock {
        fn now(&self) -> Timestamp {
            T0
        }
    }

    /// Answers 200, or a 429 with `Retry-After: 30` for `limited`.
    struct Upstream {
        limited: Option<&'static str>,
    }

    #[async_trait::async_trait]
    impl ChatTransport for Upstream {
        async fn send(&self, model: &ModelId, _: Bytes, _: bool) -> Result<UpstreamResponse, TransportError> {
            if self.limited == Some(model.as_str()) {
                return Err(
                    TransportError::new(ErrorKind::RateLimitedModel, "429").with_retry_after(Duration::from_secs(30))
                );
            }
            Ok(UpstreamResponse {
                status: 200,
                headers: vec![("content-type", "application/json".into())],
                body: Body::Full(Bytes::from_static(br#"{"id":"g","choices":[{"message":{"content":"hi"}}]}"#)),
                elapsed: Duration::from_millis(1),
            })
        }
    }

    /// A shared store that answers from a script and records what it was asked and told.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<VecDeque<Result<ReserveOutcome, SharedError>>>,
        asked: Mutex<Vec<ReserveRequest>>,
        published: Mutex<Vec<SharedEvent>>,
        instances: u32,
        settling: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl SharedState for Scripted {
        async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome, SharedError> {
            self.asked.lock().expect("asked").push(request.clone());
            self.answers.lock().expect("answers").pop_front().expect("a scripted answer")
        }
        fn publish(&self, event: SharedEvent) {
            self.published.lock().expect("published").push(event);
        }
        /// Connected unless the next answer says it is not (as the adapter knows).
        fn status(&self) -> SharedStatus {
            let down = matches!(self.answers.lock().expect("answers").front(), Some(Err(SharedError::Unavailable(_))));
            let settling = self.settling.load(Ordering::SeqCst);
            SharedStatus { instances: self.instances, connected: !down, settling, ..SharedStatus::default() }
        }
        fn attach(&self, _: Weak<dyn EventSink>) {}
    }

    fn router(shared: &Arc<Scripted>, quota: QuotaPolicy, limited: Option<&'static str>) -> Router {
        let snap = CatalogSnapshot::new(vec![free(X, None), free(Y, None)], CatalogSource::Memory, T0);
        let ports = Ports {
            catalog: Arc::new(FixedCatalog(Arc::new(snap))),
            transport: Arc::new(Upstream { limited }),
            clock: Arc::new(FixedClock),
            store: None,
        };
        let config = RouterConfig { quota, ..RouterConfig::default() };
        Router::new(ports, config).expect("router").with_shared(shared.clone())
    }

    fn request(body: &str) -> ChatRequest {
        ChatRequest::from_slice(body.as_bytes()).expect("request")
    }

    fn plain() -> ChatRequest {
        request(r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#)
    }

    fn answers(shared: &Scripted, list: Vec<Result<ReserveOutcome, SharedError>>) {
        shared.answers.lock().expect("answers").extend(list);
    }

    #[test]
    fn without_an_answer_the_instance_keeps_to_its_share_and_sends_the_backlog_later() {
        let shared = Arc::new(Scripted { instances: 2, ..Scripted::default() });
        let r = router(&shared, QuotaPolicy { per_minute: None, per_day: Some(10) }, None);
        let down = || Err(SharedError::Unavailable("refused".into()));
        answers(&shared, vec![Ok(ReserveOutcome::Reserved { minute: 1, day: 6 }), down(), down(), down()]);
        for seed in 0..3 {
            assert!(futures_executor::block_on(r.route(&plain(), seed)).is_ok());
        }
        // 6 known, (10 - 6) / 2 = 2 more for this instance: the next one is refused.
        let refused = futures_executor::block_on(r.route(&plain(), 3)).expect_err("share spent");
        assert!(matches!(
            refused.error,
            RouteError::Quota { block: QuotaBlock { scope: QuotaScope::Day { limit: 10 }, .. }, .. }
        ));
        assert_eq!(r.quota_report().day_used, 8);
        // Redis answers again: the two local requests travel with the next reservation,
        // as one batch under the first one's id, and the counts it last acknowledged.
        answers(&shared, vec![Ok(ReserveOutcome::Reserved { minute: 4, day: 9 })]);
        assert!(futures_executor::block_on(r.route(&plain(), 4)).is_ok());
        let last = shared.asked.lock().expect("asked").last().cloned().expect("asked");
        assert_eq!(last.batches, vec![Batch { id: 1, minute: 2, day: 2 }]);
        assert_eq!((last.id, last.count, last.known_day, last.own_day), (4, true, 6, 1));
        assert_eq!(r.quota_report().day_used, 9);
        // Acknowledged: sent once, and now this instance's own (1 + 2 + 1).
        assert_eq!(r.sync_request().map(|m| (m.batches.len(), m.own_day, m.count)), Some((0, 4, false)));
    }

    #[test]
    fn a_reservation_that_timed_out_is_kept_alone_under_its_own_id() {
        let shared = Arc::new(Scripted { instances: 2, ..Scripted::default() });
        let r = router(&shared, QuotaPolicy { per_minute: None, per_day: Some(100) }, None);
        let late = || Err(SharedError::Timeout(Duration::from_millis(50)));
        let down = || Err(SharedError::Unavailable("refused".into()));
        answers(&shared, vec![late(), late(), down(), down()]);
        for seed in 0..4 {
            assert!(futures_executor::block_on(r.route(&plain(), seed)).is_ok());
        }
        // The heartbeat brings them: the store may count attempts 0 and 1 themselves (their
        // scripts may still run), so each stays under its own id; 2 and 3 were never sent.
        let sync = r.sync_request().expect("a backlog to merge");
        let expected = vec![
            Batch { id: 0, minute: 1, day: 1 },
            Batch { id: 1, minute: 1, day: 1 },
            Batch { id: 2, minute: 2, day: 2 },
        ];
        assert_eq!((sync.batches.clone(), sync.count, sync.probe.clone()), (expected, false, None));
        r.synced(&sync, &Ok(ReserveOutcome::Reserved { minute: 4, day: 4 }));
        assert_eq!(r.sync_request().map(|m| (m.batches.len(), m.own_day, m.known_day)), Some((0, 4, 4)));
        // An answer that does not come leaves the batches for the next message.
        let sync = r.sync_request().expect("own count to restore");
        r.synced(&sync, &Err(SharedError::Timeout(Duration::from_millis(50))));
        assert_eq!(r.sync_request().map(|m| m.own_day), Some(4));
    }

    #[test]
    fn back_from_local_decisions_the_share_holds_until_every_instance_has_merged() {
        let shared = Arc::new(Scripted { instances: 2, ..Scripted::default() });
        let r = router(&shared, QuotaPolicy { per_minute: None, per_day: Some(10) }, None);
        let down = || Err(SharedError::Unavailable("refused".into()));
        answers(&shared, vec![Ok(ReserveOutcome::Reserved { minute: 1, day: 6 }), down(), down()]);
        for seed in 0..3 {
            assert!(futures_executor::block_on(r.route(&plain(), seed)).is_ok());
        }
        // Redis answers again, but the other instance has not merged yet: this one's share
        // (8) is spent, so it is refused without asking, whatever Redis would say.
        shared.settling.store(true, Ordering::SeqCst);
        let sync = r.sync_request().expect("the backlog");
        r.synced(&sync, &Ok(ReserveOutcome::Reserved { minute: 3, day: 9 }));
        assert_eq!(r.quota_report().day_used, 8, "this instance's own view, not raised");
        answers(&shared, vec![Ok(ReserveOutcome::Reserved { minute: 4, day: 9 })]);
        let refused = futures_executor::block_on(r.route(&plain(), 3)).expect_err("share spent");
        assert!(matches!(
            refused.error,
            RouteError::Quota { block: QuotaBlock { scope: QuotaScope::Day { limit: 10 }, .. }, .. }
        ));
        assert_eq!(shared.asked.lock().expect("asked").len(), 3, "not asked");
        // Every instance has merged: Redis decides again.
        shared.settling.store(false, Ordering::SeqCst);
        assert!(futures_executor::block_on(r.route(&plain(), 4)).is_ok());
        assert_eq!(r.quota_report().day_used, 9);
    }

    #[test]
    fn a_store_that_refuses_the_credentials_holds_the_shared_quota_and_counts_nothing_locally() {
        let shared = Arc::new(Scripted { instances: 1, ..Scripted::default() });
        let r = router(&shared, QuotaPolicy { per_minute: None, per_day: Some(100) }, None);
        answers(&shared, vec![Err(SharedError::Refused("WRONGPASS invalid username-password pair".into()))]);
        let failed = futures_executor::block_on(r.route(&plain(), 0)).expect_err("held");
        let RouteError::Quota { block: QuotaBlock { scope: QuotaScope::Upstream { reason }, .. }, retry_after } =
            failed.error
        else {
            panic!("not a quota refusal: {:?}", failed.error)
        };
        assert!(reason.contains("redis_url") && reason.contains("WRONGPASS"), "{reason}");
        assert_eq!(retry_after, REFUSED_RETRY);
        assert!(failed.report.attempts.is_empty(), "nothing sent upstream");
        assert_eq!(r.quota_report().day_used, 0);
        assert!(r.sync_request().is_none(), "no backlog");
    }

    #[test]
    fn a_probe_another_instance_holds_sends_the_request_elsewhere() {
        let shared = Arc::new(Scripted { instances: 2, ..Scripted::default() });
        let r = router(&shared, QuotaPolicy::UNLIMITED, None);
        // X's breaker, opened elsewhere, has just run out: the next call on X is its probe.
        r.apply_remote(&SharedEvent::CircuitOpen { model: ModelId::new(X), until: T0 });
        answers(&shared, vec![Ok(ReserveOutcome::ProbeTaken), Ok(ReserveOutcome::Reserved { minute: 1, day: 1 })]);
        let req = request(&format!(r#"{{"models":["{X}","{Y}"],"messages":[{{"role":"user","content":"hi"}}]}}"#));
        let routed = futures_executor::block_on(r.route(&req, 0)).expect("answered");
        assert_eq!(routed.report.model.as_ref().map(ModelId::as_str), Some(Y));
        let asked = shared.asked.lock().expect("asked");
        assert_eq!(asked[0].probe.as_ref().map(|p| p.model.as_str()), Some(X));
        assert!(asked[1].probe.is_none());
        drop(asked);

        // With nothing else to try, the client hears that the model is cooling.
        let r = router(&shared, QuotaPolicy::UNLIMITED, None);
        r.apply_remote(&SharedEvent::CircuitOpen { model: ModelId::new(X), until: T0 });
        answers(&shared, vec![Ok(ReserveOutcome::ProbeTaken)]);
        let only_x = request(&format!(r#"{{"model":"{X}","messages":[{{"role":"user","content":"hi"}}]}}"#));
        let failed = futures_executor::block_on(r.route(&only_x, 0)).expect_err("probe elsewhere");
        assert!(matches!(failed.error, RouteError::AllCoolingDown { .. }), "{:?}", failed.error);
        assert!(failed.report.attempts.is_empty());
    }

    #[test]
    fn a_block_from_the_store_is_a_429_and_cooldowns_are_published() {
        let shared = Arc::new(Scripted::default());
        let r = router(&shared, QuotaPolicy::UNLIMITED, Some(X));
        let until = T0.saturating_add(Duration::from_secs(3600));
        answers(&shared, vec![Ok(ReserveOutcome::Blocked(upstream_block(until, "daily cap".into()), None))]);
        let failed = futures_executor::block_on(r.route(&plain(), 0)).expect_err("blocked");
        assert!(matches!(
            failed.error,
            RouteError::Quota { block: QuotaBlock { scope: QuotaScope::Upstream { .. }, .. }, .. }
        ));
        assert!(r.health_snapshot().quota.account_block.is_some(), "kept locally too");

        let shared = Arc::new(Scripted::default());
        let r = router(&shared, QuotaPolicy::UNLIMITED, Some(X));
        answers(&shared, vec![Ok(ReserveOutcome::Reserved { minute: 1, day: 1 })]);
        let req = request(&format!(r#"{{"model":"{X}","messages":[{{"role":"user","content":"hi"}}]}}"#));
        assert!(futures_executor::block_on(r.route(&req, 0)).is_err());
        let published = shared.published.lock().expect("published");
        let until = T0.saturating_add(Duration::from_secs(30));
        assert_eq!(*published, vec![SharedEvent::RateLimited { model: ModelId::new(X), until }]);
    }
}
