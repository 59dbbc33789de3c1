//! SeaORM entities, one per table of the migration crate's schema.

pub mod dimension_result;
pub mod negotiation;
pub mod product_result;
pub mod refresh_token;
pub mod run;
pub mod run_turn;
pub mod simulation_queue;
pub mod user;
