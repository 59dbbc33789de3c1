//! Why a run attempt stopped, and the retry policy decided from the kind of error.

use arian_core::config::RetryConfig;
use arian_core::engine::MalformedTurn;
use arian_core::llm::LlmError;
use arian_core::store::StoreError;
use chrono::{DateTime, Utc};
use rand::Rng;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Malformed(#[from] MalformedTurn),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("invalid run: {0}")]
    Invalid(String),
    #[error("the run handler panicked")]
    Panicked,
    #[error("the run exceeded RUN_TIMEOUT ({0} s)")]
    RunTimeout(u64),
}

/// What to do with a run after an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// End the run as failed with this reason.
    Fail(String),
    /// Wait until this time without spending an attempt: the provider's circuit is open.
    Park(DateTime<Utc>),
}

impl RunError {
    pub fn is_transient(&self) -> bool {
        match self {
            RunError::Llm(e) => e.is_transient(),
            RunError::Malformed(_) => true,
            RunError::Store(e) => e.is_transient(),
            RunError::Invalid(_) => false,
            RunError::Panicked => true,
            RunError::RunTimeout(_) => false,
        }
    }

    /// A short reason stored on the run: the error class, never prompt or response text.
    pub fn reason(&self) -> String {
        match self {
            RunError::Store(StoreError::Db(_)) => "database error".to_string(),
            other => other.to_string(),
        }
    }
}

/// Transient errors retry with exponential backoff and jitter while attempts remain, waiting at
/// least what the provider asked for; everything else fails the run.
pub fn decide(error: &RunError, attempt: u32, max_attempts: u32, policy: &RetryConfig) -> Decision {
    if let RunError::Llm(LlmError::CircuitOpen { retry_after }) = error {
        let wait = chrono::Duration::from_std(*retry_after).unwrap_or_default();
        return Decision::Park(Utc::now() + wait);
    }
    if !error.is_transient() {
        return Decision::Fail(error.reason());
    }
    if attempt >= max_attempts {
        return Decision::Fail(format!(
            "{} (gave up after {attempt} attempts)",
            error.reason()
        ));
    }
    let backoff = policy.delay_after(attempt);
    let jitter = backoff.mul_f64(rand::rng().random_range(0.0..0.25));
    let mut delay = backoff + jitter;
    if let RunError::Llm(llm) = error
        && let Some(floor) = llm.retry_after()
    {
        delay = delay.max(floor);
    }
    Decision::RetryAt(
        Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(30)),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy() -> RetryConfig {
        RetryConfig {
            max_attempts: 3,
            base: Duration::from_secs(2),
            factor: 2.0,
            cap: Duration::from_secs(30),
        }
    }

    #[test]
    fn transient_errors_back_off_exponentially_then_fail() {
        let error = RunError::Llm(LlmError::Server(503));
        for (attempt, base) in [(1, 2.0), (2, 4.0)] {
            let Decision::RetryAt(at) = decide(&error, attempt, 3, &policy()) else {
                panic!("expected a retry")
            };
            let delay = (at - Utc::now()).num_milliseconds() as f64 / 1000.0;
            assert!(
                delay > base - 0.1 && delay <= base * 1.25 + 0.1,
                "attempt {attempt}: {delay}"
            );
        }
        assert!(
            matches!(decide(&error, 3, 3, &policy()), Decision::Fail(reason) if reason.contains("3 attempts"))
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_fatal_errors_never_retry() {
        let limited = RunError::Llm(LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(20)),
        });
        let Decision::RetryAt(at) = decide(&limited, 1, 3, &policy()) else {
            panic!("expected a retry")
        };
        assert!((at - Utc::now()).num_seconds() >= 19);
        let quota = RunError::Llm(LlmError::QuotaExhausted);
        assert_eq!(
            decide(&quota, 1, 3, &policy()),
            Decision::Fail("provider quota exhausted".into())
        );
    }
}
