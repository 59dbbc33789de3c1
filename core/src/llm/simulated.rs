//! The deterministic simulated provider: concession curves shaped by technique, tactic and
//! personality, realistic token counts, optional latency. Same run id, same conversation.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::domain::{Action, CatalogEntry, Offer, Role, Speaker, TokenUsage};
use crate::engine::{TermKind, cost::approx_tokens};

use super::{LlmError, LlmProvider, LlmReply, TurnContext, prompt::turn_messages};

/// Tactics whose pressure makes a counterpart more likely to walk away.
const HARSH_TACTICS: &[&str] = &[
    "tactic.drohungen",
    "tactic.einschuechterung",
    "tactic.friss_oder_stirb",
    "tactic.persoenliche_angriffe",
    "tactic.verhandlungsverweigerung",
    "tactic.aggressives_auftreten",
    "tactic.stress_erzeugen",
    "tactic.extremes_erstangebot",
];

#[derive(Debug, Clone)]
pub struct SimulatedProvider {
    model: String,
    latency: Duration,
}

impl SimulatedProvider {
    pub fn new(model: impl Into<String>, latency: Duration) -> Self {
        Self {
            model: model.into(),
            latency,
        }
    }
}

#[async_trait]
impl LlmProvider for SimulatedProvider {
    fn model(&self) -> &str {
        &self.model
    }

    async fn play_turn(&self, context: &TurnContext<'_>) -> Result<LlmReply, LlmError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        Ok(simulate_turn(context))
    }
}

/// How one side behaves in this run, derived from the catalog entries.
#[derive(Debug, Clone, Copy)]
struct Profile {
    /// How far past its target an agent opens, as a share of its price range.
    anchor: f64,
    /// Exponent of the concession curve: above 1 concedes early, below 1 holds out.
    concession: f64,
    /// Share of the way from its target towards the other side it will go at most.
    flexibility: f64,
    /// Chance per round of leaving when the gap is still wide.
    walk_risk: f64,
}

fn user_profile(technique: &CatalogEntry, tactic: &CatalogEntry) -> Profile {
    let t = unit_hash(&technique.id);
    let k = unit_hash(&tactic.id);
    Profile {
        anchor: 0.1 + 0.5 * k,
        concession: 0.5 + 1.0 * t,
        flexibility: 0.2 + 0.45 * (1.0 - k),
        walk_risk: 0.0,
    }
}

fn counterpart_profile(
    personality: Option<&CatalogEntry>,
    technique: &CatalogEntry,
    tactic: &CatalogEntry,
) -> Profile {
    let agreeable = personality.map_or(0.5, personality_agreeableness);
    let persuasion = 0.8 + 0.5 * unit_hash(&format!("persuasion:{}", technique.id));
    let harsh = HARSH_TACTICS.contains(&tactic.id.as_str());
    Profile {
        anchor: 0.1 + 0.3 * (1.0 - agreeable),
        concession: (0.5 + 1.2 * agreeable) * persuasion,
        flexibility: (0.25 + 0.55 * agreeable) * persuasion.min(1.1),
        walk_risk: if harsh {
            0.15 + 0.25 * (1.0 - agreeable)
        } else {
            0.03 + 0.05 * (1.0 - agreeable)
        },
    }
}

/// 0..1: how readily a personality gives ground.
fn personality_agreeableness(entry: &CatalogEntry) -> f64 {
    if let Some(a) = entry.agreeableness {
        return a;
    }
    let level = |v: &Option<String>| match v.as_deref() {
        Some("high") => 1.0,
        Some("low") => 0.0,
        _ => 0.5,
    };
    if entry.cooperation.is_some() {
        return 0.6 * level(&entry.cooperation) + 0.4 * (1.0 - level(&entry.assertiveness));
    }
    match entry.id.as_str() {
        "personality.agreeableness" => 0.85,
        "personality.openness" => 0.65,
        "personality.conscientiousness" => 0.45,
        "personality.extraversion" => 0.4,
        "personality.neuroticism" => 0.3,
        _ => 0.5,
    }
}

