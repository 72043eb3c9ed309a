//! The attempt loop's view of declared providers: a spent or unreachable provider's
//! candidates leave the pick (the other providers keep serving), and when nothing is
//! left the request hears of the earliest recovery.

use super::Router;
use super::account::Account;
use super::plan::{Plan, all_cooling};
use crate::catalog::CatalogSnapshot;
use crate::error::RouteError;
use crate::explain::{CoolingEntry, ProviderEntry};
use crate::health::HealthState;
use crate::quota::{ProviderBlock, ProviderPolicy};
use crate::time::Timestamp;

/// The providers a request passed over, and the earliest each recovers.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// The quota block that ends first.
    quota: Option<crate::quota::QuotaBlock>,
    /// The earliest an unreachable host is tried again.
    unreachable: Option<Timestamp>,
    /// A provider that asked for payment, and its words.
    not_free: Option<(String, String)>,
}

impl Held {
    /// Notes that provider `name` (or a model of it) is held by `block`.
    pub(super) fn note_named(&mut self, name: &str, block: ProviderBlock) {
        match block {
            ProviderBlock::NotFree { reason, .. } => {
                self.not_free.get_or_insert_with(|| (name.to_owned(), reason));
            }
            ProviderBlock::Quota(b) => {
                if self.quota.as_ref().is_none_or(|q| b.until < q.until) {
                    self.quota = Some(b);
                }
            }
            ProviderBlock::Unreachable { until } => {
                self.unreachable = Some(self.unreachable.map_or(until, |u| u.min(until)));
            }
        }
    }

    /// The error for a request that found nothing left: a spent quota (429 with the
    /// earliest recovery) before an upstream failure; an unreachable host only when
    /// nothing else was said.
    pub(super) fn into_error(self, last: Option<RouteError>, now: Timestamp) -> Option<RouteError> {
        if let Some(block) = self.quota {
            let retry_after = block.until.saturating_since(now);
            return Some(RouteError::Quota { block, retry_after });
        }
        last.or_else(|| self.unreachable.map(|u| all_cooling(Some(u), now))).or_else(|| {
            self.not_free.map(|(name, reason)| RouteError::NoCandidate {
                message: format!(
                    "provider `{name}` asked for payment and left the pool until its configuration or key changes: {reason}"
                ),
                requirements: Vec::new(),
            })
        })
    }
}

/// Leaves every candidate of provider `name` out of the rest of this request's plan.
pub(super) fn drop_provider(plan: &mut Plan, snap: &CatalogSnapshot, name: &str) {
    plan.candidates.retain(|&i| snap.entries()[i].info.provider_name() != name);
}

impl Router {
    /// The declared providers that asked for payment under their current configuration
    /// and key, by name: out of the pool until either changes.
    pub fn not_free_providers(&self) -> std::collections::BTreeMap<String, crate::quota::NotFreeMark> {
        let health = self.health();
        health
            .providers
            .iter()
            .filter_map(|(name, state)| {
                let mark = state.not_free.as_ref()?;
                (mark.identity == self.provider_policy(name).identity).then(|| (name.clone(), mark.clone()))
            })
            .collect()
    }

    /// The rules of the declared provider `name` (unlimited when not configured).
    pub(super) fn provider_policy(&self, name: &str) -> ProviderPolicy {
        self.config.providers.get(name).cloned().unwrap_or_default()
    }

    /// A model's own limit (a `RouterConfig::providers` entry keyed by its exposed id),
    /// when it is spent.
    pub(super) fn model_hold(&self, health: &HealthState, id: &str, now: Timestamp) -> Option<ProviderBlock> {
        self.config.providers.get(id).and_then(|p| health.provider_block(id, p, now))
    }

    /// Counts a request against the model's own limit, when one is configured.
    pub(super) fn count_model(&self, health: &mut HealthState, id: &str, now: Timestamp) {
        if let Some(p) = self.config.providers.get(id) {
            // Checked just before, under the same lock.
            let _ = health.provider_mut(id).reserve(id, p, now);
        }
    }
}

impl Router {
    /// Every account of `snap` that may not be sent to at `now`, and why.
    pub(super) fn holds(
        &self,
        snap: &CatalogSnapshot,
        health: &HealthState,
        now: Timestamp,
    ) -> Vec<(String, ProviderBlock)> {
        let accounts = Account::all(snap).into_iter();
        accounts.filter_map(|a| self.account_hold(health, a, now).map(|b| (a.name().to_owned(), b))).collect()
    }
}

/// Why a held provider's models are passed over, in words.
pub(super) fn describe(block: &ProviderBlock) -> String {
    match block {
        ProviderBlock::Quota(b) => format!("quota spent until {} ({b})", b.until),
        ProviderBlock::Unreachable { until } => format!("unreachable until {until} after connection failures"),
        ProviderBlock::NotFree { since, reason } => {
            format!("not free: asked for payment at {since} ({reason}); out until its configuration or key changes")
        }
    }
}

/// The explanation's view of the providers: each with its candidates and, when held, why;
/// and the held providers' candidates as cooling entries.
pub(super) fn explain_providers(
    snap: &CatalogSnapshot,
    candidates: &[usize],
    holds: &[(String, ProviderBlock)],
) -> (Vec<ProviderEntry>, Vec<CoolingEntry>) {
    let names: Vec<&str> = Account::all(snap).into_iter().map(Account::name).collect();
    let held = |name: &str| holds.iter().find(|(n, _)| n == name).map(|(_, b)| b);
    let entries = names
        .iter()
        .map(|&name| ProviderEntry {
            name: name.to_owned(),
            candidates: candidates.iter().filter(|&&i| snap.entries()[i].info.provider_name() == name).count(),
            held: held(name).map(describe),
        })
        .collect();
    let cooling = candidates
        .iter()
        .filter_map(|&i| {
            let info = &snap.entries()[i].info;
            held(info.provider_name()).map(|b| CoolingEntry {
                id: info.id.clone(),
                cause: describe(b),
                until: Some(b.until().to_string()),
            })
        })
        .collect();
    (entries, cooling)
}
