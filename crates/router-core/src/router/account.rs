//! Whose quota an attempt spends, and the rules that differ between accounts. No rule
//! here names a provider: each asks the account's dialect (`crate::dialect`), whose
//! tables say what an upstream's key and host are like.
//!
//! An account whose quota is its key's (OpenRouter's) keeps request quotas per minute
//! and per UTC day in the account ledger, reconciled with upstream's counter and shared
//! over the link when configured. Any other account keeps the request and token quotas
//! the operator declared, and its "not free" mark. Each host breaker counts in a union;
//! alone, only where the dialect says so.

use super::Router;
use super::budget::Budget;
use crate::catalog::CatalogSnapshot;
use crate::dialect::Dialect;
use crate::dialect::openai::LOCAL_BUSY_BACKOFF;
use crate::health::HealthState;
use crate::model::ModelInfo;
use crate::quota::ProviderBlock;
use crate::request::Requirements;
use crate::time::Timestamp;
use crate::upstream::{ErrorKind, TransportError};

/// The account an attempt on one model spends: its provider's name and dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Account<'a> {
    name: &'a str,
    dialect: Dialect,
}

impl<'a> Account<'a> {
    /// The account of `info`.
    pub(super) fn of(info: &'a ModelInfo) -> Self {
        Account { name: info.provider_name(), dialect: Dialect::of(info) }
    }

    /// The accounts of `snap`'s models when it holds declared providers' (alone, the
    /// catalog's own account is the pool's and is not listed): the catalog's own first,
    /// then the declared ones by name.
    pub(super) fn all(snap: &'a CatalogSnapshot) -> Vec<Self> {
        if snap.providers().is_empty() {
            return Vec::new();
        }
        let mut accounts: Vec<Self> = Vec::with_capacity(snap.providers().len() + 1);
        for entry in snap.entries() {
            let account = Account::of(&entry.info);
            if !accounts.iter().any(|a| a.name == account.name) {
                accounts.push(account);
            }
        }
        accounts.sort_by_key(|a| (snap.providers().iter().position(|p| **p == *a.name), a.name));
        accounts
    }

    /// The name its state and holds are kept under.
    pub(super) fn name(self) -> &'a str {
        self.name
    }

    /// Whether its upstream takes OpenRouter's request extensions; any other is sent a
    /// plain OpenAI-dialect body.
    pub(super) fn takes_extensions(self) -> bool {
        self.dialect.takes_extensions()
    }

    /// Whether its request quota is its key's, kept in the account ledger.
    fn keyed(self) -> bool {
        self.dialect.quota_is_the_keys()
    }

    /// Whether its host breaker counts in a pool that is `union` or not.
    fn breaker_counts(self, union: bool) -> bool {
        union || self.dialect.breaker_when_alone()
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
    /// `Ok` carries the output a token budget leaves, when one applies. A keyed
    /// account is reserved later, out of the lock, when its quota is shared.
    pub(super) fn reserve_account(
        &self,
        health: &mut HealthState,
        reqs: &Requirements,
        info: &ModelInfo,
        union: bool,
        now: Timestamp,
    ) -> Result<Option<u64>, Pass> {
        let account = Account::of(info);
        let name = account.name;
        if account.keyed() {
            if let Some(block) = unreachable(health, name, now).filter(|_| account.breaker_counts(union)) {
                return Err(Pass::Account(name.to_owned(), block));
            }
            if self.shared.is_none() {
                let quota = health.reserve(&self.quota_policy(), now);
                quota.map_err(|b| Pass::Account(name.to_owned(), ProviderBlock::Quota(b)))?;
            }
            return Ok(None);
        }
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
        let account = Account::of(info);
        if !account.keyed() {
            let policy = self.provider_policy(account.name);
            health.provider_mut(account.name).quota.release_at(&*policy.reset, now);
        } else if self.shared.is_none() {
            health.release(now);
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
        let account = Account::of(info);
        let provider = self.provider_policy(account.name);
        if !account.keyed() {
            health.record_provider_failure(account.name, &info.id, error, policy, &provider, now);
            return;
        }
        if error.kind == ErrorKind::Connection && account.breaker_counts(union) {
            health.provider_mut(account.name).connection_failed(&provider, policy.breaker_window, now);
        }
        if error.kind == ErrorKind::DailyCapReached {
            // A reason to read upstream's counter again.
            self.daily_caps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        health.record_failure(&info.id, error, policy, now);
    }

    /// What keeps `account` from serving now.
    pub(super) fn account_hold(
        &self,
        health: &HealthState,
        account: Account<'_>,
        now: Timestamp,
    ) -> Option<ProviderBlock> {
        let name = account.name;
        if account.keyed() {
            let quota = health.quota_block(&self.quota_policy(), now).map(ProviderBlock::Quota);
            return quota.or_else(|| unreachable(health, name, now));
        }
        health
            .provider_block(name, &self.provider_policy(name), now)
            .or_else(|| self.in_flight.block(name, now, LOCAL_BUSY_BACKOFF))
    }

    /// Whether the attempt on `info` is reserved in the shared store's link (a keyed
    /// account, when state is shared with other instances).
    pub(super) fn shared_account(&self, info: &ModelInfo) -> Option<&super::link::SharedLink> {
        self.shared.as_ref().filter(|_| Account::of(info).keyed())
    }
}

/// The account `name`'s host breaker, when open.
fn unreachable(health: &HealthState, name: &str, now: Timestamp) -> Option<ProviderBlock> {
    let until = health.providers.get(name)?.unreachable_until.filter(|&u| now < u)?;
    Some(ProviderBlock::Unreachable { until })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Billing, OPENROUTER_PROVIDER, Provenance};

    fn info(provider: Option<&str>) -> ModelInfo {
        let mut m = ModelInfo::new("acme/m:free");
        m.provider =
            provider.map(|p| Provenance { provider: p.into(), upstream_id: "m".into(), billing: Billing::FreeTier });
        m
    }

    fn check(provider: Option<&str>, name: &str, keyed: bool) {
        let m = info(provider);
        let account = Account::of(&m);
        let rules = (account.keyed(), account.takes_extensions(), account.breaker_counts(false));
        assert_eq!((account.name(), rules), (name, (keyed, keyed, !keyed)));
        assert!(account.breaker_counts(true), "in a union every host breaker counts");
    }

    #[test]
    fn the_catalogs_own_models_spend_its_keyed_account_and_a_declared_providers_its_own() {
        check(None, OPENROUTER_PROVIDER, true);
        check(Some("groq"), "groq", false);
    }
}
