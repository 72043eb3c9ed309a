//! A reqwest failure as the core's transport error: its kind, its message (the chain of
//! causes, never the URL or the key), and local exhaustion told apart.

use crate::local::{LOCAL_RESOURCE_RETRY_AFTER, caused_by_local_exhaustion, local_exhaustion_warning};
use router_core::{ErrorKind, Secret, TransportError};

/// A reqwest failure as a transport error. The URL is left out (it is ours, not news),
/// and the key is never part of a reqwest error: it travels in a header.
pub(crate) fn map_reqwest_error(e: reqwest::Error, context: &str) -> TransportError {
    let e = e.without_url();
    if caused_by_local_exhaustion(&e) {
        let message = format!("{context}: {}", error_chain(&e));
        local_exhaustion_warning(&message);
        return TransportError::new(ErrorKind::LocalResource, message).with_retry_after(LOCAL_RESOURCE_RETRY_AFTER);
    }
    let kind = if e.is_connect() {
        ErrorKind::Connection
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() {
        ErrorKind::Protocol
    } else {
        // A reset or closed connection mid-request or mid-body.
        ErrorKind::Connection
    };
    TransportError::new(kind, format!("{context}: {}", error_chain(&e)))
}

/// The error and its sources, outermost first.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

pub(crate) fn scrub_value(v: &mut serde_json::Value, keys: &[&Secret]) {
    match v {
        serde_json::Value::String(s) => *s = router_core::scrub(s, keys),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| scrub_value(x, keys)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| scrub_value(x, keys)),
        _ => {}
    }
}
