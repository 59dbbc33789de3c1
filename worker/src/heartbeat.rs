//! The lease heartbeat: while an attempt plays a run, its lease in PostgreSQL and the job's
//! lease in Redis are renewed every third of the lease, however long an LLM call or a rate-limit
//! wait takes. If the attempt loses the run, the heartbeat says so before the next paid call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arian_core::store::LeasedRun;
use tokio::task::JoinHandle;

use crate::WorkerDeps;

/// Renews a lease until dropped.
pub struct Heartbeat {
    lost: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Heartbeat {
    pub fn start(deps: Arc<WorkerDeps>, leased: LeasedRun) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(deps.lease / 3);
            interval.tick().await;
            loop {
                interval.tick().await;
                match deps.store.renew_lease(&leased, deps.lease).await {
                    Ok(true) => {
                        if let Err(e) = deps.queue.extend(&leased.run.id, deps.lease).await {
                            tracing::debug!(error = %e, "could not extend the job's lease");
                        }
                    }
                    Ok(false) => {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew the run's lease"),
                }
            }
        });
        Self { lost, task }
    }

    /// True once another attempt owns the run (or it was stopped).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
