//! Catalog lists: influence techniques, negotiation tactics, personality types.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use arian_core::domain::{CatalogEntry, EntryKind};

use crate::auth::AuthUser;
use crate::state::AppState;

pub async fn techniques(_: AuthUser, State(state): State<AppState>) -> Json<Value> {
    list(&state, EntryKind::Technique)
}

pub async fn tactics(_: AuthUser, State(state): State<AppState>) -> Json<Value> {
    list(&state, EntryKind::Tactic)
}

pub async fn personalities(_: AuthUser, State(state): State<AppState>) -> Json<Value> {
    list(&state, EntryKind::Personality)
}

fn list(state: &AppState, kind: EntryKind) -> Json<Value> {
    let entries: Vec<Value> = state.catalog.of_kind(kind).map(view).collect();
    Json(json!(entries))
}

fn view(entry: &CatalogEntry) -> Value {
    json!({
        "id": entry.id,
        "name": entry.name,
        "nameEn": entry.name_en,
        "summary": entry.summary,
    })
}
