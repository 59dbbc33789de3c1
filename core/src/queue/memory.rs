//! The in-process queue of the embedded default: the same semantics as Redis, in memory.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::{AckOutcome, Delivery, JobQueue, QueueCounts, QueueError, RunJob, millis};

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<String, String>,
    ready: VecDeque<String>,
    delayed: BTreeSet<(i64, String)>,
    inflight: HashMap<String, i64>,
    dead: HashMap<String, String>,
    completed: u64,
    failed: u64,
}

#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<State>,
    work: Notify,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, jobs: &[RunJob]) -> Result<usize, QueueError> {
        let mut state = self.lock();
        let mut added = 0;
        for job in jobs {
            if !state.jobs.contains_key(job.id()) {
                state.jobs.insert(job.id().to_string(), job.encode());
                state.ready.push_back(job.id().to_string());
                added += 1;
            }
        }
        drop(state);
        if added > 0 {
            self.work.notify_waiters();
        }
        Ok(added)
    }

    async fn fetch(
        &self,
        _worker: &str,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        let now = millis(Utc::now());
        let mut state = self.lock();
        let due: Vec<(i64, String)> = state
            .delayed
            .iter()
            .take_while(|(at, _)| *at <= now)
            .cloned()
            .collect();
        for entry in due {
            state.delayed.remove(&entry);
            state.ready.push_front(entry.1);
        }
        let expired: Vec<String> = state
            .inflight
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            state.inflight.remove(&id);
            state.ready.push_front(id);
        }
        let mut leased = Vec::new();
        while leased.len() < max {
            let Some(id) = state.ready.pop_front() else {
                break;
            };
            let Some(payload) = state.jobs.get(&id).cloned() else {
                continue;
            };
            state
                .inflight
                .insert(id.clone(), now + lease.as_millis() as i64);
            leased.push(match RunJob::decode(&payload) {
                Ok(job) => Delivery::Job(job),
                Err(reason) => Delivery::Poison { job_id: id, reason },
            });
        }
        Ok(leased)
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, QueueError> {
        let state = self.lock();
        let delayed = state.delayed.iter().next().map(|(at, _)| *at);
        let lease = state.inflight.values().min().copied();
        let earliest = [delayed, lease].into_iter().flatten().min();
        Ok(earliest.and_then(DateTime::from_timestamp_millis))
    }

    async fn wait_for_work(&self, max_wait: Duration) -> Result<(), QueueError> {
        let _ = tokio::time::timeout(max_wait, self.work.notified()).await;
        Ok(())
    }

    async fn extend(&self, job_id: &str, lease: Duration) -> Result<(), QueueError> {
        let deadline = millis(Utc::now()) + lease.as_millis() as i64;
        if let Some(entry) = self.lock().inflight.get_mut(job_id) {
            *entry = deadline;
        }
        Ok(())
    }

    async fn ack(&self, job_id: &str, outcome: AckOutcome) -> Result<(), QueueError> {
        let mut state = self.lock();
        state.inflight.remove(job_id);
        if state.jobs.remove(job_id).is_some() {
            match outcome {
                AckOutcome::Completed => state.completed += 1,
                AckOutcome::Failed => state.failed += 1,
                AckOutcome::Dropped => {}
            }
        }
        Ok(())
    }

    async fn retry_at(&self, job: &RunJob, due: DateTime<Utc>) -> Result<(), QueueError> {
        let mut state = self.lock();
        state.inflight.remove(job.id());
        state.jobs.insert(job.id().to_string(), job.encode());
        state.delayed.retain(|(_, id)| id != job.id());
        state.delayed.insert((millis(due), job.id().to_string()));
        drop(state);
        self.work.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, job_id: &str, reason: &str) -> Result<(), QueueError> {
        let mut state = self.lock();
        state.inflight.remove(job_id);
        state.jobs.remove(job_id);
        state.dead.insert(job_id.to_string(), reason.to_string());
        Ok(())
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let state = self.lock();
        Ok(QueueCounts {
            waiting: state.ready.len() as u64,
            delayed: state.delayed.len() as u64,
            running: state.inflight.len() as u64,
            completed: state.completed,
            failed: state.failed,
            dead: state.dead.len() as u64,
        })
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}
