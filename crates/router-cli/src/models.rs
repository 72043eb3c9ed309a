//! `router-cli models`: the free models that meet some filters, as a table or JSON.

use crate::output::{Style, Table, age, count, thousands};
use router_core::catalog::Entry;
use router_core::{CapSet, Capability, CatalogSnapshot, CatalogSource, CatalogStats, ModelId, Timestamp};
use serde::Serialize;

/// What the user asked models to have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filters {
    pub caps: CapSet,
    pub min_context: Option<u64>,
}

impl Filters {
    pub(crate) fn labels(&self) -> Vec<String> {
        let mut out: Vec<String> = self.caps.iter().map(|c| c.label().to_owned()).collect();
        if let Some(n) = self.min_context {
            out.push(format!("context >= {n} tokens"));
        }
        out
    }

    fn accepts(&self, e: &Entry) -> bool {
        self.caps.missing_from(e.capabilities()).is_empty()
            && self.min_context.is_none_or(|n| e.info.context_length.is_some_and(|c| c >= n))
    }
}

/// The free models at `now` that pass the filters, in id order.
pub(crate) fn select<'a>(snap: &'a CatalogSnapshot, now: Timestamp, filters: &Filters) -> Vec<&'a Entry> {
    snap.entries().iter().filter(|e| e.is_free(now) && filters.accepts(e)).collect()
}

/// One model in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct Row<'a> {
    pub id: &'a ModelId,
    /// `openrouter`, or the declared provider serving it.
    pub provider: &'a str,
    pub name: &'a str,
    pub context_length: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub input_modalities: &'a [String],
    pub output_modalities: &'a [String],
    pub tools: bool,
    pub structured_outputs: bool,
    pub reasoning: bool,
    pub expiration_date: Option<&'a str>,
}

impl<'a> Row<'a> {
    fn of(e: &'a Entry) -> Self {
        let caps = e.capabilities();
        Row {
            id: &e.info.id,
            provider: e.info.provider_name(),
            name: &e.info.name,
            context_length: e.info.context_length,
            max_completion_tokens: e.info.max_completion_tokens,
            input_modalities: &e.info.input_modalities,
            output_modalities: &e.info.output_modalities,
            tools: caps.contains(Capability::Tools),
            structured_outputs: caps.contains(Capability::StructuredOutputs),
            reasoning: caps.contains(Capability::Reasoning),
            expiration_date: e.info.expiration_date.as_deref(),
        }
    }
}

/// The whole `--json` document.
#[derive(Debug, Serialize)]
pub(crate) struct Listing<'a> {
    pub catalog: CatalogStats,
    pub filters: Vec<String>,
    pub count: usize,
    pub models: Vec<Row<'a>>,
}

pub(crate) fn listing<'a>(snap: &'a CatalogSnapshot, now: Timestamp, filters: &Filters) -> Listing<'a> {
    let models: Vec<Row<'a>> = select(snap, now, filters).into_iter().map(Row::of).collect();
    Listing { catalog: snap.stats(now), filters: filters.labels(), count: models.len(), models }
}

/// `live (https://...), fetched 2 h ago at 2026-08-19T10:00:00Z`.
pub(crate) fn provenance(stats: &CatalogStats) -> String {
    // A file's age is its modification time, which is not when its data was fetched.
    let when = if matches!(stats.source, CatalogSource::File { .. }) { "file modified" } else { "fetched" };
    format!("{}, {when} {} ({})", stats.source, age(std::time::Duration::from_secs(stats.age_secs)), stats.fetched_at)
}

