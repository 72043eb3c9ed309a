//! A declared provider's budgets in the shared store (Redis), when instances share
//! state: the step of the attempt loop after the pick's local reservation and before the
//! send. One script counts the attempt against its request quotas (its provider's and
//! its model's own) and its token budgets, all or none, so that the instances together
//! keep to a free tier's limits; while the store does not answer, each instance keeps to
//! its share of what was left.

use super::whose;
use crate::health::HealthState;
use crate::model::ModelInfo;
use crate::quota::{ProviderBlock, ProviderPolicy, QuotaBlock, QuotaScope};
use crate::request::Requirements;
use crate::router::Router;
use crate::router::link::SharedLink;
use crate::shared::{BudgetUnit, REFUSED_RETRY, SharedBudget, SharedError, TokenOutcome, TokenReserve};
use crate::time::Timestamp;
use std::sync::atomic::Ordering;

impl Router {
    /// The token budgets of `info` (its provider's, then its own) as the shared store
    /// counts them.
    pub(super) fn shared_budgets(&self, info: &ModelInfo, now: Timestamp) -> Vec<SharedBudget> {
        let tokens = |p: &ProviderPolicy| (p.tokens.per_minute, p.tokens.per_day);
        self.budgets(info).map(|(name, p)| shared(name, BudgetUnit::Tokens, tokens(p), p, now)).collect()
    }

