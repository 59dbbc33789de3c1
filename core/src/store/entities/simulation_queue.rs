//! The `simulation_queue` table: one row per batch, with its counters and costs.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "simulation_queue")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub negotiation_id: String,
    pub user_id: String,
    pub status: String,
    pub total_simulations: i32,
    pub completed_count: i32,
    pub failed_count: i32,
    pub stopped_count: i32,
    pub max_concurrent: i32,
    pub estimated_cost: f64,
    pub actual_cost: f64,
    pub budget_usd: Option<f64>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub paused_at: Option<DateTimeUtc>,
    pub request_hash: Option<String>,
    /// Expected cost of the turns in flight, reserved against the budget.
    pub reserved_cost: f64,
    pub stop_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
