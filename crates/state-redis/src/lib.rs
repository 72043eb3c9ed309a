//! The [`SharedState`](router_core::SharedState) adapter on Redis (≥ 6) or Valkey: what several router instances
//! behind one load balancer share, so that the account's quota is spent once and a model
//! one instance found cooling is left alone by all.
//!
//! - **Quotas and probes, atomically.** One Lua script per upstream attempt adds the
//!   instance's backlog (requests it sent while Redis did not answer, in batches with ids:
//!   each counted once, however often it arrives), checks the account block and the
//!   per-minute / per-day counters, claims the half-open probe when the attempt is one
//!   (`SET NX PX`), and counts the request once under its attempt's id, in one round trip
//!   bounded by [`DEFAULT_OP_TIMEOUT`]. A script that runs after its caller gave up
//!   therefore never counts a request twice.
//! - **A lost count is rebuilt.** Each instance's own day count is kept in Redis beside
//!   the day counter and sent again by its heartbeat; a day counter found missing (Redis
//!   restarted without persistence, or flushed) is rebuilt as the sum of the instances'
//!   counts and at least the count the caller last saw.
//! - **Cooldowns, breakers, account blocks, by pub/sub.** Each is written to a key that
//!   expires when it does (so an instance started later finds it) and published on
//!   `{prefix}events`; the other instances merge it into their local copy at once.
//! - **Faults.** Redis away at start or mid-run: requests are decided locally at once
//!   (no waiting on a dead connection), the loss is logged once, [`SharedStatus`](router_core::shared::SharedStatus) says so,
//!   a heartbeat retries with back-off, and on return the missed events are reloaded, the
//!   unsent ones sent and the backlog merged by the heartbeat; the instance keeps to its
//!   share until every live instance has merged. Redis refusing the password is a
//!   configuration error, not an outage: nothing is sent on the shared quota until it is
//!   fixed. `rediss://` (TLS is not built in) and a key prefix with glob characters or
//!   whitespace are refused when the adapter is built.
//!
//! Keys, all under the prefix (default [`DEFAULT_KEY_PREFIX`]):
//! `quota:{scope}:m:{minute}` and `quota:{scope}:d:{day}` (counters, expiring after their
//! window), `quota:{scope}:i:{day}` (each instance's own day count, a hash),
//! `counted:{instance}:{day}` (the attempt and batch ids counted, a bitmap),
//! `block:{scope}` (the account block), `tokens:{budget}:m:{minute}` and
//! `tokens:{budget}:d:{day}` (a provider's or a model's token budget, counted by a second
//! script that charges all of an attempt's budgets or none, and corrected from the
//! answer's `usage` in the background), `probe:{model}` (the probe claim),
//! `cool:{model}:{event}` (cooldowns), `instances` (a sorted set of live instances),
//! `merged` (when each instance last had nothing uncounted, a sorted set).

mod keys;
mod link;
mod script;

pub use link::{RedisConfig, RedisState, RedisStateError};

use std::time::Duration;

/// The prefix of every key and channel, by default: several deployments may share one Redis.
pub const DEFAULT_KEY_PREFIX: &str = "fmr:";
/// The longest a request waits on Redis for its reservation, by default, in
/// milliseconds; then it is decided locally.
pub const DEFAULT_OP_TIMEOUT_MS: u64 = 50;
/// [`DEFAULT_OP_TIMEOUT_MS`] as a duration.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(DEFAULT_OP_TIMEOUT_MS);
/// How often an instance says it is alive and checks that Redis answers.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(250);
/// An instance not heard from for this long no longer counts in the shares of the quota
/// that instances keep to while Redis is away.
pub const INSTANCE_TTL: Duration = Duration::from_secs(5);
/// The first and the longest wait between two attempts to reach Redis again.
pub const RECONNECT_MIN: Duration = Duration::from_millis(100);
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How long an "unavailable" mark stays in Redis (it lasts until a later catalog lists
/// the model, which each instance decides for itself).
pub const UNAVAILABLE_TTL: Duration = Duration::from_secs(3600);
