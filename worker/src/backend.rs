//! The apalis backend over Arian's queue: a fetch stream that never ends the worker.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_core::backend::custom::{BackendBuilder, CustomBackend};
use arian_core::queue::{Delivery, RunJob};
use futures::sink::{self, Sink};
use futures::stream::{self, BoxStream, StreamExt};

use crate::WorkerDeps;

/// How long an idle fetch loop blocks waiting for new work before it looks again.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// The shortest idle wait, so a job falling due is fetched within a few milliseconds.
const MIN_WAIT: Duration = Duration::from_millis(5);
/// The longest pause after repeated backend errors.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

type JobStream = BoxStream<'static, Result<Option<Task<RunJob>>, BoxDynError>>;
type JobSink = std::pin::Pin<Box<dyn Sink<Task<RunJob>, Error = BoxDynError> + Send>>;

/// The apalis backend: fetches leased jobs from the queue, one per free slot.
pub fn queue_backend(
    deps: Arc<WorkerDeps>,
) -> anyhow::Result<CustomBackend<RunJob, Arc<WorkerDeps>, JobStream, JobSink>> {
    BackendBuilder::new()
        .database(deps)
        .fetcher(|deps: &mut Arc<WorkerDeps>, _: &(), _: &WorkerContext| job_stream(deps.clone()))
        .sink(|deps: &mut Arc<WorkerDeps>, _: &()| job_sink(deps.clone()))
        .build()
        .map_err(|e| anyhow::anyhow!("building the queue backend: {e}"))
}

/// Yields jobs as they become ready, fetching up to `prefetch` at a time (apalis polls the
/// stream only when a slot is free, so at most `prefetch - 1` leased jobs wait here). Backend
/// errors are logged and retried with a growing pause, never passed to apalis, which would end
/// the worker.
fn job_stream(deps: Arc<WorkerDeps>) -> JobStream {
    stream::unfold((deps, Duration::ZERO), |(deps, mut pause)| async move {
        loop {
            match deps.take_buffered() {
                Some(Delivery::Job(job)) => {
                    return Some((Ok(Some(Task::new(job))), (deps, Duration::ZERO)));
                }
                Some(Delivery::Poison { job_id, reason }) => {
                    tracing::warn!(%job_id, %reason, "poison job moved to the dead letters");
                    if let Err(e) = deps.queue.dead_letter(&job_id, &reason).await {
                        tracing::warn!(%job_id, error = %e, "could not dead-letter a poison job");
                    }
                    continue;
                }
                None => {}
            }
            match deps.queue.fetch(&deps.worker_id, deps.lease, deps.prefetch).await {
                Ok(fetched) if !fetched.is_empty() => deps.buffer(fetched),
                Ok(_) => {
                    pause = Duration::ZERO;
                    // Sleep until new work is signalled, or the next delayed job falls due.
                    let due = deps.queue.next_due().await.ok().flatten();
                    let until_due = due.map(|at| (at - chrono::Utc::now()).to_std().unwrap_or(MIN_WAIT));
                    let wait = until_due.map_or(IDLE_WAIT, |d| d.clamp(MIN_WAIT, IDLE_WAIT));
                    if let Err(e) = deps.queue.wait_for_work(wait).await {
                        tracing::debug!(error = %e, "waiting for work failed");
                        tokio::time::sleep(wait).await;
                    }
                }
                Err(e) => {
                    pause = (pause * 2).clamp(Duration::from_millis(100), MAX_ERROR_PAUSE);
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "fetching jobs failed; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    })
    .boxed()
}

/// Jobs pushed through apalis go to the same queue the API enqueues into.
fn job_sink(deps: Arc<WorkerDeps>) -> JobSink {
    Box::pin(sink::unfold(deps, |deps, task: Task<RunJob>| async move {
        deps.queue
            .enqueue(std::slice::from_ref(&task.args))
            .await
            .map_err(|e| Box::new(e) as BoxDynError)?;
        Ok::<_, BoxDynError>(deps)
    }))
}
