//! Protection every response and cookie-authenticated write goes through: security headers,
//! the CORS allow-list, and the cross-site check on writes that ride on the auth cookie.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::cookies;
use crate::error::ApiError;
use crate::state::AppState;

/// Headers set on every response, errors included.
const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// Adds the security headers (keeping any a handler set itself).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Exact-origin CORS with credentials, only for the configured origins; none configured means
/// no cross-origin access at all. `Vary: Origin` is always sent.
pub fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("idempotency-key"),
        ])
        .vary([header::ORIGIN])
}

/// CORS does not stop a browser from sending a request, so a write authenticated by the cookie
/// (no `Authorization` header) must come from an allowed origin, not cross-site, and be JSON:
/// a cross-site form or `text/plain` post is 403 before any handler runs.
pub async fn cookie_write_guard(
    State(state): State<AppState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    if is_cookie_write(&request, state.cookie_secure)
        && !is_acceptable(&request, &state.cors_origins)
    {
        tracing::warn!(method = %request.method(), "cross-site cookie write refused");
        return ApiError::CrossSiteWrite.into_response();
    }
    next.run(request).await
}

/// An origin is allowed when it is listed, or when it is this server's own origin (its host
/// and port are the request's `Host`): a browser never lets another site claim either.
pub fn origin_allowed(origin: &str, headers: &axum::http::HeaderMap, allowed: &[String]) -> bool {
    if allowed.iter().any(|o| o == origin) {
        return true;
    }
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if !a.is_empty() && a.eq_ignore_ascii_case(h))
}

fn is_cookie_write(request: &Request<Body>, secure: bool) -> bool {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let has_bearer = request.headers().contains_key(header::AUTHORIZATION);
    let has_cookie = [cookies::access_name(secure), cookies::refresh_name(secure)]
        .iter()
        .any(|name| cookies::read(request.headers(), name).is_some());
    unsafe_method && has_cookie && !has_bearer
}

fn is_acceptable(request: &Request<Body>, origins: &[String]) -> bool {
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = text(header::ORIGIN) {
        if !origin_allowed(origin, headers, origins) {
            return false;
        }
    } else if text(HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|site| site != "same-origin" && site != "none")
    {
        return false;
    }
    crate::json::is_json(headers)
}
