//! Live progress: what a run does, published for the owner's WebSockets (best effort).

use arian_core::domain::TurnRecord;
use arian_core::events::RunEvent;
use arian_core::store::entities::run;
use serde_json::{Value, json};

use crate::WorkerDeps;

/// Batch states after which no run of the batch plays again.
const FINAL_BATCH_STATES: [&str; 3] = ["completed", "stopped", "failed"];

fn event(run: &run::Model, kind: &str, mut data: Value) -> RunEvent {
    if let Value::Object(map) = &mut data {
        map.insert("simulationId".into(), json!(run.id));
        map.insert("runId".into(), json!(run.id));
        map.insert("runNumber".into(), json!(run.run_number));
    }
    RunEvent::new(kind, &run.negotiation_id, &run.queue_id, data)
}

pub async fn started(deps: &WorkerDeps, run: &run::Model, attempt: i32) {
    let data = json!({
        "techniqueId": run.technique_id,
        "tacticId": run.tactic_id,
        "personalityId": run.personality_id,
        "attempt": attempt,
    });
    deps.events
        .publish(event(run, "simulation_started", data))
        .await;
}

pub async fn round(deps: &WorkerDeps, run: &run::Model, record: &TurnRecord) {
    let data = json!({
        "round": record.round,
        "turn": record.turn,
        "agent": record.speaker,
        "message": record.output.message,
        "action": record.output.action,
        "offer": record.output.offer,
    });
    deps.events
        .publish(event(run, "negotiation_round", data))
        .await;
}

/// A run reached a final state (`simulation_completed`, `_failed` or `_stopped`): publish it,
/// then the batch's progress, and `queue_completed` when the batch is over.
pub async fn finished(deps: &WorkerDeps, run: &run::Model, kind: &str, data: Value) {
    deps.events.publish(event(run, kind, data)).await;
    let Ok(Some(batch)) = deps.store.batch_unscoped(&run.queue_id).await else {
        return;
    };
    let total = batch.total_simulations.max(0);
    let done = batch.completed_count + batch.failed_count + batch.stopped_count;
    let percentage = if total == 0 {
        100.0
    } else {
        (f64::from(done) * 100.0 / f64::from(total)).min(100.0)
    };
    let progress = json!({
        "completed": batch.completed_count,
        "failed": batch.failed_count,
        "stopped": batch.stopped_count,
        "total": total,
        "percentage": percentage,
        "status": batch.status,
    });
    deps.events
        .publish(RunEvent::new(
            "queue_progress",
            &run.negotiation_id,
            &run.queue_id,
            progress,
        ))
        .await;
    if FINAL_BATCH_STATES.contains(&batch.status.as_str()) {
        let summary = json!({
            "status": batch.status,
            "totalSimulations": total,
            "completed": batch.completed_count,
            "failed": batch.failed_count,
            "stopped": batch.stopped_count,
            "totalCost": batch.actual_cost,
        });
        deps.events
            .publish(RunEvent::new(
                "queue_completed",
                &run.negotiation_id,
                &run.queue_id,
                summary,
            ))
            .await;
    }
}
