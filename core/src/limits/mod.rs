//! Rate limits shared by every worker: requests and tokens per minute for one model, in one
//! Redis script (GCRA). A call reserves its expected tokens and settles the real count after.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use redis::Script;

use crate::queue::{QueueError, RedisQueue};

/// Limits of one model; 0 means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub requests_per_minute: u32,
    pub tokens_per_minute: u32,
}

impl RateLimits {
    pub fn is_unlimited(&self) -> bool {
        self.requests_per_minute == 0 && self.tokens_per_minute == 0
    }
}

#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Takes one request and `tokens` tokens, or says how long to wait before asking again.
    async fn acquire(&self, tokens: u64) -> Result<Option<Duration>, QueueError>;

    /// Corrects the reserved tokens by what the call really used (`actual - reserved`).
    async fn settle(&self, correction: i64) -> Result<(), QueueError>;
}

/// No limits: the embedded default, or a deployment that sets none.
#[derive(Debug, Default)]
pub struct Unlimited;

#[async_trait]
impl RateLimiter for Unlimited {
    async fn acquire(&self, _: u64) -> Result<Option<Duration>, QueueError> {
        Ok(None)
    }

    async fn settle(&self, _: i64) -> Result<(), QueueError> {
        Ok(())
    }
}

/// Limits shared through Redis by every worker that uses the same model.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    queue: RedisQueue,
    requests_key: String,
    tokens_key: String,
    limits: RateLimits,
    script: Script,
}

impl RedisRateLimiter {
    pub fn new(queue: RedisQueue, prefix: &str, model: &str, limits: RateLimits) -> Self {
        Self {
            queue,
            requests_key: format!("{prefix}:rate:{model}:requests"),
            tokens_key: format!("{prefix}:rate:{model}:tokens"),
            limits,
            script: Script::new(include_str!("gcra.lua")),
        }
    }

    async fn call(&self, op: &str, tokens: i64) -> Result<u64, QueueError> {
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&self.requests_key)
            .key(&self.tokens_key)
            .arg(op)
            .arg(Utc::now().timestamp_millis())
            .arg(self.limits.requests_per_minute)
            .arg(self.limits.tokens_per_minute)
            .arg(tokens);
        self.queue.run_script(invocation).await
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, tokens: u64) -> Result<Option<Duration>, QueueError> {
        let wait_ms = self.call("acquire", tokens as i64).await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    async fn settle(&self, correction: i64) -> Result<(), QueueError> {
        if self.limits.tokens_per_minute > 0 && correction != 0 {
            self.call("settle", correction).await?;
        }
        Ok(())
    }
}
