//! Whose quota an attempt spends, and the rules that differ between accounts: the one
//! home of "is this OpenRouter" in the attempt loop.
//!
//! OpenRouter's account keeps request quotas per minute and per UTC day (reconciled with
//! upstream's counter, shared over Redis when configured) and its host breaker counts
//! only in a union. A declared provider keeps its own request and token quotas, its host
//! breaker and its "not free" mark. Every step of the loop asks its account instead of
//! branching on the provider itself.

use super::Router;
use super::budget::Budget;
use crate::catalog::CatalogSnapshot;
use crate::dialect::openai::LOCAL_BUSY_BACKOFF;
use crate::health::{HealthPolicy, HealthState};
use crate::model::{ModelInfo, OPENROUTER_PROVIDER};
use crate::quota::{ProviderBlock, ProviderPolicy};
use crate::request::Requirements;
use crate::time::Timestamp;
use crate::upstream::{ErrorKind, TransportError};

/// The account an attempt on one model spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Account<'a> {
    /// OpenRouter's own account (a model with no declared provider).
    OpenRouter,
    /// A declared provider, by name.
    Declared(&'a str),
}

impl<'a> Account<'a> {
    /// The account of `info`.
    pub(super) fn of(info: &'a ModelInfo) -> Self {
        match &info.provider {
            None => Account::OpenRouter,
            Some(p) => Account::Declared(&p.provider),
        }
    }

    /// The accounts of `snap`'s models, OpenRouter's first, when they are more than
    /// one (alone, OpenRouter's account is the pool's and is not listed).
    pub(super) fn all(snap: &'a CatalogSnapshot) -> Vec<Self> {
        let declared = snap.providers().iter().map(|p| Account::Declared(p));
        let openrouter = snap.entries().iter().any(|e| e.info.provider.is_none()) && !snap.providers().is_empty();
        openrouter.then_some(Account::OpenRouter).into_iter().chain(declared).collect()
    }

    /// The name its state and holds are kept under.
    pub(super) fn name(self) -> &'a str {
        match self {
            Account::OpenRouter => OPENROUTER_PROVIDER,
            Account::Declared(name) => name,
        }
    }

    /// Whether the upstream speaks OpenRouter's dialect (its request extensions pass);
    /// a declared provider is sent a plain OpenAI-dialect body.
    pub(super) fn speaks_openrouter(self) -> bool {
        self == Account::OpenRouter
    }
}

/// Why a model is passed over at admission.
#[derive(Debug, PartialEq)]
pub(super) enum Pass {
    /// Only this model: held by its own limit (`Some`), or never within budget.
    Model(Option<(String, ProviderBlock)>),
    /// Every model of the account leaves this request's plan.
    Account(String, ProviderBlock),
}

impl Router {
    /// Reserves one attempt on `info` in its account's local counts, or says why not.
    /// `Ok` carries the output a token budget leaves, when one applies. OpenRouter's
    /// account is reserved later, out of the lock, when its quota is shared.
    pub(super) fn reserve_account(
        &self,
        health: &mut HealthState,
        reqs: &Requirements,
        info: &ModelInfo,
        union: bool,
        now: Timestamp,
    ) -> Result<Option<u64>, Pass> {
        let name = match Account::of(info) {
            Account::OpenRouter => {
                if let Some(block) = openrouter_unreachable(health, now).filter(|_| union) {
                    return Err(Pass::Account(OPENROUTER_PROVIDER.to_owned(), block));
                }
                if self.shared.is_none() {
                    let quota = health.reserve(&self.quota_policy(), now);
                    quota.map_err(|b| Pass::Account(OPENROUTER_PROVIDER.to_owned(), ProviderBlock::Quota(b)))?;
                }
                return Ok(None);
            }
            Account::Declared(name) => name,
        };
        let id = info.id.as_str();
        // A model's own limit, when one is configured: only that model waits.
        if let Some(block) = self.model_hold(health, id, now) {
            return Err(Pass::Model(Some((String::new(), block))));
        }
        let cap = match self.within_budget(health, reqs, info, now) {
            Budget::Unlimited => None,
            Budget::Output(n) => Some(n),
            Budget::Never => return Err(Pass::Model(None)),
            Budget::Later(block) => return Err(Pass::Model(Some((name.to_owned(), block)))),
        };
        let policy = self.provider_policy(name);
        health.provider_mut(name).reserve(name, &policy, now).map_err(|b| Pass::Account(name.to_owned(), b))?;
        self.count_model(health, id, now);
        if let Some(n) = cap {
            self.charge_budget(health, info, reqs.prompt_tokens.saturating_add(n), now);
        }
        Ok(cap)
    }

