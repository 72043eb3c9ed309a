//! Reading the settings: the file, then the flags and environment the binary parsed,
//! over the defaults; then the checks that span several keys, and the derived paths.

use crate::clock::SystemClock;
use crate::provider::{ProviderKind, ProviderSettings, valid_name};
use crate::settings::{FileLayer, Settings, Source};
use catalog_openrouter::{CatalogConfig, CatalogError, OpenRouterCatalog};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory under the platform's data and cache directories.
pub const APP_DIR: &str = "free-models-router";
/// The resilience state's file name in the data directory.
pub const STATE_FILE: &str = "state.json";
/// The catalog cache's file name in the data directory.
pub const CACHE_FILE: &str = "catalog.json";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: PathBuf, message: String },
    /// toml's message names the key and shows the line.
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid `{key}` ({}): {message}", origin(key, *from))]
    Invalid { key: &'static str, from: Source, message: String },
    #[error("invalid `[[providers]]` entry{}: {message}", name.as_ref().map(|n| format!(" `{n}`")).unwrap_or_default())]
    Provider { name: Option<String>, message: String },
}

/// Where a bad value came from, in the words the user typed it: the flag, the
/// environment variable, or the file.
fn origin(key: &str, from: Source) -> String {
    let setting = crate::SETTINGS.iter().find(|s| s.key == key);
    match (from, setting) {
        (Source::Flag, Some(s)) => format!("flag --{}", s.flag()),
        (Source::Env, Some(s)) => format!("environment variable {}; flag --{}", s.env, s.flag()),
        (Source::File, _) => "config file".to_owned(),
        (source, _) => source.to_string(),
    }
}

impl Settings {
    /// Reads `file` (when given) and lays `overrides` over it: each is a setting's key,
    /// its text as the flag or environment variable gave it, and which of the two.
    pub fn load(
        file: Option<&Path>,
        overrides: &BTreeMap<String, (String, Source)>,
    ) -> Result<Settings, SettingsError> {
        let layer = match file {
            Some(path) => read_file(path)?,
            None => FileLayer::default(),
        };
        let mut s = Settings::layer(layer, overrides)?;
        s.config_file = file.map(Path::to_path_buf);
        // A relative data directory (or CA file) in a file is relative to that file, so
        // that a config works the same from whatever directory the process starts in.
        if let (Some(dir), Some(Source::File), Some(file)) = (&s.data_dir, s.sources.get("data_dir"), file)
            && dir.is_relative()
        {
            s.data_dir = Some(file.parent().unwrap_or(Path::new(".")).join(dir));
        }
        if let (Some(ca), Some(Source::File), Some(file)) = (&s.extra_ca_cert, s.sources.get("extra_ca_cert"), file)
            && ca.is_relative()
        {
            s.extra_ca_cert = Some(file.parent().unwrap_or(Path::new(".")).join(ca));
        }
        s.openrouter_base_url = s.openrouter_base_url.trim().trim_end_matches('/').to_owned();
        s.openrouter_api_key = s.openrouter_api_key.filter(|k| !k.is_empty());
        s.adopt_openrouter_table()?;
        s.api_keys.retain(|k| !k.is_empty());
        s.http_referer = s.http_referer.filter(|v| !v.is_empty());
        s.x_title = s.x_title.filter(|v| !v.is_empty());
        s.check()?;
        Ok(s)
    }

