//! The API command built inside the test package, so security tests can run it as a real
//! process (`CARGO_BIN_EXE_api-under-test`) and read everything it logs.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    arian_api::cli::main_from_env().await
}
