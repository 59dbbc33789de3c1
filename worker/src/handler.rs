//! The run handler: lease the run, replay its stored turns, play the rest turn by turn with a
//! checkpoint after each, then complete, retry or fail it, fenced by the attempt.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use arian_core::domain::{BatchStatus, RunStatus, Scenario, TurnRecord};
use arian_core::engine::{Negotiation, Terms, evaluate};
use arian_core::llm::TurnContext;
use arian_core::queue::{AckOutcome, QueueError, RunJob};
use arian_core::store::{LeaseOutcome, LeasedRun, RunTotals, Store, StoreError};
use chrono::Utc;
use futures::FutureExt;
use rand::Rng;
use serde_json::json;
use tracing::Instrument;

use crate::WorkerDeps;
use crate::failure::{Decision, RunError, decide};
use crate::heartbeat::Heartbeat;
use crate::progress;
use crate::turn::{ask, estimate_turn_cost, release, save_turn};

/// Why a batch stops when its budget cannot pay for the next turn.
const BUDGET_EXHAUSTED: &str = "budget_exhausted";

/// How an attempt that did not error ended.
enum Ended {
    Finished,
    /// The worker is stopping: hand the run to another worker now.
    Handover,
    /// The batch was paused: the run waits in `queued` until resume delivers it again.
    Paused,
    /// The batch was stopped: the run is `stopped` already.
    Stopped,
}

/// The apalis handler. Errors are handled here, so apalis only ever sees success.
pub async fn handle_job(job: RunJob, deps: Data<Arc<WorkerDeps>>) -> Result<(), BoxDynError> {
    let span = tracing::info_span!(
        "run",
        run_id = %job.run_id,
        batch_id = %job.batch_id,
        worker_id = %deps.worker_id,
        attempt = tracing::field::Empty
    );
    process(&job, &deps).instrument(span).await;
    Ok(())
}

async fn process(job: &RunJob, deps: &Arc<WorkerDeps>) {
    let lease = deps
        .store
        .lease_run(&job.run_id, &job.batch_id, &deps.worker_id, deps.lease)
        .await;
    let leased = match lease {
        Ok(LeaseOutcome::Leased(leased)) => *leased,
        Ok(LeaseOutcome::AtCapacity) => {
            // The batch is at max_concurrent: look again soon, leaving the slot to other batches.
            let wait = Duration::from_millis(rand::rng().random_range(200..600));
            let due = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            return queue_call(deps.queue.retry_at(job, due).await, "retry_at");
        }
        Ok(LeaseOutcome::BatchPaused) => {
            return queue_call(deps.queue.ack(job.id(), AckOutcome::Dropped).await, "ack");
        }
        Ok(LeaseOutcome::NotLeasable) => return settle_unleasable(job, deps).await,
        Err(e) => {
            tracing::warn!(error = %e, "could not lease the run; delivering it again shortly");
            let due = Utc::now() + chrono::Duration::seconds(2);
            return queue_call(deps.queue.retry_at(job, due).await, "retry_at");
        }
    };
    tracing::Span::current().record("attempt", leased.attempt);
    tracing::debug!("run leased");
    progress::started(deps, &leased.run, leased.attempt).await;

    let heartbeat = Heartbeat::start(deps.clone(), leased.clone());
    let played = AssertUnwindSafe(play(&leased, deps, &heartbeat))
        .catch_unwind()
        .await;
    drop(heartbeat);
    let (turns, result) = played.unwrap_or_else(|_| (vec![], Err(RunError::Panicked)));
    match result {
        Ok(Ended::Finished) => {
            queue_call(deps.queue.ack(job.id(), AckOutcome::Completed).await, "ack")
        }
        Ok(Ended::Handover) => {
            if deps.store.release_run(&leased).await.is_ok() {
                queue_call(deps.queue.retry_at(job, Utc::now()).await, "retry_at");
                tracing::info!(turns = turns.len(), "run handed over to another worker");
            }
        }
        Ok(Ended::Paused) => {
            if deps.store.release_run(&leased).await.is_ok() {
                queue_call(deps.queue.ack(job.id(), AckOutcome::Dropped).await, "ack");
                tracing::info!(turns = turns.len(), "run parked while its batch is paused");
            }
        }
        Ok(Ended::Stopped) => {
            queue_call(deps.queue.ack(job.id(), AckOutcome::Dropped).await, "ack");
            let data = json!({"reason": "stopped"});
            progress::finished(deps, &leased.run, "simulation_stopped", data).await;
        }
        Err(RunError::Store(StoreError::Conflict(reason))) => {
            // Stopped, or taken over after this attempt's lease ran out: it is not ours now.
            tracing::warn!(%reason, "the run is no longer this attempt's");
            settle_unleasable(job, deps).await;
        }
        Err(error) => fail_or_retry(job, deps, &leased, &turns, &error).await,
    }
}

