//! A fake OpenAI-compatible chat-completions server, scriptable per call, on port 0.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Decides the answer to the n-th call (0-based) given the request body.
pub type Script = Arc<dyn Fn(usize, &Value) -> Response + Send + Sync>;

#[derive(Clone)]
struct Shared {
    script: Script,
    calls: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Value>>>,
    delay: std::time::Duration,
}

pub struct FakeLlm {
    pub base_url: String,
    calls: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    pub async fn start(script: Script) -> Self {
        Self::start_with_delay(script, std::time::Duration::ZERO).await
    }

    /// A double that waits `delay` (without blocking) before every answer.
    pub async fn start_with_delay(script: Script, delay: std::time::Duration) -> Self {
        let shared = Shared {
            script,
            calls: Arc::default(),
            requests: Arc::default(),
            delay,
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake LLM");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            calls: shared.calls,
            requests: shared.requests,
            server,
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn complete(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !shared.delay.is_zero() {
        tokio::time::sleep(shared.delay).await;
    }
    let n = shared.calls.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut requests) = shared.requests.lock() {
        requests.push(request.clone());
    }
    (shared.script)(n, &request)
}

/// A well-formed chat completion whose content is `content`, with usage.
pub fn completion(content: &str, prompt_tokens: u64, completion_tokens: u64) -> Response {
    let body = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A plausible turn for the request: offers the middle of every bounded term and accepts once
/// the conversation holds three turns, so every run ends in a deal in round 2.
pub fn negotiating_turn(request: &Value) -> Value {
    let history = request["messages"]
        .as_array()
        .map_or(0, |m| m.len().saturating_sub(2));
    let properties = request
        .pointer("/response_format/json_schema/schema/properties/offer/properties")
        .and_then(Value::as_object);
    let offer: serde_json::Map<String, Value> = properties
        .into_iter()
        .flatten()
        .map(|(name, bounds)| {
            let min = bounds["minimum"].as_f64().unwrap_or(1.0);
            let max = bounds["maximum"].as_f64().unwrap_or(min * 1.2);
            (name.clone(), json!((min + max) / 2.0))
        })
        .collect();
    let action = if history >= 3 { "accept" } else { "continue" };
    json!({
        "message": "A fair proposal.",
        "action": action,
        "offer": offer,
        "confidence": 0.7,
        "internal_analysis": "test",
        "batna_assessment": 0.5,
        "walk_away_threshold": 0.3,
    })
}

/// The script of a well-behaved provider.
pub fn well_behaved() -> Script {
    Arc::new(|_, request| completion(&negotiating_turn(request).to_string(), 300, 120))
}
