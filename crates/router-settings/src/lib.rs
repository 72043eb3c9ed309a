//! The free models router's settings and composition, shared by `router-server` and
//! `router-cli` so that both read the same file and environment, apply the same
//! defaults, and build the same router.
//!
//! Each setting is defined once in [`settings`] (key, type, default constant,
//! environment variable, help); the binaries turn [`SETTINGS`] into flags, pass what the
//! flags and environment gave to [`Settings::load`], and call [`compose::build`]. No
//! command-line or HTTP framework is used here.

mod clock;
pub mod compose;
pub mod key_watch;
mod load;
pub mod mux;
pub mod pool;
pub mod provider;
pub mod settings;
pub mod value;
pub mod zone;

pub use clock::SystemClock;
pub use compose::{Background, BuildError, Composed, build, build_with};
pub use load::{APP_DIR, CACHE_FILE, STATE_FILE, SettingsError};
pub use pool::Providers;
pub use provider::{ModelSettings, ProviderKind, ProviderSettings};
pub use settings::{
    AUTO_MAX_CONNECTIONS, DEFAULT_CLIENT_BODY_TIMEOUT, DEFAULT_CLIENT_HEADER_TIMEOUT, DEFAULT_CLIENT_WRITE_TIMEOUT,
    DEFAULT_LISTEN, DEFAULT_MAX_BODY_SIZE, DEFAULT_SHUTDOWN_GRACE, SETTINGS, Setting, Settings, Source,
};
pub use value::{Limit, LogFormat, Millis, Seconds, SettingValue, Weights};

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
