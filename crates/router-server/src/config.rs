//! The command line of `router-server`: `--config FILE`, `--check-config`, and one flag
//! per shared setting (generated from `router_settings::SETTINGS`, each with its
//! environment variable). Precedence: flag > environment > file > default.

use clap::{CommandFactory, FromArgMatches, Parser};
use router_settings::cli::Flags;
use std::ffi::OsString;

pub use router_settings::{LogFormat, Settings as Config, SettingsError};

/// `--config FILE` and the settings' flags, shared with `router-cli`.
const FLAGS: Flags = Flags {
    heading: "Settings (flag > environment > --config file > default)",
    config_help: "TOML configuration file; unknown keys are an error",
    except: &[],
    global: false,
};

/// The command line's own flags; `--config` and the settings' flags are added by
/// `router_settings::cli::Flags`.
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
    /// Validate the configuration, print it (secrets hidden) and exit
    #[arg(long)]
    pub check_config: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A bad flag or environment value, or `--help` / `--version` (print with `exit`).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    /// `--check-config`: print the settings and exit.
    pub check_config: bool,
}

/// From the process's arguments and environment.
pub fn load() -> Result<Loaded, ConfigError> {
    load_from(std::env::args_os())
}

/// From `args` (the first is the program name) and the process's environment.
pub fn load_from<I, T>(args: I) -> Result<Loaded, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok(Loaded { config: FLAGS.load(&matches)?, check_config: cli.check_config })
}

/// The command: the own flags, `--config` and one flag per setting.
pub fn command() -> clap::Command {
    FLAGS.add_to(Cli::command())
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_settings::SETTINGS;

    /// Loads with `args` and a file holding `toml` (when given); checks the
    /// `--check-config` lines. Only settings nobody sets in a test's environment are
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
        let text = match load_from(argv) {
            Ok(l) => l.config.describe(),
            Err(e) => format!("error: {e}"),
        };
        for line in expected {
            assert!(text.lines().any(|l| l.contains(line)), "missing `{line}` in\n{text}");
        }
    }

    #[test]
    fn every_setting_is_a_flag() {
        check(&["--max-attempts", "7"], Some("max_attempts = 5"), &["max_attempts = 7 (flag)"]);
        check(&["--client-header-timeout-secs", "3"], None, &["client_header_timeout_secs = 3 (flag)"]);
        check(&["--per-day", "x"], None, &["error: invalid `per_day` (flag --per-day)"]);
        for s in SETTINGS {
            let long = format!("--{}", s.flag());
            assert!(command().get_arguments().any(|a| a.get_long() == Some(&long[2..])), "{long}");
        }
    }
}
