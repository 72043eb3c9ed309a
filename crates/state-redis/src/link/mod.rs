//! The connection to Redis and the background tasks: the heartbeat (liveness, instance
//! count, reconnection), the subscriber (events from other instances) and the publisher
//! (this instance's events, kept until they are sent).
//!
//! `config` what the adapter is given, `state` the adapter and its `SharedState`
//! methods, `inner` what they and the tasks share, `reserve` and `tokens` the scripts,
//! `heartbeat` and `events` the background tasks.

mod config;
mod events;
mod heartbeat;
mod inner;
mod reserve;
mod state;
mod tokens;

pub use config::{RedisConfig, RedisStateError};
pub use state::RedisState;
