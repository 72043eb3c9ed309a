//! Token budgets in the attempt loop: a declared provider's model is sent a request only
//! when its provider's (and its own) token budget can take the prompt and a useful
//! output now; the output asked for is lowered to what the budget leaves, and the
//! tokens are counted when the attempt is reserved (free tiers charge them up front).

use super::Router;
use super::config::MIN_USEFUL_OUTPUT_TOKENS;
use crate::health::HealthState;
use crate::model::ModelInfo;
use crate::quota::{ProviderBlock, ProviderPolicy, QuotaBlock, QuotaScope, Room};
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
    /// The budgets of model `info` (its provider's, then its own), with what they leave now.
    fn budgets<'a>(
        &self,
        health: &'a HealthState,
        info: &'a ModelInfo,
        now: Timestamp,
    ) -> Vec<(String, ProviderPolicy, Option<Room>)> {
        let provider = info.provider_name();
        [
            (provider.to_owned(), self.provider_policy(provider)),
            (info.id.to_string(), self.config.providers.get(info.id.as_str()).cloned().unwrap_or_default()),
        ]
        .into_iter()
        .filter(|(_, p)| p.tokens.is_limited())
        .map(|(name, p)| {
            let room = health.providers.get(&name).map_or_else(
                || crate::quota::TokenState::default().room(&p.tokens, &*p.reset, now),
                |s| s.tokens.room(&p.tokens, &*p.reset, now),
            );
            (name, p, room)
        })
        .collect()
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
        let budgets = self.budgets(health, info, now);
        if budgets.is_empty() {
            return Budget::Unlimited;
        }
        let prompt = reqs.prompt_tokens;
        let wanted = self.config.clamped_output(reqs, info).or(reqs.max_output_tokens);
        let need = prompt.saturating_add(wanted.unwrap_or(MIN_USEFUL_OUTPUT_TOKENS).min(MIN_USEFUL_OUTPUT_TOKENS));
        let mut output = wanted.unwrap_or(u64::MAX);
        for (name, policy, room) in budgets {
            if policy.tokens.ceiling().is_some_and(|c| c < need) {
                return Budget::Never;
            }
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
        let number =
            |name: &str| headers.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.trim().parse::<u64>().ok());
        let (Some(limit), Some(remaining)) =
            (number("x-ratelimit-limit-tokens"), number("x-ratelimit-remaining-tokens"))
        else {
            return;
        };
        let provider = info.provider_name();
        if self.provider_policy(provider).tokens.per_minute.is_some() {
            health.provider_mut(provider).tokens.observe_minute(limit, remaining, now);
        }
    }

    /// Counts `tokens` against every token budget of `info`.
    pub(super) fn charge_budget(&self, health: &mut HealthState, info: &ModelInfo, tokens: u64, now: Timestamp) {
        for (name, policy, _) in self.budgets(health, info, now) {
            health.provider_mut(&name).tokens.charge(tokens, &*policy.reset, now);
        }
    }
}
