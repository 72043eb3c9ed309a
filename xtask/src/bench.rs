//! `cargo xtask bench`: builds the benchmark driver and the server in release mode and
//! runs the driver (`crates/router-bench`), which writes `target/bench/report.md`.

use anyhow::{Result, bail};
use std::process::Command;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let root = crate::root();
    // Measure with optimised binaries only.
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "router-bench", "-p", "router-server"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let status = Command::new(root.join("target/release/router-bench")).args(args).current_dir(&root).status()?;
    if !status.success() {
        bail!("benchmark failed");
    }
    Ok(())
}
