//! The pool: every free model (and each `:free` variant free in all but its date) with
//! its state, why, and its recent traffic.

use super::states::PoolState;
use crate::metrics::RecentView;
use router_core::quota::NotFreeMark;
use router_core::{Capability, CatalogSnapshot, Cooldown, ModelId, NotFree, Timestamp, not_free_reasons};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One model of the pool.
#[derive(Clone, Debug, Serialize)]
pub struct PoolEntry {
    pub id: ModelId,
    pub name: String,
    /// The id's prefix (`meta-llama` of `meta-llama/llama-3.3-70b-instruct:free`).
    pub provider: String,
    /// The upstream it is reached through: `openrouter` or a declared provider's name.
    pub upstream: String,
    pub context_length: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub vision: bool,
    pub tools: bool,
    pub structured_outputs: bool,
    pub reasoning: bool,
    /// Every capability the catalog lists for it.
    pub capabilities: Vec<&'static str>,
    pub state: PoolState,
    /// When it is eligible again, for the timed states.
    pub until: Option<Timestamp>,
    pub reason: Option<String>,
    pub expires: Option<String>,
    pub recent: Option<RecentView>,
}

/// A `:free` variant that is free in every respect but its expiration date.
fn only_expired(reasons: &[NotFree]) -> bool {
    !reasons.is_empty() && reasons.iter().all(|r| matches!(r, NotFree::Expired(_) | NotFree::BadExpiration(_)))
}

/// What the pool's entries are judged by, read once.
pub(super) struct Pool<'a> {
    cooldowns: HashMap<&'a ModelId, &'a Cooldown>,
    not_free: &'a BTreeMap<String, NotFreeMark>,
    recent: HashMap<ModelId, RecentView>,
}

impl<'a> Pool<'a> {
    pub(super) fn new(
        cooldowns: &'a [(ModelId, Cooldown)],
        not_free: &'a BTreeMap<String, NotFreeMark>,
        recent: HashMap<ModelId, RecentView>,
    ) -> Self {
        Pool { cooldowns: cooldowns.iter().map(|(id, c)| (id, c)).collect(), not_free, recent }
    }

    /// The free models, and the `:free` variants free in all but their date.
    pub(super) fn read(&self, snap: &CatalogSnapshot, now: Timestamp) -> Vec<PoolEntry> {
        let mut pool = Vec::new();
        for entry in snap.entries() {
            let info = &entry.info;
            let expired = if entry.is_free(now) {
                false
            } else if info.id.is_free_variant() && only_expired(&not_free_reasons(info, now)) {
                true
            } else {
                continue;
            };
            pool.push(self.entry(entry, expired));
        }
        pool
    }

    fn entry(&self, entry: &router_core::catalog::Entry, expired: bool) -> PoolEntry {
        let info = &entry.info;
        let cooldown = self.cooldowns.get(&info.id).copied();
        let unpaid = self.not_free.get(info.provider_name());
        let caps = entry.capabilities();
        let reason = if expired {
            Some(format!("expired on {}", info.expiration_date.as_deref().unwrap_or("?")))
        } else if let Some(mark) = unpaid {
            Some(format!("its provider asked for payment at {}: {}", mark.since, mark.reason))
        } else {
            cooldown.map(|c| c.cause.to_string())
        };
        PoolEntry {
            id: info.id.clone(),
            name: info.name.clone(),
            provider: info.id.as_str().split_once('/').map_or("", |(p, _)| p).to_owned(),
            upstream: info.provider_name().to_owned(),
            context_length: info.context_length,
            max_completion_tokens: info.max_completion_tokens,
            vision: caps.contains(Capability::ImageInput),
            tools: caps.contains(Capability::Tools),
            structured_outputs: caps.contains(Capability::StructuredOutputs),
            reasoning: caps.contains(Capability::Reasoning),
            capabilities: caps.iter().map(Capability::label).collect(),
            state: PoolState::of(expired, unpaid.is_some(), cooldown),
            until: if expired { None } else { cooldown.and_then(|c| c.until) },
            reason,
            expires: info.expiration_date.clone(),
            recent: self.recent.get(&info.id).cloned(),
        }
    }
}
