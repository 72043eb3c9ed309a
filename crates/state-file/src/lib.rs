//! The single-process state adapter: the router's resilience state (cooldowns, quota
//! counts, an account block) in one JSON file behind the core's `StateStore` port, and
//! the atomic file write it and the catalog caches use. Several instances share their
//! state through `state-redis` instead.

mod store;

pub use store::{FileStateStore, atomic_write};
