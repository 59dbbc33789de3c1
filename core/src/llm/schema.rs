//! The JSON Schema of one negotiation turn, sent as the response format.

use serde_json::{Map, Value, json};

use crate::engine::Terms;

/// The schema for an agent's turn: one required number per term, bounded where it applies.
pub fn turn_schema(terms: &Terms) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for term in terms.iter() {
        let mut property = Map::new();
        property.insert("type".into(), json!("number"));
        if let Some(min) = term.bound.min {
            property.insert("minimum".into(), json!(min));
        }
        if let Some(max) = term.bound.max {
            property.insert("maximum".into(), json!(max));
        }
        properties.insert(term.name.clone(), Value::Object(property));
        required.push(json!(term.name));
    }
    let unit = json!({"type": "number", "minimum": 0, "maximum": 1});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["message", "action", "offer", "confidence", "internal_analysis",
                     "batna_assessment", "walk_away_threshold"],
        "properties": {
            "message": {"type": "string"},
            "action": {"type": "string", "enum": ["continue", "accept", "walk_away", "terminate"]},
            "offer": {
                "type": "object",
                "additionalProperties": false,
                "required": required,
                "properties": properties,
            },
            "confidence": unit,
            "internal_analysis": {"type": "string"},
            "batna_assessment": unit,
            "walk_away_threshold": unit,
        }
    })
}
