//! The shared settings as command-line flags, the same for both binaries: `--config
//! FILE` and one flag per setting of [`SETTINGS`] (with its environment variable), read
//! back into [`Settings`]. Precedence: flag > environment > file > default.

use crate::load::SettingsError;
use crate::settings::{SETTINGS, Setting, Settings, Source};
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The id (and flag) of the settings file's argument.
const CONFIG: &str = "config";

/// How a binary shows the shared flags.
#[derive(Clone, Copy, Debug)]
pub struct Flags {
    /// The help heading the settings' flags are listed under.
    pub heading: &'static str,
    /// The help line of `--config FILE`.
    pub config_help: &'static str,
    /// Settings whose flag the binary's own commands use with another meaning.
    pub except: &'static [&'static str],
    /// Accepted after a subcommand too, and listed in `--help` only (the CLI's).
    pub global: bool,
}

impl Flags {
    fn shared(&self) -> impl Iterator<Item = &'static Setting> + '_ {
        SETTINGS.iter().filter(|s| !self.except.contains(&s.key))
    }

    /// `cmd` with `--config FILE` (`ROUTER_CONFIG`) and one flag per shared setting.
    pub fn add_to(&self, cmd: Command) -> Command {
        let config = Arg::new(CONFIG)
            .long(CONFIG)
            .env("ROUTER_CONFIG")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help(self.config_help)
            .global(self.global);
        cmd.arg(config).args(self.shared().map(|s| {
            Arg::new(s.key)
                .long(s.flag())
                .env(s.env)
                .hide_env_values(s.secret)
                .value_name(s.value_name)
                .help(s.help.trim().to_owned())
                .help_heading(self.heading)
                .global(self.global)
                .hide_short_help(self.global)
        }))
    }

    /// The settings: the file from `--config`, then what the flags and environment gave.
    pub fn load(&self, matches: &ArgMatches) -> Result<Settings, SettingsError> {
        let file = matches.get_one::<PathBuf>(CONFIG);
        Settings::load(file.map(PathBuf::as_path), &self.overrides(matches))
    }

    /// What the flags and the environment gave, by setting key.
    fn overrides(&self, matches: &ArgMatches) -> BTreeMap<String, (String, Source)> {
        self.shared()
            .filter_map(|s| {
                let text = matches.get_one::<String>(s.key)?;
                let source = match matches.value_source(s.key) {
                    Some(ValueSource::EnvVariable) => Source::Env,
                    _ => Source::Flag,
                };
                Some((s.key.to_owned(), (text.clone(), source)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: Flags = Flags { heading: "Settings", config_help: "TOML file", except: &["seed"], global: true };

    fn load(args: &[&str]) -> Result<Settings, SettingsError> {
        let cmd = FLAGS.add_to(Command::new("t").subcommand(Command::new("sub")));
        FLAGS.load(&cmd.try_get_matches_from(args).expect("parsed"))
    }

    #[test]
    fn flag_over_file_over_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("router.toml");
        std::fs::write(&file, "per_day = 3\nrefresh_interval_secs = 7\n").expect("write");
        let path = file.to_str().expect("utf-8");
        let s = load(&["t", "--config", path, "sub", "--per-day", "5"]).expect("valid");
        assert_eq!(s.per_day.get(), Some(5), "the flag, after the subcommand");
        assert_eq!(s.sources.get("per_day"), Some(&Source::Flag));
        assert_eq!(s.refresh_interval_secs.get(), std::time::Duration::from_secs(7), "the file");
        assert_eq!(load(&["t"]).expect("valid").max_attempts, Settings::default().max_attempts);
    }

    #[test]
    fn an_excepted_setting_has_no_flag() {
        let cmd = FLAGS.add_to(Command::new("t"));
        assert!(cmd.clone().try_get_matches_from(["t", "--seed", "1"]).is_err());
        assert!(cmd.try_get_matches_from(["t", "--max-attempts", "2"]).is_ok());
    }
}
