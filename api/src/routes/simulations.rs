//! `/api/simulations/queue`: create a batch, start it, and read its status, results and runs.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use arian_core::events::RunEvent;
use arian_core::store::entities::simulation_queue;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, IdPath};
use crate::routes::runs::run_view;
use crate::service::{self, BatchBody};
use crate::state::AppState;

/// Creates a batch; the body is optional. `Idempotency-Key` makes a retried request return the
/// batch the first one created.
pub async fn create(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(negotiation_id): IdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    state.limits.enqueue(&user.id, "create")?;
    let body: BatchBody = optional_json(&headers, body)?.unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let created = service::create_batch(&state, &user.id, &negotiation_id, body, key).await?;
    let batch = &created.batch;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "success": true,
            "queueId": batch.id,
            "totalSimulations": batch.total_simulations,
            "estimatedCost": batch.estimated_cost,
        })),
    ))
}

pub async fn start(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
) -> ApiResult<Json<Value>> {
    state.limits.enqueue(&user.id, "start")?;
    let batch = owned_batch(&state, &user, &queue_id).await?;
    let delivered = service::start_batch(&state, &batch).await?;
    Ok(Json(
        json!({"success": true, "queueId": batch.id, "delivered": delivered}),
    ))
}

pub async fn pause(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
) -> ApiResult<Json<Value>> {
    let batch = owned_batch(&state, &user, &queue_id).await?;
    if !state.store.pause_batch(&batch.id).await? {
        return Err(ApiError::Conflict(format!(
            "a {} batch cannot be paused",
            batch.status
        )));
    }
    tracing::info!(batch_id = %batch.id, "batch paused");
    Ok(Json(
        json!({"success": true, "queueId": batch.id, "status": "paused"}),
    ))
}

pub async fn resume(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
) -> ApiResult<Json<Value>> {
    // Resuming delivers runs like a start (a never-started batch could be paused and resumed).
    state.limits.enqueue(&user.id, "start")?;
    let batch = owned_batch(&state, &user, &queue_id).await?;
    let Some(run_ids) = state.store.resume_batch(&batch.id).await? else {
        return Err(ApiError::Conflict(format!(
            "a {} batch cannot be resumed",
            batch.status
        )));
    };
    let delivered = service::deliver(&state, &batch.id, run_ids).await?;
    tracing::info!(batch_id = %batch.id, delivered, "batch resumed");
    Ok(Json(
        json!({"success": true, "queueId": batch.id, "status": "running", "delivered": delivered}),
    ))
}

pub async fn stop(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
) -> ApiResult<Json<Value>> {
    let batch = owned_batch(&state, &user, &queue_id).await?;
    let Some(stopped) = state.store.stop_batch(&batch.id, "stopped_by_user").await? else {
        return Err(ApiError::Conflict(format!(
            "a {} batch cannot be stopped",
            batch.status
        )));
    };
    tracing::info!(batch_id = %batch.id, stopped, "batch stopped");
    let summary = json!({"status": "stopped", "reason": "stopped_by_user", "stoppedRuns": stopped});
    state
        .events
        .publish(RunEvent::new(
            "queue_completed",
            &batch.negotiation_id,
            &batch.id,
            summary,
        ))
        .await;
    Ok(Json(
        json!({"success": true, "queueId": batch.id, "status": "stopped", "stoppedRuns": stopped}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBody {
    pub run_ids: Option<Vec<String>>,
}

/// Puts failed runs (all, or `runIds`) back with a fresh attempt budget.
pub async fn retry(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body: RetryBody = optional_json(&headers, body)?.unwrap_or_default();
    retry_failed(&state, &user, &queue_id, body.run_ids).await
}

pub async fn restart_failed(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
) -> ApiResult<Json<Value>> {
    retry_failed(&state, &user, &queue_id, None).await
}

async fn retry_failed(
    state: &AppState,
    user: &AuthUser,
    queue_id: &str,
    run_ids: Option<Vec<String>>,
) -> ApiResult<Json<Value>> {
    // Retried runs are paid again: they count as starts.
    state.limits.enqueue(&user.id, "start")?;
    let batch = owned_batch(state, user, queue_id).await?;
    if batch.status == "stopped" {
        return Err(ApiError::Conflict(
            "a stopped batch cannot be retried".into(),
        ));
    }
    let ids = state
        .store
        .retry_failed_runs(&batch.id, run_ids.as_deref(), state.max_attempts)
        .await?;
    let count = ids.len();
    service::deliver(state, &batch.id, ids.clone()).await?;
    tracing::info!(batch_id = %batch.id, retried = count, "failed runs put back");
    Ok(Json(
        json!({"success": true, "queueId": batch.id, "retriedCount": count, "runIds": ids}),
    ))
}

pub async fn status(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
) -> ApiResult<Json<Value>> {
    let batch = owned_batch(&state, &user, &queue_id).await?;
    Ok(Json(
        json!({"success": true, "data": service::batch_progress(&state, &batch).await?}),
    ))
}

pub async fn results(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
) -> ApiResult<Json<Value>> {
    let batch = owned_batch(&state, &user, &queue_id).await?;
    let rows = state.store.batch_results(&batch.id).await?;
    let name = |id: &str| -> String {
        state
            .catalog
            .technique(id)
            .or_else(|| state.catalog.tactic(id))
            .map_or_else(|| id.to_string(), |e| e.name_en.clone())
    };
    let deals: i64 = rows.iter().map(|r| r.deals).sum();
    let finished: i64 = rows.iter().map(|r| r.completed + r.failed).sum();
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut value = json!(row);
            value["techniqueName"] = json!(name(&row.technique_id));
            value["tacticName"] = json!(name(&row.tactic_id));
            value
        })
        .collect();
    Ok(Json(json!({
        "success": true,
        "data": {
            "queueId": batch.id,
            "status": batch.status,
            "totalRuns": batch.total_simulations,
            "deals": deals,
            "successRate": arian_core::engine::evaluation::success_rate(deals as u64, finished as u64),
            "totalCostUsd": batch.actual_cost,
            "rows": rows,
        }
    })))
}

#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub offset: u64,
    #[serde(default = "default_limit")]
    pub limit: u64,
}

fn default_limit() -> u64 {
    1_000
}

pub async fn runs(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(queue_id): IdPath,
    page: Result<Query<Page>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(page) = page.map_err(|e| ApiError::BadRequest {
        field: Some("offset, limit".into()),
        message: format!("bad paging parameters: {}", e.body_text()),
    })?;
    let batch = owned_batch(&state, &user, &queue_id).await?;
    let runs = state
        .store
        .runs_of_batch(
            &batch.id,
            page.offset.min(MAX_OFFSET),
            page.limit.min(10_000),
        )
        .await?;
    let data: Vec<Value> = runs.iter().map(run_view).collect();
    Ok(Json(json!({"success": true, "data": data})))
}

/// The furthest a page may start.
const MAX_OFFSET: u64 = 1_000_000_000;

/// An optional JSON body: empty means none; otherwise it must be JSON of the right shape.
fn optional_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Option<T>> {
    let body = crate::json::read_body(body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !crate::json::is_json(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    crate::json::parse(&body).map(Some)
}

async fn owned_batch(
    state: &AppState,
    user: &AuthUser,
    queue_id: &str,
) -> ApiResult<simulation_queue::Model> {
    state
        .store
        .batch(&user.id, queue_id)
        .await?
        .ok_or(ApiError::NotFound)
}
