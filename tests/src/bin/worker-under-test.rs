//! The worker command built inside the test package, so fault tests can start it as a real
//! process (`CARGO_BIN_EXE_worker-under-test`) and kill it.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    arian_worker::cli::main_from_env().await
}
