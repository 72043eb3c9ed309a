//! Errors a client can see, and their OpenRouter shape
//! `{"error":{"code":<status>,"message":"...","metadata":{...}}}`.

use crate::free::NotFree;
use crate::model::ModelId;
use crate::quota::QuotaBlock;
use crate::request::RequestError;
use crate::time::Timestamp;
use crate::upstream::TransportError;
use serde_json::{Value, json};
use std::time::Duration;

/// Why a request was not routed to a model; each maps to an HTTP status, an error code
/// and metadata in OpenRouter's error shape.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RouteError {
    /// The request body is malformed or asks for something refused (400).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The named model is not in the catalog (400).
    #[error("model `{0}` is not in the catalog of free models; use `openrouter/free` or a listed `:free` id")]
    UnknownModel(ModelId),
    /// The named model is in the catalog but not free (400): never forwarded to.
    #[error("model `{model}` is not free ({}); this router never forwards to a paid model", reasons_text(.reasons))]
    NotFree {
        /// The model asked for.
        model: ModelId,
        /// Every way it fails the free rule.
        reasons: Vec<NotFree>,
    },
    /// No free model meets the request's requirements (404).
    #[error("{message}")]
    NoCandidate {
        /// What was needed and how many models each requirement ruled out.
        message: String,
        /// The requirements' labels, for the error's metadata.
        requirements: Vec<String>,
    },
    /// Models could serve the request, but every one is cooling down (429).
    #[error("every free model that can serve this request is cooling down; retry after {until}")]
    AllCoolingDown {
        /// When the first of them recovers.
        until: Timestamp,
        /// Time from now to `until`, for the `Retry-After` header.
        retry_after: Duration,
    },
    /// The router's own quota, or a block on the upstream account, refuses the request (429).
    #[error("{block}")]
    Quota {
        /// Which limit refused, and until when.
        block: QuotaBlock,
        /// Time from now to the block's end, for the `Retry-After` header.
        retry_after: Duration,
    },
    /// The last model tried failed and no other was left to try; the status follows the
    /// error's kind.
    #[error("upstream error from {model}: {error}")]
    Upstream {
        /// The model that failed last.
        model: ModelId,
        /// How it failed.
        error: TransportError,
    },
    /// The routing deadline (the `Duration`) passed before any model answered (504).
    #[error("routing deadline of {0:?} passed before a model answered")]
    Deadline(Duration),
}

fn reasons_text(reasons: &[NotFree]) -> String {
    reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl RouteError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RouteError::Request(_) | RouteError::UnknownModel(_) | RouteError::NotFree { .. } => 400,
            RouteError::NoCandidate { .. } => 404,
            RouteError::AllCoolingDown { .. } | RouteError::Quota { .. } => 429,
            RouteError::Upstream { error, .. } => error.http_status(),
            RouteError::Deadline(_) => 504,
        }
    }

    /// For a `Retry-After` header, in whole seconds rounded up.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RouteError::AllCoolingDown { retry_after, .. } | RouteError::Quota { retry_after, .. } => {
                Some(*retry_after)
            }
            RouteError::Upstream { error, .. } => error.retry_after,
            _ => None,
        }
    }

    /// A short machine-readable name of the error, in `metadata.error_type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            RouteError::Request(_) => "invalid_request",
            RouteError::UnknownModel(_) => "unknown_model",
            RouteError::NotFree { .. } => "paid_model_refused",
            RouteError::NoCandidate { .. } => "no_free_model",
            RouteError::AllCoolingDown { .. } => "all_cooling_down",
            RouteError::Quota { .. } => "quota_exceeded",
            RouteError::Upstream { error, .. } => error.kind.as_str(),
            RouteError::Deadline(_) => "deadline_exceeded",
        }
    }

    /// The body in OpenRouter's error shape.
    pub fn to_json(&self) -> Value {
        let mut metadata = json!({ "error_type": self.error_type() });
        let extra = match self {
            RouteError::NoCandidate { requirements, .. } => json!({ "requirements": requirements }),
            RouteError::AllCoolingDown { until, .. } => json!({ "retry_at": until.to_string() }),
            RouteError::Quota { block, .. } => json!({ "retry_at": block.until.to_string() }),
            RouteError::NotFree { model, .. } | RouteError::UnknownModel(model) => json!({ "model": model }),
            RouteError::Upstream { model, error } => {
                let mut m = error.metadata.clone().unwrap_or_else(|| json!({}));
                if let Value::Object(o) = &mut m {
                    o.insert("model".into(), json!(model));
                    if let Some(s) = error.status {
                        o.insert("upstream_status".into(), json!(s));
                    }
                }
                m
            }
            _ => Value::Null,
        };
        if let (Value::Object(m), Value::Object(e)) = (&mut metadata, extra) {
            for (k, v) in e {
                m.entry(k).or_insert(v);
            }
        }
        json!({ "error": { "code": self.status(), "message": self.to_string(), "metadata": metadata } })
    }
}

/// An error body in OpenRouter's shape for failures outside routing (bad content type,
/// body too large, unauthorised client, ...).
pub fn error_body(status: u16, message: &str, error_type: &str) -> Value {
    json!({ "error": { "code": status, "message": message, "metadata": { "error_type": error_type } } })
}
