//! Every setting, defined once: its key (the file key; the flag is the key with `-`),
//! its type, its default (a named constant of the crate that owns the behaviour), its
//! environment variable, and its help line. The `Settings` type, the file's schema, the
//! `--check-config` rows, the flags of both binaries and the README table are all
//! generated from this list.

use crate::provider::ProviderSettings;
use crate::value::{Limit, LogFormat, Millis, Seconds, SettingValue, Weights};
use router_core::Secret;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

/// Where the server listens, by default: loopback only, so that nothing is exposed
/// until the operator says so.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
/// The largest request body, by default. Images travel as base64 inside the JSON body,
/// so the limit is generous.
pub const DEFAULT_MAX_BODY_SIZE: usize = 20 * 1024 * 1024;
/// How long in-flight requests may run after the shutdown signal, by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long a client connection may take to deliver a complete request head, counted
/// from the moment it is open or idle (so it also bounds an idle keep-alive connection).
pub const DEFAULT_CLIENT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest gap between two pieces of a client's request body.
pub const DEFAULT_CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a response may wait for a client to take more of it (its socket buffer
/// full): a client that stops reading (a stalled stream, a live-events subscriber that
/// never reads) is dropped instead of holding a connection and its buffers for ever.
pub const DEFAULT_CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// `max_connections = 0`: the cap is worked out from the open-files limit.
pub const AUTO_MAX_CONNECTIONS: usize = 0;

/// One setting's documentation, for flags, `--check-config` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The file key; the flag is `--` and the key with `-` for `_`.
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// What the value looks like, e.g. `SECS`.
    pub value_name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Whether the value is a secret (never shown; the flag hides its environment value).
    pub secret: bool,
}

impl Setting {
    /// The flag's long name, e.g. `max-attempts`.
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }
}

/// Where a setting's value came from, shown by `--check-config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
        })
    }
}

