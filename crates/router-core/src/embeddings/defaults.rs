//! A model's declared `input_type`, added to an embeddings body that has none, on its way
//! to that model's endpoint.
//!
//! NVIDIA's NeMo Retriever embedding NIM (API reference, OpenAI API): "NV-Embed-QA and E5
//! models operate in passage or query mode, and thus require the input_type parameter"
//! (`"query"` or `"passage"`), which OpenAI's API and its clients do not have; its GTE and
//! GTR models accept no `input_type`. So the default is per model, and the client's own
//! value always wins.

use crate::model::{ModelId, ModelInfo};
use crate::ports::ChatTransport;
use crate::upstream::{Endpoint, TransportError, UpstreamResponse};
use bytes::Bytes;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// `body` (a JSON object) with `"input_type": input_type` added, or `None` when it has
/// an `input_type` of its own (sent as it is) or is not an object.
pub fn with_input_type(body: &[u8], input_type: &str) -> Option<Vec<u8>> {
    let members: BTreeMap<String, IgnoredAny> = serde_json::from_slice(body).ok()?;
    if members.contains_key("input_type") {
        return None;
    }
    let end = body.iter().rposition(|&b| b == b'}')?;
    let mut out = Vec::with_capacity(body.len() + input_type.len() + 20);
    out.extend_from_slice(body.get(..end)?);
    if !members.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"\"input_type\":");
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, input_type);
    out.extend_from_slice(body.get(end..)?);
    Some(out)
}

/// A transport that adds each model's declared `input_type` to the embeddings bodies
/// sent to it (see [`with_input_type`]); everything else passes through unchanged.
pub struct EmbeddingDefaults(pub Arc<dyn ChatTransport>);

impl fmt::Debug for EmbeddingDefaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmbeddingDefaults")
    }
}

/// The future every method of the port returns (what `async_trait` makes of an `async fn`).
type Sent<'a> = Pin<Box<dyn Future<Output = Result<UpstreamResponse, TransportError>> + Send + 'a>>;

// Written out rather than with `async_trait`, so that no future of its own is boxed: the
// inner transport's is returned as it is, and a chat request costs no allocation more.
impl ChatTransport for EmbeddingDefaults {
    fn send<'life0, 'life1, 'async_trait>(
        &'life0 self,
        model: &'life1 ModelId,
        body: Bytes,
        stream: bool,
    ) -> Sent<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.0.send(model, body, stream)
    }

    fn send_to<'life0, 'life1, 'async_trait>(
        &'life0 self,
        endpoint: Endpoint,
        model: &'life1 ModelId,
        body: Bytes,
        stream: bool,
    ) -> Sent<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.0.send_to(endpoint, model, body, stream)
    }

    fn send_model<'life0, 'life1, 'async_trait>(
        &'life0 self,
        endpoint: Endpoint,
        model: &'life1 ModelInfo,
        body: Bytes,
        stream: bool,
    ) -> Sent<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let added = match (&endpoint, model.embedding.input_type.as_deref()) {
            (Endpoint::Embeddings, Some(input_type)) => with_input_type(&body, input_type).map(Bytes::from),
            _ => None,
        };
        self.0.send_model(endpoint, model, added.unwrap_or(body), stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockChatTransport;
    use crate::upstream::Body;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn the_default_is_added_only_where_the_client_said_none() {
        let added = with_input_type(br#"{"model":"m","input":["a"]} "#, "passage").expect("added");
        assert_eq!(added, br#"{"model":"m","input":["a"],"input_type":"passage"} "#);
        assert_eq!(with_input_type(br#"{"model":"m","input_type":"query"}"#, "passage"), None, "the client's wins");
        assert_eq!(with_input_type(b"{}", "query").as_deref(), Some(br#"{"input_type":"query"}"#.as_slice()));
        assert_eq!(with_input_type(b"[1]", "query"), None);
    }

    /// Sends `body` to `info` on `endpoint` through the decorator and returns what reached
    /// the inner transport.
    fn through(endpoint: Endpoint, info: &ModelInfo, body: &'static [u8]) -> Bytes {
        let seen = Arc::new(Mutex::new(Bytes::new()));
        let mut inner = MockChatTransport::new();
        let keep = Arc::clone(&seen);
        inner.expect_send_model().returning(move |_, _, body, _| {
            *keep.lock().expect("lock") = body;
            Ok(UpstreamResponse {
                status: 200,
                headers: Vec::new(),
                body: Body::Full(Bytes::new()),
                elapsed: Duration::ZERO,
            })
        });
        let defaults = EmbeddingDefaults(Arc::new(inner));
        futures_executor::block_on(defaults.send_model(endpoint, info, Bytes::from_static(body), false)).expect("sent");
        seen.lock().expect("lock").clone()
    }

    #[test]
    fn only_embeddings_bodies_to_a_model_with_a_default_are_changed() {
        let mut nv = ModelInfo::new("nvidia/nv-embedqa-e5-v5");
        nv.embedding.input_type = Some("passage".into());
        let body = br#"{"model":"nv-embedqa-e5-v5","input":"x"}"#;
        let sent = through(Endpoint::Embeddings, &nv, body);
        assert_eq!(&sent[..], br#"{"model":"nv-embedqa-e5-v5","input":"x","input_type":"passage"}"#);
        assert_eq!(&through(Endpoint::Chat, &nv, body)[..], body, "not a chat body");
        let plain = ModelInfo::new("ollama/nomic-embed-text");
        assert_eq!(&through(Endpoint::Embeddings, &plain, body)[..], body, "no default declared");
    }
}
