//! The `arian-api` binary: `serve` (the default) or `demo`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    arian_api::cli::main_from_env().await
}
