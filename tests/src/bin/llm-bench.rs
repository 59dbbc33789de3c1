//! The LLM-path benchmark (not a test): calls per second and worker overhead per call against a
//! zero-latency OpenAI-compatible double, and throughput against a 200 ms double at worker
//! concurrency 1, 10, 100 and 500, beside the Little's-law bound (concurrency / latency).
//! Runs against local PostgreSQL and Redis with a database and key prefix of its own.
//!
//! Usage: llm-bench [--runs-per-slot N]   (release build recommended)

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arian_tests::fake_llm::{FakeLlm, Script, completion, negotiating_turn};
use arian_tests::{Backing, TestApp, scenario_body};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let per_slot: usize = args
        .iter()
        .position(|a| a == "--runs-per-slot")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut rows = Vec::new();
    for (latency_ms, concurrency) in [(0, 10), (200, 1), (200, 10), (200, 100), (200, 500)] {
        let runs = (concurrency * per_slot).max(20);
        let row = measure(latency_ms, concurrency, runs).await?;
        eprintln!("{row}");
        rows.push(row);
    }
    println!("{}", serde_json::to_string_pretty(&json!({"rows": rows}))?);
    Ok(())
}

async fn measure(latency_ms: u64, concurrency: usize, runs: usize) -> anyhow::Result<Value> {
    let latency = Duration::from_millis(latency_ms);
    let script: Script =
        Arc::new(|_, request| completion(&negotiating_turn(request).to_string(), 300, 120));
    let fake = FakeLlm::start_with_delay(script, latency).await;
    let backing = Backing::distributed().await?;
    let concurrency_text = concurrency.to_string();
    let config = backing.config(&[
        ("LLM_PROVIDER", "openai"),
        ("LLM_API_KEY", "sk-bench"),
        ("LLM_BASE_URL", &fake.base_url),
        ("WORKER_CONCURRENCY", &concurrency_text),
        ("LEASE_TIMEOUT_SECS", "30"),
    ]);
    let app = TestApp::spawn(config).await?;
    let workers = app.workers(1)?;
    let token = app.register("llmbench").await?;
    let (_, created) = app
        .post(&token, "/api/negotiations", &scenario_body("01"))
        .await?;
    let negotiation = created["data"]["id"]
        .as_str()
        .context("negotiation id")?
        .to_string();
    let body = json!({"techniques": ["technique.tauschhandel"], "tactics": ["tactic.zeitdruck"], "repetitions": runs, "maxConcurrent": 10000});
    let (_, batch) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{negotiation}"),
            &body,
        )
        .await?;
    let queue_id = batch["queueId"].as_str().context("queue id")?.to_string();
    let started = Instant::now();
    app.post(
        &token,
        &format!("/api/simulations/queue/{queue_id}/start"),
        &json!({}),
    )
    .await?;
    let status = app
        .wait_for_batch(&token, &queue_id, Duration::from_secs(600))
        .await?;
    let secs = started.elapsed().as_secs_f64();
    workers.shutdown().await;
    backing.cleanup().await;

    let calls = fake.calls() as f64;
    let calls_per_s = calls / secs;
    let bound = if latency_ms == 0 {
        None
    } else {
        Some(concurrency as f64 / (latency_ms as f64 / 1000.0))
    };
    // Each slot spends secs * concurrency in total; what is not provider latency is the worker's.
    let overhead_ms = (secs * concurrency as f64 / calls - latency_ms as f64 / 1000.0) * 1000.0;
    Ok(json!({
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "runs": runs,
        "completed": status["completedCount"],
        "calls": calls,
        "secs": secs,
        "calls_per_s": calls_per_s,
        "littles_law_bound_per_s": bound,
        "share_of_bound": bound.map(|b| calls_per_s / b),
        "worker_overhead_ms_per_call": overhead_ms,
    }))
}
