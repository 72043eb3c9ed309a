//! A batch larger than an endpoint of its family takes in one call (its
//! `max_batch_inputs`), sent in chunks, each one a routed request: so each is admitted
//! against the quotas, counted, cooled and shown as the upstream request it really is.
//!
//! The first chunk is cut to the smallest limit of the family's endpoints and routed
//! within the family as usual; the rest go to the model that answered it, cut to its own
//! limit, so that one answer's vectors come from one model. A later chunk's failure sends
//! the whole batch again to the family's other endpoints (that model left out). The
//! answers are joined in input order by `router_core::embeddings::merge`.

use crate::handlers::{self, Decision};
use crate::state::AppState;
use bytes::Bytes;
use router_core::embeddings::{Batch, chunks, first_chunk, free_embedding_models, merge};
use router_core::upstream::{Body, ErrorKind, TransportError, UpstreamResponse};
use router_core::{ChatRequest, ModelId, RouteError, RouteFailure, RouteReport, Routed, Target};

/// The client's request as a whole: what each chunk is cut from.
pub(super) struct Whole<'a> {
    /// The request as read, confined to its family.
    pub(super) chat: &'a ChatRequest,
    /// The family.
    pub(super) family: &'a str,
    /// Its inputs.
    pub(super) inputs: usize,
    /// The seed the client asked for.
    pub(super) seed: Option<u64>,
}

/// A family's free endpoints, each with its `max_batch_inputs`.
type Endpoints = Vec<(ModelId, Option<u32>)>;

/// What one round over the batch came to.
enum Round {
    /// Every chunk answered, or the first failed (the family's own fallback is spent).
    Done(Result<Routed, RouteFailure>),
    /// A chunk after the first failed on this model: the batch goes again without it.
    Again(ModelId, RouteFailure),
}

/// Routes `whole`: whole, unless an endpoint of its family takes fewer inputs a call.
pub(super) async fn route(state: &AppState, whole: &Whole<'_>) -> (Result<Routed, RouteFailure>, Decision) {
    let batch = match first_call(state, whole.family, whole.inputs).map(|_| Batch::read(whole.chat.raw())) {
        Some(Ok(batch)) => batch,
        // Nothing to cut (one string or one token array is one input).
        None | Some(Err(_)) => return handlers::route(state, whole.chat, whole.seed).await,
    };
    let endpoints = endpoints(state, whole.family);
    let decision = handlers::decide(state, whole.chat, whole.seed);
    let mut report = RouteReport::default();
    let mut left_out: Vec<ModelId> = Vec::new();
    loop {
        let left: Endpoints = endpoints.iter().filter(|(id, _)| !left_out.contains(id)).cloned().collect();
        let targets = if left_out.is_empty() {
            vec![Target::AnyFree]
        } else {
            left.iter().map(|(id, _)| Target::Model(id.clone())).collect()
        };
        let result = match round(state, whole, &batch, (&left, targets, decision.seed()), &mut report).await {
            Round::Done(result) => result,
            // Each round leaves one model out: at most as many rounds as endpoints.
            Round::Again(model, failure) => {
                left_out.push(model);
                if left_out.len() < endpoints.len() {
                    continue;
                }
                Err(failure)
            }
        };
        return (with_report(result, report), decision);
    }
}

/// The inputs the first call of a request of `inputs` inputs to `family` carries, when
/// the request is cut (see [`route`]).
pub(super) fn first_call(state: &AppState, family: &str, inputs: usize) -> Option<usize> {
    if inputs < 2 {
        return None;
    }
    // Read in place: an uncut request (almost every one) allocates nothing here.
    let (snap, now) = (state.router.catalog(), state.router.now());
    let limits = snap.entries().iter().filter(|e| e.info.is_embedding() && e.info.family() == family && e.is_free(now));
    first_chunk(inputs, limits.map(|e| e.info.embedding.max_batch_inputs))
}

/// The free endpoints of `family` now, each with its batch limit.
fn endpoints(state: &AppState, family: &str) -> Endpoints {
    let snap = state.router.catalog();
    free_embedding_models(&snap, state.router.now())
        .into_iter()
        .filter(|m| m.family() == family)
        .map(|m| (m.id.clone(), m.embedding.max_batch_inputs))
        .collect()
}