async fn fail_or_retry(
    job: &RunJob,
    deps: &WorkerDeps,
    leased: &LeasedRun,
    turns: &[TurnRecord],
    error: &RunError,
) {
    let max_attempts = leased.run.max_attempts.max(1) as u32;
    match decide(error, leased.attempt as u32, max_attempts, &deps.retry) {
        Decision::RetryAt(due) => {
            tracing::warn!(error = %error, retry_at = %due, "run failed transiently; retrying");
            if deps
                .store
                .retry_run(leased, &error.reason(), due)
                .await
                .is_ok()
            {
                queue_call(deps.queue.retry_at(job, due).await, "retry_at");
            }
        }
        Decision::Park(until) => {
            tracing::info!(until = %until, "provider circuit open; run waits without spending an attempt");
            if deps
                .store
                .park_run(leased, &error.reason(), until)
                .await
                .is_ok()
            {
                queue_call(deps.queue.retry_at(job, until).await, "retry_at");
            }
        }
        Decision::Fail(reason) => {
            tracing::error!(%reason, "run failed");
            if deps
                .store
                .fail_run(leased, &reason, RunTotals::of(turns))
                .await
                .is_ok()
            {
                queue_call(deps.queue.ack(job.id(), AckOutcome::Failed).await, "ack");
                let data = json!({"error": reason, "retryCount": leased.attempt});
                progress::finished(deps, &leased.run, "simulation_failed", data).await;
            }
        }
    }
}

