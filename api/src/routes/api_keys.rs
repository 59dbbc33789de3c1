//! `/api/api-keys`: personal keys for scripts and CI. A key is shown once at creation, stored
//! as its SHA-256, and used as `Authorization: Bearer`. Managing keys needs a login session.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use arian_core::store::entities::api_key;

use crate::auth::{AuthUser, secrets};
use crate::error::{ApiError, ApiResult, IdPath};
use crate::json::JsonBody;
use crate::state::AppState;

/// Live keys one user may hold.
pub const MAX_KEYS_PER_USER: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
}

pub async fn create(
    user: AuthUser,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    user.session()?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "must be 1 to 100 printable characters",
        ));
    }
    if state.store.api_keys(&user.id).await?.len() >= MAX_KEYS_PER_USER {
        return Err(ApiError::Conflict(format!(
            "at most {MAX_KEYS_PER_USER} API keys; delete one first"
        )));
    }
    let key = secrets::new_api_key();
    let prefix: String = key
        .chars()
        .take(secrets::API_KEY_PREFIX.len() + 6)
        .collect();
    let model = state
        .store
        .create_api_key(&user.id, name, &prefix, &secrets::digest(&key))
        .await?;
    tracing::info!(api_key_id = %model.id, "api key created");
    let mut data = view(&model);
    data["key"] = json!(key);
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "data": data})),
    ))
}

pub async fn list(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    user.session()?;
    let keys = state.store.api_keys(&user.id).await?;
    let data: Vec<Value> = keys.iter().map(view).collect();
    Ok(Json(json!({"success": true, "data": data})))
}

pub async fn delete(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    user.session()?;
    state.store.revoke_api_key(&user.id, &id).await?;
    tracing::info!(api_key_id = %id, "api key revoked");
    Ok(StatusCode::NO_CONTENT)
}

fn view(key: &api_key::Model) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "createdAt": key.created_at,
        "lastUsedAt": key.last_used_at,
    })
}
