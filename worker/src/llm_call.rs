//! Call-level retries of one LLM turn: exponential backoff with full jitter, never sooner than
//! the provider asked, only for transient errors other than malformed output (which the handler
//! asks again with a correction). The job-level backoff takes over after.

use std::time::Duration;

use arian_core::breaker::{Admission, CircuitBreaker};
use arian_core::engine::cost::{EXPECTED_OUTPUT_TOKENS, approx_tokens};
use arian_core::limits::RateLimiter;
use arian_core::llm::prompt::turn_messages;
use arian_core::llm::{LlmError, LlmProvider, LlmReply, TurnContext};
use tokio_retry::strategy::{ExponentialBackoff, jitter};

/// How a worker retries a failing call before giving the run back to the queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallRetry {
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl CallRetry {
    /// Full-jitter delays: a random wait up to base x 2^(n-1), capped.
    fn delays(&self) -> impl Iterator<Item = Duration> {
        let base_ms = self.base.as_millis().max(2) as u64;
        ExponentialBackoff::from_millis(2)
            .factor(base_ms / 2)
            .max_delay(self.cap)
            .map(jitter)
            .take(self.retries as usize)
    }
}

/// Plays one turn, retrying transient failures. `deadline` bounds the total wait. While the
/// shared circuit is open no call is made: the caller gets `CircuitOpen` with the time to wait.
pub async fn play_turn(
    llm: &dyn LlmProvider,
    guards: Guards<'_>,
    context: &TurnContext<'_>,
    policy: &CallRetry,
    deadline: tokio::time::Instant,
) -> Result<LlmReply, LlmError> {
    let Guards { breaker, limiter } = guards;
    let mut delays = policy.delays();
    let mut attempt = 1;
    let reserved = expected_tokens(context);
    loop {
        match breaker.admit().await {
            Ok(Admission::Open(until)) => {
                let retry_after = (until - chrono::Utc::now()).to_std().unwrap_or_default();
                return Err(LlmError::CircuitOpen { retry_after });
            }
            Ok(_) => {}
            // Without Redis the breaker cannot be read; the call itself will tell.
            Err(e) => tracing::debug!(error = %e, "circuit breaker unavailable"),
        }
        wait_for_rate(limiter, reserved, deadline).await?;
        let result = llm.play_turn(context).await;
        count_call(llm.model(), &result);
        record(breaker, llm.model(), &result).await;
        let used = result.as_ref().map_or(0, |reply| reply.usage.total());
        if let Err(e) = limiter.settle(used as i64 - reserved as i64).await {
            tracing::debug!(error = %e, "rate limiter unavailable");
        }
        let error = match result {
            Ok(reply) => return Ok(reply),
            // Unusable output is asked again with a correction by the caller, not repeated.
            Err(error @ LlmError::Malformed(_)) => return Err(error),
            Err(error) if error.is_transient() => error,
            Err(error) => return Err(error),
        };
        let Some(backoff) = delays.next() else {
            return Err(error);
        };
        let delay = error
            .retry_after()
            .map_or(backoff, |floor| backoff.max(floor));
        if tokio::time::Instant::now() + delay > deadline {
            return Err(error);
        }
        tracing::warn!(
            run_id = context.run_id,
            turn = context.next.turn,
            attempt,
            delay_ms = delay.as_millis() as u64,
            error = %error,
            "LLM call failed; retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// What guards every call: the shared circuit breaker and rate limits.
#[derive(Clone, Copy)]
pub struct Guards<'a> {
    pub breaker: &'a dyn CircuitBreaker,
    pub limiter: &'a dyn RateLimiter,
}

/// Tokens a call is expected to use: its prompt and a typical answer.
fn expected_tokens(context: &TurnContext<'_>) -> u64 {
    let prompt: u64 = turn_messages(context)
        .iter()
        .filter_map(|m| m.get("content").and_then(serde_json::Value::as_str))
        .map(approx_tokens)
        .sum();
    prompt + EXPECTED_OUTPUT_TOKENS
}

/// Waits until the shared limits grant one request and `tokens` tokens. A wait past the
/// deadline gives up as rate limited; an unreachable limiter lets the call through (the
/// provider's own 429s still apply).
async fn wait_for_rate(
    limiter: &dyn RateLimiter,
    tokens: u64,
    deadline: tokio::time::Instant,
) -> Result<(), LlmError> {
    loop {
        match limiter.acquire(tokens).await {
            Ok(None) => return Ok(()),
            Ok(Some(wait)) => {
                if tokio::time::Instant::now() + wait > deadline {
                    return Err(LlmError::RateLimited {
                        retry_after: Some(wait),
                    });
                }
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "rate limiter unavailable");
                return Ok(());
            }
        }
    }
}

/// Counts every call by outcome, and the tokens of answered ones.
fn count_call(model: &str, result: &Result<LlmReply, LlmError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(LlmError::RateLimited { .. }) => "rate_limited",
        Err(LlmError::Server(_)) => "server_error",
        Err(LlmError::Timeout) => "timeout",
        Err(LlmError::Connection(_)) => "connection",
        Err(LlmError::Malformed(_)) => "malformed",
        Err(_) => "rejected",
    };
    metrics::counter!("arian_llm_calls_total", "model" => model.to_string(), "outcome" => outcome)
        .increment(1);
    if let Ok(reply) = result {
        metrics::counter!("arian_llm_tokens_total", "model" => model.to_string(), "direction" => "input").increment(reply.usage.input);
        metrics::counter!("arian_llm_tokens_total", "model" => model.to_string(), "direction" => "output").increment(reply.usage.output);
    }
}

