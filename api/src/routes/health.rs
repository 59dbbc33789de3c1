//! `/health` (the process is up) and `/ready` (its database and queue answer).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (database, queue) = tokio::join!(state.store.ping(), state.queue.ping());
    let verdict = |ok: bool| if ok { "ok" } else { "unavailable" };
    let all_ok = database.is_ok() && queue.is_ok();
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let queue_name = if state.embedded {
        "in-process"
    } else {
        "redis"
    };
    let body = json!({
        "status": if all_ok { "ready" } else { "not_ready" },
        "database": verdict(database.is_ok()),
        queue_name: verdict(queue.is_ok()),
    });
    (status, Json(body))
}
