//! Stores a hash of the request that created a batch, so a reused idempotency key with a
//! different body can be told apart.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SimulationQueue::Table)
                    .add_column(string_len_null(SimulationQueue::RequestHash, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SimulationQueue::Table)
                    .drop_column(SimulationQueue::RequestHash)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum SimulationQueue {
    Table,
    RequestHash,
}