/// Plays the run from its checkpoint. Returns the turns stored so far with the result.
async fn play(
    leased: &LeasedRun,
    deps: &WorkerDeps,
    heartbeat: &Heartbeat,
) -> (Vec<TurnRecord>, Result<Ended, RunError>) {
    let run = &leased.run;
    let scenario = match load_scenario(&deps.store, &run.negotiation_id).await {
        Ok(scenario) => scenario,
        Err(e) => return (vec![], Err(e)),
    };
    let (Some(technique), Some(tactic)) = (
        deps.catalog.technique(&run.technique_id),
        deps.catalog.tactic(&run.tactic_id),
    ) else {
        return (
            vec![],
            Err(RunError::Invalid("unknown technique or tactic".into())),
        );
    };
    let personality = deps.catalog.personality(&run.personality_id);
    let stored = match deps.store.turns(&run.id).await {
        Ok(turns) => turns,
        Err(e) => return (vec![], Err(e.into())),
    };
    if !stored.is_empty() {
        tracing::info!(replayed = stored.len(), "resuming from stored turns");
    }
    let mut negotiation = Negotiation::replay(&scenario, stored);
    let started = run.started_at.unwrap_or_else(Utc::now);
    let run_timeout = chrono::Duration::from_std(deps.run_timeout).unwrap_or(chrono::Duration::MAX);
    let remaining = (started + run_timeout - Utc::now())
        .to_std()
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + remaining;

    while let Some(next) = negotiation.next_turn() {
        let turns = || negotiation.turns().to_vec();
        if *deps.stopping.borrow() {
            return (turns(), Ok(Ended::Handover));
        }
        if tokio::time::Instant::now() >= deadline {
            return (
                turns(),
                Err(RunError::RunTimeout(deps.run_timeout.as_secs())),
            );
        }
        match deps.store.batch_status(&run.queue_id).await {
            Ok(Some(BatchStatus::Paused)) => return (turns(), Ok(Ended::Paused)),
            Ok(Some(BatchStatus::Stopped)) => return (turns(), Ok(Ended::Stopped)),
            Ok(_) => {}
            Err(e) => return (turns(), Err(e.into())),
        }
        let terms = Terms::for_speaker(&scenario, next.speaker);
        let context = TurnContext {
            run_id: &run.id,
            scenario: &scenario,
            technique,
            tactic,
            personality,
            next,
            history: negotiation.turns(),
            terms: &terms,
            can_accept: negotiation.has_offer_to_accept(),
            correction: None,
        };
        if heartbeat.lost() {
            let lost = StoreError::Conflict("the lease was lost while waiting".into());
            return (turns(), Err(lost.into()));
        }
        // Reserve the turn's expected cost against the batch budget before paying for it.
        let estimate = estimate_turn_cost(deps, &context);
        match deps.store.reserve_turn(&run.queue_id, estimate).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    estimate_usd = estimate,
                    "batch budget exhausted; stopping the batch"
                );
                if let Err(e) = deps.store.stop_batch(&run.queue_id, BUDGET_EXHAUSTED).await {
                    return (turns(), Err(e.into()));
                }
                return (turns(), Ok(Ended::Stopped));
            }
            Err(e) => return (turns(), Err(e.into())),
        }
        let record = match ask(deps, context, &negotiation, deadline).await {
            Ok(record) => record,
            Err(e) => {
                release(deps, &run.queue_id, estimate).await;
                return (turns(), Err(e));
            }
        };
        if let Err(e) = save_turn(deps, leased, &record, estimate).await {
            release(deps, &run.queue_id, estimate).await;
            return (turns(), Err(e.into()));
        }
        queue_call(deps.queue.extend(&run.id, deps.lease).await, "extend");
        tracing::debug!(
            turn = next.turn,
            round = next.round,
            repairs = record.repairs,
            "turn stored"
        );
        progress::round(deps, run, &record).await;
        negotiation.record(record);
    }

    let turns = negotiation.turns().to_vec();
    let Some(outcome) = negotiation.outcome() else {
        return (
            turns,
            Err(RunError::Invalid(
                "negotiation ended without an outcome".into(),
            )),
        );
    };
    let final_offer = negotiation.final_offer();
    let evaluation = evaluate(&scenario, outcome, final_offer);
    let totals = RunTotals::of(&turns);
    if let Err(e) = deps
        .store
        .complete_run(leased, outcome, totals, final_offer, &evaluation)
        .await
    {
        return (turns, Err(e.into()));
    }
    tracing::info!(outcome = %outcome, rounds = totals.rounds, cost_usd = totals.cost, "run completed");
    let data = json!({
        "outcome": outcome,
        "totalRounds": totals.rounds,
        "cost": totals.cost,
        "dealValue": evaluation.deal_value,
    });
    progress::finished(deps, run, "simulation_completed", data).await;
    (turns, Ok(Ended::Finished))
}

async fn load_scenario(store: &Store, negotiation_id: &str) -> Result<Scenario, RunError> {
    let model = store
        .negotiation_unscoped(negotiation_id)
        .await?
        .ok_or_else(|| RunError::Invalid("negotiation is gone".into()))?;
    Ok(Store::scenario_of(&model)?)
}

/// A job whose run this worker cannot play: final runs are forgotten, early retries wait for
/// their time, runs another live attempt holds are left to it (the reconciler re-delivers
/// them if that attempt dies).
async fn settle_unleasable(job: &RunJob, deps: &WorkerDeps) {
    let run = match deps.store.run_unscoped(&job.run_id).await {
        Ok(run) => run,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the run; delivering it again shortly");
            let due = Utc::now() + chrono::Duration::seconds(2);
            return queue_call(deps.queue.retry_at(job, due).await, "retry_at");
        }
    };
    let Some(run) = run else {
        return queue_call(
            deps.queue.dead_letter(job.id(), "no such run").await,
            "dead_letter",
        );
    };
    let status: Option<RunStatus> = run.status.parse().ok();
    match (status, run.next_attempt_at) {
        (Some(RunStatus::RetryWait), Some(due)) if due > Utc::now() => {
            queue_call(deps.queue.retry_at(job, due).await, "retry_at");
        }
        _ => {
            tracing::debug!(status = %run.status, "run not leasable; dropping the delivery");
            queue_call(deps.queue.ack(job.id(), AckOutcome::Dropped).await, "ack");
        }
    }
}

fn queue_call(result: Result<(), QueueError>, operation: &str) {
    if let Err(e) = result {
        tracing::warn!(error = %e, operation, "queue call failed; the reconciler will repair delivery");
    }
}