macro_rules! settings {
    ($(
        #[doc = $help:literal]
        $key:ident : $ty:ty = $default:expr, env $env:literal, value $value:literal $(, $secret:ident)?;
    )*) => {
        /// The resolved settings of one router process (server or CLI).
        #[derive(Clone, Debug)]
        pub struct Settings {
            $(#[doc = $help] pub $key: $ty,)*
            /// The upstream providers, as `[[providers]]` tables; empty means the one
            /// OpenRouter provider the flat `openrouter_*` settings describe.
            pub providers: Vec<ProviderSettings>,
            /// The file the settings were read from, if any.
            pub config_file: Option<PathBuf>,
            /// Where each setting came from, by key.
            pub sources: BTreeMap<&'static str, Source>,
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    $($key: $default,)*
                    providers: Vec::new(),
                    config_file: None,
                    sources: BTreeMap::new(),
                }
            }
        }

        /// The TOML file: the same keys, all optional; an unknown key is an error.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct FileLayer {
            $(#[serde(default)] pub(crate) $key: Option<$ty>,)*
            #[serde(default)]
            pub(crate) providers: Vec<ProviderSettings>,
        }

        /// Every setting, in the order `--check-config` and the README show them.
        pub const SETTINGS: &[Setting] = &[$(Setting {
            key: stringify!($key),
            env: $env,
            value_name: $value,
            help: $help,
            secret: settings!(@secret $($secret)?),
        },)*];

        impl Settings {
            /// Lays `file` and then `overrides` (flags and environment, by key) over the
            /// defaults, recording where each value came from.
            pub(crate) fn layer(
                file: FileLayer,
                overrides: &BTreeMap<String, (String, Source)>,
            ) -> Result<Settings, crate::SettingsError> {
                let mut s = Settings::default();
                $(
                    let key = stringify!($key);
                    if let Some((text, source)) = overrides.get(key) {
                        s.$key = <$ty as SettingValue>::parse_text(text)
                            .map_err(|message| crate::SettingsError::Invalid { key, from: *source, message })?;
                        s.sources.insert(key, *source);
                    } else if let Some(v) = file.$key {
                        s.$key = v;
                        s.sources.insert(key, Source::File);
                    } else {
                        s.sources.insert(key, Source::Default);
                    }
                )*
                s.providers = file.providers;
                Ok(s)
            }

            /// `(key, value as shown)` for every setting; secrets only as "set".
            pub fn rows(&self) -> Vec<(&'static str, String)> {
                vec![$((stringify!($key), SettingValue::show(&self.$key)),)*]
            }
        }
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

settings! {
    /// address to listen on, `IP:PORT`
    listen: SocketAddr = DEFAULT_LISTEN, env "ROUTER_LISTEN", value "ADDR";
    /// OpenRouter key, sent only to OpenRouter; prefer the environment (a flag shows in `ps`)
    openrouter_api_key: Option<Secret> = None, env "OPENROUTER_API_KEY", value "KEY", secret;
    /// OpenRouter API root: the catalog is `{base}/models`, requests go to `{base}/chat/completions`
    openrouter_base_url: String = catalog_openrouter::DEFAULT_BASE_URL.to_owned(), env "OPENROUTER_BASE_URL", value "URL";
    /// seed of the pick sequence: the same sequence of requests gets the same models (default: from entropy)
    seed: Option<u64> = None, env "ROUTER_SEED", value "U64";
    /// client keys (comma-separated; a list in the file); when set, `Authorization: Bearer <key>` is required
    api_keys: Vec<Secret> = Vec::new(), env "ROUTER_API_KEYS", value "KEYS", secret;
    /// host names clients may use in `Host` (comma-separated; a list in the file); none: IP addresses and `localhost` only when listening on loopback (against DNS rebinding), any name otherwise
    allowed_hosts: Vec<String> = Vec::new(), env "ROUTER_ALLOWED_HOSTS", value "HOSTS";
    /// largest request body in bytes (images travel as base64)
    max_body_size: usize = DEFAULT_MAX_BODY_SIZE, env "ROUTER_MAX_BODY_SIZE", value "BYTES";
    /// upstream calls per request, the first included; a failure from a model another request had meanwhile found cooling does not count
    max_attempts: u32 = router_core::router::DEFAULT_MAX_ATTEMPTS, env "ROUTER_MAX_ATTEMPTS", value "N";
    /// no new attempt starts this many seconds after a request began
    deadline_secs: Seconds = Seconds::of(router_core::router::DEFAULT_DEADLINE), env "ROUTER_DEADLINE_SECS", value "SECS";
    /// upstream requests per minute, `0` for no limit
    per_minute: Limit = Limit::of(router_core::quota::DEFAULT_PER_MINUTE), env "ROUTER_PER_MINUTE", value "N";
    /// upstream requests per UTC day, `0` for no limit; when not set, 1,000 for an OpenRouter key that is not on the free tier
    per_day: Limit = Limit::of(router_core::quota::DEFAULT_PER_DAY), env "ROUTER_PER_DAY", value "N";
    /// directory of `state.json` (cooldowns, quota counts) and `catalog.json` (catalog cache); relative to the file when set in it (default: the platform's data and cache directories)
    data_dir: Option<PathBuf> = None, env "ROUTER_DATA_DIR", value "DIR";
    /// seconds between catalog refreshes
    refresh_interval_secs: Seconds = Seconds::of(catalog_openrouter::DEFAULT_REFRESH_INTERVAL), env "ROUTER_REFRESH_INTERVAL_SECS", value "SECS";
    /// upstream connect timeout in seconds
    connect_timeout_secs: Seconds = Seconds::of(transport_http::DEFAULT_CONNECT_TIMEOUT), env "ROUTER_CONNECT_TIMEOUT_SECS", value "SECS";
    /// upstream time to the response head in seconds
    first_byte_timeout_secs: Seconds = Seconds::of(transport_http::DEFAULT_FIRST_BYTE_TIMEOUT), env "ROUTER_FIRST_BYTE_TIMEOUT_SECS", value "SECS";
    /// longest gap between two stream chunks in seconds
    idle_timeout_secs: Seconds = Seconds::of(transport_http::DEFAULT_IDLE_TIMEOUT), env "ROUTER_IDLE_TIMEOUT_SECS", value "SECS";
    /// whole non-streamed answer in seconds
    request_timeout_secs: Seconds = Seconds::of(transport_http::DEFAULT_REQUEST_TIMEOUT), env "ROUTER_REQUEST_TIMEOUT_SECS", value "SECS";
    /// upstream answers larger than this many bytes are a failed attempt (falls back), not an allocation
    max_answer_size: usize = transport_http::DEFAULT_MAX_ANSWER_SIZE, env "ROUTER_MAX_ANSWER_SIZE", value "BYTES";
    /// a PEM file of CA certificates trusted beside the system's by every upstream transport and catalog (a local server's self-signed certificate); relative to the file when set in it
    extra_ca_cert: Option<PathBuf> = None, env "ROUTER_EXTRA_CA_CERT", value "FILE";
    /// streams in flight on one HTTP/2 upstream connection before another is opened (at most the upstream's `SETTINGS_MAX_CONCURRENT_STREAMS`)
    upstream_streams_per_connection: usize = transport_http::DEFAULT_STREAMS_PER_CONNECTION, env "ROUTER_UPSTREAM_STREAMS_PER_CONNECTION", value "N";
    /// upstream event-stream lines longer than this many bytes are a failed attempt (an error event once the stream was passed on)
    max_sse_line: usize = router_core::router::DEFAULT_MAX_SSE_LINE, env "ROUTER_MAX_SSE_LINE", value "BYTES";
    /// seconds a client connection has to deliver a complete request head, counted from its opening or its previous answer (so it also bounds idle keep-alive)
    client_header_timeout_secs: Seconds = Seconds::of(DEFAULT_CLIENT_HEADER_TIMEOUT), env "ROUTER_CLIENT_HEADER_TIMEOUT_SECS", value "SECS";
    /// longest gap in seconds between two pieces of a client's request body
    client_body_timeout_secs: Seconds = Seconds::of(DEFAULT_CLIENT_BODY_TIMEOUT), env "ROUTER_CLIENT_BODY_TIMEOUT_SECS", value "SECS";
    /// longest wait in seconds for a client to take more of a response; a client that stops reading is dropped
    client_write_timeout_secs: Seconds = Seconds::of(DEFAULT_CLIENT_WRITE_TIMEOUT), env "ROUTER_CLIENT_WRITE_TIMEOUT_SECS", value "SECS";
    /// client connections open at once; more are answered 503 with `Retry-After`; `0`: half the open-files limit less a reserve
    max_connections: usize = AUTO_MAX_CONNECTIONS, env "ROUTER_MAX_CONNECTIONS", value "N";
    /// seconds in-flight requests and streams may run after SIGINT/SIGTERM
    shutdown_grace_secs: Seconds = Seconds::of(DEFAULT_SHUTDOWN_GRACE), env "ROUTER_SHUTDOWN_GRACE_SECS", value "SECS";
    /// log line format, `text` or `json`
    log_format: LogFormat = LogFormat::Text, env "ROUTER_LOG_FORMAT", value "FORMAT";
    /// an answer with no content and no tool calls (a silent refusal, reasoning only) is a failed attempt and falls back
    empty_answers_fail: bool = router_core::router::DEFAULT_EMPTY_ANSWERS_FAIL, env "ROUTER_EMPTY_ANSWERS_FAIL", value "BOOL";
    /// lower `max_tokens` / `max_completion_tokens`, per model, to what it can produce (its completion limit, its context less the prompt); off: a model that cannot give all of it is no candidate
    clamp_max_tokens: bool = router_core::router::DEFAULT_CLAMP_MAX_TOKENS, env "ROUTER_CLAMP_MAX_TOKENS", value "BOOL";
    /// most upstream calls for one request, cheap failures included
    max_upstream_calls: u32 = router_core::router::DEFAULT_MAX_UPSTREAM_CALLS, env "ROUTER_MAX_UPSTREAM_CALLS", value "N";
    /// milliseconds under which a rate limit, "unavailable" or 5xx is cheap: it does not use up `max_attempts`
    cheap_failure_bound_ms: Millis = Millis::of(router_core::router::DEFAULT_CHEAP_FAILURE_BOUND), env "ROUTER_CHEAP_FAILURE_BOUND_MS", value "MS";
    /// when every candidate is cooling, wait up to this many milliseconds for the first to recover instead of answering 429; `0` never waits
    max_cooling_wait_ms: Millis = Millis::of(router_core::router::DEFAULT_MAX_COOLING_WAIT), env "ROUTER_MAX_COOLING_WAIT_MS", value "MS";
    /// waiters are spread over up to this many milliseconds, so that they do not all hit the recovered model at once
    wait_stagger_ms: Millis = Millis::of(router_core::router::DEFAULT_WAIT_STAGGER), env "ROUTER_WAIT_STAGGER_MS", value "MS";
    /// a request with a session key (`x-session-id`, the body's `session_id` or `user`) stays on one model while it can answer
    sticky_sessions: bool = router_core::router::DEFAULT_STICKY_SESSIONS, env "ROUTER_STICKY_SESSIONS", value "BOOL";
    /// draw candidates in proportion to their weight instead of uniformly (a request can choose with `x-router-pick`)
    weighted: bool = router_core::router::DEFAULT_WEIGHTED, env "ROUTER_WEIGHTED", value "BOOL";
    /// weighted picks also weigh each model by its recent success rate
    weight_by_success: bool = router_core::router::DEFAULT_WEIGHT_BY_SUCCESS, env "ROUTER_WEIGHT_BY_SUCCESS", value "BOOL";
    /// per-model weights for weighted picks (`id=weight,...`; a table in the file); others weigh 1
    model_weights: Weights = Weights::default(), env "ROUTER_MODEL_WEIGHTS", value "WEIGHTS";
    /// `HTTP-Referer` sent to OpenRouter (its app attribution)
    http_referer: Option<String> = None, env "ROUTER_HTTP_REFERER", value "URL";
    /// `X-Title` sent to OpenRouter (its app attribution)
    x_title: Option<String> = None, env "ROUTER_X_TITLE", value "TITLE";
    /// seconds a model's circuit breaker stays open after repeated failures (5xx, timeouts) before one probe may go
    breaker_open_secs: Seconds = Seconds::of(router_core::health::DEFAULT_BREAKER_OPEN), env "ROUTER_BREAKER_OPEN_SECS", value "SECS";
    /// Redis or Valkey shared by several router instances (quotas, cooldowns, breakers), `redis://[user:password@]host:port[/db]`; none: this instance's state only
    redis_url: Option<Secret> = None, env "ROUTER_REDIS_URL", value "URL", secret;
    /// prefix of every Redis key and channel, so that several deployments can share one Redis
    redis_key_prefix: String = state_redis::DEFAULT_KEY_PREFIX.to_owned(), env "ROUTER_REDIS_KEY_PREFIX", value "PREFIX";
    /// milliseconds a request waits on Redis for its quota reservation before deciding locally
    redis_timeout_ms: u64 = state_redis::DEFAULT_OP_TIMEOUT_MS, env "ROUTER_REDIS_TIMEOUT_MS", value "MS";
    /// serve a Claude model id (`claude-*`, `anthropic/*`) on `/v1/messages` from the free models (as `openrouter/free`); off: refuse it
    messages_serve_claude_ids: bool = router_dialects::anthropic::request::DEFAULT_SERVE_CLAUDE_IDS, env "ROUTER_MESSAGES_SERVE_CLAUDE_IDS", value "BOOL";
    /// refuse a `/v1/messages` request with server tools (`web_search_*`, ...) instead of dropping them and naming them in `x-router-dropped-tools`
    messages_refuse_server_tools: bool = router_dialects::anthropic::request::DEFAULT_REFUSE_SERVER_TOOLS, env "ROUTER_MESSAGES_REFUSE_SERVER_TOOLS", value "BOOL";
    /// refuse a `/v1/responses` request with tools the router cannot serve (`web_search`, `file_search`, `mcp`, `namespace`, custom, ...) instead of dropping them and naming them in `x-router-dropped-tools`
    responses_refuse_unserved_tools: bool = router_dialects::responses::DEFAULT_REFUSE_UNSERVED_TOOLS, env "ROUTER_RESPONSES_REFUSE_UNSERVED_TOOLS", value "BOOL";
    /// the embedding family `/v1/embeddings` serves for `model: "openrouter/free"` (or `free`, or none); not set: the first family with a free endpoint, by name
    default_embedding_family: Option<String> = None, env "ROUTER_DEFAULT_EMBEDDING_FAMILY", value "FAMILY";
}
