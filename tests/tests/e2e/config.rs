//! Configuration from real TOML files through the library: every documented key,
//! precedence over defaults and under flags, and errors that name the key. (The
//! environment layer, `--check-config` and a server started from a file are tested on
//! the binary, with a cleared environment, in `crates/router-server/tests/cli.rs`.)

use router_server::{Config, ConfigError};
use std::path::Path;

/// Whether the environment sets `key`'s variable: a value there wins over the file, so
/// a developer's own environment decides what to expect.
fn env_set(key: &str) -> bool {
    router_settings::SETTINGS.iter().any(|s| s.key == key && std::env::var_os(s.env).is_some())
}

/// Writes `toml` to `dir/router.toml` and loads it with `flags`.
fn load(dir: &Path, toml: &str, flags: &[&str]) -> Result<Config, ConfigError> {
    let file = dir.join("router.toml");
    std::fs::write(&file, toml).expect("write config");
    let mut args = vec!["router-server".to_owned(), "--config".to_owned(), file.display().to_string()];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    router_server::config::load_from(args).map(|l| l.config)
}

/// Asserts `key = value (source)` in the description, where the source is `env` when
/// the environment sets that key.
#[track_caller]
fn check(config: &Config, key: &str, value: &str, source: &str) {
    let source = if source != "flag" && env_set(key) { "env" } else { source };
    let text = config.describe();
    let prefix = format!("{key} = ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{key} missing:\n{text}"));
    if source == "env" {
        assert!(line.ends_with("(env)"), "{line}");
    } else {
        assert_eq!(line, format!("{key} = {value} ({source})"));
    }
}

const EVERY_KEY: &str = r#"
listen = "127.0.0.1:9123"
openrouter_api_key = "sk-or-v1-from-file"
openrouter_base_url = "http://127.0.0.1:9/api/v1/"
seed = 1234
api_keys = ["one", "two"]
max_body_size = 1048576
max_attempts = 5
deadline_secs = 30
per_minute = 0
per_day = 1000
data_dir = "state"
refresh_interval_secs = 60
connect_timeout_secs = 2
first_byte_timeout_secs = 15
idle_timeout_secs = 16
request_timeout_secs = 90
shutdown_grace_secs = 5
log_format = "json"
http_referer = "https://example.test/app"
x_title = "Example App"
"#;

#[test]
fn every_documented_key_is_read_from_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = load(dir.path(), EVERY_KEY, &[]).expect("valid config");
    check(&c, "listen", "127.0.0.1:9123", "file");
    check(&c, "openrouter_api_key", "set", "file");
    check(&c, "openrouter_base_url", "http://127.0.0.1:9/api/v1", "file");
    check(&c, "seed", "1234", "file");
    check(&c, "api_keys", "2 client key(s)", "file");
    check(&c, "max_body_size", "1048576", "file");
    check(&c, "max_attempts", "5", "file");
    check(&c, "deadline_secs", "30", "file");
    check(&c, "per_minute", "unlimited", "file");
    check(&c, "per_day", "1000", "file");
    let state_dir = dir.path().join("state");
    check(&c, "data_dir", &state_dir.display().to_string(), "file");
    check(&c, "refresh_interval_secs", "60", "file");
    check(&c, "connect_timeout_secs", "2", "file");
    check(&c, "first_byte_timeout_secs", "15", "file");
    check(&c, "idle_timeout_secs", "16", "file");
    check(&c, "request_timeout_secs", "90", "file");
    check(&c, "shutdown_grace_secs", "5", "file");
    check(&c, "log_format", "json", "file");
    check(&c, "http_referer", "https://example.test/app", "file");
    check(&c, "x_title", "Example App", "file");
    if !env_set("per_day") {
        assert!(c.per_day_explicit(), "a daily limit from the file is not raised by the key's tier");
    }
    if !env_set("data_dir") {
        assert_eq!(c.state_path(), Some(state_dir.join("state.json")), "relative to the file");
    }
    let text = format!("{c:?} {}", c.describe());
    assert!(!text.contains("sk-or-v1-from-file") && !text.contains("\"one\""), "secrets hidden: {text}");
}

#[test]
fn flags_override_the_file_and_the_file_overrides_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = load(dir.path(), "max_attempts = 5\nmax_body_size = 4096", &["--max-attempts", "2"]).expect("valid");
    check(&c, "max_attempts", "2", "flag");
    check(&c, "max_body_size", "4096", "file");
    check(&c, "deadline_secs", "120", "default");
    check(&c, "idle_timeout_secs", "60", "default");
}

#[test]
fn errors_name_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &str); 7] = [
        ("max_atempts = 5", "max_atempts"),
        ("[server]\nlisten = \"127.0.0.1:1\"", "server"),
        ("listen = \"localhost\"", "listen"),
        ("max_attempts = \"three\"", "max_attempts"),
        ("max_attempts = 0", "max_attempts"),
        ("connect_timeout_secs = 0", "connect_timeout_secs"),
        ("log_format = \"xml\"", "log_format"),
    ];
    for (toml, key) in cases {
        let err = load(dir.path(), toml, &[]).expect_err(toml).to_string();
        assert!(err.contains(key), "`{key}` not named for `{toml}`: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let missing = router_server::config::load_from(["router-server", "--config", "/nonexistent/router.toml"])
        .expect_err("missing");
    assert!(missing.to_string().contains("/nonexistent/router.toml"), "{missing}");
}
