//! Thread-per-core serving: one single-threaded runtime per core, each accepting on the
//! same listener; `enter` marks a serving thread, and every upstream transport that
//! `router_settings::build` made per thread sends a request over that thread's pool.

pub use router_settings::shard::{current, enter};
