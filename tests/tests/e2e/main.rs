//! End-to-end tests of the router: one integration-test binary, one module per area.

mod claude_code;
mod codex;
mod config;
mod contract;
mod dashboard;
mod embeddings;
mod errors;
mod h2_upstream;
mod hardening;
mod lifecycle;
mod messages;
mod messages_sdk;
mod providers;
mod resilience;
mod responses;
mod responses_clients;
mod routing;
mod sdk;
mod server;
mod support;
