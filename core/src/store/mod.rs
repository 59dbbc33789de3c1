//! The PostgreSQL/SQLite store over SeaORM: the source of truth for users, negotiations,
//! batches, runs and their checkpoints. Every run state change is one guarded update.

pub mod api_keys;
pub mod batches;
pub mod completion;
pub mod controls;
pub mod entities;
pub mod negotiations;
pub mod reports;
pub mod runs;
pub mod sessions;
pub mod users;

use std::time::Duration;

use chrono::{DateTime, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

pub use batches::{BatchRequest, CreatedBatch};
pub use runs::{LeaseOutcome, LeasedRun, RunTotals};

/// What went wrong in the store, classified for the layers above.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the idempotency key was used with a different request")]
    IdempotencyMismatch,
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl StoreError {
    /// Database errors (connection loss, timeouts, lock contention) are worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Db(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects with bounded waits and brings the schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let sqlite = url.starts_with("sqlite:");
        let mut options = ConnectOptions::new(url.to_string());
        options
            // SQLite allows one writer; one pooled connection avoids "database is locked".
            .max_connections(if sqlite { 1 } else { 20 })
            .min_connections(if sqlite { 1 } else { 2 })
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        let db = Database::connect(options).await?;
        if sqlite {
            db.execute_unprepared("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
                .await?;
        }
        Migrator::up(&db, None).await?;
        Ok(Self { db })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await?;
        Ok(())
    }
}

impl Store {
    /// Locks a batch row for the rest of `txn` (PostgreSQL; SQLite has one writer anyway).
    ///
    /// Every transaction that writes a batch and its runs takes this lock first, so they all
    /// lock in the same order (batch, then runs) and never deadlock each other.
    pub(crate) async fn lock_batch(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        batch_id: &str,
    ) -> StoreResult<()> {
        use sea_orm::{EntityTrait, QuerySelect};
        if self.backend() == DbBackend::Postgres {
            entities::simulation_queue::Entity::find_by_id(batch_id.to_string())
                .lock_exclusive()
                .one(txn)
                .await?;
        }
        Ok(())
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
