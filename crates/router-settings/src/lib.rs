//! The free models router's settings and composition, shared by `router-server` and
//! `router-cli` so that both read the same file and environment, apply the same
//! defaults, and build the same router.
//!
//! Each setting is defined once in [`settings`] (key, type, default constant,
//! environment variable, help); both binaries take them as flags through [`cli::Flags`]
//! (clap, the only framework used here) and call the one [`build`]. The binaries reach
//! the adapters only through this crate: what they need of them is re-exported in
//! [`adapters`].

pub mod cli;
mod clock;
mod compose;
pub mod key_watch;
mod load;
mod mux;
mod pool;
pub mod provider;
pub mod refreshes;
pub mod settings;
pub mod shard;
mod transport;
pub mod value;
pub mod zone;

pub use clock::SystemClock;
pub use compose::{Background, BuildError, Composed, Options, PERSIST_EVERY, build, validate};
pub use load::{APP_DIR, CACHE_FILE, STATE_FILE, SettingsError};
pub use pool::Providers;
pub use provider::{ModelSettings, ProviderKind, ProviderSettings};
pub use refreshes::{CatalogRefresh, Catalogs};
pub use settings::{
    AUTO_MAX_CONNECTIONS, DEFAULT_CLIENT_BODY_TIMEOUT, DEFAULT_CLIENT_HEADER_TIMEOUT, DEFAULT_CLIENT_WRITE_TIMEOUT,
    DEFAULT_LISTEN, DEFAULT_MAX_BODY_SIZE, DEFAULT_SHUTDOWN_GRACE, SETTINGS, Setting, Settings, Source,
};
pub use value::{Limit, LogFormat, Millis, Seconds, SettingValue, Weights};

/// What the binaries use of the adapters directly: reading a saved `/models` file, the
/// transport a key is read through, and how the transport tells that the process itself
/// ran out of resources. Every catalog is reached through [`Catalogs`].
pub mod adapters {
    pub use catalog_openrouter::parse_models;
    pub use transport_http::{HttpTransport, is_local_exhaustion, local_resource_failures};
}

/// The README's configuration table rows, one per setting: flag, environment
/// variable, file key, default and help, generated so that the README cannot drift.
pub fn markdown_table() -> String {
    let defaults = Settings::default();
    let rows = defaults.rows();
    let mut out = String::from("| flag | environment | file key | default | meaning |\n|---|---|---|---|---|\n");
    for (s, (_, default)) in SETTINGS.iter().zip(rows) {
        let default = if default == "none" { "none".to_owned() } else { format!("`{default}`") };
        out.push_str(&format!(
            "| `--{} {}` | `{}` | `{}` | {} | {} |\n",
            s.flag(),
            s.value_name,
            s.env,
            s.key,
            default,
            s.help.trim()
        ));
    }
    out
}
