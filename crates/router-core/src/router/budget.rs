//! Token budgets in the attempt loop: a declared provider's model is sent a request only
//! when its provider's (and its own) token budget can take the prompt and a useful
//! output now; the output asked for is lowered to what the budget leaves, and the
//! tokens are counted when the attempt is reserved (free tiers charge them up front).

use super::Router;
use super::config::MIN_USEFUL_OUTPUT_TOKENS;
use crate::health::HealthState;
use crate::model::ModelInfo;
use crate::quota::{ProviderBlock, ProviderPolicy, QuotaBlock, QuotaScope, TokenState};
use crate::request::Requirements;
use crate::time::Timestamp;

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
                let whose = if name.contains('/') { "model" } else { "provider" };
                let reason = format!(
                    "{whose} `{name}`: token budget left ({}) cannot take this request (~{need} tokens)",
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
