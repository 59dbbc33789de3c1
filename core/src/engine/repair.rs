//! Turns a model's raw JSON answer into a valid turn: clamps what is safe, rejects the rest.

use serde_json::Value;

use crate::domain::{Action, Offer, TurnOutput};

use super::terms::{Bound, Terms};

/// Why a turn's output could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed turn output: {0}")]
pub struct MalformedTurn(pub String);

/// A validated turn and how many values had to be repaired.
#[derive(Debug, Clone, PartialEq)]
pub struct Repaired {
    pub output: TurnOutput,
    pub repairs: u32,
}

/// Validates a raw answer against the terms the speaking agent may offer.
///
/// Missing or non-numeric offer values are filled from `previous` (the speaker's last offer),
/// then from the term's target; values outside bounds are clamped. An `accept` with nothing on
/// the table becomes `continue`. Each of these counts as one repair.
pub fn repair_turn(
    raw: &Value,
    terms: &Terms,
    previous: Option<&Offer>,
    can_accept: bool,
) -> Result<Repaired, MalformedTurn> {
    let object = raw
        .as_object()
        .ok_or_else(|| MalformedTurn("not a JSON object".into()))?;
    let mut repairs = 0;

    let message = object
        .get("message")
        .and_then(Value::as_str)
        .ok_or_else(|| MalformedTurn("missing message".into()))?
        .chars()
        .take(4000)
        .collect::<String>();

    let mut action = match object.get("action").and_then(Value::as_str) {
        Some("continue") => Action::Continue,
        Some("accept") => Action::Accept,
        Some("walk_away") => Action::WalkAway,
        Some("terminate") => Action::Terminate,
        _ => {
            repairs += 1;
            Action::Continue
        }
    };
    if action == Action::Accept && !can_accept {
        repairs += 1;
        action = Action::Continue;
    }

    let raw_offer = object.get("offer").and_then(Value::as_object);
    let mut offer = Offer::new();
    for term in terms.iter() {
        let value = raw_offer
            .and_then(|o| o.get(&term.name))
            .and_then(Value::as_f64);
        let value = match value.filter(|v| v.is_finite()) {
            Some(v) => v,
            None if action == Action::Accept => continue,
            None => {
                repairs += 1;
                previous
                    .and_then(|p| p.get(&term.name).copied())
                    .unwrap_or(term.target)
            }
        };
        let clamped = term.bound.clamp(value);
        if clamped != value {
            repairs += 1;
        }
        offer.insert(term.name.clone(), clamped);
    }

    let mut unit = |key: &str, default: f64| {
        let value = object
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite());
        match value {
            Some(v) if (0.0..=1.0).contains(&v) => v,
            Some(v) => {
                repairs += 1;
                Bound::new(Some(0.0), Some(1.0)).clamp(v)
            }
            None => {
                repairs += 1;
                default
            }
        }
    };
    let confidence = unit("confidence", 0.5);
    let batna_assessment = unit("batna_assessment", 0.5);
    let walk_away_threshold = unit("walk_away_threshold", 0.3);

    let internal_analysis = object
        .get("internal_analysis")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(4000)
        .collect();

    Ok(Repaired {
        output: TurnOutput {
            message,
            action,
            offer,
            confidence,
            internal_analysis,
            batna_assessment,
            walk_away_threshold,
        },
        repairs,
    })
}
