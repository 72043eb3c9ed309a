//! `router-cli explain`: the core's routing decision for a request body, in words or JSON.

use crate::models::provenance;
use crate::output::{Style, Table, count};
use router_core::Explanation;

/// The explanation in words (`--json` prints the core's own serialisation, whose
/// `error` is already in OpenRouter's shape).
pub(crate) fn render(e: &Explanation, style: Style) -> String {
    let error = e.error.as_ref();
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("requirements: {}", e.requirements.join(", ")));
    line(format!("estimated prompt: {} tokens", e.estimated_prompt_tokens));
    line(format!("catalog: {} ({} models, {} free)", provenance(&e.catalog), e.catalog.models, e.catalog.free_models));
    line(format!("candidates: {} of {}", e.candidates.len(), count(e.free_models, "free model")));
    for id in &e.candidates {
        line(format!("  {id}"));
    }
    if !e.rejected.is_empty() {
        line(format!("rejected: {}", count(e.rejected.len(), "free model")));
        let mut t = Table::new(&["  ID", "REASONS"]);
        for r in &e.rejected {
            t.push(vec![format!("  {}", r.id), r.reasons.join("; ")]);
        }
        // The header only helps when columns are aligned.
        let table = t.render(Style { bold: false, ..style });
        let body = table.split_once('\n').map_or("", |(_, rows)| rows);
        out.push_str(body);
    }
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    if e.not_free > 0 {
        line(format!("not free: {} (never used)", count(e.not_free, "model")));
    }
    if !e.cooling.is_empty() {
        line(format!("cooling down: {}", e.cooling.len()));
        for c in &e.cooling {
            let until = c.until.as_deref().map(|u| format!(" until {u}")).unwrap_or_default();
            line(format!("  {}  {}{until}", c.id, c.cause));
        }
    }
    let q = &e.quota;
    let limit = |n: Option<u32>| n.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    let mut quota = format!(
        "quota: {}/{} this minute, {}/{} today",
        q.minute_used,
        limit(q.minute_limit),
        q.day_used,
        limit(q.day_limit)
    );
    if let Some(t) = q.blocked_until {
        quota.push_str(&format!(", blocked until {t}"));
    }
    line(quota);
    match (&e.pick, error) {
        (Some(p), _) => line(format!("pick (seed {}): {p}", e.seed)),
        (None, Some(err)) => line(format!("pick (seed {}): none: {err}", e.seed)),
        (None, None) => line(format!("pick (seed {}): none: every candidate is cooling down", e.seed)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::{
        CatalogSnapshot, CatalogSource, ChatRequest, ChatTransport, Clock, ErrorKind, FixedCatalog, ModelId, ModelInfo,
        Ports, Router, RouterConfig, Timestamp, TransportError, UpstreamResponse,
    };
    use std::sync::Arc;

    /// The transport of a router that only explains: it never sends anything.
    #[derive(Debug)]
    struct Unsent;

    #[async_trait::async_trait]
    impl ChatTransport for Unsent {
        async fn send(&self, _: &ModelId, _: bytes::Bytes, _: bool) -> Result<UpstreamResponse, TransportError> {
            Err(TransportError::new(ErrorKind::Connection, "this router only explains; it sends nothing"))
        }
    }

    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            Timestamp::from_secs(1_787_000_000)
        }
    }

    fn router() -> Router {
        let models = ["a/text:free text -", "b/vision:free text,image tools", "c/paid text,image tools"]
            .iter()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let mut m = ModelInfo::new(f[0]);
                m.context_length = Some(32_768);
                m.input_modalities = f[1].split(',').map(String::from).collect();
                m.output_modalities = vec!["text".into()];
                m.supported_parameters = f[2].split(',').filter(|p| *p != "-").map(String::from).collect();
                let price = if f[0].ends_with(":free") { "0" } else { "0.000001" };
                m.pricing.0.insert("prompt".into(), price.into());
                m
            })
            .collect();
        let snap = CatalogSnapshot::new(models, CatalogSource::Memory, Timestamp::from_secs(1_787_000_000));
        let ports = Ports {
            catalog: Arc::new(FixedCatalog(Arc::new(snap))),
            transport: Arc::new(Unsent),
            clock: Arc::new(Fixed),
            store: None,
        };
        Router::new(ports, RouterConfig::default()).expect("no store to fail")
    }

    /// Explains `body` and compares the plain rendering with `expected`.
    fn check(body: &str, expected: &str) {
        let r = router();
        let req = ChatRequest::from_slice(body.as_bytes()).expect("fixture request");
        let e = r.explain(&req, 1).expect("explainable");
        let json = serde_json::to_value(&e).expect("serialisable");
        assert_eq!(json["candidates"].as_array().map(Vec::len), Some(e.candidates.len()));
        assert_eq!(json.get("error").is_some(), e.error.is_some());
        let got = render(&e, Style::PLAIN);
        let expected: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(got.lines().map(str::trim).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn servable_and_not() {
        check(
            r#"{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
            "requirements: text output, tools, context >= 16 tokens
             estimated prompt: 16 tokens
             catalog: memory, fetched just now (2026-08-17T20:53:20Z) (3 models, 2 free)
             candidates: 1 of 2 free models
             b/vision:free
             rejected: 1 free model
             a/text:free\tno tools
             not free: 1 model (never used)
             quota: 0/20 this minute, 0/50 today
             pick (seed 1): b/vision:free",
        );
        check(
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}],"response_format":{"type":"json_schema","json_schema":{}}}"#,
            "requirements: text output, image input, structured outputs, context >= 1005 tokens
             estimated prompt: 1005 tokens
             catalog: memory, fetched just now (2026-08-17T20:53:20Z) (3 models, 2 free)
             candidates: 0 of 2 free models
             rejected: 2 free models
             a/text:free\tno image input; no structured outputs
             b/vision:free\tno structured outputs
             not free: 1 model (never used)
             quota: 0/20 this minute, 0/50 today
             pick (seed 1): none: no free model supports: image input + structured outputs (of 2 free models: image input removed 1, structured outputs removed 2)",
        );
    }
}
