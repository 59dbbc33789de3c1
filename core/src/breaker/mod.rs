//! The circuit breaker per provider and model, shared by all workers through Redis (or kept in
//! process for the embedded default). While open, calls are not made and runs wait.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Script;

use crate::queue::QueueError;

/// When to open and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    pub threshold: u32,
    /// How long it stays open before one probe call is let through.
    pub open_for: Duration,
    /// How long a probe may take before another caller may probe.
    pub probe_for: Duration,
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allow,
    /// The circuit is half-open and this caller makes the one probe call.
    Probe,
    /// Open: try again at this time.
    Open(DateTime<Utc>),
}

/// A state change, reported once by the caller that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: String,
    pub to: String,
}

#[async_trait]
pub trait CircuitBreaker: Send + Sync + std::fmt::Debug {
    async fn admit(&self) -> Result<Admission, QueueError>;

    /// Records a call's result; returns the state change it caused, if any.
    async fn record(&self, success: bool) -> Result<Option<Transition>, QueueError>;
}

/// The shared breaker: one Redis hash per provider and model.
#[derive(Debug, Clone)]
pub struct RedisBreaker {
    queue: crate::queue::RedisQueue,
    key: String,
    config: BreakerConfig,
    script: Script,
}

impl RedisBreaker {
    pub fn new(
        queue: crate::queue::RedisQueue,
        prefix: &str,
        provider: &str,
        model: &str,
        config: BreakerConfig,
    ) -> Self {
        Self {
            queue,
            key: format!("{prefix}:breaker:{provider}:{model}"),
            config,
            script: Script::new(include_str!("breaker.lua")),
        }
    }

    async fn call(&self, op: &str) -> Result<(String, String), QueueError> {
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&self.key)
            .arg(op)
            .arg(Utc::now().timestamp_millis())
            .arg(self.config.threshold)
            .arg(self.config.open_for.as_millis() as u64)
            .arg(self.config.probe_for.as_millis() as u64);
        self.queue.run_script(invocation).await
    }
}

#[async_trait]
impl CircuitBreaker for RedisBreaker {
    async fn admit(&self) -> Result<Admission, QueueError> {
        let (verdict, until) = self.call("acquire").await?;
        Ok(match verdict.as_str() {
            "allow" => Admission::Allow,
            "probe" => Admission::Probe,
            _ => Admission::Open(
                until
                    .parse()
                    .ok()
                    .and_then(DateTime::from_timestamp_millis)
                    .unwrap_or_else(Utc::now),
            ),
        })
    }

    async fn record(&self, success: bool) -> Result<Option<Transition>, QueueError> {
        let (from, to) = self
            .call(if success { "success" } else { "failure" })
            .await?;
        Ok((from != to).then_some(Transition { from, to }))
    }
}

/// The in-process breaker of the embedded default, with the same rules.
#[derive(Debug)]
pub struct LocalBreaker {
    config: BreakerConfig,
    state: Mutex<(String, u32, DateTime<Utc>)>,
}

impl LocalBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: Mutex::new(("closed".into(), 0, Utc::now())),
        }
    }
}

#[async_trait]
impl CircuitBreaker for LocalBreaker {
    async fn admit(&self) -> Result<Admission, QueueError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Utc::now();
        if state.0 == "closed" {
            return Ok(Admission::Allow);
        }
        if state.0 == "half_open" && now < state.2 {
            // A probe is in flight: look again soon rather than at its deadline.
            return Ok(Admission::Open(
                state.2.min(now + chrono::Duration::seconds(1)),
            ));
        }
        if now < state.2 {
            return Ok(Admission::Open(state.2));
        }
        *state = (
            "half_open".into(),
            state.1,
            now + chrono::Duration::from_std(self.config.probe_for).unwrap_or_default(),
        );
        Ok(Admission::Probe)
    }

    async fn record(&self, success: bool) -> Result<Option<Transition>, QueueError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let from = state.0.clone();
        let now = Utc::now();
        if success {
            *state = ("closed".into(), 0, now);
        } else {
            state.1 += 1;
            if from == "half_open" || (from == "closed" && state.1 >= self.config.threshold) {
                *state = (
                    "open".into(),
                    state.1,
                    now + chrono::Duration::from_std(self.config.open_for).unwrap_or_default(),
                );
            }
        }
        Ok((from != state.0).then(|| Transition {
            from,
            to: state.0.clone(),
        }))
    }
}
