//! Configuration: flags, environment and an optional TOML file, merged with the
//! precedence flag > environment > file > default, and validated in one place.

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use router_core::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub use catalog_openrouter::DEFAULT_BASE_URL;
/// Images travel as base64 inside the JSON body, so the limit is generous.
pub const DEFAULT_MAX_BODY_SIZE: usize = 20 * 1024 * 1024;

/// The command line. Every value is optional here so that a value given neither as a
/// flag nor in the environment can come from the file, then from the default.
#[derive(Debug, Parser)]
#[command(
    name = "router-server",
    version,
    about = "OpenRouter-compatible proxy that routes `model: \"openrouter/free\"` among free models only",
    after_help = "Precedence: flag > environment variable > config file > default. \
                  Keys in the config file are the flag names with `_` for `-` (e.g. `max_body_size = 1048576`). \
                  RUST_LOG sets the log level (default `info`)."
)]
pub struct Cli {
    /// TOML configuration file; unknown keys are an error
    #[arg(long, env = "ROUTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Validate the configuration, print it (secrets hidden) and exit
    #[arg(long)]
    pub check_config: bool,

    /// Address to listen on, IP:PORT [default: 127.0.0.1:8080]
    #[arg(long, env = "ROUTER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Upstream API key, sent only to upstream. Prefer the environment variable: a flag is
    /// visible to other users in the process list
    #[arg(long, env = "OPENROUTER_API_KEY", hide_env_values = true, value_name = "KEY", value_parser = parse_secret)]
    pub openrouter_api_key: Option<Secret>,

    /// Upstream API root: the catalog is read from {base}/models and requests go to
    /// {base}/chat/completions [default: https://openrouter.ai/api/v1]
    #[arg(long, env = "OPENROUTER_BASE_URL", value_name = "URL")]
    pub openrouter_base_url: Option<String>,

    /// Seed for the server's pick sequence: the same sequence of requests gets the same
    /// models [default: from the operating system's entropy]
    #[arg(long, env = "ROUTER_SEED", value_name = "U64")]
    pub seed: Option<u64>,

    /// Comma-separated client keys; when set, requests need `Authorization: Bearer <key>`
    /// [default: none, no client authentication]
    #[arg(long, env = "ROUTER_API_KEYS", hide_env_values = true, value_name = "KEYS", value_parser = parse_keys)]
    pub api_keys: Option<ClientKeyList>,

    /// Largest request body accepted, in bytes [default: 20971520 (20 MiB)]
    #[arg(long, env = "ROUTER_MAX_BODY_SIZE", value_name = "BYTES")]
    pub max_body_size: Option<usize>,

    /// Upstream calls per request, the first included [default: 3]
    #[arg(long, env = "ROUTER_MAX_ATTEMPTS", value_name = "N")]
    pub max_attempts: Option<u32>,

    /// No new attempt starts this long after a request began [default: 120]
    #[arg(long, env = "ROUTER_DEADLINE_SECS", value_name = "SECS")]
    pub deadline_secs: Option<u64>,

    /// Upstream requests per minute, 0 for no limit [default: 20]
    #[arg(long, env = "ROUTER_PER_MINUTE", value_name = "N")]
    pub per_minute: Option<u32>,

    /// Upstream requests per UTC day, 0 for no limit [default: 50, or 1000 when the key is
    /// not on the free tier]
    #[arg(long, env = "ROUTER_PER_DAY", value_name = "N")]
    pub per_day: Option<u32>,

    /// Directory for the resilience state (state.json) and the catalog cache
    /// (catalog.json) [default: the platform's data and cache directories]
    #[arg(long, env = "ROUTER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Seconds between catalog refreshes [default: 600]
    #[arg(long, env = "ROUTER_REFRESH_INTERVAL_SECS", value_name = "SECS")]
    pub refresh_interval_secs: Option<u64>,

    /// Upstream connect timeout [default: 10]
    #[arg(long, env = "ROUTER_CONNECT_TIMEOUT_SECS", value_name = "SECS")]
    pub connect_timeout_secs: Option<u64>,

    /// Upstream time to the response head [default: 60]
    #[arg(long, env = "ROUTER_FIRST_BYTE_TIMEOUT_SECS", value_name = "SECS")]
    pub first_byte_timeout_secs: Option<u64>,

    /// Longest gap between two chunks of a stream [default: 60]
    #[arg(long, env = "ROUTER_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,

    /// Whole non-streamed upstream answer [default: 300]
    #[arg(long, env = "ROUTER_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,

    /// How long in-flight requests and streams may run after SIGINT/SIGTERM [default: 30]
    #[arg(long, env = "ROUTER_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,

