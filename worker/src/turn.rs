//! One paid turn: ask the model (again once if the answer is unusable), price it against the
//! batch budget, and store it with a few retries so a paid answer is not asked for twice.

use std::time::Duration;

use arian_core::domain::{TokenUsage, TurnRecord};
use arian_core::engine::cost::{EXPECTED_OUTPUT_TOKENS, approx_tokens};
use arian_core::engine::{self, Negotiation};
use arian_core::llm::prompt::turn_messages;
use arian_core::llm::{LlmError, TurnContext};
use arian_core::store::{LeasedRun, StoreError};

use crate::WorkerDeps;
use crate::failure::RunError;
use crate::llm_call;

/// How often a turn is asked again after an unusable answer.
const MAX_REASKS: u32 = 1;

/// Asks for one turn. An answer that cannot be used (not JSON, missing fields) is asked for
/// once more with a short correction; both calls are paid and counted in the turn.
pub async fn ask(
    deps: &WorkerDeps,
    context: TurnContext<'_>,
    negotiation: &Negotiation,
    deadline: tokio::time::Instant,
) -> Result<TurnRecord, RunError> {
    let mut usage = TokenUsage::default();
    let mut cost = 0.0;
    let mut problem: Option<String> = None;
    for reasks in 0..=MAX_REASKS {
        let context = TurnContext {
            correction: problem.as_deref(),
            ..context
        };
        let reply = match llm_call::play_turn(
            &*deps.llm,
            deps.guards(),
            &context,
            &deps.call_retry,
            deadline,
        )
        .await
        {
            Ok(reply) => reply,
            Err(LlmError::Malformed(reason)) if reasks < MAX_REASKS => {
                tracing::warn!(turn = context.next.turn, %reason, "unusable answer; asking again");
                problem = Some(reason);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        usage += reply.usage;
        cost += deps.prices.cost(deps.llm.model(), reply.usage);
        match engine::record_turn(
            negotiation,
            context.next,
            context.terms,
            &reply.raw,
            usage,
            cost,
        ) {
            Ok(mut record) => {
                record.reasks = reasks;
                return Ok(record);
            }
            Err(malformed) if reasks < MAX_REASKS => {
                tracing::warn!(turn = context.next.turn, reason = %malformed, "unusable answer; asking again");
                problem = Some(malformed.0);
            }
            Err(malformed) => return Err(malformed.into()),
        }
    }
    Err(RunError::Llm(LlmError::Malformed(
        problem.unwrap_or_default(),
    )))
}

/// The expected cost of one call for this turn: its prompt size and the expected answer.
pub fn estimate_turn_cost(deps: &WorkerDeps, context: &TurnContext<'_>) -> f64 {
    let prompt: u64 = turn_messages(context)
        .iter()
        .filter_map(|m| m.get("content").and_then(serde_json::Value::as_str))
        .map(approx_tokens)
        .sum();
    let usage = TokenUsage {
        input: prompt,
        output: EXPECTED_OUTPUT_TOKENS,
    };
    deps.prices.cost(deps.llm.model(), usage)
}

/// Gives back a budget reservation whose call was not stored.
pub async fn release(deps: &WorkerDeps, batch_id: &str, estimate: f64) {
    if let Err(e) = deps.store.release_reservation(batch_id, estimate).await {
        tracing::warn!(error = %e, "could not release a budget reservation");
    }
}

/// Stores a paid turn, retrying a failed store a few times so a database hiccup does not make
/// the next attempt ask the LLM for this turn again.
pub async fn save_turn(
    deps: &WorkerDeps,
    leased: &LeasedRun,
    record: &TurnRecord,
    reserved: f64,
) -> Result<(), StoreError> {
    let mut pause = Duration::from_millis(100);
    for _ in 0..3 {
        match deps
            .store
            .save_turn(leased, deps.lease, record, reserved)
            .await
        {
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, turn = record.turn, "storing a turn failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            other => return other,
        }
    }
    deps.store
        .save_turn(leased, deps.lease, record, reserved)
        .await
}
