//! A routing decision in words, for the explain endpoint and `router-cli explain`: the
//! requirements found, the candidates, every rejected model with its reasons, the pick.

use crate::catalog::{CatalogSnapshot, CatalogStats};
use crate::error::RouteError;
use crate::filter::{Filtered, Rejection};
use crate::model::ModelId;
use crate::quota::QuotaReport;
use crate::report::PickKind;
use crate::request::ChatRequest;
use crate::time::Timestamp;
use serde::Serialize;

/// A routing decision in words, for the explain endpoint and `router-cli explain`.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// The seed the pick was drawn with; the same seed over the same state gives the same pick.
    /// A string in JSON, as in the events: JavaScript numbers cannot hold every `u64`.
    #[serde(serialize_with = "as_decimal_string")]
    pub seed: u64,
    /// What the request needs, as labels (`tools`, `image input`, a context size, ...).
    pub requirements: Vec<String>,
    /// The prompt's size as estimated from the request body, in tokens.
    pub estimated_prompt_tokens: u64,
    /// Counts and provenance of the catalog the decision was made on.
    pub catalog: CatalogStats,
    /// Models free now: the candidates plus the free models rejected.
    pub free_models: usize,
    /// Ids of the free models that meet every requirement, in id order.
    pub candidates: Vec<ModelId>,
    /// Free models that do not meet the requirements, with the reasons.
    pub rejected: Vec<RejectedEntry>,
    /// Paid or expired models, counted but not listed.
    pub not_free: usize,
    /// Candidates that are cooling down now.
    pub cooling: Vec<CoolingEntry>,
    /// The model the first attempt would go to with this seed.
    pub pick: Option<ModelId>,
    /// How that model was chosen: `sticky` for a session's model, `weighted`,
    /// `uniform`, or `named` by the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pick_kind: Option<PickKind>,
    /// The output the pick would be asked for, when lowered from the request's to what
    /// the model can produce (`clamp_max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Whether the request carries a session key (the key itself is not repeated).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub session: bool,
    /// When every candidate is cooling but the earliest recovers within the router's
    /// bound: how long the request would wait for it (then route) instead of getting
    /// `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// The candidates' quality weights, when the pick is weighted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<WeightEntry>,
    /// Why there is no pick, as the error the request would get (OpenRouter's shape).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_route_error")]
    pub error: Option<RouteError>,
    /// The router's quota use and limits at the time.
    pub quota: QuotaReport,
    /// Each provider of a union (OpenRouter's account among them): its candidates, and
    /// why it is passed over when it is (`quota spent until ...`, `unreachable until ...`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderEntry>,
}

/// One provider in an explanation.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderEntry {
    /// The provider's name (`openrouter` for OpenRouter's own account).
    pub name: String,
    /// How many of the request's candidates it serves.
    pub candidates: usize,
    /// Why it is passed over now; `None` when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

fn ser_route_error<S: serde::Serializer>(e: &Option<RouteError>, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    e.as_ref().map(|e| e.to_json()["error"].clone()).serialize(s)
}

/// A free model that cannot serve the request, with the reasons.
#[derive(Clone, Debug, Serialize)]
pub struct RejectedEntry {
    /// The model.
    pub id: ModelId,
    /// The declared provider serving it (none for OpenRouter's own models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Every reason it cannot serve the request, in words.
    pub reasons: Vec<String>,
}

/// A candidate's weight in a weighted pick: its configured weight times, when enabled,
/// its recent success rate.
#[derive(Clone, Debug, Serialize)]
pub struct WeightEntry {
    /// The candidate.
    pub id: ModelId,
    /// The weight its chance of being picked is proportional to.
    pub weight: f64,
}

/// A candidate that cannot be tried now: the model cools down, or its provider is held.
#[derive(Clone, Debug, Serialize)]
pub struct CoolingEntry {
    /// The model.
    pub id: ModelId,
    /// Why, in words.
    pub cause: String,
    /// When it may be tried again, as a timestamp; `None` when that waits on a catalog refresh
    /// or a probe finishing.
    pub until: Option<String>,
}

impl Explanation {
    #[expect(clippy::too_many_arguments, reason = "crate-private; each argument is one part of the explanation")]
    pub(crate) fn new(
        snap: &CatalogSnapshot,
        req: &ChatRequest,
        f: &Filtered,
        now: Timestamp,
        cooling: Vec<CoolingEntry>,
        (pick, error): (Option<ModelId>, Option<RouteError>),
        seed: u64,
        quota: QuotaReport,
    ) -> Self {
        let free_rejected: Vec<&Rejection> = f.rejected.iter().filter(|r| !r.not_free).collect();
        Explanation {
            seed,
            requirements: req.requirements().labels(),
            estimated_prompt_tokens: req.requirements().prompt_tokens,
            catalog: snap.stats(now),
            free_models: f.candidates.len() + free_rejected.len(),
            candidates: f.candidates.iter().map(|&i| snap.entries()[i].info.id.clone()).collect(),
            rejected: free_rejected
                .iter()
                .map(|r| RejectedEntry {
                    id: snap.entries()[r.index].info.id.clone(),
                    provider: snap.entries()[r.index].info.provider.as_ref().map(|p| p.provider.to_string()),
                    reasons: r.reasons(snap, now).iter().map(ToString::to_string).collect(),
                })
                .collect(),
            not_free: f.rejected.len() - free_rejected.len(),
            cooling,
            pick,
            pick_kind: None,
            max_tokens: None,
            session: false,
            wait_ms: None,
            weights: Vec::new(),
            error,
            quota,
            providers: Vec::new(),
        }
    }
}

/// A `u64` as its decimal text.
fn as_decimal_string<S: serde::Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}
