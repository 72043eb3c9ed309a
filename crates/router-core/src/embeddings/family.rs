//! The free embedding models and their families, and which family a request's `model`
//! names: a model id (its family), a family's name, or the router's aliases (the
//! configured default family, else the first free family by name; never a random one).

use crate::catalog::CatalogSnapshot;
use crate::error::RouteError;
use crate::free::not_free_reasons;
use crate::model::{ModelId, ModelInfo};
use crate::request::ROUTER_ALIASES;
use crate::time::Timestamp;

/// The family a request is routed within.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The family's name.
    pub family: String,
    /// The request named no model (or an alias): the default family was taken.
    pub by_default: bool,
}

/// The embedding models free now, in id order.
pub fn free_embedding_models(snap: &CatalogSnapshot, now: Timestamp) -> Vec<&ModelInfo> {
    snap.entries().iter().filter(|e| e.info.is_embedding() && e.is_free(now)).map(|e| &e.info).collect()
}

/// The families with a free endpoint now, by name, each once.
pub fn free_families(snap: &CatalogSnapshot, now: Timestamp) -> Vec<&str> {
    let mut out: Vec<&str> = free_embedding_models(snap, now).into_iter().map(ModelInfo::family).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The family `model` names. A paid embedding id is refused here (before anything is
/// sent) as the chat plan refuses one; a chat model is not an embedding model.
pub fn resolve(
    snap: &CatalogSnapshot,
    model: Option<&str>,
    default_family: Option<&str>,
    now: Timestamp,
) -> Result<Resolved, RouteError> {
    let Some(id) = model.filter(|m| !ROUTER_ALIASES.contains(m)) else {
        let family = match default_family {
            Some(f) => f.to_owned(),
            None => free_families(snap, now).first().map(|f| (*f).to_owned()).ok_or_else(none_free)?,
        };
        return Ok(Resolved { family, by_default: true });
    };
    if let Some(entry) = snap.get(id) {
        if !entry.info.is_embedding() {
            return Err(RouteError::NoCandidate {
                message: format!("`{id}` is not an embedding model; name one listed at /api/v1/embeddings/models"),
                requirements: vec!["embeddings output".to_owned()],
            });
        }
        if !entry.is_free(now) {
            return Err(RouteError::NotFree { model: ModelId::new(id), reasons: not_free_reasons(&entry.info, now) });
        }
        return Ok(Resolved { family: entry.info.family().to_owned(), by_default: false });
    }
    if snap.entries().iter().any(|e| e.info.is_embedding() && e.info.family() == id) {
        return Ok(Resolved { family: id.to_owned(), by_default: false });
    }
    Err(RouteError::UnknownModel(ModelId::new(id)))
}

fn none_free() -> RouteError {
    RouteError::NoCandidate {
        message: "no free embedding model is configured or listed now".to_owned(),
        requirements: vec!["embeddings output".to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogSource;
    use crate::model::{Billing, Provenance};
    use serde_json::json;

    const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

    fn embedding(id: &str, price: &str, family: Option<&str>) -> ModelInfo {
        let mut m = ModelInfo::new(id);
        m.output_modalities = vec!["embeddings".into()];
        m.pricing.0.insert("prompt".into(), json!(price));
        m.pricing.0.insert("completion".into(), json!("0"));
        m.family = family.map(Into::into);
        m
    }

    fn snapshot() -> CatalogSnapshot {
        let mut local = embedding("ollama/nomic-embed-text", "0", Some("nomic-ai/nomic-embed-text-v1.5:free"));
        local.provider = Some(Provenance {
            provider: "ollama".into(),
            upstream_id: "nomic-embed-text".into(),
            billing: Billing::Local,
        });
        let mut chat = ModelInfo::new("meta/llama:free");
        chat.output_modalities = vec!["text".into()];
        chat.pricing.0.insert("prompt".into(), json!("0"));
        chat.pricing.0.insert("completion".into(), json!("0"));
        CatalogSnapshot::new(
            vec![
                embedding("nomic-ai/nomic-embed-text-v1.5:free", "0", None),
                embedding("voyageai/voyage-code-4", "0.00000012", None),
                embedding("b/embed:free", "0", None),
                local,
                chat,
            ],
            CatalogSource::Memory,
            NOW,
        )
    }

    /// Resolves `model` with `default`: the family (and whether by default) or the error.
    fn check(model: Option<&str>, default: Option<&str>, expected: Result<(&str, bool), &str>) {
        let got =
            resolve(&snapshot(), model, default, NOW).map(|r| (r.family, r.by_default)).map_err(|e| e.to_string());
        assert_eq!(got, expected.map(|(f, d)| (f.to_owned(), d)).map_err(str::to_owned), "{model:?}");
    }

    #[test]
    fn a_model_names_its_family_and_an_alias_the_default_one() {
        check(Some("ollama/nomic-embed-text"), None, Ok(("nomic-ai/nomic-embed-text-v1.5:free", false)));
        check(Some("nomic-ai/nomic-embed-text-v1.5:free"), None, Ok(("nomic-ai/nomic-embed-text-v1.5:free", false)));
        check(Some("b/embed:free"), None, Ok(("b/embed:free", false)));
        // Without a default, the first free family by name, every time.
        for alias in [None, Some("free"), Some("openrouter/free")] {
            check(alias, None, Ok(("b/embed:free", true)));
            check(
                alias,
                Some("nomic-ai/nomic-embed-text-v1.5:free"),
                Ok(("nomic-ai/nomic-embed-text-v1.5:free", true)),
            );
        }
        assert_eq!(free_families(&snapshot(), NOW), ["b/embed:free", "nomic-ai/nomic-embed-text-v1.5:free"]);
    }

    #[test]
    fn paid_chat_and_unknown_ids_are_refused() {
        let paid = resolve(&snapshot(), Some("voyageai/voyage-code-4"), None, NOW).expect_err("paid");
        assert!(matches!(paid, RouteError::NotFree { .. }), "{paid}");
        check(
            Some("meta/llama:free"),
            None,
            Err("`meta/llama:free` is not an embedding model; name one listed at /api/v1/embeddings/models"),
        );
        let unknown = resolve(&snapshot(), Some("x/y"), None, NOW).expect_err("unknown");
        assert!(matches!(unknown, RouteError::UnknownModel(_)), "{unknown}");
        let empty = CatalogSnapshot::new(Vec::new(), CatalogSource::Memory, NOW);
        let none = resolve(&empty, None, None, NOW).expect_err("none");
        assert_eq!(none.to_string(), "no free embedding model is configured or listed now");
    }
}
