//! The reconciler: re-delivers from PostgreSQL every run whose delivery may have been lost.

use std::sync::Arc;

use arian_core::queue::RunJob;

use crate::WorkerDeps;

/// Runs re-delivered per pass at most.
const BATCH: u64 = 1_000;

/// Forever, every `reconcile_interval`: queued runs not picked up for two lease periods, due
/// retries and runs with expired leases go back to the queue, which drops ids it holds.
pub async fn run(deps: Arc<WorkerDeps>) {
    let mut interval = tokio::time::interval(deps.reconcile_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match pass(&deps).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(redelivered = n, "reconciler re-delivered runs"),
            Err(e) => tracing::warn!(error = %e, "reconciler pass failed"),
        }
    }
}

/// One pass; returns how many jobs the queue did not hold yet.
pub async fn pass(deps: &WorkerDeps) -> anyhow::Result<usize> {
    let stale = deps.store.runs_to_redeliver(deps.lease * 2, BATCH).await?;
    if stale.is_empty() {
        return Ok(0);
    }
    let jobs: Vec<RunJob> = stale
        .into_iter()
        .map(|(run_id, batch_id)| RunJob::new(run_id, batch_id))
        .collect();
    Ok(deps.queue.enqueue(&jobs).await?)
}
