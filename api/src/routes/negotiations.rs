//! `/api/negotiations`: create, list and read the caller's negotiations.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use arian_core::store::entities::negotiation;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, IdPath};
use crate::json::JsonBody;
use crate::service;
use crate::state::AppState;

pub async fn create(
    user: AuthUser,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let model = service::create_negotiation(&state, &user.id, body).await?;
    tracing::info!(negotiation_id = %model.id, "negotiation created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "data": view(&model)})),
    ))
}

pub async fn list(user: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let models = state.store.negotiations(&user.id, 500).await?;
    let data: Vec<Value> = models.iter().map(view).collect();
    Ok(Json(json!({"success": true, "data": data})))
}

pub async fn get(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Value>> {
    let model = state
        .store
        .negotiation(&user.id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let batches = state.store.batches_of_negotiation(&user.id, &id).await?;
    let batch_ids: Vec<&str> = batches.iter().map(|b| b.id.as_str()).collect();
    let mut data = view(&model);
    data["queueIds"] = json!(batch_ids);
    Ok(Json(json!({"success": true, "data": data})))
}

fn view(model: &negotiation::Model) -> Value {
    json!({
        "id": model.id,
        "title": model.title,
        "description": model.description,
        "status": model.status,
        "scenario": model.scenario,
        "input": model.input,
        "createdAt": model.created_at,
        "updatedAt": model.updated_at,
        "startedAt": model.started_at,
        "completedAt": model.completed_at,
    })
}
