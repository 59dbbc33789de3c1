//! Arian's schema: ordered migrations with up and down, indexes, and the seeded catalog.

pub use sea_orm_migration::prelude::*;

mod m20261204_000001_create_schema;
mod m20261204_000002_seed_catalog;
mod m20261204_000003_batch_request_hash;
mod m20261204_000004_turn_reasks;
mod m20261204_000005_batch_budget;
mod m20261204_000006_api_keys_and_tickets;
mod m20261204_000007_refresh_expiry_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261204_000001_create_schema::Migration),
            Box::new(m20261204_000002_seed_catalog::Migration),
            Box::new(m20261204_000003_batch_request_hash::Migration),
            Box::new(m20261204_000004_turn_reasks::Migration),
            Box::new(m20261204_000005_batch_budget::Migration),
            Box::new(m20261204_000006_api_keys_and_tickets::Migration),
            Box::new(m20261204_000007_refresh_expiry_index::Migration),
        ]
    }
}
