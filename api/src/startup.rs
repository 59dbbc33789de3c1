//! Startup: connect the store and queue the configuration names (or the embedded default),
//! build the state, and serve until a shutdown signal.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use arian_core::Catalog;
use arian_core::config::Config;
use arian_core::engine::PriceTable;
use arian_core::llm::provider_from_config;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use arian_core::services::{Services, connect};

use crate::auth::tokens::TokenKeys;
use crate::state::AppState;

/// The handlers' state; starts relaying run events to WebSockets (needs a Tokio runtime).
pub fn app_state(config: &Config, services: &Services, tokens: TokenKeys) -> AppState {
    let hub = Arc::new(crate::ws::Hub::default());
    hub.spawn_relay(services.store.clone(), services.events.clone());
    AppState {
        hub,
        events: services.events.clone(),
        store: services.store.clone(),
        queue: services.queue.clone(),
        catalog: Arc::new(Catalog::builtin()),
        prices: Arc::new(PriceTable::default()),
        model: config.llm.model.clone(),
        max_attempts: config.retry.max_attempts,
        tokens: Arc::new(tokens),
        cookie_secure: config.cookie_secure,
        cors_origins: Arc::new(config.cors_origins.clone()),
        security: Arc::new(config.security.clone()),
        limits: Arc::new(crate::limits::Limits::new(&config.security)),
        embedded: services.embedded,
    }
}

/// In-process workers sharing the services; stopped by sending `true` on the returned sender.
pub struct InProcessWorkers {
    pub stop: watch::Sender<bool>,
    pub handles: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl InProcessWorkers {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

pub fn spawn_workers(
    config: &Config,
    services: &Services,
    count: usize,
) -> anyhow::Result<InProcessWorkers> {
    let llm = provider_from_config(&config.llm).context("configuring the LLM provider")?;
    let (stop, _) = watch::channel(false);
    let mut handles = Vec::with_capacity(count);
    for _ in 0..count {
        let (worker_stop, worker_stopping) = watch::channel(false);
        let deps = Arc::new(arian_worker::deps_from_config(
            config,
            services,
            llm.clone(),
            worker_stopping,
        ));
        let mut shutdown = stop.subscribe();
        let signal = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        let drain = config.shutdown_timeout;
        let concurrency = config.worker_concurrency;
        handles.push(tokio::spawn(arian_worker::run(
            deps,
            concurrency,
            worker_stop,
            drain,
            signal,
        )));
    }
    Ok(InProcessWorkers { stop, handles })
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = crate::serve::ServeLimits {
        header_read_timeout: state.security.header_read_timeout,
        max_connections_per_ip: state.security.max_connections_per_ip,
        trusted_proxies: state.security.trusted_proxies.clone(),
    };
    crate::serve::serve(listener, crate::app(state), limits, shutdown)
        .await
        .context("serving HTTP")
}

/// The `serve` command: the API, plus one in-process worker in the embedded default.
pub async fn run_server(config: Config) -> anyhow::Result<()> {
    let secret = config.jwt_secret.clone().context(
        "configuration error: JWT_SECRET is required to serve the API (at least 32 bytes)",
    )?;
    let services = connect(&config, &config.sqlite_path).await?;
    let state = app_state(&config, &services, TokenKeys::new(&secret)?);
    let workers = if services.embedded {
        Some(spawn_workers(&config, &services, 1)?)
    } else {
        None
    };
    let listener = TcpListener::bind(config.api_addr)
        .await
        .with_context(|| format!("binding API_ADDR {}", config.api_addr))?;
    tracing::info!(addr = %config.api_addr, embedded = services.embedded, "api listening");
    serve(listener, state, arian_worker::shutdown_signal()).await?;
    if let Some(workers) = workers {
        workers.shutdown().await;
    }
    Ok(())
}
