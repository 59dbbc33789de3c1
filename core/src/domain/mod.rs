//! Domain types and invariants: scenarios, catalog, batches, runs and turns. No I/O.

pub mod batch;
pub mod catalog;
pub mod error;
pub mod run;
pub mod scenario;

pub use batch::{BatchPlan, RunSpec};
pub use catalog::{Catalog, CatalogEntry, EntryKind};
pub use error::ValidationError;
pub use run::{
    Action, BatchStatus, Offer, Outcome, RunStatus, Speaker, TokenUsage, TurnOutput, TurnRecord,
};
pub use scenario::{NegotiationInput, Role, Scenario};
