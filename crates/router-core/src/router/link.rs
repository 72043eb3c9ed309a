//! The router's side of the state shared with other instances: one reservation per
//! upstream attempt (falling back to the local counts, within this instance's share,
//! when the shared store does not answer), the events its outcomes publish, and the
//! events other instances publish merged into the local copy.

use super::Router;
use crate::health::{HealthState, PROBE_STALE};
use crate::model::ModelId;
use crate::ports::SharedState;
use crate::quota::QuotaBlock;
use crate::shared::{
    Backlog, DEFAULT_QUOTA_SCOPE, EventSink, FallbackLimits, ProbeClaim, ReserveOutcome, ReserveRequest, SharedEvent,
    SharedStatus, Watch, apply_event, is_probe, sync_counts,
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
    /// Reservations made locally, not yet counted in the store.
    backlog: Backlog,
    /// The limits kept to while the store does not answer.
    fallback: FallbackLimits,
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
        let probe = is_probe(&self.health(), model, now);
        let (backlog_minute, backlog_day) = link.local().backlog.current(now);
        let (known_minute, known_day) = {
            let h = self.health();
            (h.quota.minute.current(now.minute()), h.quota.day.current(now.utc_day()))
        };
        let request = ReserveRequest {
            scope: DEFAULT_QUOTA_SCOPE.to_owned(),
            limits,
            now,
            backlog_minute,
            backlog_day,
            known_minute,
            known_day,
            probe: probe.then(|| ProbeClaim { model: model.clone(), ttl: PROBE_STALE }),
        };
        let outcome = link.port.reserve(&request).await;
        let mut health = self.health();
        let result = match outcome {
            Ok(outcome) => {
                let mut local = link.local();
                local.fallback.clear();
                // The backlog reached the store with this request, whatever its verdict.
                local.backlog = Backlog::default();
                match outcome {
                    ReserveOutcome::Reserved { minute, day } => {
                        sync_counts(&mut health, minute, day, now);
                        Ok(())
                    }
                    ReserveOutcome::Blocked(block, counts) => {
                        if let Some((minute, day)) = counts {
                            sync_counts(&mut health, minute, day, now);
                        }
                        if let crate::quota::QuotaScope::Upstream { reason } = &block.scope {
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
            Err(_) => reserve_locally(&mut health, link, &limits, now),
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
/// left when it stopped answering, and remember the request for the store's return.
fn reserve_locally(
    health: &mut HealthState,
    link: &SharedLink,
    limits: &crate::quota::QuotaPolicy,
    now: Timestamp,
) -> Result<(), Refusal> {
    let instances = link.port.status().instances.max(1);
    let known = (health.quota.minute.current(now.minute()), health.quota.day.current(now.utc_day()));
    let mut local = link.local();
    let policy = local.fallback.policy(limits, known, instances, now);
    match health.reserve(&policy, now) {
        Ok(()) => {
            local.backlog.add(now);
            Ok(())
        }
        Err(block) => {
            // Say the account's limit, not the share, to the client.
            let block = match block.scope {
                crate::quota::QuotaScope::Minute { .. } => QuotaBlock {
                    scope: crate::quota::QuotaScope::Minute { limit: limits.per_minute.unwrap_or(0) },
                    ..block
                },
                crate::quota::QuotaScope::Day { .. } => {
                    QuotaBlock { scope: crate::quota::QuotaScope::Day { limit: limits.per_day.unwrap_or(0) }, ..block }
                }
                crate::quota::QuotaScope::Upstream { .. } => block,
            };
            Err(Refusal::Quota(block))
        }
    }
}

impl EventSink for Router {
    /// Merges an event another instance published.
    fn apply_remote(&self, event: &SharedEvent) {
        let now = self.now();
        apply_event(&mut self.health(), event, now);
        self.dirty.store(true, Ordering::Release);
    }
}
