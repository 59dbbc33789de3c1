//! The job queue port: delivery of run jobs to workers, with leases, delays and dead letters.
//! PostgreSQL stays the source of truth; the queue only delivers, at least once.

pub mod memory;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use memory::MemoryQueue;
pub use redis::RedisQueue;

/// The payload version this build writes and reads.
pub const JOB_VERSION: u32 = 1;

/// One run to play. The job id is the run id, so a run is never queued twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunJob {
    pub v: u32,
    pub run_id: String,
    pub batch_id: String,
}

impl RunJob {
    pub fn new(run_id: impl Into<String>, batch_id: impl Into<String>) -> Self {
        Self {
            v: JOB_VERSION,
            run_id: run_id.into(),
            batch_id: batch_id.into(),
        }
    }

    pub fn id(&self) -> &str {
        &self.run_id
    }

    /// Decodes a stored payload; an unknown version or shape is a poison job, with a reason.
    pub fn decode(payload: &str) -> Result<Self, String> {
        let job: RunJob =
            serde_json::from_str(payload).map_err(|e| format!("undecodable payload: {e}"))?;
        if job.v != JOB_VERSION {
            return Err(format!("unsupported payload version {}", job.v));
        }
        Ok(job)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What a fetch hands a worker: a job, or a payload it cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Job(RunJob),
    Poison { job_id: String, reason: String },
}

/// Why a job leaves delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Its run completed.
    Completed,
    /// Its run failed for good.
    Failed,
    /// A duplicate, a run that is final already, or a run parked until its batch resumes.
    Dropped,
}

impl AckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AckOutcome::Completed => "completed",
            AckOutcome::Failed => "failed",
            AckOutcome::Dropped => "dropped",
        }
    }
}

/// Jobs by state, cheap to read. `completed` and `failed` count acknowledgements since the
/// queue's keys were created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    pub waiting: u64,
    pub delayed: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub dead: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue backend unavailable: {0}")]
    Unavailable(String),
}

/// Delivery of run jobs. Every operation is atomic in the backend.
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Adds jobs whose ids the queue does not hold yet; returns how many were new.
    async fn enqueue(&self, jobs: &[RunJob]) -> Result<usize, QueueError>;

    /// Takes up to `max` ready jobs and leases them to `worker` for `lease`. A job whose lease
    /// runs out is delivered again.
    async fn fetch(
        &self,
        worker: &str,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// When the earliest delayed job or lease deadline falls due, if any.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, QueueError>;

    /// Waits until work may be ready, at most `max_wait`.
    async fn wait_for_work(&self, max_wait: Duration) -> Result<(), QueueError>;

    /// Extends the lease of a job a worker still plays.
    async fn extend(&self, job_id: &str, lease: Duration) -> Result<(), QueueError>;

    /// Takes a job out of delivery for good.
    async fn ack(&self, job_id: &str, outcome: AckOutcome) -> Result<(), QueueError>;

    /// Delivers the job again at `due`.
    async fn retry_at(&self, job: &RunJob, due: DateTime<Utc>) -> Result<(), QueueError>;

    /// Moves a job out of delivery into the dead-letter list, with a reason.
    async fn dead_letter(&self, job_id: &str, reason: &str) -> Result<(), QueueError>;

    async fn counts(&self) -> Result<QueueCounts, QueueError>;

    async fn ping(&self) -> Result<(), QueueError>;
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}
