//! The use cases behind the routes, shared with the demo: create a negotiation, create and
//! start a batch, read a batch's progress.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use arian_core::domain::{BatchPlan, NegotiationInput, RunStatus};
use arian_core::engine::cost::estimate_run_cost;
use arian_core::queue::RunJob;
use arian_core::store::entities::{negotiation, simulation_queue};
use arian_core::store::{BatchRequest, CreatedBatch, Store};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The body of `POST /api/simulations/queue/:negotiationId`; every field is optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchBody {
    pub techniques: Option<Vec<String>>,
    pub tactics: Option<Vec<String>>,
    pub personalities: Option<Vec<String>>,
    pub repetitions: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub budget_usd: Option<f64>,
}

/// The largest negotiation accepted, as JSON.
pub const MAX_NEGOTIATION_BYTES: usize = 256 * 1024;

pub async fn create_negotiation(
    state: &AppState,
    user_id: &str,
    body: Value,
) -> ApiResult<negotiation::Model> {
    // Every text of a negotiation goes into every prompt of its runs: a huge one is a huge bill.
    let text = body.to_string();
    if text.len() > MAX_NEGOTIATION_BYTES {
        return Err(ApiError::validation(
            "body",
            format!(
                "a negotiation may hold at most {} KB of JSON",
                MAX_NEGOTIATION_BYTES / 1024
            ),
        ));
    }
    let input: NegotiationInput = crate::json::parse(text.as_bytes())?;
    let scenario = input.validate(&state.catalog)?;
    Ok(state
        .store
        .create_negotiation(user_id, body, &scenario)
        .await?)
}

pub async fn create_batch(
    state: &AppState,
    user_id: &str,
    negotiation_id: &str,
    body: BatchBody,
    idempotency_key: Option<String>,
) -> ApiResult<CreatedBatch> {
    // The key's request is the negotiation and the body as sent, before defaults apply.
    let canonical = format!(
        "{negotiation_id}\n{}",
        serde_json::to_string(&body).unwrap_or_default()
    );
    let request_hash = hex::encode(Sha256::digest(canonical));
    let negotiation = state
        .store
        .negotiation(user_id, negotiation_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let scenario = Store::scenario_of(&negotiation)?;
    let plan = BatchPlan::resolve(
        body.techniques
            .unwrap_or_else(|| scenario.techniques.clone()),
        body.tactics.unwrap_or_else(|| scenario.tactics.clone()),
        body.personalities
            .unwrap_or_else(|| scenario.personalities.clone()),
        body.repetitions.unwrap_or(1),
        &state.catalog,
    )?;
    let max_concurrent = body.max_concurrent.unwrap_or(10);
    if !(1..=10_000).contains(&max_concurrent) {
        return Err(ApiError::validation(
            "maxConcurrent",
            "must be between 1 and 10000",
        ));
    }
    if body.budget_usd.is_some_and(|b| !b.is_finite() || b <= 0.0) {
        return Err(ApiError::validation(
            "budgetUsd",
            "must be a positive number",
        ));
    }
    if idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 200)
    {
        return Err(ApiError::BadRequest {
            field: Some("Idempotency-Key".into()),
            message: "must be 1 to 200 characters".into(),
        });
    }
    let per_run = estimate_run_cost(&scenario, &state.prices, &state.model);
    let request = BatchRequest {
        estimated_cost: per_run * plan.total() as f64,
        plan,
        max_concurrent,
        max_attempts: state.max_attempts,
        budget_usd: body.budget_usd,
        idempotency_key,
        request_hash,
    };
    Ok(state
        .store
        .create_batch(user_id, &negotiation.id, &request)
        .await?)
}

/// Marks the batch's pending runs queued and delivers every queued run; returns how many
/// jobs the queue did not hold yet. If delivery fails the runs stay queued in the database
/// and the reconciler delivers them later.
pub async fn start_batch(state: &AppState, batch: &simulation_queue::Model) -> ApiResult<usize> {
    let run_ids = state.store.start_batch(&batch.id).await?;
    let jobs: Vec<RunJob> = run_ids
        .into_iter()
        .map(|id| RunJob::new(id, batch.id.clone()))
        .collect();
    let delivered = state.queue.enqueue(&jobs).await?;
    tracing::info!(batch_id = %batch.id, delivered, "batch started");
    Ok(delivered)
}

/// A batch's progress, counted from its runs in the database.
pub async fn batch_progress(state: &AppState, batch: &simulation_queue::Model) -> ApiResult<Value> {
    let counts = state.store.run_counts(&batch.id).await?;
    let total = batch.total_simulations.max(0) as u64;
    let finished = counts.finished();
    let progress = if total == 0 {
        100.0
    } else {
        (finished as f64 / total as f64 * 1000.0).round() / 10.0
    };
    let remaining = total.saturating_sub(finished);
    let estimated_time_remaining = batch
        .started_at
        .filter(|_| finished > 0 && remaining > 0)
        .map(|started| {
            let elapsed = (chrono::Utc::now() - started).num_milliseconds().max(0) as f64 / 1000.0;
            (elapsed / finished as f64 * remaining as f64).round()
        });
    Ok(serde_json::json!({
        "id": batch.id,
        "negotiationId": batch.negotiation_id,
        "status": batch.status,
        "totalSimulations": total,
        "completedCount": counts.get(RunStatus::Completed),
        "failedCount": counts.get(RunStatus::Failed),
        "stoppedCount": counts.get(RunStatus::Stopped),
        "runningCount": counts.get(RunStatus::Running),
        "queuedCount": counts.get(RunStatus::Queued) + counts.get(RunStatus::Pending),
        "retryWaitCount": counts.get(RunStatus::RetryWait),
        "progressPercentage": progress,
        "actualCost": batch.actual_cost,
        "estimatedCost": batch.estimated_cost,
        "estimatedTimeRemaining": estimated_time_remaining,
        "maxConcurrent": batch.max_concurrent,
        "budgetUsd": batch.budget_usd,
        "reservedCost": batch.reserved_cost,
        "stopReason": batch.stop_reason,
        "createdAt": batch.created_at,
        "startedAt": batch.started_at,
        "completedAt": batch.completed_at,
    }))
}

/// Delivers runs a control put back in the queue.
pub async fn deliver(state: &AppState, batch_id: &str, run_ids: Vec<String>) -> ApiResult<usize> {
    let jobs: Vec<RunJob> = run_ids
        .into_iter()
        .map(|id| RunJob::new(id, batch_id.to_string()))
        .collect();
    Ok(state.queue.enqueue(&jobs).await?)
}
