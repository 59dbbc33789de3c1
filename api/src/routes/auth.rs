//! `/api/auth`: register, login, refresh, logout and who-am-i. A login opens a session: an
//! access token and a refresh token whose family rotates on every use.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use arian_core::store::entities::user;
use arian_core::store::sessions::RefreshOutcome;

use crate::auth::{AuthUser, Credential, authenticate, cookies, password, secrets, tokens};
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiResult};
use crate::json::JsonBody;
use crate::limits;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

pub async fn register(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    JsonBody(body): JsonBody<Credentials>,
) -> ApiResult<Response> {
    let ip_key = format!("ip:{}", limits::limiter_key(ip));
    let attempt = state
        .limits
        .auth_failures_per_ip
        .begin(&ip_key)
        .inspect_err(|_| {
            tracing::warn!(limit = "auth", client_ip = %ip, "rate limit hit on register");
        })?;
    // A refused registration keeps counting; a successful one is taken back.
    let user = create_account(&state, body).await?;
    state.limits.auth_failures_per_ip.succeeded(attempt);
    tracing::info!(user_id = %user.id, client_ip = %ip, "user registered");
    open_session(&state, StatusCode::CREATED, &user).await
}

/// Usernames are ASCII and case-insensitive (stored in lower case), so no two accounts can
/// look alike: `Alice`, `ALICE` and a Cyrillic `аlice` are one name or refused.
fn normalized_username(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

async fn create_account(state: &AppState, body: Credentials) -> ApiResult<user::Model> {
    let username = normalized_username(&body.username);
    if !(3..=50).contains(&username.chars().count()) {
        return Err(ApiError::validation(
            "username",
            "must be 3 to 50 characters",
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(ApiError::validation(
            "username",
            "may hold ASCII letters, digits and . _ - @ only",
        ));
    }
    password::check_policy(&body.password)?;
    let hash = password::hash(body.password).await?;
    Ok(state.store.create_user(&username, &hash).await?)
}

/// Unknown users and wrong passwords get the same answer after the same argon2 work. Each
/// attempt counts against the per-IP and per-account limits before the password is checked,
/// so simultaneous guesses cannot all pass; a successful login takes its attempts back.
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    JsonBody(body): JsonBody<Credentials>,
) -> ApiResult<Response> {
    let username = normalized_username(&body.username);
    let ip_key = format!("ip:{}", limits::limiter_key(ip));
    let account_key = format!("account:{username}");
    let limits = &state.limits;
    let attempts = limits
        .auth_failures_per_ip
        .begin(&ip_key)
        .and_then(
            |ip_attempt| match limits.auth_failures_per_account.begin(&account_key) {
                Ok(account_attempt) => Ok((ip_attempt, account_attempt)),
                Err(refused) => {
                    limits.auth_failures_per_ip.succeeded(ip_attempt);
                    Err(refused)
                }
            },
        );
    let (ip_attempt, account_attempt) = attempts.inspect_err(|_| {
        tracing::warn!(limit = "auth", client_ip = %ip, "rate limit hit on login");
    })?;
    let user = state.store.user_by_name(&username).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // Always hashed, against a dummy hash for unknown users, so timing tells nothing.
    let verified = password::verify(body.password, stored).await;
    match user {
        Some(user) if verified => {
            limits.auth_failures_per_ip.succeeded(ip_attempt);
            limits.auth_failures_per_account.succeeded(account_attempt);
            tracing::info!(user_id = %user.id, client_ip = %ip, "login");
            open_session(&state, StatusCode::OK, &user).await
        }
        user => {
            tracing::warn!(
                user_id = user.as_ref().map(|u| u.id.as_str()),
                client_ip = %ip,
                "failed login"
            );
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// Spends the refresh cookie for a new access token and a new refresh token. A token spent
/// before means it was copied: the whole session ends.
pub async fn refresh(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let secure = state.cookie_secure;
    let Some(presented) = cookies::read(&headers, cookies::refresh_name(secure)) else {
        return Ok(signed_out(ApiError::Unauthorized.into_response(), secure));
    };
    let successor = secrets::random_token();
    let outcome = state
        .store
        .rotate_refresh(&secrets::digest(presented), &secrets::digest(&successor))
        .await?;
    match outcome {
        RefreshOutcome::Rotated {
            user_id,
            family_id,
            expires_at,
        } => {
            let user = state
                .store
                .user(&user_id)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            session_response(
                &state,
                StatusCode::OK,
                &user,
                &family_id,
                &successor,
                expires_at,
            )
        }
        RefreshOutcome::Reused { user_id, family_id } => {
            tracing::warn!(
                user_id = %user_id,
                session = %family_id,
                client_ip = %ip,
                "refresh token reused; session revoked"
            );
            Ok(signed_out(ApiError::Unauthorized.into_response(), secure))
        }
        RefreshOutcome::Invalid => Ok(signed_out(ApiError::Unauthorized.into_response(), secure)),
    }
}

/// Ends the session named by the refresh cookie or the access token, and clears both cookies.
/// Its access tokens stop working at once: each request checks that its session is live.
pub async fn logout(State(state): State<AppState>, parts: Parts) -> ApiResult<Response> {
    let mut sessions = Vec::new();
    if let Some(token) = cookies::read(&parts.headers, cookies::refresh_name(state.cookie_secure))
        && let Some((_, family)) = state.store.refresh_family(&secrets::digest(token)).await?
    {
        sessions.push(family);
    }
    if let Ok(Some(user)) = authenticate(&parts, &state).await
        && let Credential::Session(family) = user.credential
    {
        sessions.push(family);
    }
    for family in &sessions {
        let revoked = state.store.revoke_family(family).await?;
        tracing::info!(session = %family, revoked, "logout");
    }
    Ok(signed_out(
        StatusCode::NO_CONTENT.into_response(),
        state.cookie_secure,
    ))
}

pub async fn me(user: AuthUser) -> Json<serde_json::Value> {
    Json(json!({"user": {"id": user.id, "username": user.username}}))
}

async fn open_session(
    state: &AppState,
    status: StatusCode,
    user: &user::Model,
) -> ApiResult<Response> {
    let refresh = secrets::random_token();
    let ttl = chrono::Duration::from_std(state.security.refresh_ttl).map_err(ApiError::internal)?;
    let session = state
        .store
        .start_session(&user.id, &secrets::digest(&refresh), Utc::now() + ttl)
        .await?;
    session_response(
        state,
        status,
        user,
        &session.family_id,
        &refresh,
        session.expires_at,
    )
}

/// The access token in the body for API clients and in a cookie for browsers; the refresh
/// token only in its httpOnly cookie, living no longer than its family.
fn session_response(
    state: &AppState,
    status: StatusCode,
    user: &user::Model,
    session: &str,
    refresh: &str,
    expires_at: chrono::DateTime<Utc>,
) -> ApiResult<Response> {
    let token = state.tokens.issue(&user.id, session)?;
    let secure = state.cookie_secure;
    let max_age = (expires_at - Utc::now()).num_seconds().max(0) as u64;
    let body = json!({
        "user": {"id": user.id, "username": user.username},
        "token": token,
        "tokenType": "Bearer",
        "expiresIn": tokens::ACCESS_TTL.as_secs(),
    });
    let mut response = (status, Json(body)).into_response();
    cookies::set(
        response.headers_mut(),
        [
            cookies::access(&token, secure),
            cookies::refresh(refresh, max_age, secure),
        ],
    );
    Ok(response)
}

fn signed_out(mut response: Response, secure: bool) -> Response {
    cookies::set(response.headers_mut(), cookies::cleared(secure));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
