//! Batch controls: pause, resume, stop, and putting failed runs back. Each is one transaction
//! of guarded updates, so it acts on every worker at its next fenced write or lease.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};

use crate::domain::{BatchStatus, RunStatus};

use super::entities::{run, simulation_queue as batch};
use super::{Store, StoreResult, now};

/// Runs that are not final yet.
const LIVE_RUNS: [RunStatus; 4] = [
    RunStatus::Pending,
    RunStatus::Queued,
    RunStatus::Running,
    RunStatus::RetryWait,
];

impl Store {
    /// Pauses a pending or running batch; returns false when it was in another state. Workers
    /// park its running runs at their next turn boundary and start none of it.
    pub async fn pause_batch(&self, batch_id: &str) -> StoreResult<bool> {
        let at = now();
        let updated = batch::Entity::update_many()
            .col_expr(
                batch::Column::Status,
                Expr::value(BatchStatus::Paused.as_str()),
            )
            .col_expr(batch::Column::PausedAt, Expr::value(at))
            .col_expr(batch::Column::UpdatedAt, Expr::value(at))
            .filter(batch::Column::Id.eq(batch_id))
            .filter(
                batch::Column::Status
                    .is_in([BatchStatus::Pending.as_str(), BatchStatus::Running.as_str()]),
            )
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected > 0)
    }

    /// Resumes a paused batch; returns the ids of its runs to deliver again, or `None` when the
    /// batch was not paused.
    pub async fn resume_batch(&self, batch_id: &str) -> StoreResult<Option<Vec<String>>> {
        let at = now();
        let updated = batch::Entity::update_many()
            .col_expr(
                batch::Column::Status,
                Expr::value(BatchStatus::Running.as_str()),
            )
            .col_expr(
                batch::Column::PausedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(batch::Column::UpdatedAt, Expr::value(at))
            .filter(batch::Column::Id.eq(batch_id))
            .filter(batch::Column::Status.eq(BatchStatus::Paused.as_str()))
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        Ok(Some(self.start_batch(batch_id).await?))
    }

    /// Stops a batch for `reason` (`stopped_by_user`, `budget_exhausted`): every run not final
    /// becomes `stopped` (a worker playing one finds its
    /// lease gone at its next write and makes no further call) and the batch is `stopped`.
    /// Returns how many runs were stopped, or `None` when the batch was already final.
    pub async fn stop_batch(&self, batch_id: &str, reason: &str) -> StoreResult<Option<u64>> {
        let at = now();
        let txn = self.db.begin().await?;
        self.lock_batch(&txn, batch_id).await?;
        let final_batch = [
            BatchStatus::Completed.as_str(),
            BatchStatus::Stopped.as_str(),
            BatchStatus::Failed.as_str(),
        ];
        let current = batch::Entity::find_by_id(batch_id.to_string())
            .one(&txn)
            .await?;
        if current.is_none_or(|b| final_batch.contains(&b.status.as_str())) {
            return Ok(None);
        }
        let stopped = run::Entity::update_many()
            .col_expr(
                run::Column::Status,
                Expr::value(RunStatus::Stopped.as_str()),
            )
            .col_expr(
                run::Column::LastError,
                Expr::value(format!("batch stopped: {reason}")),
            )
            .col_expr(
                run::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(run::Column::CompletedAt, Expr::value(at))
            .col_expr(run::Column::UpdatedAt, Expr::value(at))
            .filter(run::Column::QueueId.eq(batch_id))
            .filter(run::Column::Status.is_in(LIVE_RUNS.map(RunStatus::as_str)))
            .exec(&txn)
            .await?
            .rows_affected;
        batch::Entity::update_many()
            .col_expr(
                batch::Column::Status,
                Expr::value(BatchStatus::Stopped.as_str()),
            )
            .col_expr(batch::Column::StopReason, Expr::value(reason))
            .col_expr(
                batch::Column::StoppedCount,
                Expr::col(batch::Column::StoppedCount).add(stopped as i64),
            )
            .col_expr(batch::Column::CompletedAt, Expr::value(at))
            .col_expr(batch::Column::UpdatedAt, Expr::value(at))
            .filter(batch::Column::Id.eq(batch_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(Some(stopped))
    }

    /// Puts failed runs (all, or those in `run_ids`) back in the queue with a fresh budget of
    /// `attempts`; their stored turns are replayed, not paid again. Returns the ids to deliver.
    pub async fn retry_failed_runs(
        &self,
        batch_id: &str,
        run_ids: Option<&[String]>,
        attempts: u32,
    ) -> StoreResult<Vec<String>> {
        let at = now();
        let txn = self.db.begin().await?;
        self.lock_batch(&txn, batch_id).await?;
        let mut failed = run::Entity::find()
            .select_only()
            .column(run::Column::Id)
            .filter(run::Column::QueueId.eq(batch_id))
            .filter(run::Column::Status.eq(RunStatus::Failed.as_str()))
            .order_by_asc(run::Column::RunNumber);
        if let Some(ids) = run_ids {
            failed = failed.filter(run::Column::Id.is_in(ids.iter().map(String::as_str)));
        }
        let ids: Vec<String> = failed.into_tuple().all(&txn).await?;
        if ids.is_empty() {
            return Ok(ids);
        }
        for chunk in ids.chunks(1_000) {
            run::Entity::update_many()
                .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
                .col_expr(
                    run::Column::MaxAttempts,
                    Expr::col(run::Column::Attempt).add(attempts as i32),
                )
                .col_expr(run::Column::LastError, Expr::value(Option::<String>::None))
                .col_expr(
                    run::Column::NextAttemptAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(
                    run::Column::CompletedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(run::Column::UpdatedAt, Expr::value(at))
                .filter(run::Column::Id.is_in(chunk.iter().map(String::as_str)))
                .filter(run::Column::Status.eq(RunStatus::Failed.as_str()))
                .exec(&txn)
                .await?;
        }
        batch::Entity::update_many()
            .col_expr(
                batch::Column::Status,
                Expr::value(BatchStatus::Running.as_str()),
            )
            .col_expr(
                batch::Column::FailedCount,
                Expr::col(batch::Column::FailedCount).sub(ids.len() as i64),
            )
            .col_expr(
                batch::Column::CompletedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(batch::Column::UpdatedAt, Expr::value(at))
            .filter(batch::Column::Id.eq(batch_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(ids)
    }

    /// The batch's status, read by workers between turns.
    pub async fn batch_status(&self, batch_id: &str) -> StoreResult<Option<BatchStatus>> {
        let status: Option<String> = batch::Entity::find_by_id(batch_id.to_string())
            .select_only()
            .column(batch::Column::Status)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(status.and_then(|s| s.parse().ok()))
    }
}