    /// Gives back the local reservation of an attempt that never left this machine. A
    /// shared store's count is not given back: it may be another process's.
    pub(super) fn release_account(&self, health: &mut HealthState, info: &ModelInfo, now: Timestamp) {
        match Account::of(info) {
            Account::Declared(name) => {
                let policy = self.provider_policy(name);
                health.provider_mut(name).quota.release_at(&*policy.reset, now);
            }
            Account::OpenRouter if self.shared.is_none() => health.release(now),
            Account::OpenRouter => {}
        }
    }

    /// Applies a failed attempt on `info` to its model and its account.
    pub(super) fn record_account_failure(
        &self,
        health: &mut HealthState,
        info: &ModelInfo,
        error: &TransportError,
        union: bool,
        now: Timestamp,
    ) {
        let policy = &self.config.health;
        match Account::of(info) {
            Account::Declared(name) => {
                let provider = self.provider_policy(name);
                health.record_provider_failure(name, &info.id, error, policy, &provider, now);
            }
            Account::OpenRouter => {
                // Alone, OpenRouter's connection failures are nobody's (every model is
                // behind the one host); in a union its host has a breaker like any.
                if error.kind == ErrorKind::Connection && union {
                    openrouter_connection_failed(health, policy, now);
                }
                if error.kind == ErrorKind::DailyCapReached {
                    // A reason to read upstream's counter again.
                    self.daily_caps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                health.record_failure(&info.id, error, policy, now);
            }
        }
    }

    /// What keeps `account` from serving now.
    pub(super) fn account_hold(
        &self,
        health: &HealthState,
        account: Account<'_>,
        now: Timestamp,
    ) -> Option<ProviderBlock> {
        match account {
            Account::OpenRouter => {
                let quota = health.quota_block(&self.quota_policy(), now).map(ProviderBlock::Quota);
                quota.or_else(|| openrouter_unreachable(health, now))
            }
            Account::Declared(name) => health
                .provider_block(name, &self.provider_policy(name), now)
                .or_else(|| self.in_flight.block(name, now, LOCAL_BUSY_BACKOFF)),
        }
    }

    /// Whether the attempt on `info` is reserved in the shared store (OpenRouter's
    /// account, when state is shared with other instances).
    pub(super) fn shared_account(&self, info: &ModelInfo) -> Option<&super::link::SharedLink> {
        self.shared.as_ref().filter(|_| Account::of(info) == Account::OpenRouter)
    }
}

/// OpenRouter's host breaker, when open: in a union its models wait like a dead
/// provider's (alone, OpenRouter's connection failures are nobody's, as before).
fn openrouter_unreachable(health: &HealthState, now: Timestamp) -> Option<ProviderBlock> {
    let until = health.providers.get(OPENROUTER_PROVIDER)?.unreachable_until.filter(|&u| now < u)?;
    Some(ProviderBlock::Unreachable { until })
}

/// A connection to OpenRouter failed in a union: feeds its host breaker.
fn openrouter_connection_failed(health: &mut HealthState, policy: &HealthPolicy, now: Timestamp) {
    health.provider_mut(OPENROUTER_PROVIDER).connection_failed(&ProviderPolicy::default(), policy.breaker_window, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Billing, Provenance};

    fn info(provider: Option<&str>) -> ModelInfo {
        let mut m = ModelInfo::new("acme/m:free");
        m.provider =
            provider.map(|p| Provenance { provider: p.into(), upstream_id: "m".into(), billing: Billing::FreeTier });
        m
    }

    fn check(provider: Option<&str>, name: &str, speaks_openrouter: bool) {
        let m = info(provider);
        let account = Account::of(&m);
        assert_eq!((account.name(), account.speaks_openrouter()), (name, speaks_openrouter));
    }

    #[test]
    fn a_model_without_a_declared_provider_spends_openrouters_account() {
        check(None, OPENROUTER_PROVIDER, true);
        check(Some("groq"), "groq", false);
    }
}