fn simulate_turn(context: &TurnContext<'_>) -> LlmReply {
    let scenario = context.scenario;
    let next = context.next;
    let mut rng = SplitMix::new(hash(&format!("{}:{}", context.run_id, next.turn)));
    let profile = match next.speaker {
        Speaker::User => user_profile(context.technique, context.tactic),
        Speaker::Counterpart => {
            counterpart_profile(context.personality, context.technique, context.tactic)
        }
    };
    let side = match next.speaker {
        Speaker::User => scenario.role,
        Speaker::Counterpart => scenario.role.opposite(),
    };
    // Progress through the rounds, 0 at the start, 1 at the round limit.
    let progress = (f64::from(next.round - 1) / f64::from(scenario.max_rounds.max(2) - 1)).min(1.0);
    let give = progress.powf(1.0 / profile.concession) * profile.flexibility;

    let mut offer = Offer::new();
    for term in context.terms.iter() {
        let value = match term.kind {
            TermKind::Price => {
                let product = scenario.products.iter().find(|p| p.name == term.name);
                let range = product.map_or(term.target * 0.3, |p| p.max_price - p.min_price);
                // Sellers open high and come down; buyers open low and go up.
                let direction = if side == Role::Seller { 1.0 } else { -1.0 };
                let opening = term.target + direction * profile.anchor * range;
                let counter_anchor = term.target - direction * range;
                opening + (counter_anchor - opening) * give
            }
            TermKind::Dimension => {
                let mid = (term.bound.min.unwrap_or(term.target)
                    + term.bound.max.unwrap_or(term.target))
                    / 2.0;
                term.target + (mid - term.target) * give
            }
        };
        let noisy = value * (1.0 + (rng.next_unit() - 0.5) * 0.01);
        offer.insert(term.name.clone(), term.bound.clamp(noisy));
    }

    let other_offer = context.history.last().map(|t| &t.output.offer);
    let acceptable = other_offer
        .is_some_and(|theirs| context.can_accept && is_acceptable(side, &offer, theirs, context));
    let gap = other_offer.map_or(1.0, |theirs| price_gap(&offer, theirs, context));
    let action = if acceptable {
        Action::Accept
    } else if next.round >= 2 && gap > 0.12 && rng.next_unit() < profile.walk_risk {
        Action::WalkAway
    } else {
        Action::Continue
    };

    let message = compose_message(context, action, side);
    let raw = json!({
        "message": message,
        "action": action,
        "offer": offer_json(&offer, action),
        "confidence": round3(0.45 + 0.4 * rng.next_unit()),
        "internal_analysis": format!("gap {:.1}% after round {}", gap * 100.0, next.round),
        "batna_assessment": round3(0.4 + 0.3 * rng.next_unit()),
        "walk_away_threshold": round3(0.2 + 0.1 * rng.next_unit()),
    });
    let prompt_tokens: u64 = turn_messages(context)
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .map(approx_tokens)
        .sum();
    let usage = TokenUsage {
        input: prompt_tokens + 12,
        output: 140 + (rng.next_unit() * 120.0) as u64,
    };
    LlmReply { raw, usage }
}

/// An agent accepts when the other side's prices are at least as good as its own next offer.
fn is_acceptable(side: Role, own: &Offer, theirs: &Offer, context: &TurnContext<'_>) -> bool {
    context
        .terms
        .iter()
        .filter(|t| t.kind == TermKind::Price)
        .all(|term| match (own.get(&term.name), theirs.get(&term.name)) {
            (Some(mine), Some(other)) => match side {
                Role::Seller => other >= mine,
                Role::Buyer => other <= mine,
            },
            _ => false,
        })
}

/// The mean relative distance between two offers' prices.
fn price_gap(own: &Offer, theirs: &Offer, context: &TurnContext<'_>) -> f64 {
    let gaps: Vec<f64> = context
        .terms
        .iter()
        .filter(|t| t.kind == TermKind::Price)
        .filter_map(|t| Some((own.get(&t.name)?, theirs.get(&t.name)?)))
        .map(|(a, b)| (a - b).abs() / a.abs().max(f64::EPSILON))
        .collect();
    if gaps.is_empty() {
        1.0
    } else {
        gaps.iter().sum::<f64>() / gaps.len() as f64
    }
}

fn offer_json(offer: &Offer, action: Action) -> Value {
    if action == Action::Accept {
        return Value::Object(Map::new());
    }
    let map = offer
        .iter()
        .map(|(k, v)| (k.clone(), json!(round4(*v))))
        .collect();
    Value::Object(map)
}

fn compose_message(context: &TurnContext<'_>, action: Action, side: Role) -> String {
    let lead = match context.next.speaker {
        Speaker::User => format!(
            "({} / {})",
            context.technique.name_en, context.tactic.name_en
        ),
        Speaker::Counterpart => format!(
            "({})",
            context
                .personality
                .map_or("Standard", |p| p.name_en.as_str())
        ),
    };
    match action {
        Action::Accept => format!("{lead} We accept your last offer."),
        Action::WalkAway => format!("{lead} We are too far apart; we end the talks here."),
        _ => format!(
            "{lead} As the {} we propose the terms attached for round {}.",
            side.as_str(),
            context.next.round
        ),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn unit_hash(text: &str) -> f64 {
    (hash(text) >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a: stable across builds and platforms, which a seeded library RNG need not be.
fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}
