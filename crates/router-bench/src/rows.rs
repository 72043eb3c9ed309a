//! The scenario rows of a timed run: chat JSON and stream at one and at `--connections`
//! connections, then each other surface at one connection; over a TLS upstream, chat at
//! one connection against a plaintext fake too, each right after its TLS row.

use crate::load::{Ctx, Row, scenario};
use crate::surface::{EMBEDDING_DIMENSION, EMBEDDING_MODEL, Surface};
use crate::upstream::Upstream;
use anyhow::Result;
use fake_upstream::FakeUpstream;

/// The suffix of the plaintext rows beside a TLS run.
pub(crate) const PLAIN_SUFFIX: &str = " (h1 upstream)";

/// The fake upstream as the benchmark wants it: recording off (a copy of every request
/// is the tests' need), and an embedding model listed before the router reads its catalog.
pub(crate) async fn start_fake(upstream: Upstream) -> FakeUpstream {
    let fake = upstream.start().await;
    fake.set_recording(false);
    fake.set_embedding_models(fake_upstream::embedding_models_json(&[EMBEDDING_MODEL]).to_string());
    fake.set_embedding_dimension(EMBEDDING_MODEL, EMBEDDING_DIMENSION);
    fake
}

/// Every row, in order; `plain` is the plaintext pair beside a TLS run.
pub(crate) async fn rows(ctx: &Ctx<'_>, plain: Option<&Ctx<'_>>) -> Result<Vec<Row>> {
    let conns = ctx.o.connections;
    let wanted = |name: &str| wanted(&ctx.o.rows, name);
    let mut rows = Vec::new();
    for (stream, n) in [(false, 1), (false, conns), (true, 1), (true, conns)] {
        let name = format!("{} c={n}", if stream { "stream" } else { "json" });
        if !wanted(&name) {
            continue;
        }
        rows.push(scenario(ctx, name.clone(), Surface::Chat, stream, n).await?);
        if let Some(plain) = plain
            && n == 1
        {
            rows.push(scenario(plain, format!("{name}{PLAIN_SUFFIX}"), Surface::Chat, stream, 1).await?);
        }
    }
    for (surface, stream, name) in [
        (Surface::Messages, false, "messages json c=1"),
        (Surface::Messages, true, "messages stream c=1"),
        (Surface::Responses, true, "responses stream c=1"),
        (Surface::Embeddings, false, "embeddings c=1"),
    ] {
        if !wanted(name) {
            continue;
        }
        rows.push(scenario(ctx, name.into(), surface, stream, 1).await?);
    }
    Ok(rows)
}

/// `--rows`: a row runs when no prefix is given or its name starts with one of them.
fn wanted(prefixes: &[String], name: &str) -> bool {
    prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::{PLAIN_SUFFIX, wanted};

    #[test]
    fn a_row_prefix_takes_the_row_and_its_plaintext_pair_and_no_other() {
        let prefixes = vec!["json c=1".to_owned()];
        assert!(wanted(&prefixes, "json c=1"));
        assert!(wanted(&prefixes, &format!("json c=1{PLAIN_SUFFIX}")));
        assert!(!wanted(&prefixes, "json c=32"));
        assert!(!wanted(&prefixes, "stream c=1"));
        assert!(wanted(&[], "embeddings c=1"), "no prefix: every row");
    }
}
