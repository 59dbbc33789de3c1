//! The `run_turns` table: the per-turn checkpoint, unique by `(run_id, turn)`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "run_turns")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub turn: i32,
    pub round: i32,
    pub speaker: String,
    pub attempt: i32,
    pub message: String,
    pub action: String,
    pub offer: Json,
    pub confidence: f64,
    pub internal_analysis: String,
    pub batna_assessment: f64,
    pub walk_away_threshold: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost: f64,
    pub repairs: i32,
    pub reasks: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
