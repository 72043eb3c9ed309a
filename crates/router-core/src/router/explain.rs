//! The routing decision for a request, without forwarding it: what `route` would pick
//! now and why, with the candidates, the cooling, the held providers and the weights.

use super::plan::{Chooser, NoPick, Weight, all_cooling, next_pick, plan};
use super::{Router, providers};
use crate::catalog::CatalogSnapshot;
use crate::error::RouteError;
use crate::explain::{CoolingEntry, Explanation, ProviderEntry, WeightEntry};
use crate::filter::filter;
use crate::health::HealthState;
use crate::model::ModelId;
use crate::quota::ProviderBlock;
use crate::request::ChatRequest;
use crate::select::rng_from_seed;
use crate::time::Timestamp;
use std::time::Duration;

impl Router {
    /// The routing decision for `req` with `seed`, without forwarding anything. Only a
    /// refused request (a paid or unknown model) is an error; when no model can serve it,
    /// the explanation says why, with `pick: None` and the error the request would get.
    pub fn explain(&self, req: &ChatRequest, seed: u64) -> Result<Explanation, RouteError> {
        let snap = self.ports.catalog.snapshot();
        let now = self.now();
        let health = self.health_snapshot();
        let reqs = self.config.candidate_requirements(req.requirements());
        let filtered = filter(&snap, &reqs, now);
        let weighted = self.is_weighted(req);
        let rates = (weighted && self.config.weight_by_success).then(|| self.success_rates_snapshot());
        let weight_of = |id: &ModelId| self.config.model_weight(id) * rates.as_ref().map_or(1.0, |r| r.weight(id));
        let configured = |i: usize| self.config.model_weight(&snap.entries()[i].info.id);
        let measured = |i: usize| weight_of(&snap.entries()[i].info.id);
        let chooser = Chooser {
            session: self.session(req),
            weight: weighted.then_some(&measured as &Weight<'_>),
            sticky_weight: weighted.then_some(&configured as &Weight<'_>),
        };
        let mut kind = None;
        let mut wait = None;
        let holds = self.holds(&snap, &health, now);
        let (pick, error) = match plan(&snap, req, &reqs, now) {
            Ok(mut plan) => {
                // As `route` would: a held provider's candidates leave the pick.
                let mut held = providers::Held::default();
                for (name, block) in &holds {
                    providers::drop_provider(&mut plan, &snap, name);
                    held.note_named(name, block.clone());
                }
                match next_pick(&mut plan, &snap, &health, &[], 0, &mut rng_from_seed(seed), chooser, now) {
                    Ok((i, k)) => {
                        kind = Some(k);
                        (Some(snap.entries()[i].info.id.clone()), None)
                    }
                    Err(NoPick::Cooling(until)) => {
                        wait = self.cooling_wait(until, now, now, Duration::ZERO, seed);
                        (None, Some(all_cooling(until, now)))
                    }
                    Err(NoPick::Exhausted) => (None, held.into_error(None, now)),
                }
            }
            Err(e @ RouteError::NoCandidate { .. }) => (None, Some(e)),
            Err(e) => return Err(e),
        };
        let (provider_entries, cooling) = cooling_of(&snap, &health, &filtered.candidates, &holds, now);
        let quota = health.quota_report(&self.quota_policy(), now);
        let mut explanation = Explanation::new(&snap, req, &filtered, now, cooling, (pick, error), seed, quota);
        explanation.providers = provider_entries;
        // What the candidates were filtered by (with clamping, room for a useful output).
        explanation.requirements = reqs.labels();
        explanation.pick_kind = kind;
        explanation.max_tokens = explanation
            .pick
            .as_ref()
            .and_then(|id| snap.index_of(id.as_str()))
            .and_then(|i| self.config.clamped_output(req.requirements(), &snap.entries()[i].info));
        explanation.wait_ms = wait.map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX));
        explanation.session = chooser.session.is_some();
        if weighted {
            explanation.weights = filtered
                .candidates
                .iter()
                .map(|&i| {
                    let id = &snap.entries()[i].info.id;
                    WeightEntry { id: id.clone(), weight: weight_of(id) }
                })
                .collect();
        }
        Ok(explanation)
    }
}

/// The providers of `candidates` (each held or not), and the candidates left out now:
/// cooling ones with their cause, then a held provider's others.
fn cooling_of(
    snap: &CatalogSnapshot,
    health: &HealthState,
    candidates: &[usize],
    holds: &[(String, ProviderBlock)],
    now: Timestamp,
) -> (Vec<ProviderEntry>, Vec<CoolingEntry>) {
    let mut cooling: Vec<CoolingEntry> = candidates
        .iter()
        .filter_map(|&i| {
            let id = &snap.entries()[i].info.id;
            health.cooldown(id, now, snap.fetched_at()).map(|c| CoolingEntry {
                id: id.clone(),
                cause: c.cause.to_string(),
                until: c.until.map(|t| t.to_string()),
            })
        })
        .collect();
    let (providers, held) = providers::explain_providers(snap, candidates, holds);
    let held: Vec<CoolingEntry> = held.into_iter().filter(|h| !cooling.iter().any(|c| c.id == h.id)).collect();
    cooling.extend(held);
    (providers, cooling)
}
