//! `cargo xtask bench`: builds the benchmark driver and the server in release mode and
//! runs the driver (`crates/router-bench`), which writes `target/bench/report.md`.
//! `CARGO_TARGET_DIR` is honoured: the driver is told where the server binary was built.

use anyhow::{Result, bail};
use std::path::PathBuf;
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
    let release = target_dir(&root).join("release");
    let mut driver = Command::new(release.join("router-bench"));
    if !args.iter().any(|a| a == "--server") {
        driver.arg("--server").arg(release.join("router-server"));
    }
    let status = driver.args(args).current_dir(&root).status()?;
    if !status.success() {
        bail!("benchmark failed");
    }
    Ok(())
}

/// Where cargo builds: `CARGO_TARGET_DIR` (relative to the workspace root when relative),
/// else `target/`.
fn target_dir(root: &std::path::Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}
