//! The providers of a process: each declared OpenAI-compatible provider's catalog,
//! transport and quota policy, the union catalog over them (and OpenRouter's, when it is
//! one of the providers) and the transport that sends each request to its provider.

use crate::clock::SystemClock;
use crate::mux::ProviderMux;
use crate::provider::{Adapters, ModelSettings, ProviderSettings};
use crate::settings::Settings;
use crate::shard::{self, ShardedTransport};
use crate::transport::{Upstream, http_transport};
use crate::zone::ZoneDays;
use catalog_openai::{OpenAiCatalog, ProviderCatalogConfig, UnionCatalog, known_provider};
use router_core::quota::{ProviderPolicy, ResetClock, TokenPolicy, UtcDays};
use router_core::{Billing, Catalog, ChatTransport, QuotaPolicy, Secret};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use transport_http::{HttpTransport, TransportInitError};

/// The declared providers of a process (none when OpenRouter is the only one).
#[derive(Clone, Debug, Default)]
pub struct Providers {
    pub catalogs: Vec<Arc<OpenAiCatalog>>,
    /// The union catalog, when there is a declared provider.
    pub union: Option<Arc<UnionCatalog>>,
}

/// The providers in force with adapters of their own (the declared ones).
fn declared(settings: &Settings) -> Vec<ProviderSettings> {
    settings.providers().into_iter().filter(|p| p.kind.adapters() == Adapters::Declared).collect()
}

/// The provider in force over the base adapters (OpenRouter, when it is one).
fn base_provider(settings: &Settings) -> Option<ProviderSettings> {
    settings.providers().into_iter().find(|p| p.kind.adapters() == Adapters::Base)
}

/// Whether a provider in force is over the base adapters.
pub(crate) fn has_base(settings: &Settings) -> bool {
    base_provider(settings).is_some()
}

/// The key of provider `p`, from the environment variable it names.
fn api_key(p: &ProviderSettings) -> Option<Secret> {
    let name = p.api_key_env.as_deref()?;
    std::env::var(name).ok().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).map(Secret::new)
}

fn billing(p: &ProviderSettings) -> Billing {
    if p.local {
        Billing::Local
    } else if p.free_tier {
        Billing::FreeTier
    } else {
        Billing::Billed
    }
}

fn base_url(p: &ProviderSettings) -> String {
    p.base_url.as_deref().unwrap_or_default().trim().trim_end_matches('/').to_owned()
}

/// Provider `p`'s catalog, starting from its disk cache beside OpenRouter's at
/// `cache_path` (no network call).
fn provider_catalog(
    settings: &Settings,
    cache_path: Option<&Path>,
    p: &ProviderSettings,
) -> Result<OpenAiCatalog, TransportInitError> {
    let cache_path = cache_path.map(|c| c.with_file_name(format!("catalog-{}.json", p.name)));
    let models = p.models.clone();
    let config = ProviderCatalogConfig {
        name: p.name.clone(),
        base_url: base_url(p),
        api_key: api_key(p),
        billing: billing(p),
        include: p.include.clone(),
        models,
        refresh_interval: settings.refresh_interval_secs.get(),
        fetch_timeout: catalog_openai::DEFAULT_FETCH_TIMEOUT,
        cache_path,
        extra_roots: settings.extra_roots()?,
    };
    OpenAiCatalog::new(config, Arc::new(SystemClock)).map_err(|e| TransportInitError::Client(e.to_string()))
}

/// Provider `p`'s HTTP transport: its url and key, its kind's dialect.
fn provider_transport(settings: &Settings, p: &ProviderSettings) -> Result<HttpTransport, TransportInitError> {
    let upstream =
        Upstream { base_url: base_url(p), api_key: api_key(p), dialect: p.kind.dialect(p.local), provider: Some(p) };
    http_transport(settings, upstream)
}

/// A fingerprint of what makes provider `p` the account it is (its URL, its key, how it
/// was declared), by a fixed hash: a "not free" mark lasts while it is unchanged, across
/// restarts, and lapses when the operator changes any of them.
fn identity(p: &ProviderSettings) -> u64 {
    let key = api_key(p).map(|k| router_core::sticky::score(k.expose(), "key")).unwrap_or_default();
    let declared = format!("{}|{}|{}|{key}", base_url(p), p.free_tier, p.local);
    router_core::sticky::score(&declared, &p.name)
}

