//! Arian's HTTP API: router, auth, handlers, startup, and the embedded demo.

pub mod app;
pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod demo;
pub mod error;
pub mod json;
pub mod limits;
pub mod protection;
pub mod routes;
pub mod serve;
pub mod service;
pub mod startup;
pub mod state;
pub mod ws;

pub use app::app;
pub use state::AppState;
