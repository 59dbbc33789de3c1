//! Connecting the shared engines a configuration names: PostgreSQL and Redis, or the embedded
//! default's SQLite file and in-process queue.

use std::sync::Arc;

use anyhow::Context;

use crate::breaker::{CircuitBreaker, LocalBreaker, RedisBreaker};
use crate::config::{Config, LlmProviderKind};
use crate::events::{EventBus, MemoryEvents, RedisEvents};
use crate::limits::{RateLimiter, RedisRateLimiter, Unlimited};
use crate::queue::{JobQueue, MemoryQueue, RedisQueue};
use crate::store::Store;

/// The shared engines: PostgreSQL and Redis, or SQLite and the in-process queue.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub queue: Arc<dyn JobQueue>,
    /// The circuit breaker of the configured provider and model.
    pub breaker: Arc<dyn CircuitBreaker>,
    /// The shared request and token limits of the configured model.
    pub limiter: Arc<dyn RateLimiter>,
    /// Live run events for WebSocket clients.
    pub events: Arc<dyn EventBus>,
    pub embedded: bool,
}

/// Connects what the configuration names; with neither database nor Redis configured, a
/// SQLite file at `sqlite_path` and the in-process queue.
pub async fn connect(config: &Config, sqlite_path: &str) -> anyhow::Result<Services> {
    match (&config.database_url, &config.redis_url) {
        (Some(database_url), Some(redis_url)) => {
            let store = Store::connect(database_url)
                .await
                .context("connecting to DATABASE_URL")?;
            let queue = RedisQueue::connect(
                redis_url,
                &config.redis_prefix,
                config.worker_concurrency + 8,
            )
            .context("configuring REDIS_URL")?;
            let provider = match config.llm.provider {
                LlmProviderKind::Simulated => "simulated",
                LlmProviderKind::OpenAi => "openai",
            };
            let breaker = RedisBreaker::new(
                queue.clone(),
                &config.redis_prefix,
                provider,
                &config.llm.model,
                config.breaker,
            );
            let limiter: Arc<dyn RateLimiter> = if config.rate_limits.is_unlimited() {
                Arc::new(Unlimited)
            } else {
                Arc::new(RedisRateLimiter::new(
                    queue.clone(),
                    &config.redis_prefix,
                    &config.llm.model,
                    config.rate_limits,
                ))
            };
            let events = RedisEvents::new(queue.clone(), redis_url, &config.redis_prefix);
            Ok(Services {
                store,
                events: Arc::new(events),
                queue: Arc::new(queue),
                breaker: Arc::new(breaker),
                limiter,
                embedded: false,
            })
        }
        _ => {
            let url = format!("sqlite://{sqlite_path}?mode=rwc");
            let store = Store::connect(&url)
                .await
                .with_context(|| format!("opening SQLite file {sqlite_path}"))?;
            Ok(Services {
                store,
                queue: Arc::new(MemoryQueue::new()),
                events: Arc::new(MemoryEvents::new()),
                breaker: Arc::new(LocalBreaker::new(config.breaker)),
                // FIXME(embedded-limits): the embedded default has no rate limiter; one process
                // rarely needs one, and the provider's 429s are still honoured.
                limiter: Arc::new(Unlimited),
                embedded: true,
            })
        }
    }
}
