//! `router-cli` with declared providers: `models` lists each provider's models with the
//! provider named, and `chat` routes to a local server with its own id, without an
//! OpenRouter key and without asking OpenRouter anything when it is not a provider.

use fake_upstream::{FakeUpstream, openai_models_json};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn run(dir: &Path, openrouter: &FakeUpstream, config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_router-cli"))
        .env_clear()
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
        .env("XDG_DATA_HOME", dir.join("xdg-data"))
        .env("OPENROUTER_BASE_URL", openrouter.base_url())
        .arg("--config")
        .arg(config)
        .arg("--cache-path")
        .arg(dir.join("catalog.json"))
        .arg("--state-path")
        .arg(dir.join("state.json"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run router-cli")
}

/// OpenRouter's fake, a local OpenAI-compatible one serving `qwen3:8b`, and a directory
/// with a config that declares the local one as the only provider, `ollama`.
async fn local_provider() -> (FakeUpstream, FakeUpstream, tempfile::TempDir, PathBuf) {
    let openrouter = FakeUpstream::start().await;
    let local = FakeUpstream::start().await;
    local.set_models(openai_models_json(&["qwen3:8b"]).to_string());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("router.toml");
    let toml = format!(
        "[[providers]]\nname = \"ollama\"\nkind = \"openai\"\nbase_url = \"{}\"\nlocal = true\n",
        local.openai_base_url()
    );
    std::fs::write(&config, toml).expect("write config");
    (openrouter, local, dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_chat_over_a_local_provider_only() {
    let (openrouter, local, dir, config) = local_provider().await;
    let (d, or, cfg) = (dir.path().to_owned(), &openrouter, config.clone());

    let out = tokio::task::block_in_place(|| run(&d, or, &cfg, &["models", "--json"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&stdout).expect("json");
    let models = v["models"].as_array().expect("models");
    assert_eq!(models.len(), 1, "{v}");
    assert_eq!(models[0]["id"], "ollama/qwen3:8b");
    assert_eq!(models[0]["provider"], "ollama");

    let out = tokio::task::block_in_place(|| run(&d, or, &cfg, &["chat", "--model", "ollama/qwen3:8b", "hi"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("answered by ollama/qwen3:8b"), "{stderr}");
    assert_eq!(local.requests()[0].model, "qwen3:8b", "the local server got its own id");
    assert_eq!(openrouter.total_calls(), 0);
    assert_eq!(openrouter.models_fetches(), 0, "OpenRouter is not a provider here");
}

/// Every catalog in force is refreshed alike: `chat` keeps a provider's disk cache while
/// it is younger than the refresh interval, `models` fetches it again, and a failed
/// fetch is named by its provider with what is shown instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_s_catalog_is_refreshed_as_the_command_says() {
    let (openrouter, local, dir, config) = local_provider().await;
    let (d, or, cfg) = (dir.path().to_owned(), &openrouter, config.clone());

    let out = tokio::task::block_in_place(|| run(&d, or, &cfg, &["models", "--json"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(local.models_fetches(), 1);
    let out = tokio::task::block_in_place(|| run(&d, or, &cfg, &["chat", "--model", "ollama/qwen3:8b", "hi"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(local.models_fetches(), 1, "a disk cache younger than the refresh interval is kept");

    local.set_models_status(500);
    let out = tokio::task::block_in_place(|| run(&d, or, &cfg, &["models", "--json"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(local.models_fetches(), 2, "`models` fetches again");
    let named = format!("could not fetch the live catalog of `ollama` from {}/models", local.openai_base_url());
    assert!(stderr.contains(&named) && stderr.contains("showing the disk cache"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["models"][0]["id"], "ollama/qwen3:8b", "the cached list is shown");
}
