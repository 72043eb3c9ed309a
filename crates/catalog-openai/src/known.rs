//! The embedded table of well-known free tiers' models (`data/known_models.json`): their
//! documented capabilities and account-wide limits, looked up by the provider's host.

use serde::Deserialize;
use std::sync::OnceLock;

/// A model's capabilities as a config entry or the table states them. Field names
/// follow OpenRouter's `/models` entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCaps {
    /// The upstream id, as the server lists it.
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub context_length: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// `["text"]` when not given.
    #[serde(default)]
    pub input_modalities: Option<Vec<String>>,
    #[serde(default)]
    pub supported_parameters: Vec<String>,
    /// `["text"]` when not given; `["embeddings"]` makes it an embedding model, served
    /// on `/embeddings` only and never to a chat request.
    #[serde(default)]
    pub output_modalities: Option<Vec<String>>,
    /// An embedding model's family: the id of the model it is the same as (another
    /// provider's, e.g. OpenRouter's), so that either may answer for the other; by
    /// default the model's own exposed id.
    #[serde(default)]
    pub family: Option<String>,
    /// An embedding model's most inputs per upstream call (Gemini's OpenAI-compatible
    /// endpoint answers 400 past 100); a larger request is sent in chunks to this model.
    #[serde(default)]
    pub max_batch_inputs: Option<std::num::NonZeroU32>,
    /// An embedding model's `input_type` when the client sends none (NVIDIA's retrieval
    /// models need `query` or `passage`).
    #[serde(default)]
    pub input_type: Option<String>,
    /// The model's own requests per minute (Groq limits each model), when stated.
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// The model's own requests per day, when stated.
    #[serde(default)]
    pub per_day: Option<u32>,
    /// The model's own tokens per minute (prompt plus output asked for), when stated.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// The model's own tokens per day, when stated.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
}

/// One free tier in the table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownProvider {
    /// The API host, e.g. `api.groq.com`.
    pub host: String,
    /// When the row was last checked against the provider's pages (`YYYY-MM[-DD]`).
    pub checked: String,
    /// The page it was checked against.
    pub source: String,
    /// Account-wide tokens per minute, where the provider documents one.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Account-wide tokens per day, where the provider documents one.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
    /// Account-wide requests per minute, where the provider documents one.
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// Account-wide requests per day, where the provider documents one.
    #[serde(default)]
    pub per_day: Option<u32>,
    /// The zone whose midnight resets the daily limits, when not UTC.
    #[serde(default)]
    pub reset_time_zone: Option<String>,
    pub models: Vec<ModelCaps>,
}

#[derive(Debug, Deserialize)]
struct Table {
    #[serde(rename = "_note")]
    _note: String,
    providers: Vec<KnownProvider>,
}

const TABLE: &str = include_str!("../data/known_models.json");

fn table() -> &'static [KnownProvider] {
    static PARSED: OnceLock<Vec<KnownProvider>> = OnceLock::new();
    PARSED.get_or_init(|| match serde_json::from_str::<Table>(TABLE) {
        Ok(t) => t.providers,
        Err(e) => {
            // A test keeps this from shipping; never take the router down over it.
            tracing::error!(error = %e, "the embedded table of known models is unreadable");
            Vec::new()
        }
    })
}

/// The host of `base_url` (`https://api.groq.com/openai/v1` → `api.groq.com`).
pub fn host_of(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.split(':').next().unwrap_or(host)
}

/// The table's entry for the provider at `base_url`, if it is a known free tier.
pub fn known_provider(base_url: &str) -> Option<&'static KnownProvider> {
    let host = host_of(base_url);
    table().iter().find(|p| p.host.eq_ignore_ascii_case(host))
}

impl KnownProvider {
    /// The table's capabilities of `upstream_id` (also as Google lists it, `models/<id>`).
    pub fn model(&self, upstream_id: &str) -> Option<&ModelCaps> {
        self.models.iter().find(|m| same_model(&m.id, upstream_id))
    }
}

/// Whether the model declared as `declared` (in the table or a `[[providers.models]]`
/// entry) is the listed model `listed`: the same id, or the id as Google lists it
/// (`models/<id>`).
pub(crate) fn same_model(declared: &str, listed: &str) -> bool {
    declared == listed || listed.strip_prefix("models/") == Some(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_and_finds_providers_by_host() {
        let t: Table = serde_json::from_str(TABLE).expect("the embedded table parses");
        assert!(t.providers.len() >= 4);
        let groq = known_provider("https://api.groq.com/openai/v1").expect("groq is known");
        let m = groq.model("llama-3.1-8b-instant").expect("a known model");
        assert!(m.supported_parameters.iter().any(|p| p == "tools"));
        let gemini = known_provider("https://generativelanguage.googleapis.com/v1beta/openai").expect("gemini");
        assert_eq!(gemini.reset_time_zone.as_deref(), Some("America/Los_Angeles"));
        assert!(gemini.model("models/gemini-2.5-flash").is_some());
        assert!(known_provider("http://127.0.0.1:11434/v1").is_none());
        assert!(!t.providers.iter().any(|p| p.host.contains("github")), "GitHub Models was retired");
        assert_eq!(host_of("http://user@localhost:8080/v1"), "localhost");
    }

    /// Free tiers change without an API change: every row says when and where it was
    /// last checked, and a tier that ended is not listed.
    #[test]
    fn every_row_is_dated_and_sourced() {
        let t: Table = serde_json::from_str(TABLE).expect("the embedded table parses");
        for p in &t.providers {
            let date: Vec<&str> = p.checked.split('-').collect();
            let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
            let dated = matches!(date.as_slice(), [y, m] | [y, m, _] if digits(y, 4) && digits(m, 2))
                && date.get(2).is_none_or(|d| digits(d, 2));
            assert!(dated, "{}: `checked` must be YYYY-MM or YYYY-MM-DD, not `{}`", p.host, p.checked);
            assert!(p.source.starts_with("https://"), "{}: `source` must be the page it was checked against", p.host);
        }
        assert!(known_provider("https://api.cerebras.ai/v1").is_none(), "Cerebras's free tier ended on 2026-08-17");
        let gpt_oss = known_provider("https://api.groq.com/openai/v1").and_then(|g| g.model("openai/gpt-oss-20b"));
        assert_eq!(gpt_oss.and_then(|m| m.tokens_per_minute), Some(8_000));
        // A row without a date does not parse at all.
        let undated =
            r#"{"_note": "", "providers": [{"host": "x.example", "source": "https://x.example", "models": []}]}"#;
        assert!(serde_json::from_str::<Table>(undated).is_err());
    }
}
