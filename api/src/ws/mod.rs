//! `/ws`: live progress for the batch owner. The handshake is authenticated by the access
//! cookie from an allowed `Origin`, or by a single-use ticket from `POST /api/ws/ticket`;
//! a long-lived token in the URL is never accepted.

mod connection;
pub mod hub;

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Extension, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use crate::auth::{AuthUser, cookies, tokens};
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub use hub::Hub;

/// The largest message a client may send, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// `POST /api/ws/ticket`: a ticket for one WebSocket handshake within 30 s.
pub async fn ticket(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let session = user.session()?;
    let ticket = state.tokens.issue_ticket(&user.id, session)?;
    Ok(Json(json!({
        "ticket": ticket,
        "expiresIn": tokens::TICKET_TTL.as_secs(),
    })))
}

/// `GET /ws`.
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let upgrade = upgrade.map_err(|_| ApiError::BadRequest {
        field: None,
        message: "a WebSocket upgrade request is required".into(),
    })?;
    let params = single_params(query)?;
    let (user_id, session) = authenticate(&state, &params, &headers)
        .await
        .inspect_err(|e| {
            tracing::warn!(client_ip = %ip, reason = %e, "websocket handshake refused");
        })?;
    if state
        .store
        .session_user(&user_id, &session)
        .await?
        .is_none()
    {
        return Err(ApiError::Unauthorized);
    }
    let cap = state.security.ws_max_connections_per_user;
    let Some(events) = state.hub.join(&user_id, cap) else {
        tracing::warn!(user_id, client_ip = %ip, cap, "websocket connection cap reached");
        return Err(ApiError::RateLimited {
            limit: cap as u32,
            window_secs: 0,
            retry_after_secs: 5,
        });
    };
    tracing::info!(user_id, client_ip = %ip, "websocket opened");
    let connection = connection::Connection {
        state: state.clone(),
        user_id,
        session,
        events,
    };
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection.serve(socket)))
}

/// Query parameters, each at most once (a repeated `ticket` is ambiguous, so refused).
fn single_params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<HashMap<String, String>> {
    let bad = |message: &str| ApiError::BadRequest {
        field: Some("query".into()),
        message: message.into(),
    };
    let Query(pairs) = query.map_err(|_| bad("the query string is malformed"))?;
    let mut params = HashMap::new();
    for (name, value) in pairs {
        if params.insert(name, value).is_some() {
            return Err(bad("a query parameter is repeated"));
        }
    }
    Ok(params)
}

/// The user and session behind a handshake.
async fn authenticate(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> ApiResult<(String, String)> {
    if params.contains_key("token") || params.contains_key("access_token") {
        // Tokens in URLs end up in logs and histories; only tickets go there.
        return Err(ApiError::Unauthorized);
    }
    if let Some(ticket) = params.get("ticket") {
        let claims = state.tokens.verify_ticket(ticket)?;
        let jti = claims.jti.as_deref().unwrap_or_default();
        let expires = Utc
            .timestamp_opt(claims.exp as i64 + tokens::LEEWAY_SECS as i64, 0)
            .single()
            .ok_or(ApiError::Unauthorized)?;
        if !state.store.spend_ticket(jti, expires).await? {
            return Err(ApiError::Unauthorized);
        }
        return Ok((claims.sub, claims.sid));
    }
    let cookie = cookies::read(headers, cookies::access_name(state.cookie_secure))
        .ok_or(ApiError::Unauthorized)?;
    // A cookie rides along on any page's handshake: only allowed origins may use it.
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Forbidden)?;
    if !crate::protection::origin_allowed(origin, headers, &state.cors_origins) {
        return Err(ApiError::Forbidden);
    }
    let claims = state.tokens.verify(cookie)?;
    Ok((claims.sub, claims.sid))
}
