//! `cargo xtask readme`: rewrites README.md's settings table from the settings list
//! (CI runs the same test without the variable, so a stale table fails CI).

use anyhow::{Result, bail};
use std::process::Command;

pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask readme` takes no arguments (got `{arg}`)");
    }
    let status = Command::new(env!("CARGO"))
        .args(["test", "-p", "router-settings", "--test", "readme"])
        .env("ROUTER_UPDATE_README", "1")
        .current_dir(crate::root())
        .status()?;
    if !status.success() {
        bail!("could not regenerate the README table");
    }
    Ok(())
}
