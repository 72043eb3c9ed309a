//! What an answer says it spent: the `usage` of a whole answer, or of a stream's last
//! chunk that carries one, read only for answers whose tokens were charged against a
//! budget (so that the charge, counted up front, is settled to what was really spent).

use super::line::data_payload;
use crate::upstream::ByteStream;
use bytes::Bytes;
use futures_core::Stream;
use memchr::memmem;
use serde::Deserialize;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

/// The searcher for the `"usage"` key, built once for the process.
static USAGE_KEY: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\"usage\""));

/// The longest unfinished line kept while looking for a usage chunk; a usage chunk is
/// small, and a longer line is skipped rather than held.
pub const MAX_USAGE_LINE: usize = 64 * 1024;

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// The tokens an answer (or a chunk's payload) says it spent: `usage.total_tokens`, else
/// its prompt and completion tokens added; `None` without a usable `usage`.
pub fn usage_total(json: &[u8]) -> Option<u64> {
    USAGE_KEY.find(json)?;
    let usage = serde_json::from_slice::<WithUsage>(json).ok()?.usage?;
    usage.total_tokens.or_else(|| match (usage.prompt_tokens, usage.completion_tokens) {
        (None, None) => None,
        (p, c) => Some(p.unwrap_or(0).saturating_add(c.unwrap_or(0))),
    })
}

/// Passes `stream` on unchanged and, when it ends, calls `spent` with the last usage
/// its chunks carried (nothing when none did, or when the stream is dropped or fails
/// before its end: the charge then stands).
pub fn watch_usage(stream: ByteStream, spent: impl FnOnce(u64) + Send + 'static) -> ByteStream {
    Box::pin(UsageWatch { inner: stream, tail: Vec::new(), skipping: false, last: None, spent: Some(Box::new(spent)) })
}

struct UsageWatch {
    inner: ByteStream,
    /// The unfinished line carried to the next chunk.
    tail: Vec<u8>,
    /// The unfinished line grew past [`MAX_USAGE_LINE`]: drop it up to its end.
    skipping: bool,
    last: Option<u64>,
    spent: Option<Box<dyn FnOnce(u64) + Send>>,
}

impl UsageWatch {
    fn line(&mut self, line: &[u8]) {
        if let Some(total) = data_payload(line).and_then(usage_total) {
            self.last = Some(total);
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (head, after) = rest.split_at(i + 1);
            rest = after;
            if std::mem::take(&mut self.skipping) {
                self.tail.clear();
                continue;
            }
            if self.tail.is_empty() {
                self.line(head);
            } else {
                let mut joined = std::mem::take(&mut self.tail);
                joined.extend_from_slice(head);
                self.line(&joined);
            }
        }
        if !self.skipping {
            self.tail.extend_from_slice(rest);
            if self.tail.len() > MAX_USAGE_LINE {
                self.tail = Vec::new();
                self.skipping = true;
            }
        }
    }
}

impl Stream for UsageWatch {
    type Item = Result<Bytes, crate::upstream::TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => this.feed(chunk),
            Poll::Ready(None) => {
                if !this.skipping && !this.tail.is_empty() {
                    let tail = std::mem::take(&mut this.tail);
                    this.line(&tail);
                }
                if let (Some(total), Some(spent)) = (this.last, this.spent.take()) {
                    spent(total);
                }
            }
            // A failed stream did not end as the answer says: its charge stands.
            Poll::Ready(Some(Err(_))) => this.spent = None,
            Poll::Pending => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::{Arc, Mutex};

    #[test]
    fn usage_is_read_from_an_answer() {
        assert_eq!(
            usage_total(br#"{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#),
            Some(17)
        );
        assert_eq!(usage_total(br#"{"usage":{"prompt_tokens":12,"completion_tokens":5}}"#), Some(17));
        assert_eq!(usage_total(br#"{"usage":{"prompt_tokens":9}}"#), Some(9));
        assert_eq!(usage_total(br#"{"usage":null}"#), None);
        assert_eq!(usage_total(br#"{"usage":{}}"#), None);
        assert_eq!(usage_total(br#"{"choices":[]}"#), None);
        assert_eq!(usage_total(br#"{"usage":{"total_tokens":"many"}}"#), None);
        assert_eq!(usage_total(b"not json \"usage\""), None);
    }

    fn watched(chunks: Vec<&'static [u8]>) -> (String, Option<u64>) {
        let seen = Arc::new(Mutex::new(None));
        let out = seen.clone();
        let s: ByteStream = Box::pin(futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))));
        let passed = futures_executor::block_on(
            watch_usage(s, move |n| *out.lock().expect("lock") = Some(n)).collect::<Vec<_>>(),
        );
        let text = passed.into_iter().map(|c| String::from_utf8_lossy(&c.expect("ok")).into_owned()).collect();
        let spent = *seen.lock().expect("lock");
        (text, spent)
    }

    #[test]
    fn the_last_usage_of_a_stream_is_reported_at_its_end_whatever_the_split() {
        let whole = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
                     data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n\
                     data: [DONE]\n\n";
        let bytes: &'static [u8] = Box::leak(whole.as_bytes().to_vec().into_boxed_slice());
        for split in [1, 7, 40, 60, 90, bytes.len() - 1] {
            let (a, b) = bytes.split_at(split);
            assert_eq!(watched(vec![a, b]), (whole.to_owned(), Some(15)), "split at {split}");
        }
        // No usage: nothing reported. A final line without its newline still counts.
        assert_eq!(watched(vec![b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n"]).1, None);
        assert_eq!(watched(vec![b"data: {\"usage\":{\"total_tokens\":4}}"]).1, Some(4));
    }

    #[test]
    fn an_overlong_line_is_skipped_not_held() {
        let long: &'static [u8] =
            Box::leak(format!("data: {}", "x".repeat(MAX_USAGE_LINE + 10)).into_bytes().into_boxed_slice());
        let (_, spent) =
            watched(vec![long, b"\"usage\":{\"total_tokens\":1}}\n", b"data: {\"usage\":{\"total_tokens\":8}}\n"]);
        assert_eq!(spent, Some(8));
    }

    #[test]
    fn a_failed_stream_reports_nothing() {
        let seen = Arc::new(Mutex::new(None));
        let out = seen.clone();
        let items: Vec<Result<Bytes, crate::upstream::TransportError>> = vec![
            Ok(Bytes::from_static(b"data: {\"usage\":{\"total_tokens\":8}}\n\n")),
            Err(crate::upstream::TransportError::new(crate::upstream::ErrorKind::Connection, "reset")),
        ];
        let s: ByteStream = Box::pin(futures_util::stream::iter(items));
        let _ = futures_executor::block_on(
            watch_usage(s, move |n| *out.lock().expect("lock") = Some(n)).collect::<Vec<_>>(),
        );
        assert_eq!(*seen.lock().expect("lock"), None);
    }
}
