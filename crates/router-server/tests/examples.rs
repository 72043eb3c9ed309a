//! Every configuration under `examples/` passes `router-server --check-config`, run with
//! a cleared environment, and says what it declares (each provider and its billing).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_router-server");

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_passes_check_config() {
    let files = examples();
    let names: Vec<String> =
        files.iter().filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).collect();
    for wanted in ["ollama", "llama-cpp", "vllm", "lm-studio", "groq", "gemini"] {
        assert!(names.iter().any(|n| n == wanted), "examples/{wanted}.toml is missing: {names:?}");
    }
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read example");
        assert!(!text.contains("models.github.ai"), "GitHub Models was retired: {}", file.display());
        let home = tempfile::tempdir().expect("temp dir");
        let out = Command::new(BIN)
            .env_clear()
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .arg("--check-config")
            .arg("--config")
            .arg(&file)
            .output()
            .expect("run router-server");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}{stdout}", file.display());
        assert!(stdout.ends_with("config ok\n"), "{}: {stdout}", file.display());
        // Each declared `openai` provider is listed with how it is billed.
        for block in text.split("[[providers]]").skip(1) {
            let name = block
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = \""))
                .and_then(|n| n.strip_suffix('"'))
                .expect("a provider name");
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("# provider {name}: ")))
                .unwrap_or_else(|| panic!("{}: provider {name} not described:\n{stdout}", file.display()));
            if block.contains("kind = \"openai\"") {
                assert!(line.contains("(local") || line.contains("(free tier"), "{line}");
            }
        }
    }
}

#[test]
fn an_openai_provider_that_could_bill_is_refused_with_the_reason() {
    let home = tempfile::tempdir().expect("temp dir");
    let file = home.path().join("router.toml");
    std::fs::write(
        &file,
        "[[providers]]\nname = \"paid\"\nkind = \"openai\"\nbase_url = \"https://api.example.com/v1\"\n",
    )
    .expect("write config");
    let out = Command::new(BIN)
        .env_clear()
        .env("HOME", home.path())
        .args(["--check-config", "--config"])
        .arg(&file)
        .output()
        .expect("run router-server");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("never forwards to something that can bill"), "{stderr}");
}
