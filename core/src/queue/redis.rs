//! The Redis queue: jobs in a hash keyed by run id (the dedup), a ready list, delayed and
//! in-flight sorted sets, dead letters, and a wake list that idle workers block on.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::{Pool, Runtime};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde_json::json;

use super::{AckOutcome, Delivery, JobQueue, QueueCounts, QueueError, RunJob, millis};

/// The longest any Redis command may take before the call fails as unavailable; a paused
/// or unreachable Redis then answers errors quickly instead of hanging callers.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Checking a pooled connection before reuse gets less, so a dead one is replaced quickly.
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(1);

/// Extra time an enqueue may take per chunk of jobs.
const ENQUEUE_BUDGET_PER_CHUNK: Duration = Duration::from_millis(200);

/// Jobs per enqueue script call: large enough to amortise round trips, small enough to
/// keep one script short.
const ENQUEUE_CHUNK: usize = 500;

#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
    jobs: String,
    ready: String,
    delayed: String,
    inflight: String,
    dead: String,
    completed: String,
    failed: String,
    wake: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        let key = |name: &str| format!("{prefix}:{name}");
        Self {
            prefix: prefix.to_string(),
            jobs: key("jobs"),
            ready: key("ready"),
            delayed: key("delayed"),
            inflight: key("inflight"),
            dead: key("dead"),
            completed: key("completed"),
            failed: key("failed"),
            wake: key("wake"),
        }
    }
}

