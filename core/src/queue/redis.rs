//! The Redis queue: jobs in a hash keyed by run id (the dedup), a ready list, delayed and
//! in-flight sorted sets, dead letters, and a wake list that idle workers block on.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::{Config, Pool, Runtime, Timeouts};
use redis::{AsyncCommands, Script};
use serde_json::json;

use super::{Delivery, JobQueue, QueueCounts, QueueError, RunJob, millis};

/// Jobs per enqueue script call: large enough to amortise round trips, small enough to
/// keep one script short.
const ENQUEUE_CHUNK: usize = 500;

#[derive(Debug, Clone)]
struct Keys {
    jobs: String,
    ready: String,
    delayed: String,
    inflight: String,
    dead: String,
    wake: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        let key = |name: &str| format!("{prefix}:{name}");
        Self {
            jobs: key("jobs"),
            ready: key("ready"),
            delayed: key("delayed"),
            inflight: key("inflight"),
            dead: key("dead"),
            wake: key("wake"),
        }
    }
}

#[derive(Clone)]
pub struct RedisQueue {
    pool: Pool,
    keys: Keys,
    enqueue: Script,
    fetch: Script,
    retry_at: Script,
    settle: Script,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.keys.jobs)
            .finish()
    }
}

fn unavailable(error: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(error.to_string())
}

impl RedisQueue {
    /// A queue under `prefix` (each deployment or test uses its own) with bounded waits.
    pub fn connect(url: &str, prefix: &str, pool_size: usize) -> Result<Self, QueueError> {
        let mut config = Config::from_url(url);
        let mut pool_config = deadpool_redis::PoolConfig::new(pool_size);
        pool_config.timeouts = Timeouts {
            wait: Some(Duration::from_secs(5)),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        };
        config.pool = Some(pool_config);
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(unavailable)?;
        Ok(Self {
            pool,
            keys: Keys::new(prefix),
            enqueue: Script::new(include_str!("lua/enqueue.lua")),
            fetch: Script::new(include_str!("lua/fetch.lua")),
            retry_at: Script::new(include_str!("lua/retry_at.lua")),
            settle: Script::new(include_str!("lua/settle.lua")),
        })
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, QueueError> {
        self.pool.get().await.map_err(unavailable)
    }

    /// Forgets a job, keeping a dead-letter record when one is given.
    async fn settle(&self, job_id: &str, dead_letter: Option<String>) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.settle.prepare_invoke();
        invocation
            .key(&self.keys.jobs)
            .key(&self.keys.inflight)
            .key(&self.keys.dead)
            .arg(job_id);
        if let Some(record) = dead_letter {
            invocation.arg(record);
        }
        let _: i64 = invocation
            .invoke_async(&mut *conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Dead letters with their reasons, for operators.
    pub async fn dead_letters(&self) -> Result<Vec<(String, String)>, QueueError> {
        let mut conn = self.conn().await?;
        conn.hgetall(&self.keys.dead).await.map_err(unavailable)
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    async fn enqueue(&self, jobs: &[RunJob]) -> Result<usize, QueueError> {
        let mut conn = self.conn().await?;
        let mut added = 0;
        for chunk in jobs.chunks(ENQUEUE_CHUNK) {
            let mut invocation = self.enqueue.prepare_invoke();
            invocation
                .key(&self.keys.jobs)
                .key(&self.keys.ready)
                .key(&self.keys.wake);
            for job in chunk {
                invocation.arg(job.id()).arg(job.encode());
            }
            let n: usize = invocation
                .invoke_async(&mut *conn)
                .await
                .map_err(unavailable)?;
            added += n;
        }
        Ok(added)
    }

    async fn fetch(&self, _worker: &str, lease: Duration) -> Result<Option<Delivery>, QueueError> {
        let mut conn = self.conn().await?;
        let fetched: Option<(String, String)> = self
            .fetch
            .key(&self.keys.jobs)
            .key(&self.keys.ready)
            .key(&self.keys.delayed)
            .key(&self.keys.inflight)
            .arg(millis(Utc::now()))
            .arg(lease.as_millis() as u64)
            .invoke_async(&mut *conn)
            .await
            .map_err(unavailable)?;
        Ok(
            fetched.map(|(job_id, payload)| match RunJob::decode(&payload) {
                Ok(job) => Delivery::Job(job),
                Err(reason) => Delivery::Poison { job_id, reason },
            }),
        )
    }

    async fn wait_for_work(&self, max_wait: Duration) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let seconds = max_wait.as_secs_f64().max(0.01);
        let _: Option<(String, String)> = conn
            .brpop(&self.keys.wake, seconds)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn extend(&self, job_id: &str, lease: Duration) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let deadline = millis(Utc::now()) + lease.as_millis() as i64;
        let _: i64 = redis::cmd("ZADD")
            .arg(&self.keys.inflight)
            .arg("XX")
            .arg(deadline)
            .arg(job_id)
            .query_async(&mut *conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn ack(&self, job_id: &str) -> Result<(), QueueError> {
        self.settle(job_id, None).await
    }

    async fn retry_at(&self, job: &RunJob, due: DateTime<Utc>) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let _: i64 = self
            .retry_at
            .key(&self.keys.jobs)
            .key(&self.keys.inflight)
            .key(&self.keys.delayed)
            .arg(job.id())
            .arg(job.encode())
            .arg(millis(due))
            .invoke_async(&mut *conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn dead_letter(&self, job_id: &str, reason: &str) -> Result<(), QueueError> {
        let record = json!({"reason": reason, "at": Utc::now().to_rfc3339()}).to_string();
        self.settle(job_id, Some(record)).await
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let mut conn = self.conn().await?;
        let (waiting, delayed, running, dead): (u64, u64, u64, u64) = redis::pipe()
            .llen(&self.keys.ready)
            .zcard(&self.keys.delayed)
            .zcard(&self.keys.inflight)
            .hlen(&self.keys.dead)
            .query_async(&mut *conn)
            .await
            .map_err(unavailable)?;
        Ok(QueueCounts {
            waiting,
            delayed,
            running,
            dead,
        })
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut *conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
