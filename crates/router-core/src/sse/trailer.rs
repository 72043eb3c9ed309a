//! What rides on a stream's final chunk: `openrouter_metadata`, inserted before the
//! `data: [DONE]` line.

use bytes::{Bytes, BytesMut};
use memchr::memmem;
use std::sync::LazyLock;

/// The searcher for the `[DONE]` line, built once for the process rather than per chunk.
static DONE_LINE: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"data: [DONE]"));

/// Inserts `trailer` (whole SSE events) before the stream's `data: [DONE]` line, or at
/// its end when it has none: how `openrouter_metadata` rides on the final chunk.
pub fn insert_before_done(stream: crate::upstream::ByteStream, trailer: Bytes) -> crate::upstream::ByteStream {
    use futures_util::StreamExt;
    let state = (stream, Some(trailer));
    Box::pin(futures_util::stream::unfold(state, |(mut stream, mut trailer)| async move {
        let Some(t) = trailer.as_ref() else {
            let next = stream.next().await?;
            return Some((next, (stream, None)));
        };
        match stream.next().await {
            None => {
                let t = t.clone();
                Some((Ok(t), (stream, None)))
            }
            Some(Ok(chunk)) => match find_done(&chunk) {
                Some(at) => {
                    let mut out = BytesMut::with_capacity(chunk.len() + t.len());
                    out.extend_from_slice(&chunk[..at]);
                    out.extend_from_slice(t);
                    out.extend_from_slice(&chunk[at..]);
                    trailer = None;
                    Some((Ok(out.freeze()), (stream, trailer)))
                }
                None => Some((Ok(chunk), (stream, trailer))),
            },
            Some(Err(e)) => Some((Err(e), (stream, trailer))),
        }
    }))
}

/// Where a `data: [DONE]` line starts in `chunk`.
fn find_done(chunk: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = DONE_LINE.find(&chunk[from..]).map(|i| i + from) {
        if i == 0 || chunk[i - 1] == b'\n' {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// One SSE event carrying `member: value` in an otherwise empty chunk.
pub fn member_chunk(model: &str, member: &str, value: &serde_json::Value) -> Bytes {
    let mut chunk = serde_json::Map::new();
    chunk.insert("object".into(), "chat.completion.chunk".into());
    chunk.insert("model".into(), model.into());
    chunk.insert("choices".into(), serde_json::Value::Array(Vec::new()));
    chunk.insert(member.into(), value.clone());
    Bytes::from(format!("data: {}\n\n", serde_json::Value::Object(chunk)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_goes_before_done() {
        use futures_util::StreamExt;
        let run = |chunks: Vec<&'static [u8]>| {
            let s: crate::upstream::ByteStream =
                Box::pin(futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))));
            let out = futures_executor::block_on(
                insert_before_done(s, Bytes::from_static(b"data: {\"m\":1}\n\n")).collect::<Vec<_>>(),
            );
            out.into_iter().map(|c| String::from_utf8_lossy(&c.expect("ok")).into_owned()).collect::<String>()
        };
        assert_eq!(run(vec![b"data: {}\n\n", b"data: [DONE]\n\n"]), "data: {}\n\ndata: {\"m\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(run(vec![b"data: {}\n\ndata: [DONE]\n\n"]), "data: {}\n\ndata: {\"m\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(
            run(vec![b"data: {\"x\":\"data: [DONE]\"}\n\n"]),
            "data: {\"x\":\"data: [DONE]\"}\n\ndata: {\"m\":1}\n\n"
        );
    }
}
