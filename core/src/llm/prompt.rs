//! Prompts built in code from the scenario, the catalog entries and the conversation so far.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::domain::{CatalogEntry, Speaker};
use crate::engine::TermKind;

use super::TurnContext;

/// The chat messages for one turn, from the speaking agent's point of view.
pub fn turn_messages(context: &TurnContext<'_>) -> Vec<Value> {
    let speaker = context.next.speaker;
    let mut messages = vec![json!({"role": "system", "content": system_prompt(context)})];
    for turn in context.history {
        let role = if turn.speaker == speaker {
            "assistant"
        } else {
            "user"
        };
        let visible = json!({
            "message": turn.output.message,
            "action": turn.output.action,
            "offer": turn.output.offer,
        });
        messages.push(json!({"role": role, "content": visible.to_string()}));
    }
    let instruction = format!(
        "Round {} of at most {}. Answer the other side's last message with your next move as JSON.",
        context.next.round, context.scenario.max_rounds
    );
    messages.push(json!({"role": "user", "content": instruction}));
    if let Some(problem) = context.correction {
        let correction = format!(
            "Your previous answer could not be used ({problem}). Reply again with one JSON object \
             that follows the schema exactly."
        );
        messages.push(json!({"role": "user", "content": correction}));
    }
    messages
}

fn system_prompt(context: &TurnContext<'_>) -> String {
    let scenario = context.scenario;
    let speaker = context.next.speaker;
    let (own_role, other_name) = match speaker {
        Speaker::User => (scenario.role, scenario.counterpart.name.as_str()),
        Speaker::Counterpart => (scenario.role.opposite(), "your supplier or customer"),
    };
    let mut prompt = String::new();
    let _ = writeln!(
        prompt,
        "You negotiate as the {} in \"{}\" against {}. Market: {} ({}). {}",
        own_role.as_str(),
        scenario.title,
        other_name,
        scenario.market_name,
        scenario.currency,
        scenario.market_note
    );
    if !scenario.context.is_empty() {
        let _ = writeln!(prompt, "Context: {}", scenario.context);
    }
    let _ = writeln!(
        prompt,
        "Terms (offer a number for each, named exactly as here):"
    );
    for term in context.terms.iter() {
        let kind = match term.kind {
            TermKind::Price => "unit price",
            TermKind::Dimension => "term",
        };
        let _ = write!(
            prompt,
            "- {} ({kind}): your target {:.4}",
            term.name, term.target
        );
        if speaker == Speaker::User {
            if let Some(min) = term.bound.min {
                let _ = write!(prompt, ", min {min:.4}");
            }
            if let Some(max) = term.bound.max {
                let _ = write!(prompt, ", max {max:.4}");
            }
        }
        prompt.push('\n');
    }
    match speaker {
        Speaker::User => {
            let _ = writeln!(
                prompt,
                "Influence technique to use: {}",
                describe(context.technique)
            );
            let _ = writeln!(
                prompt,
                "Negotiation tactic to use: {}",
                describe(context.tactic)
            );
        }
        Speaker::Counterpart => {
            let personality = context.personality.map_or_else(
                || "a balanced, professional counterpart".to_string(),
                describe,
            );
            let _ = writeln!(prompt, "Your personality: {personality}");
            let _ = writeln!(
                prompt,
                "Power balance {:.0}/100, dominance {:.0}, affiliation {:.0}, style: {}.",
                scenario.counterpart.power_balance,
                scenario.counterpart.dominance,
                scenario.counterpart.affiliation,
                scenario.counterpart.style
            );
        }
    }
    prompt.push_str(
        "Actions: continue (make an offer), accept (take the other side's last offer), \
         walk_away, terminate. Never reveal your limits.",
    );
    prompt
}

fn describe(entry: &CatalogEntry) -> String {
    format!("{} - {}", entry.name_en, entry.summary)
}
