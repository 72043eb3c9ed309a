//! The free rule: which catalog entries the router may ever forward to.
//!
//! A model is free only when *all* of these hold: its id is a `:free` variant, every
//! price its entry carries is exactly zero, it is not a router/meta model, and its
//! `expiration_date` (if any) is not in the past. One signal alone is not enough: the
//! catalogs list zero-priced media models that bill per use, and a `:free` id with a
//! price is a catalog error we must not trust.

use crate::model::{Billing, ModelInfo};
use crate::time::{Timestamp, parse_date};
use std::fmt;

/// Why a model is not free. A model can fail several ways at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotFree {
    /// The id does not end in `:free`.
    NotFreeVariant,
    /// A price that is not exactly zero, by key.
    Priced(String),
    /// The entry lists no prices at all: unknown is not free.
    NoPrices,
    /// A router or meta model such as `openrouter/free`.
    RouterModel,
    /// Its `expiration_date` has passed.
    Expired(String),
    /// Its `expiration_date` cannot be read; an unreadable deadline is treated as passed.
    BadExpiration(String),
    /// Its provider was not declared `free_tier` or `local`: it could bill.
    BilledProvider(String),
}

impl fmt::Display for NotFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotFree::NotFreeVariant => f.write_str("not a :free variant"),
            NotFree::Priced(key) => write!(f, "non-zero price for {key}"),
            NotFree::NoPrices => f.write_str("no prices listed"),
            NotFree::RouterModel => f.write_str("a router model, not a model"),
            NotFree::Expired(d) => write!(f, "free variant expired on {d}"),
            NotFree::BadExpiration(d) => write!(f, "unreadable expiration date {d:?}"),
            NotFree::BilledProvider(p) => write!(f, "provider `{p}` is not declared free_tier or local"),
        }
    }
}

/// The part of the free rule that does not depend on time, plus the instant from which
/// the model stops being free. Precomputed once per catalog entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FreeFacts {
    pub(crate) static_free: bool,
    /// The first instant at which the model is no longer free (the day after its
    /// expiration date: a model expiring on 2026-08-24 is still free that day).
    pub(crate) expires_at: Option<Timestamp>,
}

impl FreeFacts {
    pub(crate) fn of(m: &ModelInfo) -> Self {
        let expires_at = m.expiration_date.as_deref().map(|d| {
            parse_date(d).map(|t| t.saturating_add(std::time::Duration::from_secs(86_400))).unwrap_or_default()
        });
        let static_free = match &m.provider {
            None => m.id.is_free_variant() && m.pricing.all_zero() && !m.is_router(),
            // A declared provider's account cannot bill (or is the operator's own): its
            // models list no prices, and any they do list must be zero.
            Some(p) => p.billing != Billing::Billed && m.pricing.priced_keys().next().is_none() && !m.is_router(),
        };
        FreeFacts { static_free, expires_at }
    }

    pub(crate) fn is_free(&self, now: Timestamp) -> bool {
        self.static_free && self.expires_at.is_none_or(|e| now < e)
    }
}

/// Every reason `m` is not free at `now`; empty means free.
pub fn not_free_reasons(m: &ModelInfo, now: Timestamp) -> Vec<NotFree> {
    let mut reasons = Vec::new();
    match &m.provider {
        None => {
            if !m.id.is_free_variant() {
                reasons.push(NotFree::NotFreeVariant);
            }
            if m.pricing.0.is_empty() {
                reasons.push(NotFree::NoPrices);
            }
        }
        Some(p) if p.billing == Billing::Billed => reasons.push(NotFree::BilledProvider(p.provider.to_string())),
        Some(_) => {}
    }
    reasons.extend(m.pricing.priced_keys().map(|k| NotFree::Priced(k.to_owned())));
    if m.is_router() {
        reasons.push(NotFree::RouterModel);
    }
    if let Some(d) = &m.expiration_date {
        match parse_date(d) {
            None => reasons.push(NotFree::BadExpiration(d.clone())),
            Some(_) if FreeFacts::of(m).expires_at.is_some_and(|e| now >= e) => {
                reasons.push(NotFree::Expired(d.clone()));
            }
            Some(_) => {}
        }
    }
    reasons
}

/// Whether `m` is free at `now`.
pub fn is_free(m: &ModelInfo, now: Timestamp) -> bool {
    FreeFacts::of(m).is_free(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(id: &str, prices: serde_json::Value, extra: serde_json::Value) -> ModelInfo {
        let mut v = json!({"id": id, "pricing": prices});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(v).expect("fixture model")
    }

    fn check(m: ModelInfo, now: &str, expected: &str) {
        let now = parse_date(now).expect("fixture date");
        let got: Vec<String> = not_free_reasons(&m, now).iter().map(ToString::to_string).collect();
        assert_eq!(got.join("; "), expected, "{}", m.id);
        assert_eq!(is_free(&m, now), expected.is_empty(), "{}", m.id);
    }

    #[test]
    fn free_rule() {
        let zero = json!({"prompt": "0", "completion": "0"});
        let none = json!({});
        check(model("a/b:free", zero.clone(), none.clone()), "2026-01-01", "");
        check(model("a/b:free", json!({}), none.clone()), "2026-01-01", "no prices listed");
        check(model("a/b", zero.clone(), none.clone()), "2026-01-01", "not a :free variant");
        check(
            model("a/b:free", json!({"prompt": "0", "completion": "0.000001"}), none.clone()),
            "2026-01-01",
            "non-zero price for completion",
        );
        check(
            model("a/b:free", json!({"prompt": "0", "completion": "0", "web_search": "0.01"}), none.clone()),
            "2026-01-01",
            "non-zero price for web_search",
        );
        check(
            model("openrouter/free", zero.clone(), json!({"tokenizer": "Router"})),
            "2026-01-01",
            "not a :free variant; a router model, not a model",
        );
        check(
            model("x/router:free", zero.clone(), json!({"tokenizer": "Router"})),
            "2026-01-01",
            "a router model, not a model",
        );
        let expiring = model("a/b:free", zero.clone(), json!({"expiration_date": "2026-08-24"}));
        check(expiring.clone(), "2026-08-24", "");
        check(expiring, "2026-08-25", "free variant expired on 2026-08-24");
        check(
            model("a/b:free", zero, json!({"expiration_date": "soon"})),
            "2026-01-01",
            "unreadable expiration date \"soon\"",
        );
    }

    #[test]
    fn declared_providers_need_no_free_suffix_but_never_bill() {
        let provided = |billing: &str, prices: serde_json::Value| {
            model(
                "groq/llama-3.1-8b-instant",
                prices,
                json!({"provider": {"provider": "groq", "upstream_id": "llama-3.1-8b-instant", "billing": billing}}),
            )
        };
        check(provided("free_tier", json!({})), "2026-01-01", "");
        check(provided("local", json!({"prompt": "0"})), "2026-01-01", "");
        check(provided("free_tier", json!({"prompt": "0.1"})), "2026-01-01", "non-zero price for prompt");
        check(provided("billed", json!({})), "2026-01-01", "provider `groq` is not declared free_tier or local");
    }
}
