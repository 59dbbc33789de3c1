//! Arian's core: domain types, the negotiation engine, the LLM port with its providers, and the
//! queue and store adapters. The domain and engine modules do no I/O.

pub mod breaker;
pub mod config;
pub mod domain;
pub mod engine;
pub mod events;
pub mod limits;
pub mod llm;
pub mod queue;
pub mod scenario_file;
pub mod services;
pub mod store;
pub mod telemetry;

pub use domain::*;
