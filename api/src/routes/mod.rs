//! HTTP handlers, one module per resource.

pub mod api_keys;
pub mod auth;
pub mod catalog;
pub mod health;
pub mod negotiations;
pub mod runs;
pub mod simulations;
