//! Batches: created with all their runs in one transaction, started, and read by their owner.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::domain::{BatchPlan, BatchStatus, RunStatus};

use super::entities::{run, simulation_queue as batch};
use super::{Store, StoreError, StoreResult, new_id, now};

/// Rows per INSERT when creating runs: well under both databases' bind-parameter limits.
const INSERT_CHUNK: usize = 1_000;

/// What a client asked for, after defaults and validation.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub plan: BatchPlan,
    pub max_concurrent: u32,
    pub max_attempts: u32,
    pub estimated_cost: f64,
    pub budget_usd: Option<f64>,
    pub idempotency_key: Option<String>,
    /// A digest of the request, compared when an idempotency key comes back.
    pub request_hash: String,
}

#[derive(Debug, Clone)]
pub struct CreatedBatch {
    pub batch: batch::Model,
    /// False when an earlier request with the same idempotency key created it.
    pub created: bool,
}

impl Store {
    /// Creates the batch and every run of it atomically, or returns the batch an earlier
    /// request with the same idempotency key created.
    pub async fn create_batch(
        &self,
        user_id: &str,
        negotiation_id: &str,
        request: &BatchRequest,
    ) -> StoreResult<CreatedBatch> {
        if let Some(existing) = self.batch_by_idempotency_key(user_id, request).await? {
            return Ok(CreatedBatch {
                batch: existing,
                created: false,
            });
        }
        let at = now();
        let batch_id = new_id();
        let runs = request.plan.expand();
        let txn = self.db.begin().await?;
        let model = batch::ActiveModel {
            id: Set(batch_id.clone()),
            negotiation_id: Set(negotiation_id.to_string()),
            user_id: Set(user_id.to_string()),
            status: Set(BatchStatus::Pending.as_str().into()),
            total_simulations: Set(runs.len() as i32),
            completed_count: Set(0),
            failed_count: Set(0),
            stopped_count: Set(0),
            max_concurrent: Set(request.max_concurrent as i32),
            estimated_cost: Set(request.estimated_cost),
            actual_cost: Set(0.0),
            budget_usd: Set(request.budget_usd),
            idempotency_key: Set(request.idempotency_key.clone()),
            request_hash: Set(Some(request.request_hash.clone())),
            reserved_cost: Set(0.0),
            stop_reason: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            started_at: Set(None),
            completed_at: Set(None),
            paused_at: Set(None),
        };
        if let Err(e) = batch::Entity::insert(model)
            .exec_without_returning(&txn)
            .await
        {
            drop(txn);
            // A concurrent request with the same key won the race: answer with its batch.
            if let Some(existing) = self.batch_by_idempotency_key(user_id, request).await? {
                return Ok(CreatedBatch {
                    batch: existing,
                    created: false,
                });
            }
            return Err(e.into());
        }
        for chunk in runs.chunks(INSERT_CHUNK) {
            let models = chunk.iter().map(|spec| run::ActiveModel {
                id: Set(new_id()),
                queue_id: Set(batch_id.clone()),
                negotiation_id: Set(negotiation_id.to_string()),
                run_number: Set(spec.run_number as i32),
                technique_id: Set(spec.technique_id.clone()),
                tactic_id: Set(spec.tactic_id.clone()),
                personality_id: Set(spec.personality_id.clone()),
                repetition: Set(spec.repetition as i32),
                status: Set(RunStatus::Pending.as_str().into()),
                outcome: Set(None),
                attempt: Set(0),
                max_attempts: Set(request.max_attempts as i32),
                lease_owner: Set(None),
                lease_expires_at: Set(None),
                next_attempt_at: Set(None),
                input_tokens: Set(0),
                output_tokens: Set(0),
                cost: Set(0.0),
                total_rounds: Set(0),
                deal_value: Set(None),
                final_offer: Set(None),
                last_error: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
                started_at: Set(None),
                completed_at: Set(None),
            });
            run::Entity::insert_many(models)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        let batch = self
            .batch_unscoped(&batch_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(CreatedBatch {
            batch,
            created: true,
        })
    }

    async fn batch_by_idempotency_key(
        &self,
        user_id: &str,
        request: &BatchRequest,
    ) -> StoreResult<Option<batch::Model>> {
        let Some(key) = &request.idempotency_key else {
            return Ok(None);
        };
        let existing = batch::Entity::find()
            .filter(batch::Column::UserId.eq(user_id))
            .filter(batch::Column::IdempotencyKey.eq(key.as_str()))
            .one(&self.db)
            .await?;
        match existing {
            Some(batch) if batch.request_hash.as_deref() != Some(request.request_hash.as_str()) => {
                Err(StoreError::IdempotencyMismatch)
            }
            other => Ok(other),
        }
    }

    /// The owner's batch, or `None` for a missing id or another user's.
    pub async fn batch(&self, user_id: &str, id: &str) -> StoreResult<Option<batch::Model>> {
        Ok(batch::Entity::find_by_id(id.to_string())
            .filter(batch::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?)
    }

    /// A batch by id alone, for workers and internal bookkeeping.
    pub async fn batch_unscoped(&self, id: &str) -> StoreResult<Option<batch::Model>> {
        Ok(batch::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }

    pub async fn batches_of_negotiation(
        &self,
        user_id: &str,
        negotiation_id: &str,
    ) -> StoreResult<Vec<batch::Model>> {
        Ok(batch::Entity::find()
            .filter(batch::Column::UserId.eq(user_id))
            .filter(batch::Column::NegotiationId.eq(negotiation_id))
            .order_by_desc(batch::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// Marks every pending run of the batch queued and returns the ids to deliver.
    ///
    /// Runs already queued are returned too, so a start repeated after a lost delivery
    /// delivers them again; the queue drops ids it already holds.
    pub async fn start_batch(&self, batch_id: &str) -> StoreResult<Vec<String>> {
        let at = now();
        let txn = self.db.begin().await?;
        self.lock_batch(&txn, batch_id).await?;
        batch::Entity::update_many()
            .col_expr(
                batch::Column::Status,
                Expr::value(BatchStatus::Running.as_str()),
            )
            .col_expr(batch::Column::StartedAt, Expr::value(at))
            .col_expr(batch::Column::UpdatedAt, Expr::value(at))
            .filter(batch::Column::Id.eq(batch_id))
            .filter(batch::Column::Status.eq(BatchStatus::Pending.as_str()))
            .exec(&txn)
            .await?;
        run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
            .col_expr(run::Column::UpdatedAt, Expr::value(at))
            .filter(run::Column::QueueId.eq(batch_id))
            .filter(run::Column::Status.eq(RunStatus::Pending.as_str()))
            .exec(&txn)
            .await?;
        let ids: Vec<String> = run::Entity::find()
            .select_only()
            .column(run::Column::Id)
            .filter(run::Column::QueueId.eq(batch_id))
            .filter(run::Column::Status.eq(RunStatus::Queued.as_str()))
            .order_by_asc(run::Column::RunNumber)
            .into_tuple()
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(ids)
    }
}