    /// A `kind = "openrouter"` table's `base_url` and `api_key_env` are OpenRouter's own
    /// settings in another place: they replace `openrouter_base_url` and
    /// `OPENROUTER_API_KEY` (both given and different is an error), so that what
    /// `--check-config` shows is what is used.
    fn adopt_openrouter_table(&mut self) -> Result<(), SettingsError> {
        let Some(p) = self.providers.iter().find(|p| p.kind == ProviderKind::Openrouter) else { return Ok(()) };
        let err = |message: String| SettingsError::Provider { name: Some(p.name.clone()), message };
        let base_url = p.base_url.as_deref().map(|u| u.trim().trim_end_matches('/').to_owned());
        let key = match p.api_key_env.as_deref() {
            None => None,
            Some(env) => {
                let key = std::env::var(env).ok().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty());
                // Never OPENROUTER_API_KEY in its place: the operator named another key.
                Some(key.map(router_core::Secret::new))
            }
        };
        if let Some(url) = base_url {
            if self.source("openrouter_base_url") != Source::Default && url != self.openrouter_base_url {
                return Err(err(format!(
                    "`base_url` `{}` and `openrouter_base_url` `{}` differ; set one of them",
                    router_core::redact(&url, &[]),
                    router_core::redact(&self.openrouter_base_url, &[])
                )));
            }
            self.openrouter_base_url = url;
        }
        if let Some(key) = key {
            self.openrouter_api_key = key;
        }
        Ok(())
    }

    fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }

    fn check(&self) -> Result<(), SettingsError> {
        let invalid =
            |key: &'static str, message: String| SettingsError::Invalid { key, from: self.source(key), message };
        if let Err(why) = check_base_url(&self.openrouter_base_url) {
            return Err(invalid("openrouter_base_url", why));
        }
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "must be at least 1".into()));
        }
        if self.upstream_streams_per_connection == 0 {
            return Err(invalid("upstream_streams_per_connection", "must be at least 1".into()));
        }
        if let Err(e) = self.extra_roots() {
            return Err(invalid("extra_ca_cert", e.to_string()));
        }
        for (key, bytes) in [
            ("max_body_size", self.max_body_size),
            ("max_answer_size", self.max_answer_size),
            ("max_sse_line", self.max_sse_line),
        ] {
            if bytes < 1024 {
                return Err(invalid(key, "must be at least 1024 bytes".into()));
            }
        }
        let mut names = BTreeSet::new();
        for p in &self.providers {
            if !names.insert(p.name.as_str()) {
                return Err(SettingsError::Provider {
                    name: Some(p.name.clone()),
                    message: "`name` is used twice".into(),
                });
            }
            check_provider(p)?;
        }
        if self.providers.iter().filter(|p| p.kind == ProviderKind::Openrouter).count() > 1 {
            return Err(SettingsError::Provider {
                name: None,
                message: "only one `openrouter` provider is supported".into(),
            });
        }
        Ok(())
    }

    /// The providers in force: the `[[providers]]` tables, or the one OpenRouter
    /// provider the flat settings describe.
    pub fn providers(&self) -> Vec<ProviderSettings> {
        if !self.providers.is_empty() {
            return self.providers.clone();
        }
        vec![ProviderSettings::new(
            router_core::OPENROUTER_PROVIDER,
            ProviderKind::Openrouter,
            Some(self.openrouter_base_url.clone()),
        )]
    }

    /// Whether the daily limit was configured (then the key's tier does not change it).
    pub fn per_day_explicit(&self) -> bool {
        self.source("per_day") != Source::Default
    }

    /// The data directory: the configured one, else the platform's.
    fn dir(&self, platform: Option<PathBuf>) -> Option<PathBuf> {
        self.data_dir.clone().or_else(|| platform.map(|d| d.join(APP_DIR)))
    }

    /// The certificates of `extra_ca_cert` (none when it is not set).
    pub fn extra_roots(&self) -> Result<Vec<transport_http::Certificate>, transport_http::TransportInitError> {
        self.extra_ca_cert.as_deref().map_or(Ok(Vec::new()), transport_http::read_ca_file)
    }

    /// The catalog of the base kind's provider ([`ProviderKind::BASE`]: OpenRouter's
    /// adapter) from the flat settings, starting from the disk cache at `cache_path` or
    /// the embedded catalog (no network call).
    pub(crate) fn base_catalog(&self, cache_path: Option<PathBuf>) -> Result<OpenRouterCatalog, CatalogError> {
        OpenRouterCatalog::new(
            CatalogConfig {
                base_url: self.openrouter_base_url.clone(),
                api_key: self.openrouter_api_key.clone(),
                refresh_interval: self.refresh_interval_secs.get(),
                cache_path,
                fetch_timeout: catalog_openrouter::DEFAULT_FETCH_TIMEOUT,
                extra_roots: self.extra_roots().map_err(|e| CatalogError::Client(e.to_string()))?,
            },
            Arc::new(SystemClock),
        )
    }

    /// Where the resilience state is kept; `None` when there is no data directory.
    pub fn state_path(&self) -> Option<PathBuf> {
        self.dir(dirs::data_dir()).map(|d| d.join(STATE_FILE))
    }

    /// Where the catalog cache is kept; `None` when there is no cache directory.
    pub fn cache_path(&self) -> Option<PathBuf> {
        self.dir(dirs::cache_dir()).map(|d| d.join(CACHE_FILE))
    }

    /// The settings as `key = value (source)` lines, secrets shown only as set or not.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.config_file {
            out.push_str(&format!("# config file: {}\n", file.display()));
        }
        for (key, value) in self.rows() {
            out.push_str(&format!("{key} = {value} ({})\n", self.source(key)));
        }
        for p in self.providers() {
            let url = match p.kind {
                ProviderKind::Openrouter => self.openrouter_base_url.as_str(),
                ProviderKind::Openai => p.base_url.as_deref().unwrap_or(""),
            };
            let url = router_core::redact(url, &[]);
            let kind = p.kind.as_str();
            out.push_str(&format!("# provider {}: {kind} at {url}{}\n", p.name, provider_notes(&p)));
        }
        let path = |p: Option<PathBuf>| p.map_or_else(|| "none".to_owned(), |p| p.display().to_string());
        out.push_str(&format!("# state file: {}\n", path(self.state_path())));
        out.push_str(&format!("# catalog cache: {}\n", path(self.cache_path())));
        out
    }
}