    /// Log line format [default: text]
    #[arg(long, env = "ROUTER_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// `HTTP-Referer` sent upstream: your app's URL, for OpenRouter's attribution [default: none]
    #[arg(long, env = "ROUTER_HTTP_REFERER", value_name = "URL")]
    pub http_referer: Option<String>,

    /// `X-Title` sent upstream: your app's name, for OpenRouter's attribution [default: none]
    #[arg(long, env = "ROUTER_X_TITLE", value_name = "TITLE")]
    pub x_title: Option<String>,
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s.trim()))
}

fn parse_keys(s: &str) -> Result<ClientKeyList, String> {
    Ok(ClientKeyList(s.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect()))
}

/// Client keys as given (`ROUTER_API_KEYS` is one comma-separated value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientKeyList(pub Vec<Secret>);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// The TOML file: the same names as the flags, with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    openrouter_api_key: Option<Secret>,
    openrouter_base_url: Option<String>,
    seed: Option<u64>,
    api_keys: Option<Vec<Secret>>,
    max_body_size: Option<usize>,
    max_attempts: Option<u32>,
    deadline_secs: Option<u64>,
    per_minute: Option<u32>,
    per_day: Option<u32>,
    data_dir: Option<PathBuf>,
    refresh_interval_secs: Option<u64>,
    connect_timeout_secs: Option<u64>,
    first_byte_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    log_format: Option<LogFormat>,
    http_referer: Option<String>,
    x_title: Option<String>,
}

/// Where a setting's value came from, shown by `--check-config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A bad flag or environment value, or `--help` / `--version` (print with `exit`).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    #[error("cannot read config file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub openrouter_api_key: Option<Secret>,
    pub openrouter_base_url: String,
    pub seed: Option<u64>,
    pub api_keys: Vec<Secret>,
    pub max_body_size: usize,
    pub max_attempts: u32,
    pub deadline: Duration,
    /// `None` is no limit.
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
    /// Whether `per_day` was configured (then the key's tier does not change it).
    pub per_day_explicit: bool,
    /// `None`: the platform's directories.
    pub data_dir: Option<PathBuf>,
    pub refresh_interval: Duration,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// Attribution headers sent upstream (`HTTP-Referer`, `X-Title`).
    pub http_referer: Option<String>,
    pub x_title: Option<String>,
    pub check_config: bool,
    pub config_file: Option<PathBuf>,
    /// Where each setting came from, by its file key.
    pub sources: BTreeMap<&'static str, Source>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            openrouter_api_key: None,
            openrouter_base_url: DEFAULT_BASE_URL.to_owned(),
            seed: None,
            api_keys: Vec::new(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_attempts: 3,
            deadline: Duration::from_secs(120),
            per_minute: Some(20),
            per_day: Some(50),
            per_day_explicit: false,
            data_dir: None,
            refresh_interval: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            log_format: LogFormat::Text,
            http_referer: None,
            x_title: None,
            check_config: false,
            config_file: None,
            sources: BTreeMap::new(),
        }
    }
}

/// Merges one setting: the command line (flag or environment) over the file over the default.
struct Merge<'a> {
    matches: &'a ArgMatches,
    sources: BTreeMap<&'static str, Source>,
}

impl Merge<'_> {
    fn take<T>(&mut self, key: &'static str, cli: Option<T>, file: Option<T>, default: T) -> T {
        let (value, source) = match (cli, file) {
            (Some(v), _) => {
                let s = match self.matches.value_source(key) {
                    Some(ValueSource::EnvVariable) => Source::Env,
                    _ => Source::Flag,
                };
                (v, s)
            }
            (None, Some(v)) => (v, Source::File),
            (None, None) => (default, Source::Default),
        };
        self.sources.insert(key, source);
        value
    }
}

fn secs(key: &'static str, s: u64) -> Result<Duration, ConfigError> {
    if s == 0 {
        return Err(ConfigError::Invalid { key, message: "must be at least 1 second".into() });
    }
    Ok(Duration::from_secs(s))
}

fn limit(n: u32) -> Option<u32> {
    (n > 0).then_some(n)
}

impl Config {
    /// From the process's arguments and environment.
    pub fn load() -> Result<Config, ConfigError> {
        Config::load_from(std::env::args_os())
    }

