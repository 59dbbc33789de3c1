//! The `arian-worker` binary: pulls run jobs from Redis and plays them until SIGTERM.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    arian_worker::cli::main_from_env().await
}
