//! Reading a 2xx answer: what its head says about the body (JSON, an event stream,
//! something else, an encoding), and the whole body within its size and time bounds.

use crate::failure::map_reqwest_error;
use bytes::Bytes;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use router_core::{ErrorKind, TransportError};
use std::time::Duration;

/// What a 2xx answer's head says about its body.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Content {
    pub(crate) is_sse: bool,
    /// The content type when it is neither JSON nor an event stream.
    pub(crate) not_json: Option<String>,
    /// A `content-encoding` other than `identity` left on the answer: reqwest decodes
    /// (and removes) gzip, br, deflate and zstd, so this is one it cannot.
    pub(crate) encoding: Option<String>,
}

impl Content {
    pub(crate) fn of(headers: &HeaderMap) -> Content {
        let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
        // The media type, compared without building a lower-case copy (ASCII case only,
        // as `to_ascii_lowercase` would): no allocation for the usual answers.
        let value = headers.get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()));
        let mime = value.as_deref().map(|t| t.split(';').next().unwrap_or("").trim());
        let is = |m: &str, expected: &str| m.eq_ignore_ascii_case(expected);
        let is_sse = mime.is_some_and(|m| is(m, "text/event-stream"));
        // No content type at all is judged by the body (it must be JSON).
        let is_json = mime.is_none_or(|m| {
            let b = m.as_bytes();
            is(m, "application/json")
                || (b.get(..12).is_some_and(|p| p.eq_ignore_ascii_case(b"application/"))
                    && b.len() >= 5
                    && b[b.len() - 5..].eq_ignore_ascii_case(b"+json"))
                || is(m, "text/json")
        });
        let encoding = headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .map(text)
            .find(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"));
        let not_json = (!is_json && !is_sse).then(|| mime.unwrap_or_default().to_ascii_lowercase());
        Content { is_sse, not_json: if is_sse { None } else { not_json }, encoding }
    }
}

pub(crate) fn protocol(status: u16, message: String) -> TransportError {
    let _ = status; // named in the message; a 2xx is not an error status to report
    TransportError::new(ErrorKind::Protocol, message)
}

/// The whole body, at most `max` bytes (more is a protocol failure; a declared length
/// over it fails before anything is read), within `deadline`.
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    deadline: tokio::time::Instant,
    limit: Duration,
    max: usize,
) -> Result<Bytes, TransportError> {
    let too_large = || {
        TransportError::new(ErrorKind::Protocol, format!("upstream's answer is larger than the limit of {max} bytes"))
    };
    let declared = resp.content_length().and_then(|n| usize::try_from(n).ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let read = async {
        // The chunks as they came, joined once at the end: a growing buffer would copy
        // the answer at every doubling and, for a large one, hold two copies at once.
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| map_reqwest_error(e, "reading upstream's answer failed"))?
        {
            len += chunk.len();
            if len > max {
                return Err(too_large());
            }
            chunks.push(chunk);
        }
        Ok(match chunks.len() {
            // The usual case: one chunk is the whole body; no copy.
            0 | 1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut body = bytes::BytesMut::with_capacity(len);
                for chunk in chunks.drain(..) {
                    body.extend_from_slice(&chunk);
                }
                body.freeze()
            }
        })
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| timeout_error("upstream's answer did not complete", limit))?
}

pub(crate) fn timeout_error(what: &str, limit: Duration) -> TransportError {
    TransportError::new(ErrorKind::Timeout, format!("{what} within {} ms", limit.as_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(content_type: Option<&str>, encoding: Option<&str>) -> Content {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).expect("header"));
        }
        if let Some(e) = encoding {
            h.insert(CONTENT_ENCODING, HeaderValue::from_str(e).expect("header"));
        }
        Content::of(&h)
    }

    #[test]
    fn content_types_compare_without_case() {
        let json = Content::default();
        assert_eq!(content(None, None), json);
        assert_eq!(content(Some("application/json"), None), json);
        assert_eq!(content(Some(" Application/JSON ; charset=utf-8"), None), json);
        assert_eq!(content(Some("application/vnd.api+JSON"), None), json);
        assert_eq!(content(Some("TEXT/JSON"), None), json);
        let sse = Content { is_sse: true, ..Content::default() };
        assert_eq!(content(Some("Text/Event-Stream; charset=utf-8"), None), sse);
        let html = Content { not_json: Some("text/html".into()), ..Content::default() };
        assert_eq!(content(Some("Text/HTML; charset=utf-8"), None), html);
        let plus = Content { not_json: Some("text/x+json".into()), ..Content::default() };
        assert_eq!(content(Some("text/x+json"), None), plus);
        let empty = Content { not_json: Some(String::new()), ..Content::default() };
        assert_eq!(content(Some(";"), None), empty);
        let gzip = Content { encoding: Some("gzip".into()), ..Content::default() };
        assert_eq!(content(Some("application/json"), Some(" gzip ")), gzip);
        assert_eq!(content(Some("application/json"), Some("identity")), json);
    }
}
