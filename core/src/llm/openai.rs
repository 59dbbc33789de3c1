//! The OpenAI-compatible chat-completions provider, with the turn schema as response format.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::{StatusCode, header::HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::domain::TokenUsage;
use crate::engine::cost::approx_tokens;

use super::{
    LlmError, LlmProvider, LlmReply, TurnContext, prompt::turn_messages, schema::turn_schema,
};

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Up to and including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: SecretString,
    pub model: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    /// Send `json_schema`; off falls back to plain JSON mode for servers without schemas.
    pub use_json_schema: bool,
}

#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    config: OpenAiConfig,
    http: reqwest::Client,
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| LlmError::Connection(e.to_string()))?;
        Ok(Self { config, http })
    }

    fn request_body(&self, context: &TurnContext<'_>) -> Value {
        let response_format = if self.config.use_json_schema {
            json!({
                "type": "json_schema",
                "json_schema": {
                    "name": "negotiation_turn",
                    "strict": true,
                    "schema": turn_schema(context.terms),
                }
            })
        } else {
            json!({"type": "json_object"})
        };
        json!({
            "model": self.config.model,
            "messages": turn_messages(context),
            "response_format": response_format,
            "temperature": 0.7,
        })
    }
}

#[async_trait]
impl LlmProvider for OpenAiProvider {
    fn model(&self) -> &str {
        &self.config.model
    }

    async fn play_turn(&self, context: &TurnContext<'_>) -> Result<LlmReply, LlmError> {
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = self.request_body(context);
        let response = self
            .http
            .post(url)
            .bearer_auth(self.config.api_key.expose_secret())
            // Ids only, never content: lets gateways and test doubles attribute each call.
            .header("x-arian-run-id", context.run_id)
            .header("x-arian-turn", context.next.turn)
            .json(&body)
            .send()
            .await
            .map_err(classify_transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = read_capped(response, self.config.max_response_bytes).await?;
        if !status.is_success() {
            return Err(classify_status(status, &headers, &bytes));
        }
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| LlmError::Malformed(format!("response is not JSON: {e}")))?;
        let content = body
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| LlmError::Malformed("no choices[0].message.content".into()))?;
        // Content that is not a JSON object still cost tokens: hand it over as text, and the
        // engine's validation rejects it (and the handler asks again), counting the usage.
        let raw = parse_content(content).unwrap_or_else(|_| Value::String(content.to_string()));
        let usage = match (
            body.pointer("/usage/prompt_tokens").and_then(Value::as_u64),
            body.pointer("/usage/completion_tokens")
                .and_then(Value::as_u64),
        ) {
            (Some(input), Some(output)) => TokenUsage { input, output },
            // FIXME(usage): a provider without `usage` is billed on an estimate from sizes.
            _ => TokenUsage {
                input: approx_tokens(&body_text(&self.request_body(context))),
                output: approx_tokens(content),
            },
        };
        Ok(LlmReply { raw, usage })
    }
}

fn body_text(body: &Value) -> String {
    body.to_string()
}

/// Parses the model's content: the first JSON object, code fences stripped.
pub fn parse_content(content: &str) -> Result<Value, LlmError> {
    let trimmed = content.trim();
    let start = trimmed
        .find('{')
        .ok_or_else(|| LlmError::Malformed("no JSON object".into()))?;
    let mut stream = serde_json::Deserializer::from_str(&trimmed[start..]).into_iter::<Value>();
    match stream.next() {
        Some(Ok(value @ Value::Object(_))) => Ok(value),
        _ => Err(LlmError::Malformed("content is not a JSON object".into())),
    }
}

async fn read_capped(response: reqwest::Response, cap: usize) -> Result<Vec<u8>, LlmError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(classify_transport)?;
        if body.len() + chunk.len() > cap {
            return Err(LlmError::Malformed(format!(
                "response larger than {cap} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn classify_transport(error: reqwest::Error) -> LlmError {
    if error.is_timeout() {
        LlmError::Timeout
    } else {
        LlmError::Connection(error.to_string())
    }
}

/// Classifies an error answer from its status, error type and code, never its message text.
pub fn classify_status(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> LlmError {
    let error: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| {
        error
            .pointer(&format!("/error/{name}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (kind, code) = (field("type"), field("code"));
    match status.as_u16() {
        429 if kind == "insufficient_quota" || code == "insufficient_quota" => {
            LlmError::QuotaExhausted
        }
        429 => LlmError::RateLimited {
            retry_after: retry_after(headers),
        },
        401 | 403 => LlmError::Auth(status.as_u16()),
        400 if code == "context_length_exceeded" => LlmError::ContextTooLong,
        400 if code == "content_filter" || kind == "content_filter" => LlmError::ContentRefused,
        408 => LlmError::Timeout,
        s if s >= 500 => LlmError::Server(s),
        s => LlmError::BadRequest {
            status: s,
            kind: if code.is_empty() { kind } else { code },
        },
    }
}

/// The longest wait the provider asked for: `Retry-After` (seconds) or the
/// `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` durations (`1s`, `6m0s`, `20ms`).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = header("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let resets = ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
        .into_iter()
        .filter_map(|name| header(name).and_then(parse_reset));
    seconds.into_iter().chain(resets).max()
}

/// Parses a duration written as number-unit pairs: `1s`, `6m0s`, `1h2m`, `250ms`, `0.5s`.
pub fn parse_reset(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    (total.is_finite() && total > 0.0).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_headers_parse_as_durations() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_reset("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_reset("soon"), None);
    }

    #[test]
    fn the_longest_requested_wait_wins() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "2".parse().expect("header"));
        headers.insert("x-ratelimit-reset-tokens", "7s".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }
}
