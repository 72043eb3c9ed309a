//! `OpenAiCatalog`: one OpenAI-compatible provider's models from `GET {base_url}/models`,
//! narrowed by its allow-list, with capabilities from the config, then the embedded
//! table, then nothing. A failed refresh keeps the last good list (and its disk cache).

use crate::known::{ModelCaps, known_provider, same_model};
use catalog_refresh::{Counters as Refreshes, Failed, Outcome, Refresh, Refreshed, Schedule};
use router_core::model::EMBEDDINGS_MODALITY;
use router_core::{Billing, CatalogSource, Clock, ModelInfo, Provenance, RawEntry, Secret, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// Time between background refreshes of a provider's models, by default.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);
/// How long one fetch of `/models` may take, by default.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// First retry after a failed refresh; doubles up to the interval.
const RETRY_BASE: Duration = Duration::from_secs(15);
/// A `/models` body larger than this is refused.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The disk cache's format.
pub const CACHE_FORMAT: u32 = 1;

/// Words in an id that mark a model that does not chat (embeddings, speech, rerankers):
/// such a model is left out unless the allow-list names it (or `[[providers.models]]`
/// declares it an embedding model).
pub const NOT_CHAT: [&str; 5] = ["embed", "whisper", "tts", "rerank", "transcribe"];

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("GET {url} failed: {message}")]
    Fetch { url: String, message: String },
    #[error("GET {url} answered {status}: {snippet}")]
    Status { url: String, status: u16, snippet: String },
    #[error("GET {url}: {message}")]
    Parse { url: String, message: String },
}

/// One provider's catalog settings.
#[derive(Clone)]
pub struct ProviderCatalogConfig {
    /// The provider's name: its models are exposed as `<name>/<upstream id>`.
    pub name: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub billing: Billing,
    /// Only these upstream ids, when given.
    pub include: Option<Vec<String>>,
    /// Capabilities stated in the config, over the embedded table.
    pub models: Vec<ModelCaps>,
    pub refresh_interval: Duration,
    pub fetch_timeout: Duration,
    /// Where the last good list is kept; `None` disables the disk cache.
    pub cache_path: Option<PathBuf>,
    /// Certificates trusted beside the system's (the `extra_ca_cert` setting).
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl fmt::Debug for ProviderCatalogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderCatalogConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key) // Secret prints `***`
            .field("billing", &self.billing)
            .field("include", &self.include)
            .finish_non_exhaustive()
    }
}

/// A provider's models at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderModels {
    pub models: Vec<ModelInfo>,
    pub fetched_at: Timestamp,
    pub source: CatalogSource,
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    models_url: String,
    list: ProviderModels,
}

/// The counters `/readyz`, `/metrics` and the status page show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProviderCatalogStats {
    pub name: String,
    pub models: usize,
    /// The refresh engine's counters (the same as OpenRouter's catalog keeps).
    #[serde(flatten)]
    pub refreshes: Refreshes,
}

pub struct OpenAiCatalog {
    config: ProviderCatalogConfig,
    models_url: String,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    current: RwLock<Arc<ProviderModels>>,
    refresh_lock: tokio::sync::Mutex<()>,
    counters: Mutex<Refreshes>,
}

impl fmt::Debug for OpenAiCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCatalog").field("config", &self.config).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Refresh for OpenAiCatalog {
    async fn refresh_once(&self) -> Result<Outcome, Failed> {
        self.refresh_outcome().await.map_err(|e| Failed(self.redacted(&e.to_string())))
    }
}

impl Refreshed for OpenAiCatalog {
    fn provider(&self) -> &str {
        self.name()
    }

    fn models_url(&self) -> &str {
        &self.models_url
    }

    fn cache_path(&self) -> Option<&Path> {
        self.config.cache_path.as_deref()
    }

    fn origin(&self) -> (CatalogSource, Timestamp) {
        let list = self.models();
        (list.source.clone(), list.fetched_at)
    }

    fn schedule(&self) -> Schedule {
        Schedule { interval: self.config.refresh_interval, retry_base: RETRY_BASE }
    }

