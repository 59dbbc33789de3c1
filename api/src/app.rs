//! The router: every route with its middleware, built apart from serving.

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::routing::{get, post};
use axum::{Router, middleware};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::protection;
use crate::routes::{auth, catalog, health, negotiations, runs, simulations};
use crate::state::AppState;

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// The largest body the auth routes read.
pub const MAX_AUTH_BODY_BYTES: usize = 16 * 1024;

pub fn app(state: AppState) -> Router {
    // Auth bodies are small; anything bigger is refused before it is read.
    let auth_routes = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/me", get(auth::me))
        .layer(DefaultBodyLimit::max(MAX_AUTH_BODY_BYTES));
    let api = Router::new()
        .merge(auth_routes)
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
        ));
    let cors = protection::cors(&state.cors_origins);

    Router::new()
        .nest("/api", api)
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                // Spans carry the route template, never the raw path with ids or query strings.
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                tracing::info_span!("http", method = %request.method(), route)
            }),
        )
        .layer(cors)
        .layer(middleware::from_fn(protection::security_headers))
        .with_state(state)
}