/// Commands go over one multiplexed connection (pipelined, reconnecting on its own); only the
/// blocking wait for work takes a pooled connection of its own, since it would stall the others.
#[derive(Clone)]
pub struct RedisQueue {
    shared: ConnectionManager,
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
        // redis-rs answers "timed out" after 500 ms by default, shorter than a blocking wait
        // for work; every command is bounded by COMMAND_TIMEOUT instead.
        let connection = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let manager =
            deadpool_redis::Manager::new_with_config(url, connection).map_err(unavailable)?;
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .wait_timeout(Some(COMMAND_TIMEOUT))
            .create_timeout(Some(COMMAND_TIMEOUT))
            .recycle_timeout(Some(RECYCLE_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(unavailable)?;
        let client = redis::Client::open(url).map_err(unavailable)?;
        let shared_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(COMMAND_TIMEOUT);
        let shared =
            ConnectionManager::new_lazy_with_config(client, shared_config).map_err(unavailable)?;
        Ok(Self {
            shared,
            pool,
            keys: Keys::new(prefix),
            enqueue: Script::new(include_str!("lua/enqueue.lua")),
            fetch: Script::new(include_str!("lua/fetch.lua")),
            retry_at: Script::new(include_str!("lua/retry_at.lua")),
            settle: Script::new(include_str!("lua/settle.lua")),
        })
    }

    /// The shared multiplexed connection (a cheap handle).
    async fn conn(&self) -> Result<ConnectionManager, QueueError> {
        Ok(self.shared.clone())
    }

    /// A connection of its own, for a command that blocks.
    async fn blocking_conn(&self) -> Result<deadpool_redis::Connection, QueueError> {
        self.pool.get().await.map_err(unavailable)
    }

    /// Runs one queue operation within `limit`.
    async fn timed<T>(
        limit: Duration,
        operation: impl std::future::Future<Output = Result<T, QueueError>>,
    ) -> Result<T, QueueError> {
        tokio::time::timeout(limit, operation)
            .await
            .unwrap_or_else(|_| Err(QueueError::Unavailable("redis command timed out".into())))
    }

    /// Takes a job out of delivery as `kind` (see `settle.lua`).
    async fn settle(
        &self,
        job_id: &str,
        kind: &str,
        dead_letter: Option<String>,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.settle.prepare_invoke();
        invocation
            .key(&self.keys.jobs)
            .key(&self.keys.inflight)
            .key(&self.keys.dead)
            .key(&self.keys.completed)
            .key(&self.keys.failed)
            .arg(job_id)
            .arg(kind);
        if let Some(record) = dead_letter {
            invocation.arg(record);
        }
        let _: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Runs a prepared script on the queue's pool within the command timeout.
    pub async fn run_script<T: redis::FromRedisValue + Send>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            let mut conn = self.conn().await?;
            invocation
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }

    /// Publishes a message on `{prefix}:{channel}` within the command timeout.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), QueueError> {
        let channel = format!("{}:{channel}", self.keys.prefix);
        Self::timed(COMMAND_TIMEOUT, async {
            let mut conn = self.conn().await?;
            let _: i64 = conn.publish(channel, message).await.map_err(unavailable)?;
            Ok(())
        })
        .await
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
        Self::timed(
            COMMAND_TIMEOUT * 2
                + ENQUEUE_BUDGET_PER_CHUNK * (jobs.len().div_ceil(ENQUEUE_CHUNK) as u32),
            async {
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
                        .invoke_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    added += n;
                }
                Ok(added)
            },
        )
        .await
    }

    async fn fetch(
        &self,
        _worker: &str,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            let mut conn = self.conn().await?;
            let fetched: Vec<String> = self
                .fetch
                .key(&self.keys.jobs)
                .key(&self.keys.ready)
                .key(&self.keys.delayed)
                .key(&self.keys.inflight)
                .arg(millis(Utc::now()))
                .arg(lease.as_millis() as u64)
                .arg(max.max(1))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(fetched
                .chunks_exact(2)
                .map(|pair| match RunJob::decode(&pair[1]) {
                    Ok(job) => Delivery::Job(job),
                    Err(reason) => Delivery::Poison {
                        job_id: pair[0].clone(),
                        reason,
                    },
                })
                .collect())
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            let mut conn = self.conn().await?;
            let (delayed, leases): (Vec<(String, f64)>, Vec<(String, f64)>) = redis::pipe()
                .zrange_withscores(&self.keys.delayed, 0, 0)
                .zrange_withscores(&self.keys.inflight, 0, 0)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let earliest = delayed
                .iter()
                .chain(leases.iter())
                .map(|(_, at)| *at as i64)
                .min();
            Ok(earliest.and_then(DateTime::from_timestamp_millis))
        })
        .await
    }

    async fn wait_for_work(&self, max_wait: Duration) -> Result<(), QueueError> {
        Self::timed(max_wait + COMMAND_TIMEOUT, async {
            let mut conn = self.blocking_conn().await?;
            let seconds = max_wait.as_secs_f64().max(0.01);
            let _: Option<(String, String)> = conn
                .brpop(&self.keys.wake, seconds)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn extend(&self, job_id: &str, lease: Duration) -> Result<(), QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            let mut conn = self.conn().await?;
            let deadline = millis(Utc::now()) + lease.as_millis() as i64;
            let _: i64 = redis::cmd("ZADD")
                .arg(&self.keys.inflight)
                .arg("XX")
                .arg(deadline)
                .arg(job_id)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn ack(&self, job_id: &str, outcome: AckOutcome) -> Result<(), QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            self.settle(job_id, outcome.as_str(), None).await
        })
        .await
    }

    async fn retry_at(&self, job: &RunJob, due: DateTime<Utc>) -> Result<(), QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            let mut conn = self.conn().await?;
            let _: i64 = self
                .retry_at
                .key(&self.keys.jobs)
                .key(&self.keys.inflight)
                .key(&self.keys.delayed)
                .key(&self.keys.wake)
                .arg(job.id())
                .arg(job.encode())
                .arg(millis(due))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn dead_letter(&self, job_id: &str, reason: &str) -> Result<(), QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            let record = json!({"reason": reason, "at": Utc::now().to_rfc3339()}).to_string();
            self.settle(job_id, "dead", Some(record)).await
        })
        .await
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            let mut conn = self.conn().await?;
            type Reply = (u64, u64, u64, u64, Option<u64>, Option<u64>);
            let (waiting, delayed, running, dead, completed, failed): Reply = redis::pipe()
                .llen(&self.keys.ready)
                .zcard(&self.keys.delayed)
                .zcard(&self.keys.inflight)
                .hlen(&self.keys.dead)
                .get(&self.keys.completed)
                .get(&self.keys.failed)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(QueueCounts {
                waiting,
                delayed,
                running,
                completed: completed.unwrap_or(0),
                failed: failed.unwrap_or(0),
                dead,
            })
        })
        .await
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Self::timed(COMMAND_TIMEOUT, async {
            let mut conn = self.conn().await?;
            let _: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}
