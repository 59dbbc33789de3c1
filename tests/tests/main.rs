//! The end-to-end test binary: every module runs against real services it sets up itself.

mod batches;
mod faults;
mod llm_http;
mod security;
mod supply_chain;
mod validation;