/// The table and its summary lines. In plain style the summary lines start with `# `
/// so that a program reading the rows can skip them.
pub(crate) fn render(listing: &Listing<'_>, style: Style) -> String {
    let mark = |b: bool| if b { "yes" } else { "-" }.to_owned();
    // A provider column when models come from more than one provider.
    let providers = listing.models.iter().any(|r| listing.models.first().is_some_and(|f| f.provider != r.provider));
    let mut heads = vec!["ID", "CONTEXT", "INPUT", "TOOLS", "STRUCTURED", "REASONING", "EXPIRES"];
    if providers {
        heads.insert(1, "PROVIDER");
    }
    let mut table = Table::new(&heads);
    for r in &listing.models {
        let mut row = vec![
            r.id.to_string(),
            r.context_length.map_or_else(|| "?".to_owned(), thousands),
            r.input_modalities.join(","),
            mark(r.tools),
            mark(r.structured_outputs),
            mark(r.reasoning),
            r.expiration_date.unwrap_or("-").to_owned(),
        ];
        if providers {
            row.insert(1, r.provider.to_owned());
        }
        table.push(row);
    }
    let c = &listing.catalog;
    let prefix = if style.aligned { "" } else { "# " };
    let mut out = format!("{prefix}catalog: {}\n", provenance(c));
    if !listing.models.is_empty() {
        out.push_str(&table.render(style));
    }
    let meeting =
        if listing.filters.is_empty() { String::new() } else { format!(" with {}", listing.filters.join(", ")) };
    out.push_str(&format!(
        "{prefix}{}{meeting} ({} free, {} in the catalog)\n",
        count(listing.count, "free model"),
        c.free_models,
        count(c.models, "model")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::ModelInfo;

    /// `id context inputs params [expiry]` per line; `:free` ids get zero prices.
    const CATALOG: &str = "
        a/text:free      8192    text        -
        b/vision:free    32768   text,image  tools,structured_outputs
        c/reason:free    131072  text        reasoning,tools  2026-08-24
        d/paid           131072  text,image  tools,structured_outputs,reasoning
        e/old:free       131072  text        tools  2020-01-01
    ";

    fn snapshot() -> CatalogSnapshot {
        let models = CATALOG
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let mut m = ModelInfo::new(f[0]);
                m.context_length = f[1].parse().ok();
                m.input_modalities = f[2].split(',').map(String::from).collect();
                m.output_modalities = vec!["text".into()];
                m.supported_parameters = f[3].split(',').filter(|p| *p != "-").map(String::from).collect();
                m.expiration_date = f.get(4).map(|d| (*d).to_owned());
                let price = if f[0].ends_with(":free") { "0" } else { "0.000001" };
                m.pricing.0.insert("prompt".into(), price.into());
                m
            })
            .collect();
        let fetched = router_core::time::parse_date("2026-08-19").unwrap_or_default();
        CatalogSnapshot::new(models, CatalogSource::Memory, fetched)
    }

    fn check(filters: Filters, expected: &str) {
        let snap = snapshot();
        let now = router_core::time::parse_date("2026-08-20").unwrap_or_default();
        let got = render(&listing(&snap, now, &filters), Style::PLAIN);
        let expected: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(got.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn free_models_only_and_filters() {
        check(
            Filters::default(),
            "# catalog: memory, fetched 24 h ago (2026-08-19T00:00:00Z)
             ID\tCONTEXT\tINPUT\tTOOLS\tSTRUCTURED\tREASONING\tEXPIRES
             a/text:free\t8,192\ttext\t-\t-\t-\t-
             b/vision:free\t32,768\ttext,image\tyes\tyes\t-\t-
             c/reason:free\t131,072\ttext\tyes\t-\tyes\t2026-08-24
             # 3 free models (3 free, 5 models in the catalog)",
        );
        check(
            Filters { caps: [Capability::Tools].into_iter().collect(), min_context: Some(100_000) },
            "# catalog: memory, fetched 24 h ago (2026-08-19T00:00:00Z)
             ID\tCONTEXT\tINPUT\tTOOLS\tSTRUCTURED\tREASONING\tEXPIRES
             c/reason:free\t131,072\ttext\tyes\t-\tyes\t2026-08-24
             # 1 free model with tools, context >= 100000 tokens (3 free, 5 models in the catalog)",
        );
        check(
            Filters { caps: [Capability::ImageInput, Capability::Reasoning].into_iter().collect(), min_context: None },
            "# catalog: memory, fetched 24 h ago (2026-08-19T00:00:00Z)
             # 0 free models with image input, reasoning (3 free, 5 models in the catalog)",
        );
    }
}
