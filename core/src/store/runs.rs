//! The run state machine as workers drive it: lease, checkpoint, retry, release, redeliver.
//! Every transition is one guarded update fenced by the attempt that holds the lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, UpdateMany,
};

use crate::domain::{BatchStatus, RunStatus, TokenUsage, TurnRecord};

use super::entities::{run, run_turn, simulation_queue as batch};
use super::{Store, StoreError, StoreResult, now};

/// A run this worker attempt now owns.
#[derive(Debug, Clone)]
pub struct LeasedRun {
    pub run: run::Model,
    pub attempt: i32,
}

/// The answer to a lease request.
#[derive(Debug, Clone)]
pub enum LeaseOutcome {
    Leased(Box<LeasedRun>),
    /// The batch already runs `max_concurrent` runs; try again shortly.
    AtCapacity,
    /// The batch is paused; its runs wait in `queued` for resume.
    BatchPaused,
    /// The run is final, not due, owned by a live attempt, or its batch is over.
    NotLeasable,
}

/// What a run consumed over all its stored turns.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunTotals {
    pub usage: TokenUsage,
    pub cost: f64,
    pub rounds: u32,
}

impl RunTotals {
    pub fn of(turns: &[TurnRecord]) -> Self {
        let mut totals = Self::default();
        for turn in turns {
            totals.usage += turn.usage;
            totals.cost += turn.cost_usd;
            totals.rounds = Ord::max(totals.rounds, turn.round);
        }
        totals
    }
}

pub(super) fn lease_lost() -> StoreError {
    StoreError::Conflict("the run is no longer leased by this attempt".into())
}

fn deadline(lease: Duration) -> DateTime<Utc> {
    now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(15))
}

/// The guard every transition of a leased run shares: this run, this attempt, still running.
pub(super) fn held(run_id: &str, attempt: i32) -> Condition {
    Condition::all()
        .add(run::Column::Id.eq(run_id))
        .add(run::Column::Attempt.eq(attempt))
        .add(run::Column::Status.eq(RunStatus::Running.as_str()))
}

