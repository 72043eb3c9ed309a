//! The one pass over a streamed answer: each chunk's lines are looked at once, to judge
//! the stream's head, count error events and make `model` name the model that
//! answered; a chunk in which no line changes is handed on as the same `Bytes`.

use super::line::{data_payload, error_in_payload};
use super::splice::{ModelMember, rewrite_model};
use bytes::{Bytes, BytesMut};

/// An upstream event-stream line grew longer than the limit: a protocol failure, not
/// an ever-growing buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("upstream sent an SSE line longer than the limit of {0} bytes")]
pub struct LineTooLong(pub usize);

/// One event of the stream as upstream sent it, for whoever judges the head.
#[derive(Debug)]
pub struct Event<'a> {
    /// The `data:` payload, without the prefix and line ending.
    pub payload: &'a [u8],
    /// Its top-level `error` object, when it has one.
    pub error: Option<&'a serde_json::Value>,
}

/// The scanner of one stream.
#[derive(Debug)]
pub struct StreamScan {
    /// `"model":"<id>"` in compact JSON: a line that already carries it is settled by
    /// one search.
    expected: ModelMember,
    /// The unfinished line at the end of the last chunk.
    carry: BytesMut,
    max_line: usize,
    error_events: u64,
}

impl StreamScan {
    /// A scanner that names `model` in every chunk and refuses lines over `max_line` bytes.
    pub fn new(model: &str, max_line: usize) -> Self {
        StreamScan { expected: ModelMember::new(model), carry: BytesMut::new(), max_line, error_events: 0 }
    }

    /// Error events seen so far.
    pub fn error_events(&self) -> u64 {
        self.error_events
    }

    /// The length of the line begun and not yet finished.
    pub fn pending(&self) -> usize {
        self.carry.len()
    }

