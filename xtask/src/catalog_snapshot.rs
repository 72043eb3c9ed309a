//! `cargo xtask catalog-snapshot`: regenerates the embedded catalog from a saved
//! `/models` response, or (`--check`) reports how the parser and the free rule read
//! saved responses.

use anyhow::{Context, Result, bail};
use catalog_openrouter::{BodyShape, EMBEDDED_FORMAT, EmbeddedCatalog, Parsed, parse_models};
use router_core::time::parse_date;
use router_core::{ModelInfo, NotFree, Timestamp, is_free, not_free_reasons};
use std::path::{Path, PathBuf};

const USAGE: &str = "\
usage: cargo xtask catalog-snapshot [--date YYYY-MM-DD] [--out PATH] <models.json>
       cargo xtask catalog-snapshot --check <models.json>...

  Without --check: keeps the models free at the snapshot date (--date, default the newest
  `created` among the models) that answer with text or embeddings (an
  `?output_modalities=all` response brings the free embedding models too) and writes them
  to the embedded catalog
  (default crates/catalog-openrouter/data/embedded-catalog.json).
  With --check: prints, per file, the models read, the `:free` ids, and the models free
  by the core's rule at the file's date and now, with the reason for each `:free` id
  that is not free.
";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut date = None;
    let mut out = None;
    let mut check = false;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--date" => date = Some(it.next().context("--date needs a value")?.clone()),
            "--out" => out = Some(PathBuf::from(it.next().context("--out needs a value")?)),
            "--check" => check = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            s if s.starts_with("--") => bail!("unknown option `{s}`\n\n{USAGE}"),
            s => files.push(PathBuf::from(s)),
        }
    }
    if files.is_empty() {
        bail!("no models.json given\n\n{USAGE}");
    }
    if check {
        return check_files(&files);
    }
    let [file] = files.as_slice() else { bail!("give exactly one models.json to snapshot\n\n{USAGE}") };
    let out = out.unwrap_or_else(|| crate::root().join("crates/catalog-openrouter/data/embedded-catalog.json"));
    generate(file, date.as_deref(), &out)
}

fn read(file: &Path) -> Result<Parsed> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    parse_models(&bytes).with_context(|| format!("cannot parse {}", file.display()))
}

/// The newest `created` among the models, as a UTC date: when the response was
/// recorded, at the earliest.
fn newest_created(models: &[ModelInfo]) -> Option<Timestamp> {
    let secs = models.iter().filter_map(|m| m.created).max()?;
    let day = Timestamp::from_secs(u64::try_from(secs).ok()?).date_string();
    parse_date(&day)
}

/// Whether the router serves what `m` answers with: text (chat) or vectors (embeddings);
/// not speech, images or rerank scores.
fn is_served(m: &ModelInfo) -> bool {
    m.output_modalities.iter().any(|o| o == "text" || o == router_core::model::EMBEDDINGS_MODALITY)
}

fn generate(file: &Path, date: Option<&str>, out: &Path) -> Result<()> {
    let parsed = read(file)?;
    let at = match date {
        Some(d) => parse_date(d).with_context(|| format!("--date {d:?} is not YYYY-MM-DD"))?,
        None => newest_created(&parsed.models).context("no model has a `created` date; pass --date")?,
    };
    let snapshot_date = at.date_string();
    let total = parsed.models.len();
    let mut models: Vec<ModelInfo> = parsed.models.into_iter().filter(|m| is_free(m, at) && is_served(m)).collect();
    models.sort_by(|a, b| a.id.cmp(&b.id));
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let catalog = EmbeddedCatalog {
        format: EMBEDDED_FORMAT,
        source: format!(
            "the {} models free on {snapshot_date} by the router's free rule that answer with text or \
             embeddings, out of {total} in a saved OpenRouter GET /api/v1/models response ({name})",
            models.len()
        ),
        snapshot_date,
        models,
    };
    let text = catalog.to_json()?;
    // Check that what was written is what the binaries will read.
    EmbeddedCatalog::from_json(&text).map_err(anyhow::Error::msg).context("generated catalog does not read back")?;
    std::fs::write(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {} ({} free models of {total}, snapshot date {}, {} entries skipped)",
        out.display(),
        catalog.models.len(),
        catalog.snapshot_date,
        parsed.skipped
    );
    Ok(())
}

fn check_files(files: &[PathBuf]) -> Result<()> {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let now = Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
    println!("free by the core rule: at the file's date (newest `created`) and now ({})", now.date_string());
    println!(
        "{:<40} {:>7} {:>7} {:>7} {:>7} {:>14} {:>9}",
        "file", "shape", "models", "skipped", ":free", "free@date", "free now"
    );
    let mut notes = Vec::new();
    for file in files {
        let parsed = read(file)?;
        let at = newest_created(&parsed.models).unwrap_or(now);
        let free_ids = parsed.models.iter().filter(|m| m.id.is_free_variant()).count();
        let free_at = parsed.models.iter().filter(|m| is_free(m, at)).count();
        let free_now = parsed.models.iter().filter(|m| is_free(m, now)).count();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let shape = match parsed.shape {
            BodyShape::Wrapped => "data",
            BodyShape::Bare => "array",
        };
        println!(
            "{name:<40} {shape:>7} {:>7} {:>7} {free_ids:>7} {:>14} {free_now:>9}",
            parsed.models.len(),
            parsed.skipped,
            format!("{free_at}@{}", at.date_string())
        );
        for m in parsed.models.iter().filter(|m| m.id.is_free_variant()) {
            let reasons: Vec<String> = not_free_reasons(m, now)
                .iter()
                .filter(|r| !matches!(r, NotFree::NotFreeVariant))
                .map(ToString::to_string)
                .collect();
            if !reasons.is_empty() {
                notes.push(format!("  {name}: {} not free now: {}", m.id, reasons.join("; ")));
            }
        }
    }
    if !notes.is_empty() {
        println!("\n`:free` ids that are not free now:");
        for n in notes {
            println!("{n}");
        }
    }
    Ok(())
}