/// Each declared provider's limits and day clock: the config's, else the embedded
/// table's for a known free tier, else none.
pub(crate) fn policies(settings: &Settings) -> BTreeMap<String, ProviderPolicy> {
    let mut out: BTreeMap<String, ProviderPolicy> = declared(settings)
        .into_iter()
        .map(|p| {
            let known = known_provider(&base_url(&p));
            let zone = p.reset_time_zone.clone().or_else(|| known.and_then(|k| k.reset_time_zone.clone()));
            let reset: Arc<dyn ResetClock> = match zone.as_deref().map(ZoneDays::new) {
                Some(Ok(z)) => Arc::new(z),
                // Checked when the settings were read.
                _ => Arc::new(UtcDays),
            };
            let quota = QuotaPolicy {
                per_minute: p.per_minute.or_else(|| known.and_then(|k| k.per_minute)),
                per_day: p.per_day.or_else(|| known.and_then(|k| k.per_day)),
            };
            let tokens = TokenPolicy {
                per_minute: p.tokens_per_minute.or_else(|| known.and_then(|k| k.tokens_per_minute)),
                per_day: p.tokens_per_day.or_else(|| known.and_then(|k| k.tokens_per_day)),
            };
            (
                p.name.clone(),
                ProviderPolicy {
                    quota,
                    reset,
                    tokens,
                    identity: identity(&p),
                    max_concurrent: p.max_concurrent,
                    ..ProviderPolicy::default()
                },
            )
        })
        .collect();
    // Each model's own limits, keyed by its exposed id, on its provider's day clock: the
    // config's entry, else the table's.
    for p in declared(settings) {
        let Some(reset) = out.get(&p.name).map(|pp| Arc::clone(&pp.reset)) else { continue };
        let known = known_provider(&base_url(&p)).map(|k| k.models.as_slice()).unwrap_or_default();
        let limits_of = |m: &ModelSettings| {
            let tokens = TokenPolicy { per_minute: m.tokens_per_minute, per_day: m.tokens_per_day };
            (QuotaPolicy { per_minute: m.per_minute, per_day: m.per_day }, tokens)
        };
        let mut limits: BTreeMap<&str, (QuotaPolicy, TokenPolicy)> =
            known.iter().map(|m| (m.id.as_str(), limits_of(m))).collect();
        for m in &p.models {
            let entry = limits.entry(m.id.as_str()).or_insert((QuotaPolicy::UNLIMITED, TokenPolicy::default()));
            let (quota, tokens) = limits_of(m);
            entry.0 = QuotaPolicy {
                per_minute: quota.per_minute.or(entry.0.per_minute),
                per_day: quota.per_day.or(entry.0.per_day),
            };
            entry.1 = TokenPolicy {
                per_minute: tokens.per_minute.or(entry.1.per_minute),
                per_day: tokens.per_day.or(entry.1.per_day),
            };
        }
        for (id, (quota, tokens)) in limits {
            if quota != QuotaPolicy::UNLIMITED || tokens.is_limited() {
                let policy = ProviderPolicy { quota, tokens, reset: Arc::clone(&reset), ..ProviderPolicy::default() };
                out.insert(format!("{}/{id}", p.name), policy);
            }
        }
    }
    out
}

/// What the router is built over: the catalog and transport it uses, and the providers
/// behind them.
pub(crate) struct Composition {
    pub catalog: Arc<dyn Catalog>,
    pub transport: Arc<dyn ChatTransport>,
    pub providers: Providers,
}

/// What the composition passes down beside the settings.
pub(crate) struct Parts {
    /// OpenRouter's catalog cache; the providers' caches sit beside it.
    pub cache_path: Option<PathBuf>,
    /// Serving threads, each with its own pools.
    pub shards: usize,
    /// `base` is a fixed catalog of every provider's models (a file the user named):
    /// routed over alone, with no provider catalog beside it.
    pub fixed: bool,
}