    /// Scans `chunk`, calling `on_event` for each complete `data:` line (as upstream
    /// sent it), and returns what can be passed on now: `chunk` itself when no line
    /// changed and none was split across chunks, else the rewritten lines. An unfinished
    /// line waits for the rest of it.
    pub fn feed(&mut self, chunk: &Bytes, mut on_event: impl FnMut(Event<'_>)) -> Result<Bytes, LineTooLong> {
        let mut out: Option<BytesMut> = None;
        let mut start = 0;
        if !self.carry.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', chunk) else {
                if self.carry.len() + chunk.len() > self.max_line {
                    return Err(LineTooLong(self.max_line));
                }
                self.carry.extend_from_slice(chunk);
                return Ok(Bytes::new());
            };
            if self.carry.len() + nl > self.max_line {
                return Err(LineTooLong(self.max_line));
            }
            self.carry.extend_from_slice(&chunk[..=nl]);
            let line = std::mem::take(&mut self.carry);
            let mut buf = BytesMut::with_capacity(line.len() + chunk.len());
            match self.line(&line, &mut on_event) {
                Some(rewritten) => buf.extend_from_slice(&rewritten),
                None => buf.extend_from_slice(&line),
            }
            out = Some(buf);
            start = nl + 1;
        }
        // `clean` is where the run of unchanged bytes not yet copied into `out` begins.
        let (mut clean, mut at) = (start, start);
        while let Some(i) = memchr::memchr(b'\n', &chunk[at..]) {
            let end = at + i + 1;
            if end - at > self.max_line {
                return Err(LineTooLong(self.max_line));
            }
            if let Some(rewritten) = self.line(&chunk[at..end], &mut on_event) {
                let buf = out.get_or_insert_with(|| BytesMut::with_capacity(chunk.len() + 16));
                buf.extend_from_slice(&chunk[clean..at]);
                buf.extend_from_slice(&rewritten);
                clean = end;
            }
            at = end;
        }
        if chunk.len() - at > self.max_line {
            return Err(LineTooLong(self.max_line));
        }
        self.carry.extend_from_slice(&chunk[at..]);
        Ok(match out {
            None => chunk.slice(start..at),
            Some(mut buf) => {
                buf.extend_from_slice(&chunk[clean..at]);
                buf.freeze()
            }
        })
    }

    /// Whatever is left when the stream ends without a final newline, rewritten.
    pub fn finish(&mut self, on_event: impl FnMut(Event<'_>)) -> Bytes {
        let rest = std::mem::take(&mut self.carry);
        match self.line(&rest, on_event) {
            Some(rewritten) => Bytes::from(rewritten),
            None => rest.freeze(),
        }
    }

    /// Looks at one line: tells `on_event` about a data event, counts an error event,
    /// and returns the line rewritten when its `model` has to change.
    fn line(&mut self, line: &[u8], mut on_event: impl FnMut(Event<'_>)) -> Option<Vec<u8>> {
        let payload = data_payload(line)?;
        let error = error_in_payload(payload);
        self.error_events += u64::from(error.is_some());
        on_event(Event { payload, error: error.as_ref() });
        if payload.first() != Some(&b'{') {
            return None;
        }
        rewrite_model(line, payload, &self.expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` to a scanner naming `m` (lines at most 64 bytes) and returns what
    /// came out, chunk by chunk joined with `|`, then the error events seen.
    fn check(chunks: &[&str], expected: &str) {
        let mut scan = StreamScan::new("m", 64);
        let mut got = Vec::new();
        for c in chunks {
            match scan.feed(&Bytes::copy_from_slice(c.as_bytes()), |_| {}) {
                Ok(out) => got.push(String::from_utf8_lossy(&out).into_owned()),
                Err(e) => got.push(format!("error: {e}")),
            }
        }
        got.push(String::from_utf8_lossy(&scan.finish(|_| {})).into_owned());
        assert_eq!(format!("{} ({} errors)", got.join("|"), scan.error_events()), expected);
    }

    /// Feeds `chunks` to a scanner naming `m:free` and returns everything it passed on.
    fn check_joined(chunks: &[&str]) -> String {
        let mut scan = StreamScan::new("m:free", 64);
        let mut out = String::new();
        for c in chunks {
            match scan.feed(&Bytes::copy_from_slice(c.as_bytes()), |_| {}) {
                Ok(b) => out.push_str(&String::from_utf8_lossy(&b)),
                Err(e) => out.push_str(&format!("error: {e}")),
            }
        }
        out.push_str(&String::from_utf8_lossy(&scan.finish(|_| {})));
        out
    }

    #[test]
    fn rewrites_model_whatever_the_chunking() {
        for (input, expected) in [
            (": OPENROUTER PROCESSING\n\n", ": OPENROUTER PROCESSING\n\n"),
            ("data: {\"model\":\"m:free\",\"x\":1}\n\n", "data: {\"model\":\"m:free\",\"x\":1}\n\n"),
            ("data: {\"model\":\"m\",\"x\":1}\n\n", "data: {\"model\":\"m:free\",\"x\":1}\n\n"),
            (
                "data: {\"model\":\"|m\",\"x\":1}\n|\ndata: [DONE]\n\n",
                "data: {\"model\":\"m:free\",\"x\":1}\n\ndata: [DONE]\n\n",
            ),
            ("data: {\"x\":1}\r\n\r\n", "data: {\"x\":1}\r\n\r\n"),
            ("data: {\"model\":\"m\"}", "data: {\"model\":\"m:free\"}"),
        ] {
            let chunks: Vec<&str> = input.split('|').collect();
            assert_eq!(check_joined(&chunks), expected, "{input}");
        }
    }

    #[test]
    fn counts_error_events_once_each() {
        let mut scan = StreamScan::new("m:free", 1024);
        let feed = |scan: &mut StreamScan, s: &'static [u8]| scan.feed(&Bytes::from_static(s), |_| {}).map(|_| ());
        feed(
            &mut scan,
            b"data: {\"model\":\"m:free\",\"error\":null}\n\ndata: {\"choices\":[],\"content\":\"\\\"error\\\"\"}\n\n",
        )
        .expect("fits");
        assert_eq!(scan.error_events(), 0, "a null error and the word in content are not errors");
        feed(&mut scan, b"data: {\"model\":\"m\",\"error\":{\"code\":502,\"message\":\"x\"}}\n\ndata: {\"err")
            .expect("fits");
        assert_eq!(scan.error_events(), 1);
        feed(&mut scan, b"or\":{\"code\":500}}\n\n").expect("fits");
        assert_eq!(scan.error_events(), 2, "an error event split across chunks counts once");
    }

    #[test]
    fn rewrites_lines_and_counts_errors_in_one_pass() {
        check(&["data: {\"model\":\"m\"}\n\n"], "data: {\"model\":\"m\"}\n\n| (0 errors)");
        check(&["data: {\"model\":\"x\",\"a\":1}\n\n"], "data: {\"model\":\"m\",\"a\":1}\n\n| (0 errors)");
        check(
            &[": ping\ndata: {\"model\":\"x\"}\n", "\ndata: [DONE]\n\n"],
            ": ping\ndata: {\"model\":\"m\"}\n|\ndata: [DONE]\n\n| (0 errors)",
        );
        check(
            &["data: {\"model\":\"m\",\"error\":{\"code\":502}}\n\n"],
            "data: {\"model\":\"m\",\"error\":{\"code\":502}}\n\n| (1 errors)",
        );
    }

    #[test]
    fn lines_split_across_chunks_are_joined_once() {
        check(&["data: {\"mo", "del\":\"x\"}\n\n"], "|data: {\"model\":\"m\"}\n\n| (0 errors)");
        check(&["data: {\"model\":\"m\"}\n\ndata: {", "}\n"], "data: {\"model\":\"m\"}\n\n|data: {}\n| (0 errors)");
        check(&["data: {\"model\":\"x\"}"], "|data: {\"model\":\"m\"} (0 errors)");
    }

    #[test]
    fn a_line_over_the_limit_is_refused() {
        let long = format!("data: {}", "x".repeat(70));
        check(&[&long], "error: upstream sent an SSE line longer than the limit of 64 bytes| (0 errors)");
        // Split across chunks, the line is refused when its second part arrives.
        let split = check_joined(&[&long[..40], &long[40..]]);
        assert!(split.contains("error: upstream sent an SSE line longer than the limit of 64 bytes"), "{split}");
    }

    #[test]
    fn an_unchanged_chunk_is_passed_on_as_the_same_bytes() {
        let mut scan = StreamScan::new("m", 1024);
        let chunk = Bytes::from_static(b"data: {\"model\":\"m\",\"choices\":[]}\n\n");
        let out = scan.feed(&chunk, |_| {}).expect("fits");
        assert_eq!((out.as_ptr(), out.len()), (chunk.as_ptr(), chunk.len()), "no copy");
        let changed = Bytes::from_static(b"data: {\"model\":\"other\"}\n\n");
        assert_ne!(scan.feed(&changed, |_| {}).expect("fits").as_ptr(), changed.as_ptr());
    }
}