    fn refreshes(&self) -> (usize, Refreshes) {
        let s = self.stats();
        (s.models, s.refreshes)
    }

    fn spawn_loop(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.spawn_refresh_loop()
    }
}

impl OpenAiCatalog {
    /// Starts from the disk cache when it holds this provider's list, else from nothing
    /// (the first refresh fills it). Makes no network call.
    pub fn new(config: ProviderCatalogConfig, clock: Arc<dyn Clock>) -> Result<Self, FetchError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("free-models-router/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(config.extra_roots.iter().cloned())
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        let models_url = format!("{}/models", config.base_url.trim_end_matches('/'));
        let initial = config.cache_path.as_ref().and_then(|p| load_cache(p, &models_url)).unwrap_or_else(|| {
            ProviderModels { models: Vec::new(), fetched_at: Timestamp::default(), source: CatalogSource::Memory }
        });
        Ok(OpenAiCatalog {
            config,
            models_url,
            clock,
            client,
            current: RwLock::new(Arc::new(initial)),
            refresh_lock: tokio::sync::Mutex::new(()),
            counters: Mutex::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &ProviderCatalogConfig {
        &self.config
    }

    /// The current list (never waits for a fetch).
    pub fn models(&self) -> Arc<ProviderModels> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn stats(&self) -> ProviderCatalogStats {
        let c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        ProviderCatalogStats {
            name: self.config.name.clone(),
            models: self.models().models.len(),
            refreshes: c.clone(),
        }
    }

    /// Fetches the list and swaps it in; on failure the last good list stays. Returns
    /// how many models it holds.
    pub async fn refresh(&self) -> Result<usize, FetchError> {
        self.refresh_outcome().await.map(|o| o.models)
    }

    /// [`Self::refresh`], saying what changed and whether the disk cache was written.
    async fn refresh_outcome(&self) -> Result<Outcome, FetchError> {
        let _one_at_a_time = self.refresh_lock.lock().await;
        let result = self.fetch().await.and_then(|body| {
            let now = self.clock.now();
            let models = build_models(&self.config, &body)
                .map_err(|message| FetchError::Parse { url: self.models_url.clone(), message })?;
            Ok(ProviderModels { models, fetched_at: now, source: CatalogSource::Live { url: self.models_url.clone() } })
        });
        self.record(result.as_ref().map(|_| ()).map_err(ToString::to_string));
        let list = Arc::new(result?);
        let previous = self.models();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&list);
        tracing::info!(provider = %self.config.name, models = list.models.len(), "provider catalog refreshed");
        let cache_error = match self.config.cache_path.clone() {
            Some(path) => self.save(path, &list).await.err(),
            None => None,
        };
        Ok(Outcome { cache_error, ..changes(&previous.models, &list.models, list.fetched_at) })
    }

    async fn save(&self, path: PathBuf, list: &ProviderModels) -> Result<(), String> {
        let file = CacheFile { format: CACHE_FORMAT, models_url: self.models_url.clone(), list: list.clone() };
        let saved = tokio::task::spawn_blocking(move || save_cache(&path, &file)).await;
        let saved = saved.map_err(|e| format!("catalog cache writer stopped: {e}")).and_then(|r| r);
        if let Err(e) = &saved {
            tracing::warn!(provider = %self.config.name, error = %e, "provider catalog cache not saved");
        }
        saved
    }

    /// An upstream or a proxy may echo the key, and a URL may hold a password: an error
    /// is redacted before it is kept, shown or logged.
    fn redacted(&self, e: &str) -> String {
        let keys: Vec<&Secret> = self.config.api_key.iter().collect();
        router_core::redact(e, &keys)
    }

    fn record(&self, outcome: Result<(), String>) {
        let outcome = outcome.map_err(|e| {
            let error = self.redacted(&e);
            tracing::warn!(provider = %self.config.name, %error, "provider catalog refresh failed; keeping the last list");
            error
        });
        self.counters.lock().unwrap_or_else(PoisonError::into_inner).record(self.clock.now(), outcome);
    }

    async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        let url = self.models_url.clone();
        let fail = |message: String| FetchError::Fetch { url: url.clone(), message };
        let mut request = self.client.get(&self.models_url).header(reqwest::header::ACCEPT, "application/json");
        if let Some(key) = self.config.api_key.as_ref().filter(|k| !k.is_empty()) {
            request = request.bearer_auth(key.expose());
        }
        let mut response = request.send().await.map_err(|e| fail(error_chain(&e)))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(error_chain(&e)))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(fail(format!("the answer is larger than {MAX_BODY_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if status != 200 {
            let snippet: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(FetchError::Status { url, status, snippet: snippet.trim().to_owned() });
        }
        Ok(body)
    }

    /// Refreshes now, then every `refresh_interval` with jitter, sooner after a failure
    /// (from 15 s): the one refresh engine's loop. Stops when the catalog is dropped.
    pub fn spawn_refresh_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        catalog_refresh::spawn(self, Refreshed::schedule(self.as_ref()), self.clock.now())
    }
}

/// What a refresh from `old` to `new` changed, the free models counted at `now`.
fn changes(old: &[ModelInfo], new: &[ModelInfo], now: Timestamp) -> Outcome {
    let (added, removed) = Outcome::changed(old.iter().map(|m| &m.id), new.iter().map(|m| &m.id));
    Outcome {
        models: new.len(),
        free_models: new.iter().filter(|m| router_core::is_free(m, now)).count(),
        skipped: 0,
        added,
        removed,
        cache_error: None,
    }
}

/// The provider's models from a `/models` body: `{"data": [...]}` (OpenAI, Ollama,
/// vLLM, LM Studio), `{"models": [...]}` (llama.cpp also sends this) or a bare array.
pub fn build_models(config: &ProviderCatalogConfig, body: &[u8]) -> Result<Vec<ModelInfo>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let entries = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("data").or_else(|| o.get("models")) {
            Some(Value::Array(a)) => a,
            _ => return Err("no `data` list of models".into()),
        },
        _ => return Err("not a list of models".into()),
    };
    let known = known_provider(&config.base_url);
    let mut out = Vec::new();
    for e in entries {
        let Some(id) = e.get("id").or_else(|| e.get("model")).and_then(Value::as_str) else { continue };
        if id.is_empty() || id.chars().any(char::is_whitespace) {
            continue;
        }
        let allowed = match &config.include {
            Some(list) => list.iter().any(|i| i == id),
            // A model the operator declared an embedding model is served on `/embeddings`.
            None => declared_embedding(config, id) || !NOT_CHAT.iter().any(|w| id.to_ascii_lowercase().contains(w)),
        };
        if !allowed {
            continue;
        }
        let caps = config.models.iter().find(|m| same_model(&m.id, id)).or_else(|| known.and_then(|k| k.model(id)));
        out.push(model_info(config, id, e, caps));
    }
    Ok(out)
}

