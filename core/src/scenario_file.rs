//! Reads the shipped scenario files, whose layout nests the negotiation under `negotiation`.

use serde_json::{Value, json};

use crate::domain::NegotiationInput;

/// Scenarios shipped with Arian, by file name.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "01-seller-snacks-vs-retailer.json",
        include_str!("../data/scenarios/01-seller-snacks-vs-retailer.json"),
    ),
    (
        "02-buyer-retailer-vs-manufacturer.json",
        include_str!("../data/scenarios/02-buyer-retailer-vs-manufacturer.json"),
    ),
    (
        "03-seller-all-personalities-matrix.json",
        include_str!("../data/scenarios/03-seller-all-personalities-matrix.json"),
    ),
];

/// Accepts either a scenario file (`negotiation: {title, description, scenario}` beside
/// `market`, `counterpart`, `products`) or an API body as is.
pub fn input_from_file(value: &Value) -> Result<NegotiationInput, serde_json::Error> {
    let Some(negotiation) = value.get("negotiation") else {
        return serde_json::from_value(value.clone());
    };
    let body = json!({
        "title": negotiation.get("title").cloned().unwrap_or(Value::Null),
        "description": negotiation.get("description").cloned().unwrap_or(Value::Null),
        "registration": value.get("registration").cloned().unwrap_or(Value::Null),
        "market": value.get("market").cloned().unwrap_or(Value::Null),
        "counterpart": value.get("counterpart").cloned().unwrap_or(Value::Null),
        "products": value.get("products").cloned().unwrap_or(Value::Null),
        "scenario": negotiation.get("scenario").cloned().unwrap_or(Value::Null),
    });
    serde_json::from_value(body)
}
