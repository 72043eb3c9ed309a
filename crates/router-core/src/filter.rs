//! Filtering: which free models can serve a request, and why each other model cannot.
//!
//! Filtering never fails. It returns the candidates *and* a rejection record for every
//! other model, so that any decision can be explained after the fact. The records are
//! compact (bit sets and numbers); words are only made when someone asks.

use crate::catalog::CatalogSnapshot;
use crate::free::not_free_reasons;
use crate::model::{CapSet, Capability};
use crate::request::Requirements;
use crate::time::Timestamp;
use std::fmt;

/// Why one model was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Index into the snapshot's entries.
    pub index: usize,
    /// The model fails the free rule at the instant filtered for.
    pub not_free: bool,
    /// Capabilities the request needs that the model lacks.
    pub missing: CapSet,
    /// The context the request needs, when the model's is smaller.
    pub context_needed: Option<u64>,
    /// The completion tokens asked for, when the model's limit is lower.
    pub completion_needed: Option<u64>,
}

/// The outcome of filtering a snapshot for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Indices into the snapshot's entries, in id order.
    pub candidates: Vec<usize>,
    /// Every other model, with why it was left out, in id order.
    pub rejected: Vec<Rejection>,
}

/// Why a model cannot serve a request, as words for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// One way the model fails the free rule.
    NotFree(crate::free::NotFree),
    /// The request needs a capability the model lacks.
    Missing(Capability),
    /// The model's context window is smaller than the request needs.
    ContextTooSmall {
        /// Tokens the request needs (prompt plus completion).
        needed: u64,
        /// The model's context window, in tokens.
        context_length: u64,
    },
    /// The request asks for more completion tokens than the model allows.
    CompletionTooLarge {
        /// Completion tokens the request asks for.
        requested: u64,
        /// The model's `max_completion_tokens`.
        max: u64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotFree(n) => write!(f, "not free: {n}"),
            Reason::Missing(c) => write!(f, "no {}", c.label()),
            Reason::ContextTooSmall { needed, context_length } => {
                write!(f, "context {context_length} < {needed} tokens needed")
            }
            Reason::CompletionTooLarge { requested, max } => {
                write!(f, "max completion {max} < {requested} tokens requested")
            }
        }
    }
}

/// Checks one entry against the requirements; `None` means it can serve them.
pub fn check_entry(snapshot: &CatalogSnapshot, index: usize, req: &Requirements, now: Timestamp) -> Option<Rejection> {
    let e = &snapshot.entries()[index];
    let not_free = !e.free.is_free(now);
    let missing = req.caps.missing_from(e.caps);
    let needed = req.context_needed();
    let context_needed = e.info.context_length.filter(|&c| c < needed).map(|_| needed);
    let completion_needed = match (req.max_output_tokens, e.info.max_completion_tokens) {
        (Some(asked), Some(max)) if asked > max => Some(asked),
        _ => None,
    };
    let ok = !not_free && missing.is_empty() && context_needed.is_none() && completion_needed.is_none();
    (!ok).then_some(Rejection { index, not_free, missing, context_needed, completion_needed })
}

/// The candidates alone (free, meeting every requirement), in id order: what
/// [`filter`] returns as `candidates`, without a rejection record per model. Only the
/// entries that pass the time-independent part of the free rule are looked at, so the
/// cost follows the number of free models rather than the size of the catalog.
pub fn candidates(snapshot: &CatalogSnapshot, req: &Requirements, now: Timestamp) -> Vec<usize> {
    // `check_entry`'s rules on the packed records (the property tests hold the two equal).
    let hot = snapshot.hot();
    let (caps, needed, asked, now) =
        (req.caps, req.context_needed(), req.max_output_tokens.unwrap_or(0), now.as_millis());
    // Branch-free: every record is written, and kept when it passes (random verdicts
    // would otherwise cost a mispredicted branch each).
    let mut out = vec![0usize; hot.len()];
    let mut kept = 0;
    for h in hot {
        let ok = caps.missing_from(h.caps).is_empty()
            & (h.context_length >= needed)
            & (h.max_completion_tokens >= asked)
            & (now < h.expires_at);
        if let Some(slot) = out.get_mut(kept) {
            *slot = h.index;
        }
        kept += usize::from(ok);
    }
    out.truncate(kept);
    out
}

/// Splits the snapshot into candidates (free, meeting every requirement) and rejections.
pub fn filter(snapshot: &CatalogSnapshot, req: &Requirements, now: Timestamp) -> Filtered {
    let n = snapshot.len();
    let mut out = Filtered { candidates: Vec::with_capacity(n.min(64)), rejected: Vec::with_capacity(n) };
    for index in 0..n {
        match check_entry(snapshot, index, req, now) {
            None => out.candidates.push(index),
            Some(r) => out.rejected.push(r),
        }
    }
    out
}

impl Rejection {
    /// The reasons in words. `now` is needed to say why a model is not free.
    pub fn reasons(&self, snapshot: &CatalogSnapshot, now: Timestamp) -> Vec<Reason> {
        let info = &snapshot.entries()[self.index].info;
        let mut out = Vec::new();
        if self.not_free {
            out.extend(not_free_reasons(info, now).into_iter().map(Reason::NotFree));
        }
        out.extend(self.missing.iter().map(Reason::Missing));
        if let (Some(needed), Some(context_length)) = (self.context_needed, info.context_length) {
            out.push(Reason::ContextTooSmall { needed, context_length });
        }
        if let (Some(requested), Some(max)) = (self.completion_needed, info.max_completion_tokens) {
            out.push(Reason::CompletionTooLarge { requested, max });
        }
        out
    }
}

