//! Project automation, the one entry point (`cargo xtask <task>`), mirroring CI exactly.

mod bench;
mod catalog_snapshot;
mod ci;
mod modules;
mod providers;
mod readme;

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

const HELP: &str = "\
usage: cargo xtask <task> [args]

tasks:
  ci                              fmt check, clippy -D warnings, tests, doc tests, architecture invariants
  bench [options]                 release build, fake upstream + router-server on loopback, load report
  modules                         no module circles in any crate
  providers                       no code outside OpenRouter's homes asks whether a provider is OpenRouter
  readme                          regenerate README.md's settings table from the settings list
  catalog-snapshot <models.json>  regenerate the embedded catalog from a saved /models response
";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    match task.as_deref() {
        Some("ci") => ci::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("modules") => modules::run(&rest),
        Some("providers") => providers::run(&rest),
        Some("readme") => readme::run(&rest),
        Some("catalog-snapshot") => catalog_snapshot::run(&rest),
        Some("-h" | "--help" | "help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}
