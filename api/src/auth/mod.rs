//! Authentication: passwords, tokens, cookies, and the extractor that names the caller.

pub mod cookies;
pub mod password;
pub mod secrets;
pub mod tokens;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// An access token of a login session (the refresh family's id).
    Session(String),
    /// A personal API key (its id).
    ApiKey(String),
}

/// The authenticated caller, from the access cookie or an `Authorization: Bearer` header
/// carrying an access token or a personal API key.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
    pub credential: Credential,
}

impl AuthUser {
    /// The session behind the request; API keys have none and may not manage credentials.
    pub fn session(&self) -> Result<&str, ApiError> {
        match &self.credential {
            Credential::Session(family) => Ok(family),
            Credential::ApiKey(_) => Err(ApiError::Forbidden),
        }
    }
}

/// The caller, when the request carries valid credentials; `None` when it carries none.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<AuthUser>, ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
                .ok_or(ApiError::Unauthorized)
        })
        .transpose()?;
    let cookie = cookies::read(&parts.headers, cookies::access_name(state.cookie_secure));
    let from_bearer = match bearer {
        Some(token) => Some(from_bearer(token, state).await?),
        None => None,
    };
    let from_cookie = match cookie {
        Some(token) => Some(from_access_token(token, state).await?),
        None => None,
    };
    let user = match (from_bearer, from_cookie) {
        // Two credentials must name one user.
        (Some(a), Some(b)) if a.id != b.id => return Err(ApiError::Unauthorized),
        (Some(user), _) | (None, Some(user)) => user,
        (None, None) => return Ok(None),
    };
    tracing::Span::current().record("user_id", user.id.as_str());
    Ok(Some(user))
}

async fn from_bearer(token: &str, state: &AppState) -> Result<AuthUser, ApiError> {
    if !token.starts_with(secrets::API_KEY_PREFIX) {
        return from_access_token(token, state).await;
    }
    let (key, user) = state
        .store
        .user_for_api_key(&secrets::digest(token))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(AuthUser {
        id: user.id,
        username: user.username,
        credential: Credential::ApiKey(key.id),
    })
}

/// An access token counts while its user exists and its session was not revoked.
async fn from_access_token(token: &str, state: &AppState) -> Result<AuthUser, ApiError> {
    let claims = state.tokens.verify(token)?;
    let user = state
        .store
        .session_user(&claims.sub, &claims.sid)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(AuthUser {
        id: user.id,
        username: user.username,
        credential: Credential::Session(claims.sid),
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}