/// ` (free tier; 250/day, ...)`: what `--check-config` says of a provider beyond its url.
fn provider_notes(p: &ProviderSettings) -> String {
    let mut notes = Vec::new();
    if p.local {
        notes.push("local".to_owned());
    } else if p.free_tier {
        notes.push("free tier".to_owned());
    }
    let mut limits = Vec::new();
    limits.extend(p.per_minute.map(|n| format!("{n}/minute")));
    limits.extend(p.per_day.map(|n| format!("{n}/day")));
    limits.extend(p.tokens_per_minute.map(|n| format!("{n} tokens/minute")));
    limits.extend(p.tokens_per_day.map(|n| format!("{n} tokens/day")));
    limits.extend(p.first_byte_timeout_secs.map(|n| format!("first byte within {n} s")));
    limits.extend(p.idle_timeout_secs.map(|n| format!("silent at most {n} s")));
    limits.extend(p.reset_time_zone.as_ref().map(|z| format!("day ends at midnight {z}")));
    limits.extend(p.max_concurrent.map(|n| format!("{n} at once")));
    if !limits.is_empty() {
        notes.push(limits.join(", "));
    }
    if let Some(env) = &p.api_key_env {
        let set = std::env::var_os(env).is_some_and(|v| !v.is_empty());
        notes.push(format!("key from {env} ({})", if set { "set" } else { "not set" }));
    }
    if let Some(include) = &p.include {
        notes.push(format!("{} models included", include.len()));
    }
    if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) }
}

