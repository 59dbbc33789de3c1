//! Scoring a finished run: product and dimension results, deal value, success.

use serde::{Deserialize, Serialize};

use crate::domain::{Offer, Outcome, Role, Scenario};

/// Points taken off a product's score when its price breaks the user's limit.
const OUTSIDE_LIMIT_PENALTY: f64 = 10.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductResult {
    pub product_name: String,
    pub target_price: f64,
    /// The user's own limit: a seller's floor (min price) or a buyer's ceiling (max price).
    pub limit_price: f64,
    pub volume: f64,
    pub agreed_price: f64,
    pub price_vs_target_pct: f64,
    pub within_limit: bool,
    pub subtotal: f64,
    pub target_subtotal: f64,
    pub performance_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionResult {
    pub dimension_name: String,
    pub final_value: f64,
    pub target_value: f64,
    pub within_bounds: bool,
    pub priority: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub deal_value: Option<f64>,
    pub products: Vec<ProductResult>,
    pub dimensions: Vec<DimensionResult>,
}

/// Scores a finished run. Only a deal has agreed prices, so other outcomes have no results.
pub fn evaluate(scenario: &Scenario, outcome: Outcome, final_offer: Option<&Offer>) -> Evaluation {
    let (Outcome::DealAccepted, Some(offer)) = (outcome, final_offer) else {
        return Evaluation {
            deal_value: None,
            products: vec![],
            dimensions: vec![],
        };
    };
    let products: Vec<ProductResult> = scenario
        .products
        .iter()
        .map(|product| {
            let agreed = offer
                .get(&product.name)
                .copied()
                .unwrap_or(product.target_price);
            let (limit_price, within_limit) = match scenario.role {
                Role::Seller => (product.min_price, agreed >= product.min_price),
                Role::Buyer => (product.max_price, agreed <= product.max_price),
            };
            let deviation_pct = (agreed - product.target_price) / product.target_price * 100.0;
            let penalty = if within_limit {
                0.0
            } else {
                OUTSIDE_LIMIT_PENALTY
            };
            ProductResult {
                product_name: product.name.clone(),
                target_price: product.target_price,
                limit_price,
                volume: product.volume,
                agreed_price: agreed,
                price_vs_target_pct: round2(deviation_pct),
                within_limit,
                subtotal: round2(agreed * product.volume),
                target_subtotal: round2(product.target_price * product.volume),
                performance_score: round2((100.0 - deviation_pct.abs()).max(0.0) - penalty),
            }
        })
        .collect();
    let dimensions = scenario
        .dimensions
        .iter()
        .map(|dimension| {
            let value = offer
                .get(&dimension.name)
                .copied()
                .unwrap_or(dimension.target);
            DimensionResult {
                dimension_name: dimension.name.clone(),
                final_value: value,
                target_value: dimension.target,
                within_bounds: (dimension.min..=dimension.max).contains(&value),
                priority: dimension.priority,
            }
        })
        .collect();
    let deal_value = round2(products.iter().map(|p| p.subtotal).sum());
    Evaluation {
        deal_value: Some(deal_value),
        products,
        dimensions,
    }
}

/// Deals divided by finished runs; `None` when nothing has finished.
pub fn success_rate(deals: u64, finished: u64) -> Option<f64> {
    (finished > 0).then(|| deals as f64 / finished as f64)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
