//! The shared settings as this binary's flags: one global flag per setting of
//! `router-settings` (with its environment variable), and `--config FILE`, so that the
//! CLI reads the same file and environment as the server.

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches};
use router_settings::{SETTINGS, Settings, Source};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The help heading the settings' flags are listed under.
const HEADING: &str = "Settings (shared with router-server; flag > environment > --config file > default)";

/// Settings whose flag the CLI's own commands use with another meaning: `--seed` is
/// one request's seed here, not the server's pick sequence.
const OWN_FLAGS: [&str; 1] = ["seed"];

/// The settings this binary takes as flags.
fn shared() -> impl Iterator<Item = &'static router_settings::Setting> {
    SETTINGS.iter().filter(|s| !OWN_FLAGS.contains(&s.key))
}

/// One global flag per setting.
pub(crate) fn args() -> Vec<Arg> {
    shared()
        .map(|s| {
            Arg::new(s.key)
                .long(s.flag())
                .env(s.env)
                .hide_env_values(s.secret)
                .value_name(s.value_name)
                .help(s.help.trim().to_owned())
                .help_heading(HEADING)
                .global(true)
                .hide_short_help(true)
        })
        .collect()
}

/// The settings: the file from `--config`, then what the flags and environment gave.
pub(crate) fn load(matches: &ArgMatches, config: Option<&PathBuf>) -> anyhow::Result<Settings> {
    let mut overrides = BTreeMap::new();
    for s in shared() {
        if let Some(text) = matches.get_one::<String>(s.key) {
            let source = match matches.value_source(s.key) {
                Some(ValueSource::EnvVariable) => Source::Env,
                _ => Source::Flag,
            };
            overrides.insert(s.key.to_owned(), (text.clone(), source));
        }
    }
    Ok(Settings::load(config.map(PathBuf::as_path), &overrides)?)
}