    /// From `args` (the first is the program name) and the process's environment.
    pub fn load_from<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        Config::resolve(cli, &matches)
    }

    fn resolve(cli: Cli, matches: &ArgMatches) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let mut m = Merge { matches, sources: BTreeMap::new() };
        let listen = m.take("listen", cli.listen, file.listen, d.listen);
        let openrouter_api_key =
            m.take("openrouter_api_key", cli.openrouter_api_key.map(Some), file.openrouter_api_key.map(Some), None);
        let openrouter_base_url =
            m.take("openrouter_base_url", cli.openrouter_base_url, file.openrouter_base_url, d.openrouter_base_url);
        let seed = m.take("seed", cli.seed.map(Some), file.seed.map(Some), None);
        let api_keys = m.take("api_keys", cli.api_keys.map(|k| k.0), file.api_keys, Vec::new());
        let max_body_size = m.take("max_body_size", cli.max_body_size, file.max_body_size, d.max_body_size);
        let max_attempts = m.take("max_attempts", cli.max_attempts, file.max_attempts, d.max_attempts);
        let deadline_secs = m.take("deadline_secs", cli.deadline_secs, file.deadline_secs, 120);
        let per_minute = m.take("per_minute", cli.per_minute, file.per_minute, 20);
        let per_day = m.take("per_day", cli.per_day, file.per_day, 50);
        let data_dir = m.take("data_dir", cli.data_dir.map(Some), file.data_dir.map(Some), None);
        let refresh = m.take("refresh_interval_secs", cli.refresh_interval_secs, file.refresh_interval_secs, 600);
        let connect = m.take("connect_timeout_secs", cli.connect_timeout_secs, file.connect_timeout_secs, 10);
        let first_byte =
            m.take("first_byte_timeout_secs", cli.first_byte_timeout_secs, file.first_byte_timeout_secs, 60);
        let idle = m.take("idle_timeout_secs", cli.idle_timeout_secs, file.idle_timeout_secs, 60);
        let request = m.take("request_timeout_secs", cli.request_timeout_secs, file.request_timeout_secs, 300);
        let grace = m.take("shutdown_grace_secs", cli.shutdown_grace_secs, file.shutdown_grace_secs, 30);
        let log_format = m.take("log_format", cli.log_format, file.log_format, d.log_format);
        let http_referer = m.take("http_referer", cli.http_referer.map(Some), file.http_referer.map(Some), None);
        let x_title = m.take("x_title", cli.x_title.map(Some), file.x_title.map(Some), None);
        let per_day_explicit = m.sources.get("per_day") != Some(&Source::Default);

        // A relative data directory in a file is relative to that file, so that a config
        // works the same from whatever directory the server is started in.
        let data_dir = match (data_dir, m.sources.get("data_dir"), &cli.config) {
            (Some(dir), Some(Source::File), Some(file)) if dir.is_relative() => {
                Some(file.parent().unwrap_or(Path::new(".")).join(dir))
            }
            (dir, _, _) => dir,
        };
        let base = openrouter_base_url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "openrouter_base_url",
                message: format!("`{base}` is not an http:// or https:// url"),
            });
        }
        if max_attempts == 0 {
            return Err(ConfigError::Invalid { key: "max_attempts", message: "must be at least 1".into() });
        }
        if max_body_size < 1024 {
            return Err(ConfigError::Invalid { key: "max_body_size", message: "must be at least 1024 bytes".into() });
        }
        Ok(Config {
            listen,
            openrouter_api_key: openrouter_api_key.filter(|k| !k.is_empty()),
            openrouter_base_url: base,
            seed,
            api_keys: api_keys.into_iter().filter(|k| !k.is_empty()).collect(),
            max_body_size,
            max_attempts,
            deadline: secs("deadline_secs", deadline_secs)?,
            per_minute: limit(per_minute),
            per_day: limit(per_day),
            per_day_explicit,
            data_dir,
            refresh_interval: secs("refresh_interval_secs", refresh)?,
            connect_timeout: secs("connect_timeout_secs", connect)?,
            first_byte_timeout: secs("first_byte_timeout_secs", first_byte)?,
            idle_timeout: secs("idle_timeout_secs", idle)?,
            request_timeout: secs("request_timeout_secs", request)?,
            shutdown_grace: secs("shutdown_grace_secs", grace)?,
            log_format,
            http_referer: http_referer.filter(|v| !v.is_empty()),
            x_title: x_title.filter(|v| !v.is_empty()),
            check_config: cli.check_config,
            config_file: cli.config,
            sources: m.sources,
        })
    }

    /// Where the resilience state is kept; `None` when there is no data directory.
    pub fn state_path(&self) -> Option<PathBuf> {
        match &self.data_dir {
            Some(dir) => Some(dir.join("state.json")),
            None => catalog_openrouter::FileStateStore::default_path(),
        }
    }

    /// Where the catalog cache is kept; `None` when there is no cache directory.
    pub fn cache_path(&self) -> Option<PathBuf> {
        match &self.data_dir {
            Some(dir) => Some(dir.join("catalog.json")),
            None => catalog_openrouter::default_cache_path(),
        }
    }

    /// The settings as `key = value (source)` lines, secrets shown only as set or not.
    pub fn describe(&self) -> String {
        let opt = |v: Option<u32>| v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
        let path = |p: Option<PathBuf>| p.map_or_else(|| "none".to_owned(), |p| p.display().to_string());
        let rows: Vec<(&'static str, String)> = vec![
            ("listen", self.listen.to_string()),
            ("openrouter_base_url", self.openrouter_base_url.clone()),
            ("openrouter_api_key", if self.openrouter_api_key.is_some() { "set" } else { "not set" }.to_owned()),
            ("seed", self.seed.map_or_else(|| "from entropy".to_owned(), |s| s.to_string())),
            ("api_keys", format!("{} client key(s)", self.api_keys.len())),
            ("max_body_size", self.max_body_size.to_string()),
            ("max_attempts", self.max_attempts.to_string()),
            ("deadline_secs", self.deadline.as_secs().to_string()),
            ("per_minute", opt(self.per_minute)),
            ("per_day", opt(self.per_day)),
            ("data_dir", path(self.data_dir.clone())),
            ("refresh_interval_secs", self.refresh_interval.as_secs().to_string()),
            ("connect_timeout_secs", self.connect_timeout.as_secs().to_string()),
            ("first_byte_timeout_secs", self.first_byte_timeout.as_secs().to_string()),
            ("idle_timeout_secs", self.idle_timeout.as_secs().to_string()),
            ("request_timeout_secs", self.request_timeout.as_secs().to_string()),
            ("shutdown_grace_secs", self.shutdown_grace.as_secs().to_string()),
            ("log_format", self.log_format.to_string()),
            ("http_referer", self.http_referer.clone().unwrap_or_else(|| "none".to_owned())),
            ("x_title", self.x_title.clone().unwrap_or_else(|| "none".to_owned())),
        ];
        let mut out = String::new();
        if let Some(file) = &self.config_file {
            out.push_str(&format!("# config file: {}\n", file.display()));
        }
        for (key, value) in rows {
            let source = self.sources.get(key).copied().unwrap_or(Source::Default);
            out.push_str(&format!("{key} = {value} ({source})\n"));
        }
        out.push_str(&format!("# state file: {}\n", path(self.state_path())));
        out.push_str(&format!("# catalog cache: {}\n", path(self.cache_path())));
        out
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.to_owned(), message: e.to_string() })?;
    // toml's message names the offending key (unknown field `x`) and shows the line.
    toml::from_str(&text).map_err(|e| ConfigError::File { path: path.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads with `args` and a file holding `toml` (when given); compares `describe()`
    /// lines for the listed keys. Only settings nobody sets in a test's environment are
    /// checked here; the environment layer is tested on the binary with a clean env.
    fn check(args: &[&str], toml: Option<&str>, expected: &[&str]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("router.toml");
        let mut argv = vec!["router-server".to_owned()];
        if let Some(t) = toml {
            std::fs::write(&file, t).expect("write config");
            argv.push("--config".into());
            argv.push(file.display().to_string());
        }
        argv.extend(args.iter().map(|s| (*s).to_owned()));
        let config = Config::load_from(argv).expect("valid config");
        let text = config.describe();
        for line in expected {
            assert!(text.lines().any(|l| l == *line), "missing `{line}` in\n{text}");
        }
    }

    fn check_err(toml: &str, needle: &str) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("router.toml");
        std::fs::write(&file, toml).expect("write config");
        let err =
            Config::load_from(["router-server", "--config", &file.display().to_string()]).expect_err("invalid config");
        assert!(err.to_string().contains(needle), "`{needle}` not in: {err}");
    }

    #[test]
    fn flag_over_file_over_default() {
        check(&[], None, &["max_attempts = 3 (default)", "max_body_size = 20971520 (default)"]);
        check(
            &[],
            Some("max_attempts = 5\nper_minute = 0"),
            &["max_attempts = 5 (file)", "per_minute = unlimited (file)"],
        );
        check(&["--max-attempts", "7"], Some("max_attempts = 5"), &["max_attempts = 7 (flag)"]);
    }

    #[test]
    fn file_errors_name_the_key() {
        check_err("max_atempts = 5", "max_atempts");
        check_err("max_attempts = \"five\"", "max_attempts");
        check_err("max_attempts = 0", "max_attempts");
        check_err("openrouter_base_url = \"ftp://x\"", "openrouter_base_url");
    }

    #[test]
    fn relative_data_dir_is_relative_to_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("router.toml");
        std::fs::write(&file, "data_dir = \"state\"").expect("write config");
        let config = Config::load_from(["router-server", "--config", &file.display().to_string()]).expect("valid");
        assert_eq!(config.state_path(), Some(dir.path().join("state").join("state.json")));
    }
}