/// Whether `[[providers.models]]` declares `id` an embedding model.
fn declared_embedding(config: &ProviderCatalogConfig, id: &str) -> bool {
    config.models.iter().any(|m| {
        same_model(&m.id, id)
            && m.output_modalities.as_ref().is_some_and(|o| o.iter().any(|x| x == EMBEDDINGS_MODALITY))
    })
}

/// The catalog entry of upstream model `id` (listed as `listed`), with `caps` when known.
fn model_info(config: &ProviderCatalogConfig, id: &str, listed: &Value, caps: Option<&ModelCaps>) -> ModelInfo {
    let number = |keys: &[&str]| keys.iter().find_map(|k| listed.get(*k).and_then(Value::as_u64));
    let mut m = ModelInfo::new(&format!("{}/{id}", config.name));
    m.name = caps.and_then(|c| c.name.clone()).unwrap_or_else(|| format!("{} ({})", id, config.name));
    m.created = listed.get("created").and_then(Value::as_i64).filter(|&c| c > 0);
    // What the server itself lists (Groq's `context_window`, vLLM's `max_model_len`) is
    // a statement about the model, not an assumption.
    m.context_length =
        caps.and_then(|c| c.context_length).or_else(|| number(&["context_length", "context_window", "max_model_len"]));
    m.max_completion_tokens = caps.and_then(|c| c.max_completion_tokens).or_else(|| number(&["max_completion_tokens"]));
    m.input_modalities = caps.and_then(|c| c.input_modalities.clone()).unwrap_or_else(|| vec!["text".into()]);
    // A chat-completions server answers in text; anything else must be stated.
    m.output_modalities = caps.and_then(|c| c.output_modalities.clone()).unwrap_or_else(|| vec!["text".into()]);
    m.family = caps.and_then(|c| c.family.as_deref()).map(Into::into);
    m.embedding.max_batch_inputs = caps.and_then(|c| c.max_batch_inputs).map(std::num::NonZeroU32::get);
    m.embedding.input_type = caps.and_then(|c| c.input_type.as_deref()).map(Into::into);
    m.supported_parameters = caps.map(|c| c.supported_parameters.clone()).unwrap_or_default();
    m.provider =
        Some(Provenance { provider: config.name.as_str().into(), upstream_id: id.into(), billing: config.billing });
    // The operator declared that this account cannot bill (or is their own server).
    for key in ["prompt", "completion"] {
        m.pricing.0.insert(key.into(), Value::from("0"));
    }
    // `/models` serves the entry in OpenRouter's shape, with the provider named.
    let mut entry = router_core::to_openrouter_json(&m);
    if let Some(o) = entry.as_object_mut() {
        o.insert(
            "provider".into(),
            serde_json::json!({"name": config.name, "upstream_id": id, "billing": config.billing.as_str()}),
        );
    }
    m.raw = RawEntry::from_value(&entry);
    m
}