/// One round: the first chunk routed to `targets` (cut for the endpoints `left`), then
/// the rest to the model that answered it, cut to its limit. `report` gathers every
/// chunk's attempts.
async fn round(
    state: &AppState,
    whole: &Whole<'_>,
    batch: &Batch<'_>,
    (left, targets, seed): (&Endpoints, Vec<Target>, u64),
    report: &mut RouteReport,
) -> Round {
    let inputs = batch.len();
    let Some(first) = first_chunk(inputs, left.iter().map(|(_, limit)| *limit)) else {
        // Every endpoint left takes the whole batch: one call, nothing to join.
        return Round::Done(send(state, whole, batch.body(0..inputs), targets, seed).await);
    };
    let mut routed = match send(state, whole, batch.body(0..first), targets, seed).await {
        Ok(routed) => routed,
        Err(failure) => return Round::Done(Err(failure)),
    };
    let Some(model) = routed.report.model.clone() else { return Round::Done(Ok(routed)) };
    let limit = left.iter().find(|(id, _)| *id == model).and_then(|(_, limit)| *limit);
    let mut ranges = chunks(inputs, first, limit).into_iter().skip(1);
    let mut answers = Vec::new();
    let mut head = None;
    loop {
        let Routed { response: UpstreamResponse { status, headers, body, elapsed }, report: part } = routed;
        absorb(report, part);
        let Body::Full(bytes) = body else {
            return Round::Done(Err(protocol(model, "answered a chunk with a stream".to_owned())));
        };
        answers.push(bytes);
        head.get_or_insert((status, headers, elapsed));
        let Some(range) = ranges.next() else { break };
        routed = match send(state, whole, batch.body(range), vec![Target::Model(model.clone())], seed).await {
            Ok(routed) => routed,
            Err(mut failure) => {
                absorb(report, std::mem::take(&mut failure.report));
                return Round::Again(model, failure);
            }
        };
    }
    let (status, headers, elapsed) = head.unwrap_or_default();
    match merge(&answers) {
        Ok(joined) => {
            let response = UpstreamResponse { status, headers, body: Body::Full(Bytes::from(joined)), elapsed };
            Round::Done(Ok(Routed { response, report: RouteReport::default() }))
        }
        Err(e) => Round::Done(Err(protocol(model, e.to_string()))),
    }
}

/// Routes one chunk, `body`, to `targets` with the client's session and pick.
async fn send(
    state: &AppState,
    whole: &Whole<'_>,
    body: Vec<u8>,
    targets: Vec<Target>,
    seed: u64,
) -> Result<Routed, RouteFailure> {
    let mut chunk = ChatRequest::embeddings_to(Bytes::from(body), whole.family, targets)
        .map_err(|e| RouteFailure::from(RouteError::Request(e)))?;
    if let Some(key) = whole.chat.session_key() {
        // Already held to its bounds on the whole request.
        let _ = chunk.set_session_key(key);
    }
    if let Some(weighted) = whole.chat.weighted() {
        chunk.set_weighted(weighted);
    }
    state.router.route_metered(&chunk, seed).await
}

/// Adds a chunk's upstream calls (and its waits) to the request's report.
fn absorb(total: &mut RouteReport, part: RouteReport) {
    if total.attempts.is_empty() && total.model.is_none() {
        total.candidates = part.candidates;
        total.pick = part.pick;
    }
    total.attempts.extend(part.attempts);
    total.waited += part.waited;
    if part.model.is_some() {
        total.model = part.model;
    }
}

/// The result with the report of every chunk sent: the model that answered them all, or
/// none when the request failed.
fn with_report(result: Result<Routed, RouteFailure>, mut report: RouteReport) -> Result<Routed, RouteFailure> {
    match result {
        Ok(mut routed) => {
            absorb(&mut report, std::mem::take(&mut routed.report));
            routed.report = report;
            Ok(routed)
        }
        Err(mut failure) => {
            absorb(&mut report, std::mem::take(&mut failure.report));
            report.model = None;
            failure.report = report;
            Err(failure)
        }
    }
}

/// A failure of `model`'s answers as a whole (they could not be joined).
fn protocol(model: ModelId, message: String) -> RouteFailure {
    RouteFailure::from(RouteError::Upstream { model, error: TransportError::new(ErrorKind::Protocol, message) })
}
