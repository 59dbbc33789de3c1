//! Cost from tokens with a per-model price table, and the estimate made before a batch starts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::{Scenario, TokenUsage};

/// Tokens an agent is expected to answer with in one turn.
pub const EXPECTED_OUTPUT_TOKENS: u64 = 220;
/// Prompt tokens every turn carries besides the scenario and the history.
const PROMPT_OVERHEAD_TOKENS: u64 = 450;
/// Tokens one earlier turn adds to the prompt of every later turn.
const TOKENS_PER_HISTORY_TURN: u64 = 90;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

impl ModelPrice {
    pub fn cost(&self, usage: TokenUsage) -> f64 {
        (usage.input as f64 * self.input_per_million
            + usage.output as f64 * self.output_per_million)
            / 1_000_000.0
    }
}

/// Prices by model name, with a fallback for models the table does not list.
#[derive(Debug, Clone)]
pub struct PriceTable {
    prices: HashMap<String, ModelPrice>,
    fallback: ModelPrice,
}

impl Default for PriceTable {
    fn default() -> Self {
        let known = [
            ("gpt-4o-mini", 0.15, 0.60),
            ("gpt-4o", 2.50, 10.00),
            ("gpt-4.1", 2.00, 8.00),
            ("gpt-4.1-mini", 0.40, 1.60),
            ("gpt-4.1-nano", 0.10, 0.40),
            ("gpt-5-mini", 0.25, 2.00),
        ];
        let prices = known
            .into_iter()
            .map(|(model, input, output)| {
                (
                    model.to_string(),
                    ModelPrice {
                        input_per_million: input,
                        output_per_million: output,
                    },
                )
            })
            .collect();
        Self {
            prices,
            fallback: ModelPrice {
                input_per_million: 2.50,
                output_per_million: 10.00,
            },
        }
    }
}

impl PriceTable {
    pub fn with_price(mut self, model: &str, price: ModelPrice) -> Self {
        self.prices.insert(model.to_string(), price);
        self
    }

    pub fn price(&self, model: &str) -> ModelPrice {
        self.prices.get(model).copied().unwrap_or(self.fallback)
    }

    pub fn cost(&self, model: &str, usage: TokenUsage) -> f64 {
        self.price(model).cost(usage)
    }
}

/// A rough token count of a text: four characters a token.
pub fn approx_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// The expected cost of one run that plays every round of the scenario.
pub fn estimate_run_cost(scenario: &Scenario, prices: &PriceTable, model: &str) -> f64 {
    let scenario_tokens = approx_tokens(&serde_json::to_string(scenario).unwrap_or_default());
    let turns = u64::from(scenario.max_rounds) * 2;
    let mut usage = TokenUsage::default();
    for turn in 0..turns {
        usage.input += PROMPT_OVERHEAD_TOKENS + scenario_tokens + turn * TOKENS_PER_HISTORY_TURN;
        usage.output += EXPECTED_OUTPUT_TOKENS;
    }
    prices.cost(model, usage)
}