    /// The request quotas of `info` (its provider's, then its own), by the name their
    /// counts are kept under.
    fn quotas<'a>(&'a self, info: &'a ModelInfo) -> impl Iterator<Item = (&'a str, &'a ProviderPolicy)> {
        [info.provider_name(), info.id.as_str()]
            .into_iter()
            .filter_map(|name| self.config.providers.get(name).map(|p| (name, p)))
            .filter(|(_, p)| p.quota.per_minute.is_some() || p.quota.per_day.is_some())
    }

    /// Counts an admitted attempt on `info` in the shared store: its request quotas and,
    /// when a token budget left it the output `cap`, the prompt estimate of `reqs` plus
    /// `cap` against its token budgets. On refusal the attempt's local reservation (its
    /// tokens, its request counts, a probe) is given back, and the budget's name and
    /// block say who waits until when.
    pub async fn share_budget(
        &self,
        info: &ModelInfo,
        reqs: &Requirements,
        cap: Option<u64>,
        now: Timestamp,
    ) -> Result<(), (String, ProviderBlock)> {
        let Some(link) = &self.shared else { return Ok(()) };
        let request_unit = |(name, p): (&str, &ProviderPolicy)| {
            let limits = (p.quota.per_minute.map(u64::from), p.quota.per_day.map(u64::from));
            shared(name, BudgetUnit::Requests, limits, p, now)
        };
        let mut budgets: Vec<SharedBudget> = self.quotas(info).map(request_unit).collect();
        if cap.is_some() {
            budgets.extend(self.shared_budgets(info, now));
        }
        if budgets.is_empty() {
            return Ok(());
        }
        let tokens = reqs.prompt_tokens.saturating_add(cap.unwrap_or(0));
        let request = TokenReserve { tokens, now, budgets };
        let outcome = link.port.reserve_tokens(&request).await;
        let mut health = self.health();
        self.dirty.store(true, Ordering::Release);
        let (name, reason, until, spent) = match outcome {
            Ok(TokenOutcome::Reserved(counts)) => {
                self.take_counts(&mut health, &request.budgets, &counts, now);
                return Ok(());
            }
            Ok(TokenOutcome::Full { budget, day, left }) => {
                // An index out of range (a store that answered oddly) is read as the first.
                let Some(b) = request.budgets.get(budget).or(request.budgets.first()) else { return Ok(()) };
                let (window, until) = if day { ("day", b.day_ends) } else { ("minute", now.next_minute()) };
                let reason = match b.unit {
                    BudgetUnit::Requests => format!(
                        "{} `{}`: the request quota shared by every instance is spent this {window}",
                        whose(&b.name),
                        b.name
                    ),
                    BudgetUnit::Tokens => format!(
                        "{} `{}`: the token budget shared by every instance has {left} left this {window}, not the \
                         ~{tokens} this request needs",
                        whose(&b.name),
                        b.name
                    ),
                };
                let limit = if day { b.per_day } else { b.per_minute };
                let used = limit.map(|l| l.saturating_sub(left));
                let spent = if day { (None, used) } else { (used, None) };
                (b.name.clone(), reason, until, Some((b.unit, spent)))
            }
            Err(SharedError::Refused(why)) => {
                let reason = format!("the shared state (Redis) refuses this instance, check redis_url: {why}");
                let first = request.budgets.first().map_or_else(String::new, |b| b.name.clone());
                (first, reason, now.saturating_add(REFUSED_RETRY), None)
            }
            Err(_) => match self.beyond_share(&health, info, link, now) {
                None => return Ok(()),
                Some((name, reason)) => (name, reason, now.next_minute(), None),
            },
        };
        self.give_back(&mut health, info, tokens, now);
        // The store's word that the budget is spent: the pick passes its other models over.
        if let Some((unit, (minute, day))) = spent
            && let Some(policy) = self.config.providers.get(&name)
        {
            let state = health.provider_mut(&name);
            match unit {
                BudgetUnit::Requests => state.quota.raise_to(minute, day, &*policy.reset, now),
                BudgetUnit::Tokens => state.tokens.raise(minute, day, &*policy.reset, now),
            }
        }
        Err((name, ProviderBlock::Quota(QuotaBlock { scope: QuotaScope::Upstream { reason }, until })))
    }

    /// Takes the store's counts of every budget (`counts`, in the order of `budgets`).
    fn take_counts(&self, health: &mut HealthState, budgets: &[SharedBudget], counts: &[(u64, u64)], now: Timestamp) {
        for (b, &(minute, day)) in budgets.iter().zip(counts) {
            let Some(policy) = self.config.providers.get(&b.name) else { continue };
            let state = health.provider_mut(&b.name);
            match b.unit {
                BudgetUnit::Requests => state.quota.take_shared(minute, day, &*policy.reset, now),
                BudgetUnit::Tokens => state.tokens.take_shared(minute, day, &*policy.reset, now),
            }
        }
    }

    /// With the store away: the first budget of `info` this instance has spent its share
    /// of (what was left when the store last answered, over the instances), and why.
    fn beyond_share(
        &self,
        health: &HealthState,
        info: &ModelInfo,
        link: &SharedLink,
        now: Timestamp,
    ) -> Option<(String, String)> {
        let instances = link.port.status().instances.max(1);
        let quota = self.quotas(info).find(|(name, p)| {
            let state = health.providers.get(*name).map(|s| &s.quota);
            !state.is_some_and(|s| s.within_share(&p.quota, instances, &*p.reset, now))
        });
        if let Some((name, _)) = quota {
            let why = "request quota";
            return Some((name.to_owned(), share_spent(name, why)));
        }
        let tokens = self.budgets(info).find(|(name, p)| {
            let state = health.providers.get(*name).map(|s| &s.tokens);
            !state.is_some_and(|s| s.within_share(&p.tokens, u64::from(instances), &*p.reset, now))
        });
        tokens.map(|(name, _)| (name.to_owned(), share_spent(name, "token budget")))
    }
}

/// One budget of `name` counting `unit` within `limits` (per minute, per quota day).
fn shared(
    name: &str,
    unit: BudgetUnit,
    (per_minute, per_day): (Option<u64>, Option<u64>),
    p: &ProviderPolicy,
    now: Timestamp,
) -> SharedBudget {
    let (day, day_ends) = p.reset.day(now);
    SharedBudget { name: name.to_owned(), unit, per_minute, per_day, day, day_ends }
}

fn share_spent(name: &str, what: &str) -> String {
    format!(
        "{} `{name}`: this instance's share of the {what} is spent while the shared state does not answer",
        whose(name)
    )
}
