//! The `arian-worker` binary: pulls run jobs from Redis and plays them until SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arian_core::config::Config;
use arian_core::llm::provider_from_config;
use arian_core::services::connect;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    arian_core::telemetry::init(
        &std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        config.log_json,
    );
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    if config.is_embedded() {
        anyhow::bail!(
            "configuration error: arian-worker needs DATABASE_URL and REDIS_URL \
             (the embedded default runs its worker inside arian-api)"
        );
    }
    let services = connect(&config, &config.sqlite_path).await?;
    let llm = provider_from_config(&config.llm).context("configuring the LLM provider")?;
    let (stop, stopping) = watch::channel(false);
    let deps = Arc::new(arian_worker::deps_from_config(
        &config,
        services.store,
        services.queue,
        llm,
        stopping,
    ));
    arian_worker::run(
        deps,
        config.worker_concurrency,
        stop,
        config.shutdown_timeout,
        arian_worker::shutdown_signal(),
    )
    .await
}
