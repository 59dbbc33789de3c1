//! The LLM port: one trait every provider implements, its request context and error classes.

pub mod openai;
pub mod prompt;
pub mod schema;
pub mod simulated;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::{CatalogEntry, Scenario, TokenUsage, TurnRecord};
use crate::engine::{NextTurn, Terms};

pub use openai::{OpenAiConfig, OpenAiProvider};
pub use simulated::SimulatedProvider;

/// Everything a provider may use to play one turn of one run.
#[derive(Debug, Clone, Copy)]
pub struct TurnContext<'a> {
    pub run_id: &'a str,
    pub scenario: &'a Scenario,
    pub technique: &'a CatalogEntry,
    pub tactic: &'a CatalogEntry,
    /// `None` for the neutral default counterpart.
    pub personality: Option<&'a CatalogEntry>,
    pub next: NextTurn,
    pub history: &'a [TurnRecord],
    /// The terms the speaking agent may offer, with its own targets and bounds.
    pub terms: &'a Terms,
    pub can_accept: bool,
    /// Set when the previous answer for this turn was unusable: why, to tell the model.
    pub correction: Option<&'a str>,
}

/// A provider's answer: the raw structured output (validated by the engine) and its tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmReply {
    pub raw: Value,
    pub usage: TokenUsage,
}

/// What went wrong in a call, classified so the worker can decide on retries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("rate limited by the provider")]
    RateLimited { retry_after: Option<Duration> },
    #[error("provider quota exhausted")]
    QuotaExhausted,
    #[error("provider server error (status {0})")]
    Server(u16),
    #[error("provider call timed out")]
    Timeout,
    #[error("could not reach the provider: {0}")]
    Connection(String),
    #[error("prompt exceeds the model's context window")]
    ContextTooLong,
    #[error("the provider refused the content")]
    ContentRefused,
    #[error("provider rejected the credentials (status {0})")]
    Auth(u16),
    #[error("provider rejected the request (status {status}): {kind}")]
    BadRequest { status: u16, kind: String },
    #[error("malformed provider response: {0}")]
    Malformed(String),
    #[error("circuit open for this provider and model")]
    CircuitOpen { retry_after: Duration },
}

impl LlmError {
    /// Transient errors are worth another attempt; the rest end the run.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited { .. }
                | LlmError::Server(_)
                | LlmError::Timeout
                | LlmError::Connection(_)
                | LlmError::Malformed(_)
                | LlmError::CircuitOpen { .. }
        )
    }

    /// Errors that say the provider is down or unusable: they count toward opening the circuit.
    pub fn trips_breaker(&self) -> bool {
        matches!(
            self,
            LlmError::Server(_) | LlmError::Timeout | LlmError::Connection(_) | LlmError::Auth(_)
        )
    }

    /// The least time to wait before the next attempt, when the provider said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after } => *retry_after,
            LlmError::CircuitOpen { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A chat model that plays negotiation turns.
#[async_trait]
pub trait LlmProvider: Send + Sync {
    /// The model name used for pricing and reporting.
    fn model(&self) -> &str;

    async fn play_turn(&self, context: &TurnContext<'_>) -> Result<LlmReply, LlmError>;
}

/// Builds the provider the configuration names.
pub fn provider_from_config(
    config: &crate::config::LlmConfig,
) -> Result<std::sync::Arc<dyn LlmProvider>, LlmError> {
    use crate::config::LlmProviderKind;
    Ok(match config.provider {
        LlmProviderKind::Simulated => std::sync::Arc::new(SimulatedProvider::new(
            config.model.clone(),
            config.simulated_latency,
        )),
        LlmProviderKind::OpenAi => std::sync::Arc::new(OpenAiProvider::new(OpenAiConfig {
            base_url: config.base_url.clone(),
            api_key: config
                .api_key
                .clone()
                .unwrap_or_else(|| secrecy::SecretString::from(String::new())),
            model: config.model.clone(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: config.request_timeout,
            max_response_bytes: 1 << 20,
            use_json_schema: config.use_json_schema,
        })?),
    })
}
