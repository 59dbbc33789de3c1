//! How a leased run ends: completed with its results or failed with its reason, each in one
//! transaction with the batch counters, fenced by the attempt.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
    UpdateMany,
};

use crate::domain::{BatchStatus, Offer, Outcome, RunStatus};
use crate::engine::Evaluation;

use super::entities::{
    dimension_result, negotiation, product_result, run, simulation_queue as batch,
};
use super::runs::{LeasedRun, RunTotals, held, lease_lost};
use super::{Store, StoreResult, now};

impl Store {
    /// Completes a run with its results and updates the batch counters, all in one
    /// transaction fenced by the attempt. A stale attempt changes nothing. The lease owner
    /// stays as a record of the worker that finished the run.
    pub async fn complete_run(
        &self,
        leased: &LeasedRun,
        outcome: Outcome,
        totals: RunTotals,
        final_offer: Option<&Offer>,
        evaluation: &Evaluation,
    ) -> StoreResult<()> {
        let run = &leased.run;
        let txn = self.db.begin().await?;
        self.lock_batch(&txn, &run.queue_id).await?;
        let update = final_update(RunStatus::Completed, totals)
            .col_expr(run::Column::Outcome, Expr::value(outcome.as_str()))
            .col_expr(run::Column::DealValue, Expr::value(evaluation.deal_value))
            .col_expr(
                run::Column::FinalOffer,
                Expr::value(final_offer.map(|o| serde_json::to_value(o).unwrap_or_default())),
            );
        apply_fenced(&txn, update, leased).await?;
        let products = evaluation
            .products
            .iter()
            .map(|p| product_result::ActiveModel {
                run_id: Set(run.id.clone()),
                product_name: Set(p.product_name.clone()),
                target_price: Set(p.target_price),
                limit_price: Set(p.limit_price),
                volume: Set(p.volume),
                agreed_price: Set(p.agreed_price),
                price_vs_target_pct: Set(p.price_vs_target_pct),
                within_limit: Set(p.within_limit),
                subtotal: Set(p.subtotal),
                target_subtotal: Set(p.target_subtotal),
                performance_score: Set(p.performance_score),
            });
        product_result::Entity::insert_many(products)
            .on_conflict_do_nothing()
            .exec_without_returning(&txn)
            .await?;
        let dimensions = evaluation
            .dimensions
            .iter()
            .map(|d| dimension_result::ActiveModel {
                run_id: Set(run.id.clone()),
                dimension_name: Set(d.dimension_name.clone()),
                final_value: Set(d.final_value),
                target_value: Set(d.target_value),
                within_bounds: Set(d.within_bounds),
                priority: Set(i32::from(d.priority)),
            });
        dimension_result::Entity::insert_many(dimensions)
            .on_conflict_do_nothing()
            .exec_without_returning(&txn)
            .await?;
        count_final(&txn, run, batch::Column::CompletedCount).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Ends a run as failed with its reason; the batch counts it and its spend.
    pub async fn fail_run(
        &self,
        leased: &LeasedRun,
        reason: &str,
        totals: RunTotals,
    ) -> StoreResult<()> {
        let run = &leased.run;
        let txn = self.db.begin().await?;
        self.lock_batch(&txn, &run.queue_id).await?;
        let update = final_update(RunStatus::Failed, totals)
            .col_expr(run::Column::LastError, Expr::value(reason));
        apply_fenced(&txn, update, leased).await?;
        count_final(&txn, run, batch::Column::FailedCount).await?;
        txn.commit().await?;
        Ok(())
    }
}

/// The columns every final state of a leased run sets: its totals, no lease, the end time.
/// The lease owner stays as the record of which worker finished the run.
fn final_update(status: RunStatus, totals: RunTotals) -> UpdateMany<run::Entity> {
    let at = now();
    run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(status.as_str()))
        .col_expr(
            run::Column::InputTokens,
            Expr::value(totals.usage.input as i64),
        )
        .col_expr(
            run::Column::OutputTokens,
            Expr::value(totals.usage.output as i64),
        )
        .col_expr(run::Column::Cost, Expr::value(totals.cost))
        .col_expr(run::Column::TotalRounds, Expr::value(totals.rounds as i32))
        .col_expr(
            run::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(run::Column::CompletedAt, Expr::value(at))
        .col_expr(run::Column::UpdatedAt, Expr::value(at))
}

/// Applies a final-state update only while `leased` still holds the run.
async fn apply_fenced(
    txn: &impl ConnectionTrait,
    update: UpdateMany<run::Entity>,
    leased: &LeasedRun,
) -> StoreResult<()> {
    let updated = update
        .filter(held(&leased.run.id, leased.attempt))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(lease_lost());
    }
    Ok(())
}

/// Counts a final run in its batch and completes the batch when every run is final. The
/// batch's cost grows with every stored turn (`save_turn`), not here.
async fn count_final(
    txn: &impl ConnectionTrait,
    run: &run::Model,
    counter: batch::Column,
) -> StoreResult<()> {
    let at = now();
    batch::Entity::update_many()
        .col_expr(counter, Expr::col(counter).add(1))
        .col_expr(batch::Column::UpdatedAt, Expr::value(at))
        .filter(batch::Column::Id.eq(run.queue_id.as_str()))
        .exec(txn)
        .await?;
    let all_final = Expr::col(batch::Column::CompletedCount)
        .add(Expr::col(batch::Column::FailedCount))
        .add(Expr::col(batch::Column::StoppedCount))
        .gte(Expr::col(batch::Column::TotalSimulations));
    let finished = batch::Entity::update_many()
        .col_expr(
            batch::Column::Status,
            Expr::value(BatchStatus::Completed.as_str()),
        )
        .col_expr(batch::Column::CompletedAt, Expr::value(at))
        .filter(batch::Column::Id.eq(run.queue_id.as_str()))
        .filter(
            batch::Column::Status
                .is_in([BatchStatus::Pending.as_str(), BatchStatus::Running.as_str()]),
        )
        .filter(all_final)
        .exec(txn)
        .await?;
    if finished.rows_affected > 0 {
        negotiation::Entity::update_many()
            .col_expr(negotiation::Column::Status, Expr::value("completed"))
            .col_expr(negotiation::Column::CompletedAt, Expr::value(at))
            .col_expr(negotiation::Column::UpdatedAt, Expr::value(at))
            .filter(negotiation::Column::Id.eq(run.negotiation_id.as_str()))
            .exec(txn)
            .await?;
    }
    Ok(())
}
