//! The `product_results` table: one row per product of a finished deal.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "product_results")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_name: String,
    pub target_price: f64,
    pub limit_price: f64,
    pub volume: f64,
    pub agreed_price: f64,
    pub price_vs_target_pct: f64,
    pub within_limit: bool,
    pub subtotal: f64,
    pub target_subtotal: f64,
    pub performance_score: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
