//! Token budgets in the attempt loop: a declared provider's model is sent a request only
//! when its provider's (and its own) token budget can take the prompt and a useful
//! output now; the output asked for is lowered to what the budget leaves, and the
//! tokens are counted when the attempt is reserved (free tiers charge them up front),
//! in the shared store too when instances share state, and settled from the answer's
//! `usage` (a whole answer's, or a stream's last chunk's).

use super::Router;
use super::config::MIN_USEFUL_OUTPUT_TOKENS;
use crate::health::HealthState;
use crate::model::{ModelId, ModelInfo};
use crate::quota::{ProviderBlock, ProviderPolicy, QuotaBlock, QuotaScope, TokenState};
use crate::report::{RouteFailure, Routed};
use crate::request::{ChatRequest, Requirements};
use crate::shared::TokenCorrection;
use crate::sse::{usage_total, watch_usage};
use crate::time::Timestamp;
use crate::upstream::Body;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What the token budgets let an attempt on one model ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Budget {
    /// No budget applies.
    Unlimited,
    /// At most this much output (the prompt estimate fits beside it).
    Output(u64),
    /// Not even an empty minute or day could take the prompt and a useful output.
    Never,
    /// Not now: the block says until when.
    Later(ProviderBlock),
}

impl Router {
    /// The token budgets of model `info` (its provider's, then its own), by the name their
    /// counts are kept under; borrowed, so that a model without one costs no allocation.
    fn budgets<'a>(&'a self, info: &'a ModelInfo) -> impl Iterator<Item = (&'a str, &'a ProviderPolicy)> {
        [info.provider_name(), info.id.as_str()]
            .into_iter()
            .filter_map(|name| self.config.providers.get(name).map(|p| (name, p)))
            .filter(|(_, p)| p.tokens.is_limited())
    }

    /// What the token budgets let an attempt on `info` ask for now, for a request
    /// needing `reqs`.
    pub(super) fn within_budget(
        &self,
        health: &HealthState,
        reqs: &Requirements,
        info: &ModelInfo,
        now: Timestamp,
    ) -> Budget {
        if self.budgets(info).next().is_none() {
            return Budget::Unlimited;
        }
        let prompt = reqs.prompt_tokens;
        let wanted = self.config.clamped_output(reqs, info).or(reqs.max_output_tokens);
        let need = prompt.saturating_add(wanted.unwrap_or(MIN_USEFUL_OUTPUT_TOKENS).min(MIN_USEFUL_OUTPUT_TOKENS));
        let mut output = wanted.unwrap_or(u64::MAX);
        for (name, policy) in self.budgets(info) {
            if policy.tokens.ceiling().is_some_and(|c| c < need) {
                return Budget::Never;
            }
            let counted = health.providers.get(name).map(|s| &s.tokens);
            let room = counted.unwrap_or(&TokenState::default()).room(&policy.tokens, &*policy.reset, now);
            let Some(room) = room else { continue };
            if room.tokens < need {
                let reason = format!(
                    "{} `{name}`: token budget left ({}) cannot take this request (~{need} tokens)",
                    whose(name),
                    room.tokens
                );
                return Budget::Later(ProviderBlock::Quota(QuotaBlock {
                    scope: QuotaScope::Upstream { reason },
                    until: room.until,
                }));
            }
            output = output.min(room.tokens - prompt);
        }
        Budget::Output(output)
    }

    /// Takes the provider's own count of this minute's tokens from an answer's
    /// `x-ratelimit-limit-tokens` / `x-ratelimit-remaining-tokens` (Groq's, Mistral's),
    /// when it has a token budget: the local count only estimates.
    pub(super) fn observe_budget(
        &self,
        health: &mut HealthState,
        info: &ModelInfo,
        headers: &[(&'static str, String)],
        now: Timestamp,
    ) {
        let provider = info.provider_name();
        if self.config.providers.get(provider).is_none_or(|p| p.tokens.per_minute.is_none()) {
            return;
        }
        let number =
            |name: &str| headers.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.trim().parse::<u64>().ok());
        if let (Some(limit), Some(remaining)) =
            (number("x-ratelimit-limit-tokens"), number("x-ratelimit-remaining-tokens"))
        {
            health.provider_mut(provider).tokens.observe_minute(limit, remaining, now);
        }
    }

    /// Counts `tokens` against every token budget of `info`.
    pub(super) fn charge_budget(&self, health: &mut HealthState, info: &ModelInfo, tokens: u64, now: Timestamp) {
        for (name, policy) in self.budgets(info) {
            health.provider_mut(name).tokens.charge(tokens, &*policy.reset, now);
        }
    }
}

