//! The plan of one request: its targets resolved against the catalog (paid and unknown
//! ids refused), the candidates filtered, and the next model to try picked from them.

use crate::catalog::CatalogSnapshot;
use crate::error::RouteError;
use crate::filter::{Shortfall, candidates, check_entry, filter};
use crate::free::not_free_reasons;
use crate::health::HealthState;
use crate::report::PickKind;
use crate::request::{ChatRequest, Requirements, Target};
use crate::select::{SelectionRng, pick, pick_weighted};
use crate::sticky::rendezvous;
use crate::time::Timestamp;
use std::time::Duration;

/// One step of a request's plan: a named model, or "any free candidate".
#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
    Fixed(usize),
    Random,
    /// Any free candidate of one declared provider (`<provider>/free`), by its index in
    /// [`CatalogSnapshot::providers`].
    Within(usize),
}

impl Step {
    /// Whether a random step may draw the candidate at `i`.
    fn admits(self, snap: &CatalogSnapshot, i: usize) -> bool {
        match self {
            Step::Within(p) => {
                let provider = snap.entries()[i].info.provider.as_ref().map(|m| &m.provider);
                provider.is_some_and(|name| snap.providers().get(p) == Some(name))
            }
            Step::Random | Step::Fixed(_) => true,
        }
    }
}

/// The `<provider>/free` alias: the index of the declared provider it names, unless a
/// model has that very id.
fn provider_alias(snap: &CatalogSnapshot, id: &str) -> Option<usize> {
    let name = id.strip_suffix("/free")?;
    snap.providers().iter().position(|p| &**p == name)
}

pub(super) struct Plan {
    /// Indices of the candidates, in id order. The full [`Filtered`](crate::filter::Filtered) record (a rejection
    /// per model) is only built when a decision must be explained.
    pub(super) candidates: Vec<usize>,
    pub(super) steps: Vec<Step>,
    /// The step the next pick starts from; earlier steps are spent.
    pub(super) cursor: usize,
}

impl Plan {
    /// Starts again from the first step (after waiting for a cooling model: the named
    /// models passed over while they cooled may be usable now; tried ones stay tried).
    pub(super) fn rewind(&mut self) {
        self.cursor = 0;
    }
}

/// A quality weight by snapshot index. `Sync`, so that a routing future stays `Send`.
pub(super) type Weight<'a> = dyn Fn(usize) -> f64 + Sync + 'a;

/// How an "any free candidate" step chooses among the eligible candidates.
#[derive(Clone, Copy, Default)]
pub(super) struct Chooser<'a> {
    /// The session key: rendezvous hashing instead of a draw.
    pub(super) session: Option<&'a str>,
    /// Quality weights by snapshot index: a weighted draw instead of a uniform one.
    pub(super) weight: Option<&'a Weight<'a>>,
    /// The weights a sticky pick uses: only ones that do not change between requests
    /// (configured), so that a session's model moves only when it becomes unusable.
    pub(super) sticky_weight: Option<&'a Weight<'a>>,
}

/// Why the plan produced no model for an attempt.
pub(super) enum NoPick {
    /// Every remaining model is cooling down; the earliest timed recovery.
    Cooling(Option<Timestamp>),
    Exhausted,
}

/// Resolves the request's targets against the catalog: refuses paid and unknown
/// models, and filters the candidates by `reqs` (the request's, as the configuration
/// reads them: see [`RouterConfig::candidate_requirements`](super::RouterConfig::candidate_requirements)).
pub(super) fn plan(
    snap: &CatalogSnapshot,
    req: &ChatRequest,
    reqs: &Requirements,
    now: Timestamp,
) -> Result<Plan, RouteError> {
    let mut candidates = candidates(snap, reqs, now);
    if let Some(family) = req.family() {
        // An embeddings request: vectors of one family only, whatever else is free.
        candidates.retain(|&i| snap.entries()[i].info.family() == family);
    }
    let mut steps = Vec::with_capacity(req.targets().len());
    for target in req.targets() {
        match target {
            Target::AnyFree => steps.push(Step::Random),
            Target::Model(id)
                if snap.index_of(id.as_str()).is_none() && provider_alias(snap, id.as_str()).is_some() =>
            {
                steps.extend(provider_alias(snap, id.as_str()).map(Step::Within));
            }
            Target::Model(id) => {
                let index = snap.index_of(id.as_str()).ok_or_else(|| RouteError::UnknownModel(id.clone()))?;
                let entry = &snap.entries()[index];
                // The snapshot knows already; the reasons are only spelled out to refuse.
                if !entry.is_free(now) {
                    let reasons = not_free_reasons(&entry.info, now);
                    return Err(RouteError::NotFree { model: id.clone(), reasons });
                }
                steps.push(Step::Fixed(index));
            }
        }
    }
    let servable = steps.iter().any(|s| match s {
        Step::Random => !candidates.is_empty(),
        Step::Within(_) => candidates.iter().any(|&i| s.admits(snap, i)),
        Step::Fixed(i) => candidates.binary_search(i).is_ok(),
    });
    if !servable {
        return Err(no_candidate(snap, reqs, &steps, now));
    }
    Ok(Plan { candidates, steps, cursor: 0 })
}

