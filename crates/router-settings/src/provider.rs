//! Upstream providers: the `[[providers]]` tables, and the one-provider list the flat
//! `openrouter_*` settings stand for.

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
}

/// Whether `name` is a valid provider name.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}