/// The catalog and transport the router uses. With no declared provider they are the
/// base ones (`base`, `chat`: OpenRouter's), as they always were.
pub(crate) fn compose(
    settings: &Settings,
    parts: &Parts,
    base: Arc<dyn Catalog>,
    chat: ShardedTransport,
) -> Result<Composition, TransportInitError> {
    let declared = declared(settings);
    let in_force = base_provider(settings);
    let chat = chat.into_chat();
    if declared.is_empty() {
        return Ok(Composition { catalog: base, transport: chat, providers: Providers::default() });
    }
    let mut catalogs = Vec::new();
    let mut lanes = BTreeMap::new();
    for p in &declared {
        if p.api_key_env.is_some() && api_key(p).is_none() {
            tracing::warn!(provider = %p.name, "the provider's key variable is not set; sending without a key");
        }
        if !parts.fixed {
            catalogs.push(Arc::new(provider_catalog(settings, parts.cache_path.as_deref(), p)?));
        }
        let transport = shard::per_thread(parts.shards, || provider_transport(settings, p).map(Arc::new))?;
        lanes.insert(p.name.clone(), transport.into_chat());
    }
    if let Some(p) = &in_force {
        lanes.insert(p.kind.account(&p.name).to_owned(), chat);
    }
    if parts.fixed {
        let mux = ProviderMux::new(base.clone(), lanes);
        return Ok(Composition { catalog: base, transport: Arc::new(mux), providers: Providers::default() });
    }
    let union = Arc::new(UnionCatalog::new(in_force.is_some().then_some(base), catalogs.clone()));
    let mux = ProviderMux::new(union.clone(), lanes);
    let providers = Providers { catalogs, union: Some(union.clone()) };
    Ok(Composition { catalog: union, transport: Arc::new(mux), providers })
}

/// What `--check-config` builds of the declared providers (no network call).
pub(crate) fn validate(settings: &Settings) -> Result<Vec<String>, TransportInitError> {
    let mut warnings = Vec::new();
    for p in declared(settings) {
        provider_catalog(settings, settings.cache_path().as_deref(), &p)?;
        provider_transport(settings, &p)?;
        if let Some(env) = p.api_key_env.as_deref().filter(|_| api_key(&p).is_none()) {
            warnings.push(format!("provider `{}`: {env} is not set; requests go without a key", p.name));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderKind;

    fn provider(name: &str, url: &str) -> ProviderSettings {
        ProviderSettings { free_tier: true, ..ProviderSettings::new(name, ProviderKind::Openai, Some(url.into())) }
    }

    #[test]
    fn limits_from_the_config_over_the_known_table() {
        let settings = Settings {
            providers: vec![
                provider("nim", "https://integrate.api.nvidia.com/v1"),
                ProviderSettings { per_minute: Some(5), ..provider("nim2", "https://integrate.api.nvidia.com/v1/") },
                provider("gemini", "https://generativelanguage.googleapis.com/v1beta/openai"),
                ProviderSettings {
                    reset_time_zone: Some("Europe/Paris".into()),
                    ..provider("gemini2", "https://generativelanguage.googleapis.com/v1beta/openai")
                },
                ProviderSettings { local: true, ..provider("ollama", "http://127.0.0.1:11434/v1") },
            ],
            ..Settings::default()
        };
        let p = policies(&settings);
        assert_eq!(p["nim"].quota.per_minute, Some(40), "NVIDIA's account-wide 40/min from the table");
        assert_eq!(p["nim2"].quota.per_minute, Some(5), "the config wins");
        assert_eq!(p["gemini"].reset.name(), "America/Los_Angeles");
        assert_eq!(p["gemini2"].reset.name(), "Europe/Paris");
        assert_eq!(p["ollama"].quota, QuotaPolicy::UNLIMITED);
        assert_eq!(p["ollama"].reset.name(), "UTC");
        assert!(!p.contains_key("openrouter"));
        let groq = ProviderSettings {
            models: vec![crate::ModelSettings {
                id: "llama-3.3-70b-versatile".into(),
                per_day: Some(7),
                ..Default::default()
            }],
            ..provider("groq", "https://api.groq.com/openai/v1")
        };
        let p = policies(&Settings { providers: vec![groq], ..Settings::default() });
        assert_eq!(p["groq"].quota, QuotaPolicy::UNLIMITED, "Groq limits each model, not the account");
        let small = &p["groq/llama-3.1-8b-instant"].quota;
        assert_eq!((small.per_minute, small.per_day), (Some(30), Some(14_400)), "the table's per-model limits");
        let big = &p["groq/llama-3.3-70b-versatile"].quota;
        assert_eq!((big.per_minute, big.per_day), (Some(30), Some(7)), "the config's per_day over the table's");
    }
}
