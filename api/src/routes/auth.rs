//! `/api/auth`: register, login and who-am-i.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{AuthUser, password, tokens};
use crate::error::{ApiError, ApiResult};
use crate::json::JsonBody;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> ApiResult<Response> {
    let username = body.username.trim().to_string();
    let length = username.chars().count();
    if !(3..=50).contains(&length) {
        return Err(ApiError::validation(
            "username",
            "must be 3 to 50 characters",
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || "._-@".contains(c))
    {
        return Err(ApiError::validation(
            "username",
            "may hold letters, digits and . _ - @ only",
        ));
    }
    password::check_policy(&body.password)?;
    let hash = password::hash(body.password).await?;
    let user = state.store.create_user(&username, &hash).await?;
    tracing::info!(user_id = %user.id, "user registered");
    session_response(&state, StatusCode::CREATED, &user.id, &user.username)
}

pub async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> ApiResult<Response> {
    let user = state.store.user_by_name(body.username.trim()).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if !password::verify(body.password, stored).await {
        tracing::warn!(
            user_id = user.as_ref().map(|u| u.id.as_str()),
            "failed login"
        );
        return Err(ApiError::InvalidCredentials);
    }
    let user = user.ok_or(ApiError::InvalidCredentials)?;
    session_response(&state, StatusCode::OK, &user.id, &user.username)
}

pub async fn me(user: AuthUser) -> Json<serde_json::Value> {
    Json(json!({"user": {"id": user.id, "username": user.username}}))
}

/// The token in the body for API clients, and as an httpOnly cookie for browsers.
fn session_response(
    state: &AppState,
    status: StatusCode,
    user_id: &str,
    username: &str,
) -> ApiResult<Response> {
    let token = state.tokens.issue(user_id)?;
    let mut headers = HeaderMap::new();
    let cookie = tokens::access_cookie(&token, state.cookie_secure);
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = json!({"user": {"id": user_id, "username": username}, "token": token, "tokenType": "Bearer"});
    Ok((status, headers, Json(body)).into_response())
}
