//! SeaORM entities, one per table of the migration crate's schema.

pub mod api_key;
pub mod dimension_result;
pub mod negotiation;
pub mod product_result;
pub mod refresh_token;
pub mod run;
pub mod run_turn;
pub mod simulation_queue;
pub mod used_ticket;
pub mod user;
