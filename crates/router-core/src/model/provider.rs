//! Where a declared provider's model comes from, and how its account is billed.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How the operator declared a provider's account: it cannot be billed (a free tier) or
/// it is their own server. `Billed` is never forwarded to; it exists so that the free
/// rule can say so rather than trust every adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// An account on the provider's free tier, which cannot be billed.
    FreeTier,
    /// The operator's own server.
    Local,
    /// An account that can be billed: declared only to be refused.
    Billed,
}

impl Billing {
    /// The name as written in configuration and output (`free_tier`, `local`, `billed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::FreeTier => "free_tier",
            Billing::Local => "local",
            Billing::Billed => "billed",
        }
    }
}

/// Where a model of a declared provider comes from: the provider's name (the exposed
/// id's prefix), the id its server knows it by, and the provider's declared billing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Provenance {
    /// The provider's name, which prefixes the exposed id.
    pub provider: Arc<str>,
    /// The id the provider's server knows the model by.
    pub upstream_id: Arc<str>,
    /// How the operator declared the provider's account.
    pub billing: Billing,
}
