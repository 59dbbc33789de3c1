//! The router: every route with its middleware, built apart from serving.

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Router, middleware};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::routes::{api_keys, auth, catalog, health, negotiations, runs, simulations};
use crate::state::AppState;
use crate::{client_ip, limits, protection, ws};

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// The largest body the auth routes read.
pub const MAX_AUTH_BODY_BYTES: usize = 16 * 1024;

pub fn app(state: AppState) -> Router {
    // Auth bodies are small; anything bigger is refused before it is read.
    let auth_routes = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .layer(DefaultBodyLimit::max(MAX_AUTH_BODY_BYTES));
    let api = Router::new()
        .merge(auth_routes)
        .route("/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/api-keys/{id}", delete(api_keys::delete))
        .route("/ws/ticket", post(ws::ticket))
        .route(
            "/negotiations",
            post(negotiations::create).get(negotiations::list),
        )
        .route("/negotiations/{id}", get(negotiations::get))
        .route("/simulations/queue/{id}", post(simulations::create))
        .route("/simulations/queue/{id}/start", post(simulations::start))
        .route("/simulations/queue/{id}/pause", post(simulations::pause))
        .route("/simulations/queue/{id}/resume", post(simulations::resume))
        .route("/simulations/queue/{id}/stop", post(simulations::stop))
        .route("/simulations/queue/{id}/retry", post(simulations::retry))
        .route(
            "/simulations/queue/{id}/restart-failed",
            post(simulations::restart_failed),
        )
        .route("/simulations/queue/{id}/status", get(simulations::status))
        .route("/simulations/queue/{id}/results", get(simulations::results))
        .route("/simulations/queue/{id}/runs", get(simulations::runs))
        .route("/simulation-runs/{id}", get(runs::get))
        .route("/influencing-techniques", get(catalog::techniques))
        .route("/techniques", get(catalog::techniques))
        .route("/negotiation-tactics", get(catalog::tactics))
        .route("/tactics", get(catalog::tactics))
        .route("/personality-types", get(catalog::personalities))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            protection::cookie_write_guard,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::general,
        ));
    let cors = protection::cors(&state.cors_origins);
    let request_timeout = state.security.request_timeout;

    Router::new()
        .nest("/api", api)
        .route("/ws", get(ws::upgrade))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client_ip::resolve_client,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                // Spans carry the route template, never the raw path with ids or query strings.
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                tracing::info_span!(
                    "http",
                    method = %request.method(),
                    route,
                    client_ip = tracing::field::Empty,
                    user_id = tracing::field::Empty,
                )
            }),
        )
        .layer(cors)
        .layer(middleware::from_fn(protection::security_headers))
        .with_state(state)
}
