//! The attempt loop: admit, send, settle, and fall back within the request's budget
//! (attempts, calls, deadline), waiting when every candidate is cooling.

use super::Router;
use super::account::Account;
use super::admit::Admit;
use super::attempt::Run;
use super::commit::commit;
use super::in_flight::{Slot, hold};
use super::plan::{Chooser, Weight, all_cooling, plan};
use super::settle::Settled;
use crate::dialect::Dialect;
use crate::model::ModelInfo;
use crate::report::{RouteFailure, RouteReport, Routed};
use crate::request::ChatRequest;
use crate::select::rng_from_seed;
use crate::time::Timestamp;
use crate::upstream::{Endpoint, TransportError, UpstreamResponse};
use bytes::Bytes;
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
    /// Each attempt is four steps: admit (pick a model and reserve its account), send,
    /// settle (judge the outcome and record it), and on failure the next attempt. The
    /// attempts are budgeted by what they cost: a cheap failure (a rate limit, an
    /// "unavailable" or a server error answered within `cheap_failure_bound`) and a raced
    /// one do not count against `max_attempts`; every call counts against
    /// `max_upstream_calls`; no attempt starts after the deadline; each model is tried
    /// once at most. When every candidate is cooling and one recovers soon, the request
    /// waits for it (see [`RouterConfig::max_cooling_wait`](super::RouterConfig::max_cooling_wait)).
    pub async fn route(&self, req: &ChatRequest, seed: u64) -> Result<Routed, RouteFailure> {
        let snap = self.ports.catalog.snapshot();
        let start = self.now();
        let reqs = self.config.candidate_requirements(req.requirements());
        let mut run = Run::new(plan(&snap, req, &reqs, start)?, rng_from_seed(seed), start);
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
        while run.may_try(&self.config) {
            let now = self.now();
            if let Some(error) = run.past_deadline(&self.config, now) {
                return run.fail(error);
            }
            let (index, kind, cap) = match self.admit(&snap, req, &mut run, chooser, now) {
                Admit::Go { index, kind, cap } => (index, kind, cap),
                Admit::Passed => continue,
                Admit::Exhausted => break,
                Admit::Cooling(until) => {
                    if self.wait_for_cooling(&mut run, until, now, seed).await {
                        continue;
                    }
                    if run.report.attempts.is_empty() {
                        return run.fail(all_cooling(until, now));
                    }
                    break;
                }
            };
            // Held from here; given back at the end of this iteration unless an
            // answer's stream takes it.
            let slot = run.slot.take();
            if !self.admit_shared(&snap, (index, cap), req, &mut run, now).await {
                continue;
            }
            run.report.pick = kind;
            let info = &snap.entries()[index].info;
            let sent_at = self.now();
            let result = self.send(req, info, (cap, slot), &mut run.report).await;
            match self.settle(&snap, index, result, (now, sent_at), &mut run) {
                Settled::Answered(response) => {
                    run.report.model = Some(info.id.clone());
                    return Ok(Routed { response, report: run.report });
                }
                Settled::Failed(error) => return run.fail(error),
                Settled::Next => {}
            }
        }
        run.exhausted(&snap, &reqs, self.now())
    }

    /// Waits, when it is worth it, for the earliest cooling candidate (`until`); `true`
    /// when the plan starts again. Nothing is held while waiting: no lock, no upstream
    /// connection.
    async fn wait_for_cooling(&self, run: &mut Run, until: Option<Timestamp>, now: Timestamp, seed: u64) -> bool {
        let Some(wait) = self.cooling_wait(until, now, run.start, run.report.waited, seed) else { return false };
        if !self.ports.clock.sleep(wait).await {
            return false;
        }
        run.report.waited += wait;
        run.plan.rewind();
        true
    }

    /// Sends `req` to `info` with the output a token budget leaves (`cap`), and makes a
    /// good answer the client's (see [`commit`]); a stream holds the attempt's `slot`
    /// at a bounded provider until it ends.
    async fn send(
        &self,
        req: &ChatRequest,
        info: &ModelInfo,
        (cap, slot): (Option<u64>, Option<Slot>),
        report: &mut RouteReport,
    ) -> Result<UpstreamResponse, TransportError> {
        let clamped = self.config.clamped_output(req.requirements(), info);
        // Under a token budget the output is always said: a free tier charges an
        // absent `max_tokens` as the model's whole limit.
        let max_tokens = match cap {
            Some(cap) => Some(clamped.or(req.requirements().max_output_tokens).map_or(cap, |n| n.min(cap))),
            None => clamped,
        };
        report.max_tokens = max_tokens;
        report.token_charge = cap.map(|n| req.requirements().prompt_tokens.saturating_add(n));
        let plain = !Account::of(info).takes_extensions();
        let mut body = req.body_for_upstream(info.upstream_id(), plain, max_tokens);
        if let Some(input_type) = info.embedding.input_type.as_deref() {
            req.add_input_type(&mut body, input_type);
        }
        let body = Bytes::from(body);
        let stream = req.is_stream() && req.endpoint() == Endpoint::Chat;
        let sent = self.ports.transport.send_model(req.endpoint(), info, body, stream).await?;
        commit(hold(sent, slot), &info.id, &self.stream_errors, self.judge(req, Dialect::of(info)), &mut report.answer)
            .await
    }
}

/// SplitMix64's output function: a well-spread `u64` from any `u64` (the wait stagger).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
