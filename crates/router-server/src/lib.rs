//! The OpenRouter-compatible HTTP proxy: configuration, the axum application, and a
//! runner with graceful shutdown. `main.rs` composes them; tests drive [`app`] over
//! real loopback HTTP.

pub mod anthropic_errors;
pub mod compose;
pub mod config;
pub mod dashboard;
pub mod embeddings;
pub mod error;
pub mod events;
pub mod handlers;
pub mod host;
pub mod limits;
pub mod messages;
pub mod metadata;
pub mod metrics;
pub mod models;
mod prom;
mod reframe;
pub mod responses;
pub mod serve;
pub mod shard;
pub mod stall;
pub mod state;
pub mod status;

pub use compose::{Background, BuildError, Server, build, build_sharded};
pub use config::{Config, ConfigError, LogFormat};
pub use error::ApiError;
pub use limits::{ServeLimits, ServeStats};
pub use metrics::Metrics;
pub use reframe::{KEEPALIVE_INTERVAL, KeepaliveClock};
pub use state::{AppState, ClientKeys, SeedSource};

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

pub use router_settings::DEFAULT_SHUTDOWN_GRACE;

/// The HTTP application: every endpoint, the JSON error fallbacks, client keys when
/// configured, the body limit, and the per-request log line and counters.
pub fn app(state: AppState) -> axum::Router {
    use handlers::*;
    let mut api = axum::Router::new()
        .route("/api/v1/chat/completions", post(chat))
        .route("/v1/chat/completions", post(chat))
        .route("/api/v1/responses", post(responses::responses))
        .route("/v1/responses", post(responses::responses))
        .route("/api/v1/messages", post(messages::messages))
        .route("/v1/messages", post(messages::messages))
        .route("/api/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/api/v1/models", get(messages::list_models))
        .route("/v1/models", get(messages::list_models))
        .route("/api/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/api/v1/embeddings/models", get(embeddings::list_models))
        .route("/v1/embeddings/models", get(embeddings::list_models))
        .route("/api/v1/embeddings/explain", post(embeddings::explain))
        .route("/api/v1/router/explain", post(explain))
        .route("/api/v1/router/status", get(status::status))
        .route("/api/v1/router/events", get(status::events));
    if state.client_keys.required() {
        api = api.route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    }
    axum::Router::new()
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/dashboard", get(dashboard::index))
        .route("/dashboard/app.css", get(dashboard::css))
        .route("/dashboard/app.js", get(dashboard::js))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // `observe` also refuses what `limits::guard` would (one layer instead of two).
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(state.max_body_size))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets
/// in-flight requests and streams finish for up to [`DEFAULT_SHUTDOWN_GRACE`].
pub async fn run(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with_grace(listener, app, shutdown, DEFAULT_SHUTDOWN_GRACE).await
}

/// [`run`] with the grace period given: `grace` after the signal it returns even if
/// connections are still open (the binary then exits, which drops them).
pub async fn run_with_grace(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    run_with_limits(listener, app, shutdown, grace, ServeLimits::default()).await
}

/// [`run_with_grace`] with the client-side limits given (see [`limits`] and [`serve`]).
pub async fn run_with_limits(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    limits: ServeLimits,
) -> std::io::Result<()> {
    serve::serve(listener, app, shutdown, grace, limits).await
}
