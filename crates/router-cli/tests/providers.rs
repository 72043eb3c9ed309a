//! `router-cli` with declared providers: `models` lists each provider's models with the
//! provider named, and `chat` routes to a local server with its own id, without an
//! OpenRouter key and without asking OpenRouter anything when it is not a provider.

use fake_upstream::{FakeUpstream, openai_models_json};
use serde_json::Value;
use std::path::Path;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_chat_over_a_local_provider_only() {
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