/// Counts the call toward the circuit: a success closes it, an outage failure counts toward
/// opening it; other errors (rate limits, bad requests) say the provider is up and count neither.
async fn record(breaker: &dyn CircuitBreaker, model: &str, result: &Result<LlmReply, LlmError>) {
    let success = match result {
        Ok(_) => true,
        Err(error) if error.trips_breaker() => false,
        Err(_) => return,
    };
    let transition = breaker.record(success).await;
    if let Ok(Some(change)) = &transition {
        let labels = [("model", model.to_string()), ("to", change.to.clone())];
        metrics::counter!("arian_llm_circuit_transitions_total", &labels).increment(1);
        let open = if change.to == "closed" { 0.0 } else { 1.0 };
        metrics::gauge!("arian_llm_circuit_open", "model" => model.to_string()).set(open);
    }
    match transition {
        Ok(Some(transition)) if transition.to == "open" => {
            tracing::warn!(from = %transition.from, to = %transition.to, "circuit breaker opened");
        }
        Ok(Some(transition)) => {
            tracing::info!(from = %transition.from, to = %transition.to, "circuit breaker changed state");
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "circuit breaker unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use arian_core::domain::{Catalog, Speaker, TokenUsage};
    use arian_core::engine::{Negotiation, Terms};
    use async_trait::async_trait;
    use serde_json::json;

    use super::*;

    /// Fails with the queued errors, then answers.
    struct Scripted {
        errors: Mutex<VecDeque<LlmError>>,
        calls: Mutex<u32>,
    }

    #[async_trait]
    impl LlmProvider for Scripted {
        fn model(&self) -> &str {
            "test"
        }

        async fn play_turn(&self, _: &TurnContext<'_>) -> Result<LlmReply, LlmError> {
            *self.calls.lock().expect("lock") += 1;
            match self.errors.lock().expect("lock").pop_front() {
                Some(error) => Err(error),
                None => Ok(LlmReply {
                    raw: json!({}),
                    usage: TokenUsage::default(),
                }),
            }
        }
    }

    async fn run(
        errors: Vec<LlmError>,
        retries: u32,
    ) -> (Result<LlmReply, LlmError>, u32, Duration) {
        let catalog = Catalog::builtin();
        let (_, text) = arian_core::scenario_file::SHIPPED[0];
        let value: serde_json::Value = serde_json::from_str(text).expect("scenario");
        let scenario = arian_core::scenario_file::input_from_file(&value)
            .expect("shape")
            .validate(&catalog)
            .expect("valid");
        let negotiation = Negotiation::new(&scenario);
        let terms = Terms::for_speaker(&scenario, Speaker::User);
        let context = TurnContext {
            run_id: "run",
            scenario: &scenario,
            technique: catalog
                .technique("technique.legitimieren")
                .expect("technique"),
            tactic: catalog.tactic("tactic.zeitdruck").expect("tactic"),
            personality: None,
            next: negotiation.next_turn().expect("turn"),
            history: &[],
            terms: &terms,
            can_accept: false,
            correction: None,
        };
        let provider = Scripted {
            errors: Mutex::new(errors.into()),
            calls: Mutex::new(0),
        };
        let policy = CallRetry {
            retries,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(40),
        };
        let started = tokio::time::Instant::now();
        let deadline = started + Duration::from_secs(10);
        let breaker = arian_core::breaker::LocalBreaker::new(arian_core::breaker::BreakerConfig {
            threshold: 100,
            open_for: Duration::from_secs(30),
            probe_for: Duration::from_secs(30),
        });
        let guards = Guards {
            breaker: &breaker,
            limiter: &arian_core::limits::Unlimited,
        };
        let result = play_turn(&provider, guards, &context, &policy, deadline).await;
        let calls = *provider.calls.lock().expect("lock");
        (result, calls, started.elapsed())
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_retry_after_is_a_floor() {
        let limited = LlmError::RateLimited {
            retry_after: Some(Duration::from_millis(150)),
        };
        let (result, calls, elapsed) = run(vec![LlmError::Server(502), limited], 3).await;
        assert!(result.is_ok());
        assert_eq!(calls, 3);
        assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    }

    #[tokio::test]
    async fn retries_run_out_and_fatal_errors_are_not_retried() {
        let (result, calls, _) = run(vec![LlmError::Timeout; 5], 2).await;
        assert_eq!((result.err(), calls), (Some(LlmError::Timeout), 3));
        let (result, calls, _) = run(vec![LlmError::QuotaExhausted], 3).await;
        assert_eq!((result.err(), calls), (Some(LlmError::QuotaExhausted), 1));
    }
}
