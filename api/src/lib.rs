//! Arian's HTTP API: router, auth, handlers, startup, and the embedded demo.

pub mod app;
pub mod auth;
pub mod demo;
pub mod error;
pub mod json;
pub mod protection;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;

pub use app::app;
pub use state::AppState;
