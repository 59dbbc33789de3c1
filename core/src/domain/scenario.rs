//! The negotiation scenario: its wire shape as clients send it, and the validated domain form.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog::Catalog;
use super::error::ValidationError;

/// The body of `POST /api/negotiations` and the shape of the shipped scenario files.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NegotiationInput {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub registration: Option<Value>,
    pub market: MarketInput,
    pub counterpart: CounterpartInput,
    pub products: Vec<ProductInput>,
    pub scenario: ScenarioInput,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketInput {
    pub name: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub country_code: Option<String>,
    #[serde(default)]
    pub currency_code: Option<String>,
    #[serde(default)]
    pub meta: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterpartInput {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    /// The original client sends this as a string ("50"); numbers are accepted too.
    #[serde(default)]
    pub power_balance: Option<Value>,
    #[serde(default)]
    pub dominance: Option<f64>,
    #[serde(default)]
    pub affiliation: Option<f64>,
    #[serde(default)]
    pub style: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductInput {
    pub name: String,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub attrs: ProductAttrs,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductAttrs {
    #[serde(default)]
    pub target_price: Option<f64>,
    #[serde(default)]
    pub min_price: Option<f64>,
    #[serde(default)]
    pub max_price: Option<f64>,
    #[serde(default)]
    pub estimated_volume: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioInput {
    pub user_role: String,
    #[serde(default)]
    pub max_rounds: Option<i64>,
    #[serde(default)]
    pub selected_techniques: Vec<String>,
    #[serde(default)]
    pub selected_tactics: Vec<String>,
    #[serde(default)]
    pub counterpart_personality: Option<String>,
    #[serde(default)]
    pub counterpart_distance: Option<DistanceInput>,
    #[serde(default)]
    pub dimensions: Vec<DimensionInput>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DistanceInput {
    #[serde(default)]
    pub gesamt: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionInput {
    pub name: String,
    #[serde(default)]
    pub unit: Option<String>,
    pub min_value: f64,
    pub max_value: f64,
    pub target_value: f64,
    #[serde(default = "default_priority")]
    pub priority: i64,
}

fn default_priority() -> i64 {
    2
}

/// Which side the user negotiates for; it decides both agents' sides and all scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Buyer,
    Seller,
}

impl Role {
    pub fn opposite(self) -> Role {
        match self {
            Role::Buyer => Role::Seller,
            Role::Seller => Role::Buyer,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Seller => "seller",
        }
    }
}

/// A product whose unit price is negotiated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub name: String,
    pub target_price: f64,
    pub min_price: f64,
    pub max_price: f64,
    pub volume: f64,
}

/// A negotiated term other than a product price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    pub unit: String,
    pub min: f64,
    pub max: f64,
    pub target: f64,
    /// 1 must-have, 2 important, 3 flexible.
    pub priority: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterpart {
    pub name: String,
    pub kind: String,
    pub power_balance: f64,
    pub dominance: f64,
    pub affiliation: f64,
    pub style: String,
}

/// A validated scenario: everything the engine needs to play and score a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub title: String,
    pub context: String,
    pub role: Role,
    pub counterpart: Counterpart,
    pub market_name: String,
    pub currency: String,
    pub market_note: String,
    pub products: Vec<Product>,
    pub dimensions: Vec<Dimension>,
    pub max_rounds: u32,
    /// 0-100: how far the counterpart's hidden target sits from ours.
    pub counterpart_distance: f64,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    /// Personality ids as chosen: catalog ids, `all`, or empty for the neutral `default`.
    pub personalities: Vec<String>,
}

impl NegotiationInput {
    /// Validates the input against the catalog; every rejection names the offending field.
    pub fn validate(&self, catalog: &Catalog) -> Result<Scenario, ValidationError> {
        let title = non_empty(&self.title, "title", 200)?;
        let role = match self.scenario.user_role.to_ascii_lowercase().as_str() {
            "buyer" => Role::Buyer,
            "seller" => Role::Seller,
            _ => {
                return Err(ValidationError::new(
                    "scenario.userRole",
                    "must be buyer or seller",
                ));
            }
        };
        let counterpart = validate_counterpart(&self.counterpart)?;
        let market_name = non_empty(&self.market.name, "market.name", 200)?;
        let products = validate_products(&self.products)?;
        let dimensions = validate_dimensions(&self.scenario.dimensions, &products)?;

        let max_rounds = self.scenario.max_rounds.unwrap_or(6);
        if !(1..=50).contains(&max_rounds) {
            return Err(ValidationError::new(
                "scenario.maxRounds",
                "must be between 1 and 50",
            ));
        }
        let distance = self
            .scenario
            .counterpart_distance
            .as_ref()
            .and_then(|d| d.gesamt)
            .unwrap_or(50.0);
        in_range(distance, 0.0, 100.0, "scenario.counterpartDistance.gesamt")?;

        validate_ids(
            &self.scenario.selected_techniques,
            "scenario.selectedTechniques",
            |id| catalog.technique(id).is_some(),
        )?;
        validate_ids(
            &self.scenario.selected_tactics,
            "scenario.selectedTactics",
            |id| catalog.tactic(id).is_some(),
        )?;
        let personalities = match self.scenario.counterpart_personality.as_deref() {
            None | Some("") | Some("default") => vec![],
            Some("all") | Some("all-personalities") => vec!["all".to_string()],
            Some(id) if catalog.personality(id).is_some() => vec![id.to_string()],
            Some(_) => {
                return Err(ValidationError::new(
                    "scenario.counterpartPersonality",
                    "unknown personality id",
                ));
            }
        };

        Ok(Scenario {
            title,
            context: optional_text(self.description.as_deref(), "description", 10_000)?,
            role,
            counterpart,
            market_name,
            currency: self
                .market
                .currency_code
                .clone()
                .unwrap_or_else(|| "EUR".into()),
            market_note: market_note(&self.market),
            products,
            dimensions,
            max_rounds: max_rounds as u32,
            counterpart_distance: distance,
            techniques: self.scenario.selected_techniques.clone(),
            tactics: self.scenario.selected_tactics.clone(),
            personalities,
        })
    }
}

fn market_note(market: &MarketInput) -> String {
    market
        .meta
        .as_ref()
        .and_then(|m| m.get("intelligence"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn validate_counterpart(input: &CounterpartInput) -> Result<Counterpart, ValidationError> {
    let power_balance = match &input.power_balance {
        None | Some(Value::Null) => 50.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| {
            ValidationError::new("counterpart.powerBalance", "must be a number from 0 to 100")
        })?,
        Some(_) => f64::NAN,
    };
    in_range(power_balance, 0.0, 100.0, "counterpart.powerBalance")?;
    let dominance = input.dominance.unwrap_or(0.0);
    in_range(dominance, -100.0, 100.0, "counterpart.dominance")?;
    let affiliation = input.affiliation.unwrap_or(0.0);
    in_range(affiliation, -100.0, 100.0, "counterpart.affiliation")?;
    Ok(Counterpart {
        name: non_empty(&input.name, "counterpart.name", 200)?,
        kind: input.kind.clone().unwrap_or_else(|| "other".into()),
        power_balance,
        dominance,
        affiliation,
        style: optional_text(input.style.as_deref(), "counterpart.style", 500)?,
    })
}

fn validate_products(inputs: &[ProductInput]) -> Result<Vec<Product>, ValidationError> {
    if inputs.is_empty() {
        return Err(ValidationError::new(
            "products",
            "at least one product is required",
        ));
    }
    if inputs.len() > 100 {
        return Err(ValidationError::new("products", "at most 100 products"));
    }
    let mut names = HashSet::new();
    let mut products = Vec::with_capacity(inputs.len());
    for (i, p) in inputs.iter().enumerate() {
        let field = |f: &str| format!("products[{i}].{f}");
        let name = non_empty(&p.name, &field("name"), 200)?;
        if !names.insert(name.to_lowercase()) {
            return Err(ValidationError::new(
                field("name"),
                "duplicate product name",
            ));
        }
        let required = |v: Option<f64>, f: &str| {
            let v = v.ok_or_else(|| ValidationError::new(field(f), "is required"))?;
            finite(v, &field(f))
        };
        let min_price = required(p.attrs.min_price, "attrs.minPrice")?;
        let max_price = required(p.attrs.max_price, "attrs.maxPrice")?;
        let target_price = required(p.attrs.target_price, "attrs.targetPrice")?;
        if min_price < 0.0 {
            return Err(ValidationError::new(
                field("attrs.minPrice"),
                "must not be negative",
            ));
        }
        if min_price > max_price {
            return Err(ValidationError::new(
                field("attrs.minPrice"),
                "must not exceed maxPrice",
            ));
        }
        if target_price < min_price || target_price > max_price {
            return Err(ValidationError::new(
                field("attrs.targetPrice"),
                "must lie between minPrice and maxPrice",
            ));
        }
        let volume = finite(
            p.attrs.estimated_volume.unwrap_or(1.0),
            &field("attrs.estimatedVolume"),
        )?;
        if volume <= 0.0 {
            return Err(ValidationError::new(
                field("attrs.estimatedVolume"),
                "must be positive",
            ));
        }
        products.push(Product {
            name,
            target_price,
            min_price,
            max_price,
            volume,
        });
    }
    Ok(products)
}

fn validate_dimensions(
    inputs: &[DimensionInput],
    products: &[Product],
) -> Result<Vec<Dimension>, ValidationError> {
    if inputs.is_empty() {
        return Err(ValidationError::new(
            "scenario.dimensions",
            "at least one dimension is required",
        ));
    }
    if inputs.len() > 100 {
        return Err(ValidationError::new(
            "scenario.dimensions",
            "at most 100 dimensions",
        ));
    }
    let mut names: HashSet<String> = products.iter().map(|p| p.name.to_lowercase()).collect();
    let mut dimensions = Vec::with_capacity(inputs.len());
    for (i, d) in inputs.iter().enumerate() {
        let field = |f: &str| format!("scenario.dimensions[{i}].{f}");
        let name = non_empty(&d.name, &field("name"), 200)?;
        if !names.insert(name.to_lowercase()) {
            return Err(ValidationError::new(
                field("name"),
                "duplicate name (dimension and product names must be unique)",
            ));
        }
        let min = finite(d.min_value, &field("minValue"))?;
        let max = finite(d.max_value, &field("maxValue"))?;
        let target = finite(d.target_value, &field("targetValue"))?;
        if min > max {
            return Err(ValidationError::new(
                field("minValue"),
                "must not exceed maxValue",
            ));
        }
        if target < min || target > max {
            return Err(ValidationError::new(
                field("targetValue"),
                "must lie between minValue and maxValue",
            ));
        }
        if !(1..=3).contains(&d.priority) {
            return Err(ValidationError::new(field("priority"), "must be 1, 2 or 3"));
        }
        dimensions.push(Dimension {
            name,
            unit: optional_text(d.unit.as_deref(), &field("unit"), 50)?,
            min,
            max,
            target,
            priority: d.priority as u8,
        });
    }
    Ok(dimensions)
}

fn validate_ids(
    ids: &[String],
    field: &str,
    known: impl Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    if ids.is_empty() {
        return Err(ValidationError::new(field, "select at least one"));
    }
    let mut seen = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !known(id) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!("unknown id '{id}'"),
            ));
        }
        if !seen.insert(id) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                "duplicate id",
            ));
        }
    }
    Ok(())
}

fn non_empty(value: &str, field: &str, max_len: usize) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max_len {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_len} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// The largest magnitude a price, volume or term may have: far above any real deal, far
/// below where storage and arithmetic lose precision.
const MAX_MAGNITUDE: f64 = 1e12;

fn finite(value: f64, field: &str) -> Result<f64, ValidationError> {
    if !value.is_finite() {
        return Err(ValidationError::new(field, "must be a finite number"));
    }
    if value.abs() > MAX_MAGNITUDE {
        return Err(ValidationError::new(
            field,
            "must be between -1e12 and 1e12",
        ));
    }
    Ok(value)
}

fn optional_text(
    value: Option<&str>,
    field: &str,
    max_len: usize,
) -> Result<String, ValidationError> {
    let text = value.unwrap_or_default().trim();
    if text.chars().count() > max_len {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_len} characters"),
        ));
    }
    Ok(text.to_string())
}

fn in_range(value: f64, min: f64, max: f64, field: &str) -> Result<(), ValidationError> {
    finite(value, field)?;
    if value < min || value > max {
        return Err(ValidationError::new(
            field,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(())
}