pub(super) fn no_candidate(snap: &CatalogSnapshot, reqs: &Requirements, steps: &[Step], now: Timestamp) -> RouteError {
    let requirements = reqs.labels();
    let named: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Fixed(i) => check_entry(snap, *i, reqs, now).map(|r| {
                let why: Vec<String> = r.reasons(snap, now).iter().map(ToString::to_string).collect();
                format!("`{}` cannot serve this request: {}", snap.entries()[*i].info.id, why.join(", "))
            }),
            Step::Random | Step::Within(_) => None,
        })
        .collect();
    let mut parts = named;
    if steps.iter().any(|s| matches!(s, Step::Random | Step::Within(_))) {
        parts.push(Shortfall::of(&filter(snap, reqs, now), reqs).message(reqs));
    }
    RouteError::NoCandidate { message: parts.join("; "), requirements }
}

/// The next model to try, or why there is none.
#[expect(clippy::too_many_arguments, reason = "private; every argument is per-attempt state")]
pub(super) fn next_pick(
    plan: &mut Plan,
    snap: &CatalogSnapshot,
    health: &HealthState,
    tried: &[usize],
    min_context: u64,
    rng: &mut SelectionRng,
    chooser: Chooser<'_>,
    now: Timestamp,
) -> Result<(usize, PickKind), NoPick> {
    let fetched = snap.fetched_at();
    let mut earliest: Option<Timestamp> = None;
    let mut cooling = false;
    let mut usable = |i: usize| -> bool {
        if tried.contains(&i) || plan.candidates.binary_search(&i).is_err() {
            return false;
        }
        let e = &snap.entries()[i];
        if e.info.context_length.is_some_and(|c| c < min_context) {
            return false;
        }
        if health.models.is_empty() {
            return true;
        }
        match health.cooldown(&e.info.id, now, fetched) {
            None => true,
            Some(c) => {
                cooling = true;
                if let Some(u) = c.until {
                    earliest = Some(earliest.map_or(u, |e| e.min(u)));
                }
                false
            }
        }
    };
    while let Some(step) = plan.steps.get(plan.cursor).copied() {
        match step {
            Step::Fixed(i) => {
                plan.cursor += 1;
                if usable(i) {
                    return Ok((i, PickKind::Named));
                }
            }
            Step::Random | Step::Within(_) => {
                let eligible: Vec<usize> =
                    plan.candidates.iter().copied().filter(|&i| step.admits(snap, i) && usable(i)).collect();
                let picked = match (chooser.session, chooser.weight) {
                    (Some(key), _) => {
                        let ids = eligible.iter().map(|&i| (i, snap.entries()[i].info.id.as_str()));
                        let w = chooser.sticky_weight.map(|w| w as &dyn Fn(usize) -> f64);
                        rendezvous(key, ids, w).map(|i| (i, PickKind::Sticky))
                    }
                    (None, Some(w)) => pick_weighted(&eligible, |&i| w(i), rng).map(|&i| (i, PickKind::Weighted)),
                    (None, None) => pick(&eligible, rng).map(|&i| (i, PickKind::Uniform)),
                };
                if let Some(p) = picked {
                    return Ok(p);
                }
                plan.cursor += 1;
            }
        }
    }
    Err(if cooling { NoPick::Cooling(earliest) } else { NoPick::Exhausted })
}

/// Every candidate is cooling down; `until` is the earliest timed recovery. Without one
/// (unavailable models wait for a catalog refresh), the client is told to come back in
/// a minute.
pub(super) fn all_cooling(until: Option<Timestamp>, now: Timestamp) -> RouteError {
    let until = until.unwrap_or_else(|| now.next_minute());
    let retry_after = until.saturating_since(now).max(Duration::from_secs(1));
    RouteError::AllCoolingDown { until, retry_after }
}
