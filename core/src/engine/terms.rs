//! The terms each agent negotiates over, with the targets and bounds that agent may see.

use crate::domain::{Role, Scenario, Speaker};

/// How far the counterpart's hidden price target moves at a distance of 100.
const DISTANCE_PRICE_SHIFT: f64 = 0.30;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Bound {
    pub fn new(min: Option<f64>, max: Option<f64>) -> Self {
        Self { min, max }
    }

    pub fn clamp(&self, value: f64) -> f64 {
        let value = self.min.map_or(value, |min| value.max(min));
        self.max.map_or(value, |max| value.min(max))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    Price,
    Dimension,
}

/// One negotiable term as one agent sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub name: String,
    pub kind: TermKind,
    pub target: f64,
    pub bound: Bound,
}

/// The terms of a scenario from one agent's point of view.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms(Vec<Term>);

impl Terms {
    /// The user's agent sees its own targets and limits; the counterpart sees a target moved
    /// by the counterpart distance in its own favour, and no price limit of the user's.
    pub fn for_speaker(scenario: &Scenario, speaker: Speaker) -> Self {
        let mut terms = Vec::with_capacity(scenario.products.len() + scenario.dimensions.len());
        for product in &scenario.products {
            let (target, bound) = match speaker {
                Speaker::User => (
                    product.target_price,
                    Bound::new(Some(product.min_price), Some(product.max_price)),
                ),
                Speaker::Counterpart => (
                    counterpart_target(scenario, product.target_price),
                    Bound::new(Some(0.0), None),
                ),
            };
            terms.push(Term {
                name: product.name.clone(),
                kind: TermKind::Price,
                target,
                bound,
            });
        }
        for dimension in &scenario.dimensions {
            terms.push(Term {
                name: dimension.name.clone(),
                kind: TermKind::Dimension,
                target: dimension.target,
                bound: Bound::new(Some(dimension.min), Some(dimension.max)),
            });
        }
        Self(terms)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Term> {
        self.0.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Term> {
        self.0.iter().find(|t| t.name == name)
    }
}

/// The price the counterpart aims for: below ours when it buys, above when it sells.
pub fn counterpart_target(scenario: &Scenario, user_target: f64) -> f64 {
    let shift = scenario.counterpart_distance / 100.0 * DISTANCE_PRICE_SHIFT;
    match scenario.role.opposite() {
        Role::Buyer => user_target * (1.0 - shift),
        Role::Seller => user_target * (1.0 + shift),
    }
}
