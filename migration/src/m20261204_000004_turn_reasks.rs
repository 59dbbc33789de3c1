//! Counts, per stored turn, how often the model was asked again after malformed output.

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
                    .table(RunTurns::Table)
                    .add_column(integer(RunTurns::Reasks).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RunTurns::Table)
                    .drop_column(RunTurns::Reasks)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum RunTurns {
    Table,
    Reasks,
}
