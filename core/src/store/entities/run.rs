//! The `simulation_runs` table: one row per run, carrying its state machine and totals.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "simulation_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub queue_id: String,
    pub negotiation_id: String,
    pub run_number: i32,
    pub technique_id: String,
    pub tactic_id: String,
    pub personality_id: String,
    pub repetition: i32,
    pub status: String,
    pub outcome: Option<String>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost: f64,
    pub total_rounds: i32,
    pub deal_value: Option<f64>,
    pub final_offer: Option<Json>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