/// How many free models each requirement removed, for "no free model" errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// Free models in the snapshot, candidates included.
    pub free_models: usize,
    /// Per capability the request needs: how many free models lack it.
    pub by_capability: Vec<(Capability, usize)>,
    /// Free models whose context is too small for the request.
    pub context_too_small: usize,
    /// Free models whose completion limit is below the tokens the request asks for.
    pub completion_too_large: usize,
}

impl Shortfall {
    /// Counts the free models `filtered` rejected, by the requirement of `req` they fail.
    pub fn of(filtered: &Filtered, req: &Requirements) -> Self {
        let free: Vec<&Rejection> = filtered.rejected.iter().filter(|r| !r.not_free).collect();
        let by_capability = req
            .caps
            .iter()
            .map(|c| (c, free.iter().filter(|r| r.missing.contains(c)).count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        Shortfall {
            free_models: free.len() + filtered.candidates.len(),
            by_capability,
            context_too_small: free.iter().filter(|r| r.context_needed.is_some()).count(),
            completion_too_large: free.iter().filter(|r| r.completion_needed.is_some()).count(),
        }
    }

    /// E.g. `no free model supports: tools + image input (of 17 free models: tools
    /// removed 9, image input removed 12)`.
    pub fn message(&self, req: &Requirements) -> String {
        let mut what: Vec<String> = self.by_capability.iter().map(|(c, _)| c.label().to_owned()).collect();
        if self.context_too_small > 0 {
            what.push(format!("a context of {} tokens", req.context_needed()));
        }
        if self.completion_too_large > 0 {
            what.push(format!("{} completion tokens", req.max_output_tokens.unwrap_or(0)));
        }
        if self.free_models == 0 {
            return "no free model is available in the catalog".to_owned();
        }
        let mut removed: Vec<String> =
            self.by_capability.iter().map(|(c, n)| format!("{} removed {n}", c.label())).collect();
        if self.context_too_small > 0 {
            removed.push(format!("context removed {}", self.context_too_small));
        }
        if self.completion_too_large > 0 {
            removed.push(format!("max completion removed {}", self.completion_too_large));
        }
        format!(
            "no free model supports: {} (of {} free models: {})",
            what.join(" + "),
            self.free_models,
            removed.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogSource;
    use crate::model::ModelInfo;
    use crate::request::ChatRequest;

    /// A small catalog as text: `id context inputs params` per line.
    const CATALOG: &str = "
        a/text:free      8000   text        -
        b/vision:free    32000  text,image  tools,tool_choice
        c/tools:free     128000 text        tools,structured_outputs,response_format
        d/paid           128000 text,image  tools,structured_outputs
        e/tiny:free      1000   text        tools
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
                let price = if f[0].ends_with(":free") { "0" } else { "0.000001" };
                m.pricing.0.insert("prompt".into(), price.into());
                m
            })
            .collect();
        CatalogSnapshot::new(models, CatalogSource::Memory, Timestamp::default())
    }

    /// Filters the fixture catalog for `body`; `expected` lists candidates, then one
    /// line per rejected model with its reasons, or the shortfall message when empty.
    fn check(body: &str, expected: &str) {
        let snap = snapshot();
        let req = ChatRequest::from_slice(body.as_bytes()).expect("valid fixture request");
        let reqs = req.requirements();
        let f = filter(&snap, reqs, Timestamp::default());
        let ids: Vec<&str> = f.candidates.iter().map(|&i| snap.entries()[i].info.id.as_str()).collect();
        let mut lines = vec![format!("candidates: {}", ids.join(" ")).trim().to_owned()];
        for r in &f.rejected {
            let reasons: Vec<String> = r.reasons(&snap, Timestamp::default()).iter().map(ToString::to_string).collect();
            lines.push(format!("{}: {}", snap.entries()[r.index].info.id, reasons.join("; ")));
        }
        if f.candidates.is_empty() {
            lines.push(Shortfall::of(&f, reqs).message(reqs));
        }
        let expected: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(lines, expected, "{body}");
    }

    #[test]
    fn plain_text() {
        check(
            r#"{"messages":[{"role":"user","content":"hi"}]}"#,
            "candidates: a/text:free b/vision:free c/tools:free e/tiny:free
             d/paid: not free: not a :free variant; not free: non-zero price for prompt",
        );
    }

    #[test]
    fn tools_and_image() {
        check(
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}],
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            "candidates: b/vision:free
             a/text:free: no image input; no tools
             c/tools:free: no image input
             d/paid: not free: not a :free variant; not free: non-zero price for prompt
             e/tiny:free: no image input; context 1000 < 1016 tokens needed",
        );
    }

    #[test]
    fn nothing_left_names_the_requirements() {
        check(
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}],
                "response_format":{"type":"json_schema","json_schema":{}},"max_tokens":50000}"#,
            "candidates:
             a/text:free: no image input; no structured outputs; context 8000 < 51005 tokens needed
             b/vision:free: no structured outputs; context 32000 < 51005 tokens needed
             c/tools:free: no image input
             d/paid: not free: not a :free variant; not free: non-zero price for prompt
             e/tiny:free: no image input; no structured outputs; context 1000 < 51005 tokens needed
             no free model supports: image input + structured outputs + a context of 51005 tokens (of 4 free models: image input removed 3, structured outputs removed 3, context removed 3)",
        );
    }
}
