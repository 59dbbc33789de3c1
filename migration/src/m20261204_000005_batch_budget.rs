//! Budget bookkeeping per batch: the cost reserved by turns in flight, and why a batch stopped.

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
                    .add_column(double(SimulationQueue::ReservedCost).default(0.0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SimulationQueue::Table)
                    .add_column(string_len_null(SimulationQueue::StopReason, 50))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [SimulationQueue::ReservedCost, SimulationQueue::StopReason] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SimulationQueue::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SimulationQueue {
    Table,
    ReservedCost,
    StopReason,
}
