//! Creates every table of Arian with the indexes its queries need.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string_len(Users::Id, 36).primary_key())
                    .col(string_len_uniq(Users::Username, 50))
                    .col(text(Users::PasswordHash))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone_null(Users::TokensValidAfter))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(string_len(RefreshTokens::Id, 36).primary_key())
                    .col(string_len(RefreshTokens::UserId, 36))
                    .col(string_len(RefreshTokens::FamilyId, 36))
                    .col(string_len_uniq(RefreshTokens::TokenHash, 64))
                    .col(timestamp_with_time_zone(RefreshTokens::IssuedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .foreign_key(&mut cascade(
                        RefreshTokens::Table,
                        RefreshTokens::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Negotiations::Table)
                    .col(string_len(Negotiations::Id, 36).primary_key())
                    .col(string_len(Negotiations::UserId, 36))
                    .col(string_len(Negotiations::Title, 200))
                    .col(text_null(Negotiations::Description))
                    .col(string_len(Negotiations::Status, 20))
                    .col(json_binary(Negotiations::Input))
                    .col(json_binary(Negotiations::Scenario))
                    .col(timestamp_with_time_zone(Negotiations::CreatedAt))
                    .col(timestamp_with_time_zone(Negotiations::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Negotiations::StartedAt))
                    .col(timestamp_with_time_zone_null(Negotiations::CompletedAt))
                    .foreign_key(&mut cascade(
                        Negotiations::Table,
                        Negotiations::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SimulationQueue::Table)
                    .col(string_len(SimulationQueue::Id, 36).primary_key())
                    .col(string_len(SimulationQueue::NegotiationId, 36))
                    .col(string_len(SimulationQueue::UserId, 36))
                    .col(string_len(SimulationQueue::Status, 20))
                    .col(integer(SimulationQueue::TotalSimulations))
                    .col(integer(SimulationQueue::CompletedCount).default(0))
                    .col(integer(SimulationQueue::FailedCount).default(0))
                    .col(integer(SimulationQueue::StoppedCount).default(0))
                    .col(integer(SimulationQueue::MaxConcurrent))
                    .col(double(SimulationQueue::EstimatedCost))
                    .col(double(SimulationQueue::ActualCost).default(0.0))
                    .col(double_null(SimulationQueue::BudgetUsd))
                    .col(string_len_null(SimulationQueue::IdempotencyKey, 200))
                    .col(timestamp_with_time_zone(SimulationQueue::CreatedAt))
                    .col(timestamp_with_time_zone(SimulationQueue::UpdatedAt))
                    .col(timestamp_with_time_zone_null(SimulationQueue::StartedAt))
                    .col(timestamp_with_time_zone_null(SimulationQueue::CompletedAt))
                    .col(timestamp_with_time_zone_null(SimulationQueue::PausedAt))
                    .foreign_key(&mut cascade(
                        SimulationQueue::Table,
                        SimulationQueue::NegotiationId,
                        Negotiations::Table,
                        Negotiations::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SimulationRuns::Table)
                    .col(string_len(SimulationRuns::Id, 36).primary_key())
                    .col(string_len(SimulationRuns::QueueId, 36))
                    .col(string_len(SimulationRuns::NegotiationId, 36))
                    .col(integer(SimulationRuns::RunNumber))
                    .col(string_len(SimulationRuns::TechniqueId, 100))
                    .col(string_len(SimulationRuns::TacticId, 100))
                    .col(string_len(SimulationRuns::PersonalityId, 100))
                    .col(integer(SimulationRuns::Repetition))
                    .col(string_len(SimulationRuns::Status, 20))
                    .col(string_len_null(SimulationRuns::Outcome, 30))
                    .col(integer(SimulationRuns::Attempt).default(0))
                    .col(integer(SimulationRuns::MaxAttempts))
                    .col(string_len_null(SimulationRuns::LeaseOwner, 200))
                    .col(timestamp_with_time_zone_null(
                        SimulationRuns::LeaseExpiresAt,
                    ))
                    .col(timestamp_with_time_zone_null(SimulationRuns::NextAttemptAt))
                    .col(big_integer(SimulationRuns::InputTokens).default(0))
                    .col(big_integer(SimulationRuns::OutputTokens).default(0))
                    .col(double(SimulationRuns::Cost).default(0.0))
                    .col(integer(SimulationRuns::TotalRounds).default(0))
                    .col(double_null(SimulationRuns::DealValue))
                    .col(json_binary_null(SimulationRuns::FinalOffer))
                    .col(text_null(SimulationRuns::LastError))
                    .col(timestamp_with_time_zone(SimulationRuns::CreatedAt))
                    .col(timestamp_with_time_zone(SimulationRuns::UpdatedAt))
                    .col(timestamp_with_time_zone_null(SimulationRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(SimulationRuns::CompletedAt))
                    .foreign_key(&mut cascade(
                        SimulationRuns::Table,
                        SimulationRuns::QueueId,
                        SimulationQueue::Table,
                        SimulationQueue::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RunTurns::Table)
                    .col(string_len(RunTurns::RunId, 36))
                    .col(integer(RunTurns::Turn))
                    .col(integer(RunTurns::Round))
                    .col(string_len(RunTurns::Speaker, 20))
                    .col(integer(RunTurns::Attempt))
                    .col(text(RunTurns::Message))
                    .col(string_len(RunTurns::Action, 20))
                    .col(json_binary(RunTurns::Offer))
                    .col(double(RunTurns::Confidence))
                    .col(text(RunTurns::InternalAnalysis))
                    .col(double(RunTurns::BatnaAssessment))
                    .col(double(RunTurns::WalkAwayThreshold))
                    .col(big_integer(RunTurns::InputTokens))
                    .col(big_integer(RunTurns::OutputTokens))
                    .col(double(RunTurns::Cost))
                    .col(integer(RunTurns::Repairs))
                    .col(timestamp_with_time_zone(RunTurns::CreatedAt))
                    .primary_key(Index::create().col(RunTurns::RunId).col(RunTurns::Turn))
                    .foreign_key(&mut cascade(
                        RunTurns::Table,
                        RunTurns::RunId,
                        SimulationRuns::Table,
                        SimulationRuns::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProductResults::Table)
                    .col(string_len(ProductResults::RunId, 36))
                    .col(string_len(ProductResults::ProductName, 200))
                    .col(double(ProductResults::TargetPrice))
                    .col(double(ProductResults::LimitPrice))
                    .col(double(ProductResults::Volume))
                    .col(double(ProductResults::AgreedPrice))
                    .col(double(ProductResults::PriceVsTargetPct))
                    .col(boolean(ProductResults::WithinLimit))
                    .col(double(ProductResults::Subtotal))
                    .col(double(ProductResults::TargetSubtotal))
                    .col(double(ProductResults::PerformanceScore))
                    .primary_key(
                        Index::create()
                            .col(ProductResults::RunId)
                            .col(ProductResults::ProductName),
                    )
                    .foreign_key(&mut cascade(
                        ProductResults::Table,
                        ProductResults::RunId,
                        SimulationRuns::Table,
                        SimulationRuns::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DimensionResults::Table)
                    .col(string_len(DimensionResults::RunId, 36))
                    .col(string_len(DimensionResults::DimensionName, 200))
                    .col(double(DimensionResults::FinalValue))
                    .col(double(DimensionResults::TargetValue))
                    .col(boolean(DimensionResults::WithinBounds))
                    .col(integer(DimensionResults::Priority))
                    .primary_key(
                        Index::create()
                            .col(DimensionResults::RunId)
                            .col(DimensionResults::DimensionName),
                    )
                    .foreign_key(&mut cascade(
                        DimensionResults::Table,
                        DimensionResults::RunId,
                        SimulationRuns::Table,
                        SimulationRuns::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        for table in [
            CatalogTable::Techniques,
            CatalogTable::Tactics,
            CatalogTable::Personalities,
        ] {
            manager
                .create_table(
                    Table::create()
                        .table(table)
                        .col(string_len(CatalogColumn::Id, 100).primary_key())
                        .col(string_len(CatalogColumn::Name, 200))
                        .col(string_len(CatalogColumn::NameEn, 200))
                        .col(text(CatalogColumn::Summary))
                        .col(json_binary(CatalogColumn::Traits))
                        .to_owned(),
                )
                .await?;
        }
        create_indexes(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables: [DynIden; 11] = [
            CatalogTable::Personalities.into_iden(),
            CatalogTable::Tactics.into_iden(),
            CatalogTable::Techniques.into_iden(),
            DimensionResults::Table.into_iden(),
            ProductResults::Table.into_iden(),
            RunTurns::Table.into_iden(),
            SimulationRuns::Table.into_iden(),
            SimulationQueue::Table.into_iden(),
            Negotiations::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Users::Table.into_iden(),
        ];
        for table in tables {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn create_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let indexes = [
        index(
            "idx_negotiations_user_status",
            Negotiations::Table,
            &[
                Negotiations::UserId.into_iden(),
                Negotiations::Status.into_iden(),
            ],
        ),
        index(
            "idx_queue_negotiation_status",
            SimulationQueue::Table,
            &[
                SimulationQueue::NegotiationId.into_iden(),
                SimulationQueue::Status.into_iden(),
            ],
        ),
        index(
            "idx_queue_status_created",
            SimulationQueue::Table,
            &[
                SimulationQueue::Status.into_iden(),
                SimulationQueue::CreatedAt.into_iden(),
            ],
        ),
        index(
            "idx_runs_queue_status",
            SimulationRuns::Table,
            &[
                SimulationRuns::QueueId.into_iden(),
                SimulationRuns::Status.into_iden(),
            ],
        ),
        index(
            "idx_runs_negotiation_status",
            SimulationRuns::Table,
            &[
                SimulationRuns::NegotiationId.into_iden(),
                SimulationRuns::Status.into_iden(),
            ],
        ),
        index(
            "idx_refresh_tokens_family",
            RefreshTokens::Table,
            &[RefreshTokens::FamilyId.into_iden()],
        ),
    ];
    for statement in indexes {
        manager.create_index(statement).await?;
    }
    manager
        .create_index(
            Index::create()
                .name("uq_runs_combination")
                .table(SimulationRuns::Table)
                .col(SimulationRuns::QueueId)
                .col(SimulationRuns::TechniqueId)
                .col(SimulationRuns::TacticId)
                .col(SimulationRuns::PersonalityId)
                .col(SimulationRuns::Repetition)
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("uq_queue_idempotency")
                .table(SimulationQueue::Table)
                .col(SimulationQueue::UserId)
                .col(SimulationQueue::IdempotencyKey)
                .unique()
                .to_owned(),
        )
        .await?;
    // Descending and partial indexes are plain SQL that PostgreSQL and SQLite both accept.
    let db = manager.get_connection();
    db.execute_unprepared(
        "CREATE INDEX idx_negotiations_user_started ON negotiations (user_id, started_at DESC)",
    )
    .await?;
    db.execute_unprepared(
        "CREATE INDEX idx_runs_completed_at ON simulation_runs (completed_at DESC) \
         WHERE completed_at IS NOT NULL",
    )
    .await?;
    db.execute_unprepared(
        "CREATE INDEX idx_runs_due ON simulation_runs (status, next_attempt_at) \
         WHERE status IN ('queued', 'retry_wait', 'running')",
    )
    .await?;
    Ok(())
}

fn index(name: &str, table: impl IntoIden, columns: &[DynIden]) -> IndexCreateStatement {
    let mut statement = Index::create();
    statement.name(name).table(table);
    for column in columns {
        statement.col(column.clone());
    }
    statement.to_owned()
}

fn cascade(
    from_table: impl IntoIden,
    from_column: impl IntoIden,
    to_table: impl IntoIden,
    to_column: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from_table, from_column)
        .to(to_table, to_column)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    CreatedAt,
    TokensValidAfter,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    FamilyId,
    TokenHash,
    IssuedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Negotiations {
    Table,
    Id,
    UserId,
    Title,
    Description,
    Status,
    Input,
    Scenario,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum SimulationQueue {
    Table,
    Id,
    NegotiationId,
    UserId,
    Status,
    TotalSimulations,
    CompletedCount,
    FailedCount,
    StoppedCount,
    MaxConcurrent,
    EstimatedCost,
    ActualCost,
    BudgetUsd,
    IdempotencyKey,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
    PausedAt,
}

#[derive(DeriveIden)]
enum SimulationRuns {
    Table,
    Id,
    QueueId,
    NegotiationId,
    RunNumber,
    TechniqueId,
    TacticId,
    PersonalityId,
    Repetition,
    Status,
    Outcome,
    Attempt,
    MaxAttempts,
    LeaseOwner,
    LeaseExpiresAt,
    NextAttemptAt,
    InputTokens,
    OutputTokens,
    Cost,
    TotalRounds,
    DealValue,
    FinalOffer,
    LastError,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum RunTurns {
    Table,
    RunId,
    Turn,
    Round,
    Speaker,
    Attempt,
    Message,
    Action,
    Offer,
    Confidence,
    InternalAnalysis,
    BatnaAssessment,
    WalkAwayThreshold,
    InputTokens,
    OutputTokens,
    Cost,
    Repairs,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProductResults {
    Table,
    RunId,
    ProductName,
    TargetPrice,
    LimitPrice,
    Volume,
    AgreedPrice,
    PriceVsTargetPct,
    WithinLimit,
    Subtotal,
    TargetSubtotal,
    PerformanceScore,
}

#[derive(DeriveIden)]
enum DimensionResults {
    Table,
    RunId,
    DimensionName,
    FinalValue,
    TargetValue,
    WithinBounds,
    Priority,
}

#[derive(DeriveIden)]
pub(crate) enum CatalogTable {
    #[sea_orm(iden = "catalog_techniques")]
    Techniques,
    #[sea_orm(iden = "catalog_tactics")]
    Tactics,
    #[sea_orm(iden = "catalog_personalities")]
    Personalities,
}

#[derive(DeriveIden)]
pub(crate) enum CatalogColumn {
    Id,
    Name,
    NameEn,
    Summary,
    Traits,
}
