//! What the router did for one request: the attempts, the model that answered, and the
//! result handed to the caller.

use crate::error::RouteError;
use crate::model::ModelId;
use crate::sse::AnswerSpans;
use crate::upstream::{ErrorKind, UpstreamResponse};
use serde::Serialize;
use std::time::Duration;

/// One upstream call and how it went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    /// The model called.
    pub model: ModelId,
    /// `None` for success, else the failure's kind.
    #[serde(serialize_with = "ser_kind")]
    pub failure: Option<ErrorKind>,
    /// Time the call took: to the response head on success, to the failure otherwise.
    pub elapsed: Duration,
    /// The failure came back for a model the router already knew was cooling down:
    /// another request found out first, after this one had picked it. Such an attempt
    /// does not count against `max_attempts`; each model is still tried once at most.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub raced: bool,
}

fn ser_kind<S: serde::Serializer>(k: &Option<ErrorKind>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.map_or("ok", ErrorKind::as_str))
}

/// What the router did for one request, success or not.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RouteReport {
    /// The model that answered.
    pub model: Option<ModelId>,
    /// Models that could serve the request (free, meeting its requirements).
    pub candidates: usize,
    /// Every upstream call made, in order.
    pub attempts: Vec<Attempt>,
    /// How the model that answered (or the last one tried) was chosen.
    #[serde(skip_serializing_if = "PickKind::is_uniform")]
    pub pick: PickKind,
    /// Time spent waiting for a cooling model to recover instead of answering 429.
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub waited: Duration,
    /// The output the last attempt asked for, when it was lowered from the request's to
    /// what the model can produce (`clamp_max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The tokens the last attempt was charged against token budgets (the prompt
    /// estimate plus the output asked for), when a budget applied: what its answer's
    /// `usage` settles.
    #[serde(skip)]
    pub token_charge: Option<u64>,
    /// Where the answer's members are in its body, when it is a whole chat answer: a
    /// dialect translating it reads them in place instead of walking the body again.
    /// Boxed, so that a failure (which carries the report) stays small.
    #[serde(skip)]
    pub answer: Option<Box<AnswerSpans>>,
}

/// How a model was chosen for an attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PickKind {
    /// Drawn uniformly from the eligible candidates with the request's seed.
    #[default]
    Uniform,
    /// Drawn with probability proportional to each candidate's quality weight.
    Weighted,
    /// The session's model: rendezvous hashing of the session key over the candidates.
    Sticky,
    /// The client named the model.
    Named,
}

impl PickKind {
    /// The name as reports and the explain output show it (`uniform`, `weighted`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PickKind::Uniform => "uniform",
            PickKind::Weighted => "weighted",
            PickKind::Sticky => "sticky",
            PickKind::Named => "named",
        }
    }

    fn is_uniform(&self) -> bool {
        *self == PickKind::Uniform
    }
}

impl RouteReport {
    /// Time spent waiting for upstream across all attempts.
    pub fn upstream_time(&self) -> Duration {
        self.attempts.iter().map(|a| a.elapsed).sum()
    }
}

/// A request that a model answered: the answer, and how it was reached.
#[derive(Debug)]
pub struct Routed {
    /// The answer, to pass on to the client.
    pub response: UpstreamResponse,
    /// The attempts that led to it.
    pub report: RouteReport,
}

/// A request no model answered: the error for the client, and what was tried.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteFailure {
    /// The error the client gets.
    pub error: RouteError,
    /// The attempts made before giving up.
    pub report: RouteReport,
}

impl From<RouteError> for RouteFailure {
    fn from(error: RouteError) -> Self {
        RouteFailure { error, report: RouteReport::default() }
    }
}
