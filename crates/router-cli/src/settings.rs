//! The shared settings as this binary's flags (`router_settings::cli`, as the server's):
//! `--config FILE` and one global flag per setting (with its environment variable), so
//! that the CLI reads the same file and environment as the server.

use router_settings::cli::Flags;

/// `--config FILE` and the settings' flags. `--seed` is one request's seed here, not the
/// server's pick sequence, so that setting has no flag of its own.
pub(crate) const FLAGS: Flags = Flags {
    heading: "Settings (shared with router-server; flag > environment > --config file > default)",
    config_help: "TOML settings file, the same as router-server's (see `--help` for every setting)",
    except: &["seed"],
    global: true,
};
