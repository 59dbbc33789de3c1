//! Tracing setup shared by the binaries: JSON or human logs, filtered by a directive string.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `filter` is a `RUST_LOG`-style directive.
pub fn init(filter: &str, json: bool) {
    let mut filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // The WebSocket library logs frame payloads (run events, client messages) at debug and
    // trace; those never go to the logs, whatever the filter asks for.
    for quiet in ["tungstenite=info", "tokio_tungstenite=info"] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests start many apps in one process) keeps the first.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}
