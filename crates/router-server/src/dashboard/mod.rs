//! `GET /dashboard`: one page served from the binary (HTML, CSS and JavaScript embedded
//! with `include_str!`, no CDN, no external font), reading `GET /api/v1/router/status`,
//! `GET /api/v1/router/events` and `POST /api/v1/router/explain`. The page itself needs
//! no key; its data does when client keys are configured (the page asks once and keeps
//! the key in `sessionStorage`).

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub const INDEX_HTML: &str = include_str!("index.html");
pub const APP_CSS: &str = include_str!("app.css");
pub const APP_JS: &str = include_str!("app.js");

/// Only this origin, for everything: the page works offline and loads nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    resp
}

/// `GET /dashboard`.
pub async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

/// `GET /dashboard/app.css`.
pub async fn css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// `GET /dashboard/app.js`.
pub async fn js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

#[cfg(test)]
mod names;

#[cfg(test)]
mod tests {
    use super::*;

    /// The bar: under 100 KB transferred, nothing from another origin.
    #[test]
    fn the_page_is_small_and_self_contained() {
        let total = INDEX_HTML.len() + APP_CSS.len() + APP_JS.len();
        assert!(total < 100 * 1024, "the dashboard is {total} bytes");
        for (name, text) in [("index.html", INDEX_HTML), ("app.css", APP_CSS), ("app.js", APP_JS)] {
            for needle in ["http://", "https://", "//cdn", "@import", "fonts.g"] {
                assert!(!text.contains(needle), "{name} refers to `{needle}`");
            }
        }
        assert!(INDEX_HTML.contains("/dashboard/app.js") && INDEX_HTML.contains("/dashboard/app.css"));
    }
}
