//! The `arian-worker` command line: configuration from the environment, then the worker
//! until SIGTERM; `dead-letters` prints the queue's dead letters.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arian_core::config::Config;
use arian_core::llm::provider_from_config;
use arian_core::services::connect;
use tokio::sync::watch;

/// Runs the worker command with the process's arguments and environment.
pub async fn main_from_env() -> ExitCode {
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
    let command = std::env::args().nth(1);
    let result = match command.as_deref() {
        None | Some("run") => run(config).await,
        Some("dead-letters") => print_dead_letters(&config).await,
        Some(other) => Err(anyhow::anyhow!(
            "unknown command '{other}'; use run (the default) or dead-letters"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the dead letters (poison jobs with their reasons) as JSON lines.
async fn print_dead_letters(config: &Config) -> anyhow::Result<()> {
    let redis_url = config
        .redis_url
        .as_deref()
        .context("configuration error: REDIS_URL is required")?;
    let queue = arian_core::queue::RedisQueue::connect(redis_url, &config.redis_prefix, 2)?;
    for (job_id, record) in queue.dead_letters().await? {
        println!(
            "{}",
            serde_json::json!({"jobId": job_id, "record": serde_json::from_str::<serde_json::Value>(&record).unwrap_or_default()})
        );
    }
    Ok(())
}

async fn run(config: Config) -> anyhow::Result<()> {
    if config.is_embedded() {
        anyhow::bail!(
            "configuration error: arian-worker needs DATABASE_URL and REDIS_URL \
             (the embedded default runs its worker inside arian-api)"
        );
    }
    if let Some(addr) = config.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("serving metrics on METRICS_ADDR {addr}"))?;
        tracing::info!(%addr, "metrics listening");
    }
    let services = connect(&config, &config.sqlite_path).await?;
    let llm = provider_from_config(&config.llm).context("configuring the LLM provider")?;
    let (stop, stopping) = watch::channel(false);
    let deps = Arc::new(crate::deps_from_config(&config, &services, llm, stopping));
    crate::run(
        deps,
        config.worker_concurrency,
        stop,
        config.shutdown_timeout,
        crate::shutdown_signal(),
    )
    .await
}
