//! The negotiation engine: turn protocol, repair of model output, evaluation and cost. No I/O.

pub mod cost;
pub mod evaluation;
pub mod protocol;
pub mod repair;
pub mod terms;

#[cfg(test)]
mod tests;

pub use cost::{ModelPrice, PriceTable};
pub use evaluation::{DimensionResult, Evaluation, ProductResult, evaluate};
pub use protocol::{Negotiation, NextTurn};
pub use repair::{MalformedTurn, repair_turn};
pub use terms::{Bound, Term, TermKind, Terms};

use serde_json::Value;

use crate::domain::{Speaker, TokenUsage, TurnRecord};

/// Validates a provider's raw answer for the next turn and prices it.
pub fn record_turn(
    negotiation: &Negotiation,
    next: NextTurn,
    terms: &Terms,
    raw: &Value,
    usage: TokenUsage,
    cost_usd: f64,
) -> Result<TurnRecord, MalformedTurn> {
    let previous_own = negotiation
        .turns()
        .iter()
        .rev()
        .find(|t| t.speaker == next.speaker)
        .map(|t| &t.output.offer);
    let repaired = repair_turn(raw, terms, previous_own, negotiation.has_offer_to_accept())?;
    Ok(TurnRecord {
        turn: next.turn,
        round: next.round,
        speaker: next.speaker,
        output: repaired.output,
        usage,
        cost_usd,
        repairs: repaired.repairs,
        reasks: 0,
    })
}

/// The speaker of a turn number (1-based): the user opens every round.
pub fn speaker_of(turn: u32) -> Speaker {
    if !turn.is_multiple_of(2) {
        Speaker::User
    } else {
        Speaker::Counterpart
    }
}
