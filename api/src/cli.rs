//! The `arian-api` command line: `serve` (the default) or `demo`, configured from the
//! environment. Shared by the binary and the test package's copy of it.

use std::process::ExitCode;

use arian_core::config::Config;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "arian-api",
    about = "Arian: LLM negotiation simulations at scale"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Queue and play a batch on a shipped scenario, then print the results.
    Demo(crate::demo::DemoArgs),
}

/// Parses the arguments and environment, sets up logging, and runs the command.
pub async fn main_from_env() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let demo = matches!(cli.command, Some(Command::Demo(_)));
    if !demo && config.jwt_secret.is_none() {
        eprintln!(
            "configuration error: JWT_SECRET is required to serve the API (at least 32 bytes)"
        );
        return ExitCode::from(2);
    }
    let default_filter = if demo { "warn" } else { "info" };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| default_filter.into());
    arian_core::telemetry::init(&filter, config.log_json && !demo);

    let result = match cli.command {
        Some(Command::Demo(args)) => crate::demo::run(config, args).await,
        Some(Command::Serve) | None => crate::startup::run_server(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
