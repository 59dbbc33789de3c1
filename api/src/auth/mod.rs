//! Authentication: passwords, access tokens, and the extractor that names the caller.

pub mod password;
pub mod tokens;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller, from the access cookie or an `Authorization: Bearer` header.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .map(str::trim);
        let cookie_name = tokens::access_cookie_name(state.cookie_secure);
        let cookie = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == cookie_name)
            .map(|(_, value)| value);

        let from_bearer = bearer.map(|t| state.tokens.verify(t)).transpose()?;
        let from_cookie = cookie.map(|t| state.tokens.verify(t)).transpose()?;
        let claims = match (from_bearer, from_cookie) {
            (Some(a), Some(b)) if a.sub != b.sub => return Err(ApiError::Unauthorized),
            (Some(claims), _) | (None, Some(claims)) => claims,
            (None, None) => return Err(ApiError::Unauthorized),
        };
        let user = state
            .store
            .user(&claims.sub)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(AuthUser {
            id: user.id,
            username: user.username,
        })
    }
}