impl Store {
    /// Takes a run for one attempt: `queued`, due `retry_wait`, or `running` with an expired
    /// lease, while its batch runs and has a free slot under `max_concurrent`.
    ///
    /// The batch row is locked for the check (on PostgreSQL), so concurrent leases of one batch
    /// never exceed its limit across workers.
    pub async fn lease_run(
        &self,
        run_id: &str,
        batch_id: &str,
        worker: &str,
        lease: Duration,
    ) -> StoreResult<LeaseOutcome> {
        let at = now();
        let txn = self.db.begin().await?;
        let mut query = batch::Entity::find_by_id(batch_id.to_string());
        if self.backend() == DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        let Some(batch) = query.one(&txn).await? else {
            return Ok(LeaseOutcome::NotLeasable);
        };
        match batch.status.parse::<BatchStatus>() {
            Ok(BatchStatus::Paused) => return Ok(LeaseOutcome::BatchPaused),
            Ok(BatchStatus::Pending | BatchStatus::Running) => {}
            _ => return Ok(LeaseOutcome::NotLeasable),
        }
        let running = run::Entity::find()
            .filter(run::Column::QueueId.eq(batch_id))
            .filter(run::Column::Status.eq(RunStatus::Running.as_str()))
            .filter(run::Column::LeaseExpiresAt.gte(at))
            .count(&txn)
            .await?;
        if running >= Ord::max(batch.max_concurrent, 1) as u64 {
            return Ok(LeaseOutcome::AtCapacity);
        }
        let leasable = Condition::any()
            .add(run::Column::Status.eq(RunStatus::Queued.as_str()))
            .add(
                Condition::all()
                    .add(run::Column::Status.eq(RunStatus::RetryWait.as_str()))
                    .add(
                        Condition::any()
                            .add(run::Column::NextAttemptAt.is_null())
                            .add(run::Column::NextAttemptAt.lte(at)),
                    ),
            )
            .add(
                Condition::all()
                    .add(run::Column::Status.eq(RunStatus::Running.as_str()))
                    .add(run::Column::LeaseExpiresAt.lt(at)),
            );
        let updated = run::Entity::update_many()
            .col_expr(
                run::Column::Status,
                Expr::value(RunStatus::Running.as_str()),
            )
            .col_expr(run::Column::Attempt, Expr::col(run::Column::Attempt).add(1))
            .col_expr(run::Column::LeaseOwner, Expr::value(worker))
            .col_expr(run::Column::LeaseExpiresAt, Expr::value(deadline(lease)))
            .col_expr(
                run::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                run::Column::StartedAt,
                Expr::col(run::Column::StartedAt).if_null(Expr::value(at)),
            )
            .col_expr(run::Column::UpdatedAt, Expr::value(at))
            .filter(run::Column::Id.eq(run_id))
            .filter(run::Column::QueueId.eq(batch_id))
            .filter(leasable)
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(LeaseOutcome::NotLeasable);
        }
        let run = run::Entity::find_by_id(run_id.to_string())
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        txn.commit().await?;
        let attempt = run.attempt;
        Ok(LeaseOutcome::Leased(Box::new(LeasedRun { run, attempt })))
    }

    /// The stored turns of a run, in order: the checkpoint a resumed attempt replays.
    pub async fn turns(&self, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
        let rows = run_turn::Entity::find()
            .filter(run_turn::Column::RunId.eq(run_id))
            .order_by_asc(run_turn::Column::Turn)
            .all(&self.db)
            .await?;
        rows.into_iter().map(turn_from_row).collect()
    }

    /// Stores one turn and renews the lease, only while this attempt holds the run.
    /// Storing the same turn twice keeps the first.
    ///
    /// The turn's cost goes to the batch's `actual_cost` in the same transaction, and the
    /// `reserved` budget taken for it before the call is given back.
    pub async fn save_turn(
        &self,
        leased: &LeasedRun,
        lease: Duration,
        turn: &TurnRecord,
        reserved: f64,
    ) -> StoreResult<()> {
        let (run_id, attempt) = (leased.run.id.as_str(), leased.attempt);
        let txn = self.db.begin().await?;
        self.lock_batch(&txn, &leased.run.queue_id).await?;
        let renewed = run::Entity::update_many()
            .col_expr(run::Column::LeaseExpiresAt, Expr::value(deadline(lease)))
            .col_expr(run::Column::UpdatedAt, Expr::value(now()))
            .filter(held(run_id, attempt))
            .exec(&txn)
            .await?;
        if renewed.rows_affected == 0 {
            return Err(lease_lost());
        }
        let row = run_turn::ActiveModel {
            run_id: Set(run_id.to_string()),
            turn: Set(turn.turn as i32),
            round: Set(turn.round as i32),
            speaker: Set(turn.speaker.as_str().into()),
            attempt: Set(attempt),
            message: Set(turn.output.message.clone()),
            action: Set(turn.output.action.as_str().into()),
            offer: Set(serde_json::to_value(&turn.output.offer).unwrap_or_default()),
            confidence: Set(turn.output.confidence),
            internal_analysis: Set(turn.output.internal_analysis.clone()),
            batna_assessment: Set(turn.output.batna_assessment),
            walk_away_threshold: Set(turn.output.walk_away_threshold),
            input_tokens: Set(turn.usage.input as i64),
            output_tokens: Set(turn.usage.output as i64),
            cost: Set(turn.cost_usd),
            repairs: Set(turn.repairs as i32),
            reasks: Set(turn.reasks as i32),
            created_at: Set(now()),
        };
        let inserted = run_turn::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(&txn)
            .await?;
        let paid = if matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
            turn.cost_usd
        } else {
            0.0
        };
        batch::Entity::update_many()
            .col_expr(
                batch::Column::ActualCost,
                Expr::col(batch::Column::ActualCost).add(paid),
            )
            .col_expr(
                batch::Column::ReservedCost,
                Expr::col(batch::Column::ReservedCost).sub(reserved),
            )
            .filter(batch::Column::Id.eq(leased.run.queue_id.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Extends the lease of a run this attempt still holds; false when it lost the run.
    pub async fn renew_lease(&self, leased: &LeasedRun, lease: Duration) -> StoreResult<bool> {
        let renewed = run::Entity::update_many()
            .col_expr(run::Column::LeaseExpiresAt, Expr::value(deadline(lease)))
            .filter(held(&leased.run.id, leased.attempt))
            .exec(&self.db)
            .await?;
        Ok(renewed.rows_affected > 0)
    }

    /// Reserves `estimate` USD of the batch's budget for one call; false when the call could
    /// overspend it. Batches without a budget always reserve.
    pub async fn reserve_turn(&self, batch_id: &str, estimate: f64) -> StoreResult<bool> {
        let fits = Condition::any()
            .add(batch::Column::BudgetUsd.is_null())
            .add(
                Expr::col(batch::Column::ActualCost)
                    .add(Expr::col(batch::Column::ReservedCost))
                    .add(estimate)
                    .lte(Expr::col(batch::Column::BudgetUsd)),
            );
        let reserved = batch::Entity::update_many()
            .col_expr(
                batch::Column::ReservedCost,
                Expr::col(batch::Column::ReservedCost).add(estimate),
            )
            .filter(batch::Column::Id.eq(batch_id))
            .filter(fits)
            .exec(&self.db)
            .await?;
        Ok(reserved.rows_affected > 0)
    }

    /// Gives back a reservation whose call was not paid (it failed) or not stored.
    pub async fn release_reservation(&self, batch_id: &str, estimate: f64) -> StoreResult<()> {
        batch::Entity::update_many()
            .col_expr(
                batch::Column::ReservedCost,
                Expr::col(batch::Column::ReservedCost).sub(estimate),
            )
            .filter(batch::Column::Id.eq(batch_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Parks a run after a transient failure until `next_attempt_at`; its turns stay stored.
    pub async fn retry_run(
        &self,
        leased: &LeasedRun,
        reason: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let update = run::Entity::update_many()
            .col_expr(
                run::Column::Status,
                Expr::value(RunStatus::RetryWait.as_str()),
            )
            .col_expr(run::Column::LastError, Expr::value(reason))
            .col_expr(run::Column::NextAttemptAt, Expr::value(next_attempt_at));
        self.unlease(update, leased).await
    }

    /// Parks a run until `until` without spending its attempt, as an open circuit does.
    pub async fn park_run(
        &self,
        leased: &LeasedRun,
        reason: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let update = run::Entity::update_many()
            .col_expr(
                run::Column::Status,
                Expr::value(RunStatus::RetryWait.as_str()),
            )
            .col_expr(run::Column::LastError, Expr::value(reason))
            .col_expr(run::Column::NextAttemptAt, Expr::value(until))
            .col_expr(
                run::Column::MaxAttempts,
                Expr::col(run::Column::MaxAttempts).add(1),
            );
        self.unlease(update, leased).await
    }

    /// Gives a run back to the queue, as a worker that shuts down does; the next attempt
    /// resumes from the stored turns.
    ///
    /// FIXME(attempts): the attempt number fences stale workers, so it never goes down, and a
    /// released or crashed attempt counts against `max_attempts` like a failed one; a separate
    /// failure counter would spare runs that were only interrupted.
    pub async fn release_run(&self, leased: &LeasedRun) -> StoreResult<()> {
        let update = run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()));
        self.unlease(update, leased).await
    }

    /// Applies `update` and clears the lease, only while this attempt holds the run.
    async fn unlease(
        &self,
        update: UpdateMany<run::Entity>,
        leased: &LeasedRun,
    ) -> StoreResult<()> {
        let updated = update
            .col_expr(run::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(
                run::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(run::Column::UpdatedAt, Expr::value(now()))
            .filter(held(&leased.run.id, leased.attempt))
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 0 {
            return Err(lease_lost());
        }
        Ok(())
    }

    /// Runs whose delivery may have been lost: queued for a while, due retries, and running
    /// with an expired lease. Re-delivering them is safe because the queue drops ids it holds
    /// and the lease guard drops runs that are not leasable.
    pub async fn runs_to_redeliver(
        &self,
        queued_for: Duration,
        limit: u64,
    ) -> StoreResult<Vec<(String, String)>> {
        let at = now();
        let stale = at - chrono::Duration::from_std(queued_for).unwrap_or_default();
        let due = Condition::any()
            .add(
                Condition::all()
                    .add(run::Column::Status.eq(RunStatus::Queued.as_str()))
                    .add(run::Column::UpdatedAt.lt(stale)),
            )
            .add(
                Condition::all()
                    .add(run::Column::Status.eq(RunStatus::RetryWait.as_str()))
                    .add(run::Column::NextAttemptAt.lte(at)),
            )
            .add(
                Condition::all()
                    .add(run::Column::Status.eq(RunStatus::Running.as_str()))
                    .add(run::Column::LeaseExpiresAt.lt(at)),
            );
        // Runs of paused batches wait for resume, which delivers them itself.
        let active_batches = sea_orm::sea_query::Query::select()
            .column(batch::Column::Id)
            .from(batch::Entity)
            .and_where(
                batch::Column::Status
                    .is_in([BatchStatus::Pending.as_str(), BatchStatus::Running.as_str()]),
            )
            .to_owned();
        Ok(run::Entity::find()
            .select_only()
            .column(run::Column::Id)
            .column(run::Column::QueueId)
            .filter(due)
            .filter(run::Column::QueueId.in_subquery(active_batches))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    pub async fn run_unscoped(&self, run_id: &str) -> StoreResult<Option<run::Model>> {
        Ok(run::Entity::find_by_id(run_id.to_string())
            .one(&self.db)
            .await?)
    }
}

fn turn_from_row(row: run_turn::Model) -> StoreResult<TurnRecord> {
    let corrupt =
        |e: String| StoreError::Corrupt(format!("turn {} of run {}: {e}", row.turn, row.run_id));
    Ok(TurnRecord {
        turn: row.turn as u32,
        round: row.round as u32,
        speaker: row.speaker.parse().map_err(corrupt)?,
        output: crate::domain::TurnOutput {
            message: row.message.clone(),
            action: row.action.parse().map_err(corrupt)?,
            offer: serde_json::from_value(row.offer.clone()).map_err(|e| corrupt(e.to_string()))?,
            confidence: row.confidence,
            internal_analysis: row.internal_analysis.clone(),
            batna_assessment: row.batna_assessment,
            walk_away_threshold: row.walk_away_threshold,
        },
        usage: TokenUsage {
            input: row.input_tokens as u64,
            output: row.output_tokens as u64,
        },
        cost_usd: row.cost,
        repairs: row.repairs as u32,
        reasks: row.reasks as u32,
    })
}