fn load_cache(path: &std::path::Path, models_url: &str) -> Option<ProviderModels> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "provider catalog cache not read");
            return None;
        }
    };
    match serde_json::from_slice::<CacheFile>(&bytes) {
        Ok(f) if f.format == CACHE_FORMAT && f.models_url == models_url => {
            let source = CatalogSource::DiskCache { path: path.display().to_string() };
            Some(ProviderModels { source, ..f.list })
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "provider catalog cache not used");
            None
        }
    }
}

fn save_cache(path: &std::path::Path, file: &CacheFile) -> Result<(), String> {
    let bytes = serde_json::to_vec(file).map_err(|e| e.to_string())?;
    state_file::atomic_write(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str) -> ProviderCatalogConfig {
        ProviderCatalogConfig {
            name: "groq".into(),
            base_url: base_url.into(),
            api_key: None,
            billing: Billing::FreeTier,
            include: None,
            models: Vec::new(),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            cache_path: None,
            extra_roots: Vec::new(),
        }
    }

    #[test]
    fn capabilities_from_config_then_table_then_nothing() {
        let body = br#"{"object":"list","data":[
            {"id":"llama-3.1-8b-instant","object":"model","context_window":131072},
            {"id":"whisper-large-v3","object":"model"},
            {"id":"mystery-model","object":"model","context_window":8192},
            {"id":"openai/gpt-oss-20b","object":"model"}]}"#;
        let mut c = config("https://api.groq.com/openai/v1");
        c.models = vec![ModelCaps {
            id: "openai/gpt-oss-20b".into(),
            context_length: Some(1000),
            supported_parameters: vec!["tools".into()],
            ..ModelCaps::default()
        }];
        let models = build_models(&c, body).expect("parses");
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["groq/llama-3.1-8b-instant", "groq/mystery-model", "groq/openai/gpt-oss-20b"]);
        let table = &models[0];
        assert!(table.supports_parameter("tools"), "from the embedded table");
        assert_eq!(table.upstream_id(), "llama-3.1-8b-instant");
        assert_eq!(table.provider_name(), "groq");
        let unknown = &models[1];
        assert!(unknown.supported_parameters.is_empty(), "nothing is assumed");
        assert_eq!(unknown.context_length, Some(8192), "the server's own statement");
        let configured = &models[2];
        assert_eq!(configured.context_length, Some(1000), "the config wins over the table");
        assert_eq!(configured.supported_parameters, ["tools"]);
        assert!(models.iter().all(|m| router_core::is_free(m, Timestamp::default())));

        c.include = Some(vec!["whisper-large-v3".into()]);
        let ids: Vec<String> = build_models(&c, body).expect("parses").iter().map(|m| m.id.to_string()).collect();
        assert_eq!(ids, ["groq/whisper-large-v3"], "the allow-list alone decides");
        assert!(build_models(&c, b"{\"error\":\"x\"}").is_err());
        let llama_cpp = br#"{"models":[{"model":"qwen3-8b.gguf"}]}"#;
        let local = ProviderCatalogConfig { name: "llamacpp".into(), ..config("http://127.0.0.1:8080/v1") };
        let ids: Vec<String> =
            build_models(&local, llama_cpp).expect("parses").iter().map(|m| m.id.to_string()).collect();
        assert_eq!(ids, ["llamacpp/qwen3-8b.gguf"]);
    }

    #[test]
    fn a_model_google_lists_as_models_slash_id_is_declared_by_its_id() {
        let body =
            br#"{"object":"list","data":[{"id":"models/gemini-embedding-001"},{"id":"models/gemini-2.5-flash"}]}"#;
        let mut c = config("https://generativelanguage.googleapis.com/v1beta/openai");
        c.models = vec![ModelCaps {
            id: "gemini-embedding-001".into(),
            output_modalities: Some(vec!["embeddings".to_owned()]),
            max_batch_inputs: std::num::NonZeroU32::new(100),
            ..ModelCaps::default()
        }];
        let models = build_models(&c, body).expect("parses");
        let embed = models.iter().find(|m| m.upstream_id() == "models/gemini-embedding-001").expect("kept");
        assert!(embed.is_embedding());
        assert_eq!(embed.embedding.max_batch_inputs, Some(100));
        let chat = models.iter().find(|m| m.upstream_id() == "models/gemini-2.5-flash").expect("kept");
        assert!(!chat.is_embedding() && chat.embedding.is_none());
    }

    #[test]
    fn an_embedding_model_is_declared_with_its_family() {
        let body = br#"{"object":"list","data":[{"id":"nomic-embed-text"},{"id":"all-minilm"},{"id":"llama3"}]}"#;
        let mut c = ProviderCatalogConfig { name: "ollama".into(), ..config("http://127.0.0.1:11434/v1") };
        let embeddings = Some(vec!["embeddings".to_owned()]);
        c.models = vec![
            ModelCaps {
                id: "nomic-embed-text".into(),
                output_modalities: embeddings.clone(),
                family: Some("nomic-ai/nomic-embed-text-v1.5".into()),
                max_batch_inputs: std::num::NonZeroU32::new(100),
                input_type: Some("passage".into()),
                ..ModelCaps::default()
            },
            ModelCaps { id: "all-minilm".into(), output_modalities: embeddings, ..ModelCaps::default() },
        ];
        let models = build_models(&c, body).expect("parses");
        let read: Vec<(&str, bool, &str)> =
            models.iter().map(|m| (m.id.as_str(), m.is_embedding(), m.family())).collect();
        assert_eq!(
            read,
            [
                ("ollama/nomic-embed-text", true, "nomic-ai/nomic-embed-text-v1.5"),
                ("ollama/all-minilm", true, "ollama/all-minilm"),
                ("ollama/llama3", false, "ollama/llama3"),
            ]
        );
        // What its endpoint needs beyond OpenAI's API travels with the entry.
        assert_eq!(
            (models[0].embedding.max_batch_inputs, models[0].embedding.input_type.as_deref()),
            (Some(100), Some("passage"))
        );
        assert!(models[1].embedding.is_none());
        // An embedding model offers no text output, so no chat request is routed to it.
        assert!(!models[0].capabilities().contains(router_core::Capability::TextOutput));
        assert!(models[2].capabilities().contains(router_core::Capability::TextOutput));
    }
}
