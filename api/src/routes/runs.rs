//! `/api/simulation-runs/:id`: one run with its turns and results.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use arian_core::store::entities::run;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, IdPath};
use crate::state::AppState;

pub async fn get(
    user: AuthUser,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Value>> {
    let run = state
        .store
        .run_of_user(&user.id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let detail = state.store.run_detail(run).await?;
    let turns: Vec<Value> = detail
        .turns
        .iter()
        .map(|t| {
            json!({
                "turn": t.turn, "round": t.round, "speaker": t.speaker, "attempt": t.attempt,
                "message": t.message, "action": t.action, "offer": t.offer,
                "confidence": t.confidence, "internalAnalysis": t.internal_analysis,
                "batnaAssessment": t.batna_assessment, "walkAwayThreshold": t.walk_away_threshold,
                "inputTokens": t.input_tokens, "outputTokens": t.output_tokens, "cost": t.cost,
                "repairs": t.repairs,
                "reasks": t.reasks, "createdAt": t.created_at,
            })
        })
        .collect();
    let products: Vec<Value> = detail
        .products
        .iter()
        .map(|p| {
            json!({
                "productName": p.product_name, "targetPrice": p.target_price, "limitPrice": p.limit_price,
                "volume": p.volume, "agreedPrice": p.agreed_price, "priceVsTarget": p.price_vs_target_pct,
                "withinLimit": p.within_limit, "subtotal": p.subtotal, "targetSubtotal": p.target_subtotal,
                "performanceScore": p.performance_score,
            })
        })
        .collect();
    let dimensions: Vec<Value> = detail
        .dimensions
        .iter()
        .map(|d| {
            json!({
                "dimensionName": d.dimension_name, "finalValue": d.final_value, "targetValue": d.target_value,
                "withinBounds": d.within_bounds, "priority": d.priority,
            })
        })
        .collect();
    Ok(Json(json!({
        "success": true,
        "data": {"run": run_view(&detail.run), "turns": turns, "productResults": products, "dimensionResults": dimensions}
    })))
}

/// A run as clients see it.
pub fn run_view(run: &run::Model) -> Value {
    json!({
        "id": run.id,
        "queueId": run.queue_id,
        "negotiationId": run.negotiation_id,
        "runNumber": run.run_number,
        "techniqueId": run.technique_id,
        "tacticId": run.tactic_id,
        "personalityId": run.personality_id,
        "repetition": run.repetition,
        "status": run.status,
        "outcome": run.outcome,
        "attempt": run.attempt,
        "maxAttempts": run.max_attempts,
        "leaseOwner": run.lease_owner,
        "nextAttemptAt": run.next_attempt_at,
        "inputTokens": run.input_tokens,
        "outputTokens": run.output_tokens,
        "actualCost": run.cost,
        "totalRounds": run.total_rounds,
        "dealValue": run.deal_value,
        "finalOffer": run.final_offer,
        "errorMessage": run.last_error,
        "createdAt": run.created_at,
        "startedAt": run.started_at,
        "completedAt": run.completed_at,
    })
}