/// One `[[providers]]` table's own rules (its name, URL, kind, limits and models).
fn check_provider(p: &ProviderSettings) -> Result<(), SettingsError> {
    let err = |message: String| SettingsError::Provider { name: Some(p.name.clone()), message };
    if !valid_name(&p.name) {
        return Err(err("`name` must be lowercase letters, digits and `-`".into()));
    }
    if let Some(Err(why)) = p.base_url.as_deref().map(check_base_url) {
        return Err(err(format!("`base_url`: {why}")));
    }
    if p.kind == ProviderKind::Openai && !(p.free_tier || p.local) {
        return Err(err("an `openai` provider needs `free_tier = true` (the account cannot be billed) \
             or `local = true` (your own server): the router never forwards to something that can bill"
            .into()));
    }
    if p.kind == ProviderKind::Openai {
        if p.base_url.is_none() {
            return Err(err("an `openai` provider needs a `base_url`".into()));
        }
        if p.name == router_core::OPENROUTER_PROVIDER {
            return Err(err("the name `openrouter` is OpenRouter's own".into()));
        }
    }
    if p.kind == ProviderKind::Openrouter && (p.include.is_some() || !p.models.is_empty() || p.max_concurrent.is_some())
    {
        return Err(err("`include`, `[[providers.models]]` and `max_concurrent` are for `openai` providers; \
             OpenRouter's catalog says what its models can do"
            .into()));
    }
    if let Some(zone) = &p.reset_time_zone
        && let Err(e) = crate::zone::ZoneDays::new(zone)
    {
        return Err(err(e));
    }
    if p.max_concurrent == Some(0) {
        return Err(err("`max_concurrent` must be at least 1".into()));
    }
    for (key, secs) in
        [("first_byte_timeout_secs", p.first_byte_timeout_secs), ("idle_timeout_secs", p.idle_timeout_secs)]
    {
        if secs == Some(0) {
            return Err(err(format!("`{key}` must be at least 1 second")));
        }
    }
    let mut ids = BTreeSet::new();
    for m in &p.models {
        if m.id.is_empty() || !ids.insert(m.id.as_str()) {
            return Err(err(format!("`[[providers.models]]` id `{}` is empty or given twice", m.id)));
        }
    }
    Ok(())
}

