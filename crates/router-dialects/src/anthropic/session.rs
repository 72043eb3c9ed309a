//! `metadata.user_id` → the sticky-session key. Claude Code sends a JSON string holding
//! `session_id` (2.x), or `user_<hash>_account_<uuid>_session_<uuid>` (1.x).

use serde_json::Value;

/// The core's limit on a session key, in bytes.
const MAX_KEY_BYTES: usize = 256;

/// The session key in a `user_id`: its `session_id` when it has one, else the whole of
/// it; a key over the limit is replaced by its fixed hash (the core would refuse it).
pub(crate) fn session_key(user_id: &str) -> Option<String> {
    let user_id = user_id.trim();
    let from_json = serde_json::from_str::<Value>(user_id)
        .ok()
        .and_then(|v| v.get("session_id").and_then(Value::as_str).map(str::to_owned));
    let key = from_json
        .or_else(|| user_id.rsplit_once("_session_").map(|(_, s)| s.to_owned()))
        .unwrap_or_else(|| user_id.to_owned());
    match key.len() {
        0 => None,
        n if n > MAX_KEY_BYTES => Some(format!("fnv:{:016x}", fnv1a(key.as_bytes()))),
        _ => Some(key),
    }
}

/// FNV-1a, a fixed hash (never std's randomised one), so every instance agrees.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_forms_and_plain_ids() {
        assert_eq!(session_key(r#"{"device_id":"d","session_id":"s-1"}"#).as_deref(), Some("s-1"));
        assert_eq!(session_key("user_ab_account_cd_session_ef-12").as_deref(), Some("ef-12"));
        assert_eq!(session_key("alice").as_deref(), Some("alice"));
        assert_eq!(session_key("  "), None);
        let long = "x".repeat(300);
        assert_eq!(session_key(&long), session_key(&long));
        assert!(session_key(&long).is_some_and(|k| k.len() < MAX_KEY_BYTES));
    }
}