/// What a budgeted answer was charged, to settle from its `usage`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TokenCharge {
    /// The model that answered (its budgets are its provider's and its own).
    model: ModelId,
    /// The prompt estimate plus the output asked for.
    tokens: u64,
    /// When it was charged: between the request's start and the answer's head.
    between: (Timestamp, Timestamp),
}

impl Router {
    /// Undoes the local reservation of an attempt on `info` that will not be sent: its
    /// tokens, its provider's and its own request counts, its probe.
    fn give_back(&self, health: &mut HealthState, info: &ModelInfo, tokens: u64, now: Timestamp) {
        for (name, policy) in self.budgets(info) {
            health.provider_mut(name).tokens.settle(tokens, 0, &*policy.reset, (now, now));
        }
        for name in [info.provider_name(), info.id.as_str()] {
            if let Some(policy) = self.config.providers.get(name) {
                health.provider_mut(name).quota.release_at(&*policy.reset, now);
            }
        }
        health.abandon_attempt(&info.id);
    }

    /// What the answer of `routed` was charged against token budgets, when any was (the
    /// attempt loop says so in the report: nothing is looked up again).
    fn charge_of(&self, routed: &Routed, start: Timestamp) -> Option<TokenCharge> {
        let tokens = routed.report.token_charge?;
        let model = routed.report.model.clone()?;
        Some(TokenCharge { model, tokens, between: (start, self.now()) })
    }

    /// Settles `charge` with the `used` tokens its answer's `usage` reports, here and in
    /// the shared store.
    fn settle_tokens(&self, charge: &TokenCharge, used: u64) {
        let snap = self.ports.catalog.snapshot();
        let Some(entry) = snap.get(charge.model.as_str()) else { return };
        {
            let mut health = self.health();
            for (name, policy) in self.budgets(&entry.info) {
                health.provider_mut(name).tokens.settle(charge.tokens, used, &*policy.reset, charge.between);
            }
        }
        self.dirty.store(true, Ordering::Release);
        if let Some(link) = &self.shared {
            let (from, to) = charge.between;
            let budgets = self.shared_budgets(&entry.info, from);
            let minute = from.minute() == to.minute();
            let day = budgets.iter().zip(self.budgets(&entry.info)).all(|(b, (_, p))| p.reset.day(to).0 == b.day);
            let correction = TokenCorrection { budgets, at: from, minute, day, charged: charge.tokens, used };
            link.port.correct_tokens(correction);
        }
    }

    /// Routes `req` as [`route`](Self::route) does and, when the answer was charged
    /// against a token budget, settles the charge from its `usage`: a whole answer's at
    /// once, a stream's when it ends (a stream that fails or is dropped first keeps its
    /// charge). Answers with no budget pass untouched and unread.
    pub async fn route_metered(self: &Arc<Self>, req: &ChatRequest, seed: u64) -> Result<Routed, RouteFailure> {
        let start = self.now();
        let mut routed = self.route(req, seed).await?;
        let Some(charge) = self.charge_of(&routed, start) else { return Ok(routed) };
        routed.response.body = match routed.response.body {
            Body::Full(bytes) => {
                if let Some(used) = usage_total(&bytes) {
                    self.settle_tokens(&charge, used);
                }
                Body::Full(bytes)
            }
            Body::Stream(stream) => {
                let router = Arc::clone(self);
                Body::Stream(watch_usage(stream, move |used| router.settle_tokens(&charge, used)))
            }
        };
        Ok(routed)
    }
}

/// How a budget's name reads in a message: a model's id has a `/`.
fn whose(name: &str) -> &'static str {
    if name.contains('/') { "model" } else { "provider" }
}

mod shared;

#[cfg(test)]
mod tests;