/// A base URL the transports can append paths to: `http://` or `https://`, a host, no
/// query, fragment, whitespace or control character (each would be sent somewhere the
/// operator did not mean, or split a request line). The message never repeats a password.
fn check_base_url(url: &str) -> Result<(), String> {
    let shown = router_core::redact(url, &[]);
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return Err(format!("`{shown}` is not an http:// or https:// url"));
    };
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("`{}` holds a space or a control character", shown.escape_debug()));
    }
    if url.contains(['?', '#']) {
        return Err(format!("`{shown}` has a query or a fragment; give the base URL alone"));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("`{shown}` has no host"));
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<FileLayer, SettingsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError::Read { path: path.to_owned(), message: e.to_string() })?;
    toml::from_str(&text).map_err(|e| SettingsError::File { path: path.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads a file holding `toml` (when given) under `overrides` (`key=value`, as flags)
    /// and checks `describe()` has each `expected` line, or the error has each needle.
    fn check(toml: Option<&str>, overrides: &[&str], expected: &[&str]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("router.toml");
        if let Some(t) = toml {
            std::fs::write(&file, t).expect("write config");
        }
        let overrides = overrides
            .iter()
            .map(|o| {
                let (k, v) = o.split_once('=').expect("key=value");
                (k.to_owned(), (v.to_owned(), Source::Flag))
            })
            .collect();
        let got = match Settings::load(toml.map(|_| file.as_path()), &overrides) {
            Ok(s) => s.describe(),
            Err(e) => format!("error: {e}"),
        };
        for line in expected {
            assert!(got.lines().any(|l| l.contains(line)), "missing `{line}` in\n{got}");
        }
    }

    #[test]
    fn flag_over_file_over_default() {
        check(
            None,
            &[],
            &["max_attempts = 3 (default)", "max_body_size = 20971520 (default)", "per_day = 50 (default)"],
        );
        check(
            Some("max_attempts = 5\nper_minute = 0"),
            &[],
            &["max_attempts = 5 (file)", "per_minute = unlimited (file)"],
        );
        check(Some("max_attempts = 5"), &["max_attempts=7"], &["max_attempts = 7 (flag)"]);
        check(None, &["openrouter_api_key=sk-or-secret"], &["openrouter_api_key = set (flag)"]);
    }

    #[test]
    fn errors_name_the_key() {
        check(Some("max_atempts = 5"), &[], &["error: config file", "max_atempts"]);
        check(Some("max_attempts = \"five\""), &[], &["max_attempts"]);
        check(Some("max_attempts = 0"), &[], &["error: invalid `max_attempts` (config file): must be at least 1"]);
        check(Some("deadline_secs = 0"), &[], &["deadline_secs", "at least 1 second"]);
        check(None, &["per_day=many"], &["error: invalid `per_day` (flag --per-day): `many` is not a whole number"]);
        check(Some("openrouter_base_url = \"ftp://x\""), &[], &["openrouter_base_url"]);
        check(None, &["upstream_streams_per_connection=0"], &["`upstream_streams_per_connection`", "at least 1"]);
        check(
            None,
            &["extra_ca_cert=/nonexistent/ca.pem"],
            &["error: invalid `extra_ca_cert` (flag --extra-ca-cert): cannot use /nonexistent/ca.pem"],
        );
        // A readable file that holds no certificate: this test binary.
        let not_pem = std::env::current_exe().expect("exe").display().to_string();
        check(None, &[&format!("extra_ca_cert={not_pem}")], &["invalid `extra_ca_cert`", "no PEM certificate"]);
    }

    #[test]
    fn base_urls_are_plain_and_passwords_never_shown() {
        let url = |u: &str| vec![format!("openrouter_base_url={u}")];
        for (u, needle) in [
            ("https://gw.example/v1?key=x", "has a query or a fragment"),
            ("https://gw.example/v1#frag", "has a query or a fragment"),
            ("https://gw.example/v1\r\nX-Injected: 1", "control character"),
            ("https:///v1", "has no host"),
            ("https://user:pw@:8080/v1", "has no host"),
        ] {
            let overrides = url(u);
            let refs: Vec<&str> = overrides.iter().map(String::as_str).collect();
            check(None, &refs, &[needle]);
        }
        let shown = url("https://user:hunter2@gw.example/api/v1");
        let refs: Vec<&str> = shown.iter().map(String::as_str).collect();
        check(None, &refs, &["# provider openrouter: openrouter at https://***@gw.example/api/v1"]);
        let bad = url("https://user:hunter2@gw.example/v1?x=1");
        let refs: Vec<&str> = bad.iter().map(String::as_str).collect();
        check(None, &refs, &["https://***@gw.example/v1?x=1"]);
    }

    #[test]
    fn an_openrouter_table_s_url_and_key_are_the_ones_used() {
        // A variable only this test sets (tests in one process share the environment).
        let env = "ROUTER_TEST_OPENROUTER_TABLE_KEY";
        // Unset on purpose: `set_var` is unsafe in edition 2024 and unsafe code is forbidden here.
        let table = format!(
            "[[providers]]\nname = \"openrouter\"\nkind = \"openrouter\"\nbase_url = \"http://gateway.test/api/v1/\"\napi_key_env = \"{env}\"\n"
        );
        check(Some(&table), &[], &["# provider openrouter: openrouter at http://gateway.test/api/v1 (key from"]);
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("router.toml");
        std::fs::write(&file, &table).expect("write config");
        let flags = [("openrouter_api_key".to_owned(), ("sk-or-flat".to_owned(), Source::Flag))].into();
        let s = Settings::load(Some(&file), &flags).expect("valid");
        assert_eq!(s.openrouter_base_url, "http://gateway.test/api/v1");
        assert_eq!(s.openrouter_api_key, None, "the table's variable is unset: never the flat key in its place");
        let both = [("openrouter_base_url".to_owned(), ("https://other.test/api/v1".to_owned(), Source::Flag))].into();
        let e = Settings::load(Some(&file), &both).expect_err("two urls");
        assert!(e.to_string().contains("differ; set one of them"), "{e}");
    }

    #[test]
    fn providers() {
        check(None, &[], &["# provider openrouter: openrouter at https://openrouter.ai/api/v1"]);
        let or = "[[providers]]\nname = \"or\"\nkind = \"openrouter\"\n";
        check(Some(or), &[], &["# provider or: openrouter at https://openrouter.ai/api/v1"]);
        check(Some("[[providers]]\nname = \"Bad\"\nkind = \"openrouter\""), &[], &["`Bad`", "lowercase"]);
        check(Some(&format!("{or}{or}")), &[], &["`or`", "used twice"]);
        let paid = "[[providers]]\nname = \"groq\"\nkind = \"openai\"\nbase_url = \"https://api.groq.com/openai/v1\"";
        check(Some(paid), &[], &["`groq`", "never forwards to something that can bill"]);
        check(Some("[[providers]]\nname = \"x\"\nkind = \"openrouter\"\nmodelz = 1"), &[], &["unknown field `modelz`"]);
        let ollama = "[[providers]]\nname = \"ollama\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1\"\nlocal = true\n";
        check(Some(ollama), &[], &["# provider ollama: openai at http://127.0.0.1:11434/v1 (local)"]);
        check(Some(&format!("{ollama}reset_time_zone = \"Mars/Olympus\"")), &[], &["`ollama`", "Mars/Olympus"]);
        check(Some(&format!("{ollama}max_concurrent = 0")), &[], &["`ollama`", "at least 1"]);
        check(Some(&format!("{ollama}first_byte_timeout_secs = 0")), &[], &["`ollama`", "`first_byte_timeout_secs`"]);
        let budgets = format!("{paid}\nfree_tier = true\ntokens_per_minute = 8000\nfirst_byte_timeout_secs = 20\n");
        check(Some(&budgets), &[], &["8000 tokens/minute", "first byte within 20 s"]);
        let twice = format!("{ollama}[[providers.models]]\nid = \"a\"\n[[providers.models]]\nid = \"a\"\n");
        check(Some(&twice), &[], &["`ollama`", "given twice"]);
        check(Some(&format!("{or}include = [\"x\"]")), &[], &["`or`", "for `openai` providers"]);
        let gemini = "[[providers]]\nname = \"gemini\"\nkind = \"openai\"\nbase_url = \"https://generativelanguage.googleapis.com/v1beta/openai\"\nfree_tier = true\nper_day = 250\nreset_time_zone = \"America/Los_Angeles\"";
        check(
            Some(gemini),
            &[],
            &[
                "# provider gemini: openai at https://generativelanguage.googleapis.com/v1beta/openai (free tier; 250/day, day ends at midnight America/Los_Angeles)",
            ],
        );
    }

    #[test]
    fn relative_data_dir_is_relative_to_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("router.toml");
        std::fs::write(&file, "data_dir = \"state\"").expect("write config");
        let s = Settings::load(Some(&file), &BTreeMap::new()).expect("valid");
        assert_eq!(s.state_path(), Some(dir.path().join("state").join(STATE_FILE)));
        assert_eq!(s.cache_path(), Some(dir.path().join("state").join(CACHE_FILE)));
        // So is a CA file: found beside it, checked when loaded (here: no certificate in it).
        std::fs::write(dir.path().join("ca.pem"), "no certificate").expect("write ca");
        std::fs::write(&file, "extra_ca_cert = \"ca.pem\"").expect("write config");
        let err = Settings::load(Some(&file), &BTreeMap::new()).expect_err("not a certificate").to_string();
        let beside = dir.path().join("ca.pem").display().to_string();
        assert!(err.contains("extra_ca_cert") && err.contains(&beside) && err.contains("no PEM certificate"), "{err}");
    }
}
