//! Arian's worker: the apalis runtime over Arian's queue, the run handler and the reconciler.

pub mod backend;
pub mod cli;
pub mod failure;
pub mod handler;
pub mod heartbeat;
pub mod llm_call;
pub mod progress;
pub mod reconciler;
pub mod turn;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::prelude::*;
use arian_core::Catalog;
use arian_core::config::{Config, RetryConfig};
use arian_core::engine::PriceTable;
use arian_core::llm::LlmProvider;
use arian_core::queue::{Delivery, JobQueue};
use arian_core::services::Services;
use arian_core::store::Store;
use tokio::sync::watch;

/// The most jobs one fetch takes; waiting jobs hold leases, so this stays small.
const MAX_PREFETCH: usize = 16;

/// Everything a worker process shares between its jobs.
pub struct WorkerDeps {
    pub worker_id: String,
    pub store: Store,
    pub queue: Arc<dyn JobQueue>,
    pub llm: Arc<dyn LlmProvider>,
    pub breaker: Arc<dyn arian_core::breaker::CircuitBreaker>,
    pub limiter: Arc<dyn arian_core::limits::RateLimiter>,
    /// Where live progress goes.
    pub events: Arc<dyn arian_core::events::EventBus>,
    pub catalog: Catalog,
    pub prices: PriceTable,
    pub lease: Duration,
    /// Jobs fetched per queue round trip.
    pub prefetch: usize,
    pub retry: RetryConfig,
    pub call_retry: llm_call::CallRetry,
    pub run_timeout: Duration,
    pub reconcile_interval: Duration,
    /// Flips to true when the worker stops taking jobs; handlers park their runs.
    pub stopping: watch::Receiver<bool>,
    /// Jobs fetched but not started yet; handed back to the queue when the worker stops.
    fetched: Mutex<VecDeque<Delivery>>,
}

impl WorkerDeps {
    /// The shared breaker and rate limits every LLM call goes through.
    pub fn guards(&self) -> llm_call::Guards<'_> {
        llm_call::Guards {
            breaker: &*self.breaker,
            limiter: &*self.limiter,
        }
    }

    fn buffer(&self, deliveries: Vec<Delivery>) {
        self.fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(deliveries);
    }

    fn take_buffered(&self) -> Option<Delivery> {
        self.fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// Gives fetched but unstarted jobs back to the queue, due now, for other workers.
    async fn hand_back_buffered(&self) {
        let waiting: Vec<Delivery> = self
            .fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for delivery in waiting {
            if let Delivery::Job(job) = delivery
                && let Err(e) = self.queue.retry_at(&job, chrono::Utc::now()).await
            {
                tracing::warn!(run_id = %job.run_id, error = %e, "could not hand a fetched job back; its lease will expire");
            }
        }
    }
}

impl std::fmt::Debug for WorkerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerDeps")
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

/// A unique worker id: host, process id and a random suffix.
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let suffix: u32 = rand::random();
    format!("{host}-{}-{suffix:08x}", std::process::id())
}

/// Settings a worker takes from the configuration.
pub fn deps_from_config(
    config: &Config,
    services: &Services,
    llm: Arc<dyn LlmProvider>,
    stopping: watch::Receiver<bool>,
) -> WorkerDeps {
    WorkerDeps {
        worker_id: worker_id(),
        store: services.store.clone(),
        queue: services.queue.clone(),
        llm,
        breaker: services.breaker.clone(),
        limiter: services.limiter.clone(),
        events: services.events.clone(),
        catalog: Catalog::builtin(),
        prices: PriceTable::default(),
        lease: config.lease_timeout,
        prefetch: config.worker_concurrency.clamp(1, MAX_PREFETCH),
        retry: config.retry,
        call_retry: llm_call::CallRetry {
            retries: config.llm.call_retries,
            base: config.llm.call_retry_base,
            cap: config.llm.call_retry_cap,
        },
        run_timeout: config.run_timeout,
        reconcile_interval: config.reconcile_interval,
        stopping,
        fetched: Mutex::default(),
    }
}

/// Runs the worker until `shutdown` resolves: takes jobs with `concurrency` in flight, runs the
/// reconciler beside, then stops taking jobs, parks in-flight runs at their next turn
/// boundary and waits for them at most `drain_timeout`.
pub async fn run(
    deps: Arc<WorkerDeps>,
    concurrency: usize,
    stop: watch::Sender<bool>,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(worker_id = %deps.worker_id, concurrency, "worker starting");
    let reconciler = tokio::spawn(reconciler::run(deps.clone()));
    let worker = WorkerBuilder::new(deps.worker_id.clone())
        .backend(backend::queue_backend(deps.clone())?)
        .data(deps.clone())
        .concurrency(concurrency)
        .catch_panic()
        .build(handler::handle_job);

    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let mut worker = tokio::spawn(worker.run_until(async move {
        let _ = released.await;
        Ok::<(), std::io::Error>(())
    }));

    let result = tokio::select! {
        ended = &mut worker => Some(ended),
        () = shutdown => None,
    };
    let result = match result {
        Some(ended) => worker_result(ended),
        None => {
            tracing::info!("shutdown requested: no new jobs, parking in-flight runs");
            let _ = stop.send(true);
            let _ = release.send(());
            match tokio::time::timeout(drain_timeout, worker).await {
                Ok(ended) => worker_result(ended),
                Err(_) => {
                    tracing::warn!(
                        "drain timeout passed; unfinished runs resume elsewhere when their leases expire"
                    );
                    Ok(())
                }
            }
        }
    };
    reconciler.abort();
    deps.hand_back_buffered().await;
    tracing::info!(worker_id = %deps.worker_id, "worker stopped");
    result
}

/// The apalis worker's task result as one error chain.
fn worker_result<E: std::fmt::Display>(
    joined: Result<Result<(), E>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    joined?.map_err(|e| anyhow::anyhow!("worker ended: {e}"))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
