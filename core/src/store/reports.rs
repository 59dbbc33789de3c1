//! Read models: batch progress by run state, results per technique and tactic, run details.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use serde::Serialize;

use crate::domain::RunStatus;

use super::entities::{dimension_result, product_result, run, run_turn};
use super::{Store, StoreResult};

/// How many runs of a batch are in each state, read from the database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub by_status: HashMap<String, u64>,
}

impl RunCounts {
    pub fn get(&self, status: RunStatus) -> u64 {
        self.by_status.get(status.as_str()).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.by_status.values().sum()
    }

    pub fn finished(&self) -> u64 {
        self.get(RunStatus::Completed) + self.get(RunStatus::Failed) + self.get(RunStatus::Stopped)
    }
}

/// One technique x tactic cell of a batch's results.
#[derive(Debug, Clone, PartialEq, Serialize, FromQueryResult)]
#[serde(rename_all = "camelCase")]
pub struct ResultRow {
    pub technique_id: String,
    pub tactic_id: String,
    pub runs: i64,
    pub completed: i64,
    pub failed: i64,
    pub deals: i64,
    pub avg_deal_value: Option<f64>,
    pub avg_rounds: Option<f64>,
    pub tokens: i64,
    pub cost: f64,
}

/// A run with its transcript and results.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub run: run::Model,
    pub turns: Vec<run_turn::Model>,
    pub products: Vec<product_result::Model>,
    pub dimensions: Vec<dimension_result::Model>,
}

impl Store {
    pub async fn run_counts(&self, batch_id: &str) -> StoreResult<RunCounts> {
        let rows: Vec<(String, i64)> = run::Entity::find()
            .select_only()
            .column(run::Column::Status)
            .column_as(run::Column::Id.count(), "n")
            .filter(run::Column::QueueId.eq(batch_id))
            .group_by(run::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        let by_status = rows
            .into_iter()
            .map(|(status, n)| (status, n as u64))
            .collect();
        Ok(RunCounts { by_status })
    }

    /// Aggregates a batch per technique and tactic, in the batch's run order.
    pub async fn batch_results(&self, batch_id: &str) -> StoreResult<Vec<ResultRow>> {
        let placeholder = match self.backend() {
            DbBackend::Postgres => "$1",
            _ => "?",
        };
        let sql = format!(
            "SELECT technique_id, tactic_id, \
               COUNT(*) AS runs, \
               SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed, \
               SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, \
               SUM(CASE WHEN outcome = 'DEAL_ACCEPTED' THEN 1 ELSE 0 END) AS deals, \
               AVG(deal_value) AS avg_deal_value, \
               AVG(CASE WHEN status = 'completed' THEN CAST(total_rounds AS DOUBLE PRECISION) END) AS avg_rounds, \
               CAST(SUM(input_tokens + output_tokens) AS BIGINT) AS tokens, \
               CAST(SUM(cost) AS DOUBLE PRECISION) AS cost \
             FROM simulation_runs WHERE queue_id = {placeholder} \
             GROUP BY technique_id, tactic_id ORDER BY MIN(run_number)"
        );
        let statement = Statement::from_sql_and_values(self.backend(), sql, [batch_id.into()]);
        Ok(ResultRow::find_by_statement(statement)
            .all(&self.db)
            .await?)
    }

    pub async fn runs_of_batch(
        &self,
        batch_id: &str,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Vec<run::Model>> {
        Ok(run::Entity::find()
            .filter(run::Column::QueueId.eq(batch_id))
            .order_by_asc(run::Column::RunNumber)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    pub async fn run_detail(&self, run: run::Model) -> StoreResult<RunDetail> {
        let turns = run_turn::Entity::find()
            .filter(run_turn::Column::RunId.eq(run.id.as_str()))
            .order_by_asc(run_turn::Column::Turn)
            .all(&self.db)
            .await?;
        let products = product_result::Entity::find()
            .filter(product_result::Column::RunId.eq(run.id.as_str()))
            .all(&self.db)
            .await?;
        let dimensions = dimension_result::Entity::find()
            .filter(dimension_result::Column::RunId.eq(run.id.as_str()))
            .all(&self.db)
            .await?;
        Ok(RunDetail {
            run,
            turns,
            products,
            dimensions,
        })
    }

    /// A run, if the user owns its batch.
    pub async fn run_of_user(
        &self,
        user_id: &str,
        run_id: &str,
    ) -> StoreResult<Option<run::Model>> {
        let Some(run) = self.run_unscoped(run_id).await? else {
            return Ok(None);
        };
        Ok(self.batch(user_id, &run.queue_id).await?.map(|_| run))
    }
}
