//! The provider catalog against a real server on loopback: a refresh, the disk cache a
//! restart starts from, and a failed refresh that keeps the last good list.

use catalog_openai::{OpenAiCatalog, ProviderCatalogConfig};
use fake_upstream::{FakeUpstream, openai_models_json};
use router_core::{Billing, CatalogSource};
use std::sync::Arc;
use std::time::Duration;

fn config(up: &FakeUpstream, cache: &std::path::Path) -> ProviderCatalogConfig {
    ProviderCatalogConfig {
        name: "ollama".into(),
        base_url: up.openai_base_url(),
        api_key: None,
        billing: Billing::Local,
        include: None,
        models: Vec::new(),
        refresh_interval: Duration::from_secs(3600),
        fetch_timeout: Duration::from_secs(5),
        cache_path: Some(cache.join("catalog-ollama.json")),
        extra_roots: Vec::new(),
    }
}

/// The wall clock, as the composition gives the catalog (kept here: this crate does not
/// depend on the composition).
#[derive(Debug)]
struct WallClock;

impl router_core::Clock for WallClock {
    fn now(&self) -> router_core::Timestamp {
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        router_core::Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

#[tokio::test]
async fn refresh_cache_and_a_failed_refresh_keeps_the_last_list() {
    let up = FakeUpstream::start().await;
    up.set_models(openai_models_json(&["qwen3:8b", "nomic-embed-text", "llama3.2:3b"]).to_string());
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = OpenAiCatalog::new(config(&up, dir.path()), Arc::new(WallClock)).expect("catalog");
    assert!(catalog.models().models.is_empty(), "nothing before the first refresh, nothing assumed");
    assert_eq!(catalog.refresh().await.expect("refresh"), 2, "the embedding model is left out");
    let ids: Vec<String> = catalog.models().models.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids, ["ollama/qwen3:8b", "ollama/llama3.2:3b"]);

    up.set_models_status(500);
    assert!(catalog.refresh().await.is_err());
    assert_eq!(catalog.models().models.len(), 2, "a failed refresh keeps the last list");
    assert!(catalog.stats().refreshes.last_error.is_some_and(|e| e.contains("500")));

    // A restart starts from the disk cache, before any fetch.
    let restarted = OpenAiCatalog::new(config(&up, dir.path()), Arc::new(WallClock)).expect("catalog");
    let list = restarted.models();
    assert_eq!(list.models.len(), 2);
    assert!(matches!(list.source, CatalogSource::DiskCache { .. }), "{:?}", list.source);
}
