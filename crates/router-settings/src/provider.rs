//! Upstream providers: the `[[providers]]` tables, the one-provider list the flat
//! `openrouter_*` settings stand for, and what each `kind` means to the composition
//! (its adapters, its dialect, the name its account is kept under), in one table; the
//! base kind's catalog is built from the flat settings (`Settings::base_catalog`).

use router_core::Dialect;
use serde::Deserialize;

/// What protocol and catalog a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenRouter: its `/models` catalog, its free rule (`:free`, zero prices), its errors.
    Openrouter,
    /// Any OpenAI-compatible server (a free tier or a local server).
    Openai,
}

/// How the composition builds a kind's adapters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapters {
    /// The router's base catalog (its models name no provider, see `Settings::base_catalog`),
    /// with the transport and the key reader of the flat `openrouter_*` settings: one
    /// provider at most.
    Base,
    /// A catalog of its own over `GET {base_url}/models` (its models exposed as
    /// `<name>/<id>`) and a transport of its own.
    Declared,
}

/// What each kind means: the composition asks these, never which kind it is.
impl ProviderKind {
    /// The kind the flat `openrouter_*` settings stand for: the [`Adapters::Base`] one.
    pub const BASE: ProviderKind = ProviderKind::Openrouter;

    /// The `kind` value as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openrouter => "openrouter",
            ProviderKind::Openai => "openai",
        }
    }

    /// How the composition builds its adapters.
    pub fn adapters(self) -> Adapters {
        match self {
            ProviderKind::Openrouter => Adapters::Base,
            ProviderKind::Openai => Adapters::Declared,
        }
    }

    /// The dialect its transport speaks; `local`: a server of the operator's own.
    pub fn dialect(self, local: bool) -> Dialect {
        match self {
            ProviderKind::Openrouter => Dialect::OpenRouter,
            ProviderKind::Openai => Dialect::OpenAi { local },
        }
    }

    /// The name provider `name`'s lane and account are kept under: the base catalog's
    /// models name no provider, so theirs is the name the core gives such models.
    pub fn account(self, name: &str) -> &str {
        match self.adapters() {
            Adapters::Base => router_core::OPENROUTER_PROVIDER,
            Adapters::Declared => name,
        }
    }
}

/// One `[[providers]]` table as written in the file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// Unique, lowercase `[a-z0-9-]`; other providers' models are exposed as `<name>/<id>`.
    pub name: String,
    pub kind: ProviderKind,
    /// The API root (`/models`, `/chat/completions` are appended); OpenRouter's by default.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding this provider's key (none for a local server).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The operator declares that this account cannot be billed.
    #[serde(default)]
    pub free_tier: bool,
    /// A server of the operator's own: no bill, no quota.
    #[serde(default)]
    pub local: bool,
    /// Only these upstream model ids (as the server lists them), when given.
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// Per-model capabilities (`[[providers.models]]`): what the router may assume of a
    /// model, over the embedded table of well-known free-tier models. A capability
    /// neither states is unknown, and unknown is never assumed.
    #[serde(default)]
    pub models: Vec<ModelSettings>,
    /// Requests per minute across the provider's models (none: unlimited).
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// Requests per day across the provider's models (none: unlimited).
    #[serde(default)]
    pub per_day: Option<u32>,
    /// Tokens per minute across the provider's models, counted as free tiers count them
    /// (the prompt and the whole output asked for, up front); none: unlimited.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Tokens per day across the provider's models; none: unlimited.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
    /// This provider's wait in seconds for an answer's first byte (over
    /// `first_byte_timeout_secs`): a free endpoint that hangs must not hold a request.
    #[serde(default)]
    pub first_byte_timeout_secs: Option<u64>,
    /// This provider's longest silence in seconds inside a stream (over `idle_timeout_secs`).
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// When the provider's day resets: `UTC` (the default) or an IANA time zone such as
    /// `America/Los_Angeles` (Google AI Studio resets at midnight Pacific time).
    #[serde(default)]
    pub reset_time_zone: Option<String>,
    /// The most requests in flight at once (a local server's machine bounds it); beyond
    /// it a request goes to another candidate.
    #[serde(default)]
    pub max_concurrent: Option<u32>,
}

/// One `[[providers.models]]` table: a model's capabilities as the operator states them,
/// in the same shape as the embedded table of known free tiers.
pub type ModelSettings = catalog_openai::ModelCaps;

impl ProviderSettings {
    /// A provider of `kind` named `name` at `base_url`, everything else unset.
    pub fn new(name: &str, kind: ProviderKind, base_url: Option<String>) -> Self {
        ProviderSettings {
            name: name.to_owned(),
            kind,
            base_url,
            api_key_env: None,
            free_tier: false,
            local: false,
            include: None,
            models: Vec::new(),
            per_minute: None,
            per_day: None,
            tokens_per_minute: None,
            tokens_per_day: None,
            first_byte_timeout_secs: None,
            idle_timeout_secs: None,
            reset_time_zone: None,
            max_concurrent: None,
        }
    }
}

/// Whether `name` is a valid provider name.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind's row: its name is the `kind` value the file takes, the base adapters'
    /// models are kept under the name the core gives a model of no provider, and only
    /// the base kind's dialect takes OpenRouter's request extensions.
    #[test]
    fn each_kind_s_row() {
        for kind in [ProviderKind::Openrouter, ProviderKind::Openai] {
            let read: ProviderKind = serde_json::from_value(kind.as_str().into()).expect("a `kind` value");
            assert_eq!(read, kind);
            let base = kind.adapters() == Adapters::Base;
            assert_eq!(kind == ProviderKind::BASE, base);
            assert_eq!(kind.dialect(false).takes_extensions(), base);
            let own = router_core::ModelInfo::new("a/b");
            let expected = if base { own.provider_name() } else { "groq" };
            assert_eq!(kind.account("groq"), expected);
        }
    }
}
