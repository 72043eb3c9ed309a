//! The attempt loop: pick, reserve, send, judge, and fall back within the request's
//! budget (attempts, calls, deadline), waiting when every candidate is cooling.

use super::budget::Budget;
use super::commit::commit;
use super::plan::{Chooser, NoPick, Weight, all_cooling, next_pick, no_candidate, plan};
use super::{Router, link, providers};
use crate::error::RouteError;
use crate::health::CooldownCause;
use crate::quota::ProviderBlock;
use crate::report::{Attempt, RouteFailure, RouteReport, Routed};
use crate::request::ChatRequest;
use crate::select::rng_from_seed;
use crate::time::Timestamp;
use crate::upstream::{Endpoint, ErrorKind};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Router {
    /// How long to wait for the earliest of the cooling candidates (`until`), or `None`
    /// to answer now: only when it recovers within `max_cooling_wait`, the total wait
    /// stays within that bound (plus the stagger) and the deadline is not passed. The
    /// stagger, drawn from the seed, spreads a burst of waiters.
    pub(super) fn cooling_wait(
        &self,
        until: Option<Timestamp>,
        now: Timestamp,
        start: Timestamp,
        waited: Duration,
        seed: u64,
    ) -> Option<Duration> {
        let bound = self.config.max_cooling_wait;
        let until = until?;
        let base = until.saturating_since(now);
        if bound.is_zero() || base > bound {
            return None;
        }
        let stagger_ms = u64::try_from(self.config.wait_stagger.as_millis()).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(splitmix64(seed ^ waited.as_millis() as u64) % stagger_ms.saturating_add(1));
        let wait = base.saturating_add(jitter).max(Duration::from_millis(1));
        if waited.saturating_add(wait) > bound.saturating_add(self.config.wait_stagger) {
            return None;
        }
        if now.saturating_add(wait).saturating_since(start) >= self.config.deadline {
            return None;
        }
        Some(wait)
    }

    /// Routes one request: picks a free model that meets its requirements, forwards,
    /// and falls back on retryable failures. `seed` makes the picks reproducible.
    ///
    /// The attempts are budgeted by what they cost: a cheap failure (a rate limit, an
    /// "unavailable" or a server error answered within `cheap_failure_bound`) and a raced
    /// one do not count against `max_attempts`; every call counts against
    /// `max_upstream_calls`; no attempt starts after the deadline; each model is tried
    /// once at most. When every candidate is cooling and one recovers soon, the request
    /// waits for it (see [`RouterConfig::max_cooling_wait`](super::RouterConfig::max_cooling_wait)).
    pub async fn route(&self, req: &ChatRequest, seed: u64) -> Result<Routed, RouteFailure> {
        let snap = self.ports.catalog.snapshot();
        let start = self.now();
        let reqs = self.config.candidate_requirements(req.requirements());
        let mut plan = plan(&snap, req, &reqs, start)?;
        let mut report = RouteReport { candidates: plan.candidates.len(), ..RouteReport::default() };
        let mut rng = rng_from_seed(seed);
        let weighted = self.is_weighted(req);
        let rates = (weighted && self.config.weight_by_success).then(|| self.success_rates_snapshot());
        let configured = |i: usize| self.config.model_weight(&snap.entries()[i].info.id);
        let measured = |i: usize| {
            let id = &snap.entries()[i].info.id;
            self.config.model_weight(id) * rates.as_ref().map_or(1.0, |r| r.weight(id))
        };
        let chooser = Chooser {
            session: self.session(req),
            weight: weighted.then_some(&measured as &Weight<'_>),
            sticky_weight: weighted.then_some(&configured as &Weight<'_>),
        };
        let mut tried: Vec<usize> = Vec::new();
        let mut min_context = 0;
        let mut last: Option<RouteError> = None;
        let mut held = providers::Held::default();
        let fail = |error: RouteError, report: RouteReport| Err(RouteFailure { error, report });
        // Attempts that count against `max_attempts`: raced and cheap ones do not.
        let mut spent = 0u32;
        let cap = usize::try_from(self.config.max_upstream_calls.max(1)).unwrap_or(usize::MAX);

        while spent < self.config.max_attempts && report.attempts.len() < cap {
            let now = self.now();
            if !report.attempts.is_empty() && now.saturating_since(start) >= self.config.deadline {
                let error = last.take().unwrap_or(RouteError::Deadline(self.config.deadline));
                return fail(error, report);
            }
            // The output a token budget leaves for the pick, when one applies.
            let mut budget_cap = None;
            let picked = {
                let mut health = self.health();
                match next_pick(&mut plan, &snap, &health, &tried, min_context, &mut rng, chooser, now) {
                    // The free rule again at the time of this call: a model that expired
                    // while the request was falling back is never called.
                    Ok((i, _)) if !snap.entries()[i].is_free(now) => {
                        tried.push(i);
                        continue;
                    }
                    // A declared provider's quota and host breaker: a spent or unreachable
                    // provider's candidates leave the pick, and the others keep serving.
                    Ok((i, kind)) if snap.entries()[i].info.provider.is_some() => {
                        let name = snap.entries()[i].info.provider_name();
                        let id = snap.entries()[i].info.id.as_str();
                        // A model's own limit, when one is configured: only that model waits.
                        if let Some(block) = self.model_hold(&health, id, now) {
                            held.note(block);
                            tried.push(i);
                            continue;
                        }
                        let info = &snap.entries()[i].info;
                        match self.within_budget(&health, req.requirements(), info, now) {
                            Budget::Unlimited => {}
                            Budget::Output(n) => budget_cap = Some(n),
                            Budget::Never => {
                                tried.push(i);
                                continue;
                            }
                            Budget::Later(block) => {
                                held.note_named(name, block);
                                tried.push(i);
                                continue;
                            }
                        }
                        match health.provider_mut(name).reserve(name, &self.provider_policy(name), now) {
                            Ok(()) => {
                                self.count_model(&mut health, id, now);
                                if let Some(n) = budget_cap {
                                    let tokens = req.requirements().prompt_tokens.saturating_add(n);
                                    self.charge_budget(&mut health, info, tokens, now);
                                }
                                health.begin_attempt(&snap.entries()[i].info.id, now);
                                self.dirty.store(true, Ordering::Release);
                                Ok((i, kind))
                            }
                            Err(block) => {
                                held.note_named(name, block);
                                providers::drop_provider(&mut plan, &snap, name);
                                continue;
                            }
                        }
                    }
                    // In a union, OpenRouter's host has a breaker like any provider's.
                    Ok((i, _)) if snap.is_union() && providers::openrouter_unreachable(&health, now).is_some() => {
                        held.extend(providers::openrouter_unreachable(&health, now));
                        debug_assert!(snap.entries()[i].info.provider.is_none());
                        providers::drop_provider(&mut plan, &snap, crate::model::OPENROUTER_PROVIDER);
                        continue;
                    }
                    // OpenRouter's shared quota is reserved below, out of the lock.
                    Ok((i, kind)) if self.shared.is_some() => Ok((i, kind)),
                    Ok((i, kind)) => {
                        if let Err(block) = health.reserve(&self.quota_policy(), now) {
                            if snap.is_union() {
                                held.note(ProviderBlock::Quota(block));
                                providers::drop_provider(&mut plan, &snap, crate::model::OPENROUTER_PROVIDER);
                                continue;
                            }
                            let retry_after = block.until.saturating_since(now);
                            return fail(RouteError::Quota { block, retry_after }, report);
                        }
                        health.begin_attempt(&snap.entries()[i].info.id, now);
                        self.dirty.store(true, Ordering::Release);
                        Ok((i, kind))
                    }
                    Err(NoPick::Cooling(until)) => Err(until),
                    Err(NoPick::Exhausted) => break,
                }
            };
            let (index, kind) = match picked {
                Ok(p) => p,
                Err(until) => {
                    // Nothing is held while waiting: no lock, no upstream connection.
                    if let Some(wait) = self.cooling_wait(until, now, start, report.waited, seed)
                        && self.ports.clock.sleep(wait).await
                    {
                        report.waited += wait;
                        plan.rewind();
                        continue;
                    }
                    if report.attempts.is_empty() {
                        return fail(all_cooling(until, now), report);
                    }
                    break;
                }
            };
            tried.push(index);
            if let Some(link) = &self.shared
                && snap.entries()[index].info.provider.is_none()
            {
                match self.reserve_shared(link, &snap.entries()[index].info.id, now).await {
                    Ok(()) => {}
                    Err(link::Refusal::Quota(block)) => {
                        let retry_after = block.until.saturating_since(now);
                        return fail(RouteError::Quota { block, retry_after }, report);
                    }
                    // Another instance is probing the model: it is cooling here too now,
                    // and the next pick says so (a 429 when nothing else can serve).
                    Err(link::Refusal::ProbeTaken) => {
                        tried.pop();
                        plan.rewind();
                        continue;
                    }
                }
            }
            report.pick = kind;
            let model = snap.entries()[index].info.id.clone();
            let info = &snap.entries()[index].info;
            let clamped = self.config.clamped_output(req.requirements(), info);
            // Under a token budget the output is always said: a free tier charges an
            // absent `max_tokens` as the model's whole limit.
            let max_tokens = match budget_cap {
                Some(cap) => Some(clamped.or(req.requirements().max_output_tokens).map_or(cap, |n| n.min(cap))),
                None => clamped,
            };
            report.max_tokens = max_tokens;
            let body = Bytes::from(req.body_for_upstream(info.upstream_id(), info.provider.is_some(), max_tokens));
            let sent_at = self.now();
            // Chat keeps the port's plain `send`; another endpoint (embeddings) goes by `send_to`.
            let sent = match req.endpoint() {
                Endpoint::Chat => self.ports.transport.send(&model, body, req.is_stream()).await,
                other => self.ports.transport.send_to(other, &model, body, false).await,
            };
            let result = match sent {
                Ok(resp) => commit(resp, &model, &self.stream_errors, self.judge(req)).await,
                Err(e) => Err(e),
            };
            match result {
                // Nothing left this machine (no descriptor, no memory): no model is to
                // blame and none would fare better. The reservation is given back, the
                // model's health is left alone, and the client is told to come back.
                Err(error) if error.kind == ErrorKind::LocalResource => {
                    {
                        let mut health = self.health();
                        match &snap.entries()[index].info.provider {
                            Some(p) => {
                                let policy = self.provider_policy(&p.provider);
                                health.provider_mut(&p.provider).quota.release_at(&*policy.reset, now);
                            }
                            // A shared store's count is not given back: it may be another process's.
                            None if self.shared.is_none() => health.release(now),
                            None => {}
                        }
                        health.abandon_attempt(&model);
                    }
                    self.dirty.store(true, Ordering::Release);
                    report.attempts.push(Attempt {
                        model: model.clone(),
                        failure: Some(error.kind),
                        elapsed: error.elapsed,
                        raced: false,
                    });
                    return fail(RouteError::Upstream { model, error }, report);
                }
                Ok(response) => {
                    {
                        let mut health = self.health();
                        let watch = self.watch(&health, &model);
                        health.record_success(&model);
                        self.observe_budget(&mut health, &snap.entries()[index].info, &response.headers, now);
                        let provider = snap.entries()[index].info.provider_name();
                        if let Some(p) = health.providers.get_mut(provider) {
                            p.reached();
                        }
                        self.publish_changes(watch, &health, &model, self.now());
                    }
                    self.success_rates().record(&model, Ok(()));
                    self.dirty.store(true, Ordering::Release);
                    report.attempts.push(Attempt {
                        model: model.clone(),
                        failure: None,
                        elapsed: response.elapsed,
                        raced: false,
                    });
                    report.model = Some(model);
                    return Ok(Routed { response, report });
                }
                Err(error) => {
                    let now = self.now();
                    let raced = {
                        let mut health = self.health();
                        let raced = health
                            .cooldown(&model, now, snap.fetched_at())
                            .is_some_and(|c| c.cause != CooldownCause::ProbeInFlight);
                        let watch = self.watch(&health, &model);
                        match &snap.entries()[index].info.provider {
                            Some(p) => {
                                let policy = self.provider_policy(&p.provider);
                                health.record_provider_failure(
                                    &p.provider,
                                    &model,
                                    &error,
                                    &self.config.health,
                                    &policy,
                                    now,
                                );
                            }
                            None => {
                                if error.kind == ErrorKind::Connection && snap.is_union() {
                                    providers::openrouter_connection_failed(&mut health, &self.config.health, now);
                                }
                                health.record_failure(&model, &error, &self.config.health, now);
                            }
                        }
                        self.publish_changes(watch, &health, &model, now);
                        self.dirty.store(true, Ordering::Release);
                        raced
                    };
                    let took = now.saturating_since(sent_at).max(error.elapsed);
                    let cheap = is_cheap(error.kind) && took < self.config.cheap_failure_bound;
                    if !raced {
                        self.success_rates().record(&model, Err(error.kind));
                        if !cheap {
                            spent += 1;
                        }
                    }
                    report.attempts.push(Attempt {
                        model: model.clone(),
                        failure: Some(error.kind),
                        elapsed: error.elapsed,
                        raced,
                    });
                    let kind = error.kind;
                    if kind == ErrorKind::ContextTooLong {
                        let ctx = snap.entries()[index].info.context_length.unwrap_or(0);
                        min_context = min_context.max(ctx.saturating_add(1));
                    }
                    if (kind.is_account_wide() && snap.is_union()) || kind == ErrorKind::PaymentRequired {
                        // One provider's account is spent or refused, or it asked for
                        // payment: the others may serve.
                        let name = snap.entries()[index].info.provider_name();
                        if let Some(block) = self.provider_hold(&self.health(), name, self.now()) {
                            held.note_named(name, block);
                        }
                        providers::drop_provider(&mut plan, &snap, name);
                        last = Some(RouteError::Upstream { model, error });
                        continue;
                    }
                    if kind.is_account_wide() || !kind.is_retryable() {
                        if kind == ErrorKind::DailyCapReached {
                            self.daily_caps.fetch_add(1, Ordering::Relaxed);
                        }
                        if matches!(kind, ErrorKind::DailyCapReached | ErrorKind::RateLimitedAccount) {
                            let now = self.now();
                            if let Some(block) = self.health().quota_block(&self.quota_policy(), now) {
                                let retry_after = block.until.saturating_since(now);
                                return fail(RouteError::Quota { block, retry_after }, report);
                            }
                        }
                        return fail(RouteError::Upstream { model, error }, report);
                    }
                    last = Some(RouteError::Upstream { model, error });
                }
            }
        }
        let error = held.into_error(last, self.now()).unwrap_or_else(|| no_candidate(&snap, &reqs, &[], start));
        fail(error, report)
    }
}

/// Failures that cost little when they come back fast: another model may answer at once.
fn is_cheap(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::RateLimitedModel | ErrorKind::ModelUnavailable | ErrorKind::ServerError)
}

/// SplitMix64's output function: a well-spread `u64` from any `u64` (the wait stagger).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
