//! Tracing setup shared by the binaries: JSON or human logs, filtered by a directive string.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `filter` is a `RUST_LOG`-style directive.
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests start many apps in one process) keeps the first.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}
