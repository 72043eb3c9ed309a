//! What the adapter is given (where Redis is, the key prefix, how long to wait) and the
//! errors that refuse it before anything connects.

use crate::{DEFAULT_KEY_PREFIX, DEFAULT_OP_TIMEOUT};
use router_core::Secret;
use std::time::Duration;

/// Where Redis is and how to use it.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `redis+unix:///path`); a secret, as it
    /// may hold a password. TLS (`rediss://`) is not built in: reach a remote Redis through
    /// a private network or a TLS tunnel.
    pub url: Secret,
    /// The prefix of every key and channel.
    pub key_prefix: String,
    /// The longest a reservation waits on Redis.
    pub op_timeout: Duration,
}

impl RedisConfig {
    pub fn new(url: Secret) -> Self {
        RedisConfig { url, key_prefix: DEFAULT_KEY_PREFIX.to_owned(), op_timeout: DEFAULT_OP_TIMEOUT }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisStateError {
    /// The URL does not parse (its text is not repeated: it may hold a password).
    #[error("invalid Redis URL: {0}")]
    Url(String),
    /// A `rediss://` (TLS) URL: TLS is not built in.
    #[error(
        "redis_url: rediss:// (TLS) is not built into this router; reach Redis over a private network, or run a \
         TLS tunnel beside the router (stunnel, spiped, `ssh -L`) and set redis_url to redis://127.0.0.1:<its port>"
    )]
    Tls,
    /// A key prefix that would match other deployments' keys in a pattern, or that
    /// cannot be typed safely.
    #[error(
        "redis_key_prefix {0:?}: a prefix must not contain the glob characters * ? [ ] or whitespace (the router \
         scans its keys by prefix); e.g. \"fmr:\" or \"team-a:fmr:\""
    )]
    Prefix(String),
}

/// Refuses a `rediss://` URL and a key prefix with glob characters or whitespace.
pub(super) fn check(config: &RedisConfig) -> Result<(), RedisStateError> {
    let url = config.url.expose().trim_start().to_ascii_lowercase();
    if url.starts_with("rediss://") || url.starts_with("valkeys://") {
        return Err(RedisStateError::Tls);
    }
    let prefix = &config.key_prefix;
    if prefix.chars().any(|c| matches!(c, '*' | '?' | '[' | ']' | '\\') || c.is_whitespace() || c.is_control()) {
        return Err(RedisStateError::Prefix(prefix.clone()));
    }
    Ok(())
}
