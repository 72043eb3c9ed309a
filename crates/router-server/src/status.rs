//! The dashboard's two APIs: `GET /api/v1/router/status`, the router's state read once
//! through [`view`] (the read model that `/readyz` and `/metrics` also show), and
//! `GET /api/v1/router/events`, the decisions log as Server-Sent Events.

pub mod view;

use crate::events::decision_stream;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::time::Duration;
pub use view::{PROVIDER, RouterView};

/// A comment line this often keeps idle event streams (and proxies) open.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// `GET /api/v1/router/status`.
pub async fn status(State(state): State<AppState>) -> Response {
    Json(RouterView::read(&state)).into_response()
}

/// `GET /api/v1/router/events`: the decisions log as Server-Sent Events.
pub async fn events(State(state): State<AppState>) -> Response {
    if state.metrics.decisions().subscribers() >= crate::events::MAX_SUBSCRIBERS {
        let mut e = crate::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("at most {} live-events subscribers at once; retry later", crate::events::MAX_SUBSCRIBERS),
            "too_many_subscribers",
        );
        e.retry_after = Some(std::time::Duration::from_secs(5));
        return e.into_response();
    }
    let stream = decision_stream(state.metrics.decisions());
    let mut resp = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_EVERY)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
