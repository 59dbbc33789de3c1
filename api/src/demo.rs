//! `arian-api demo`: queue a batch on a shipped scenario, play it with in-process workers, and
//! print a table (or JSON) per technique and tactic. Needs no services by default.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use arian_core::config::Config;
use arian_core::scenario_file::{SHIPPED, input_from_file};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::auth::tokens::TokenKeys;
use crate::service::{self, BatchBody};
use crate::startup::{self, Services};

/// The scenario the demo plays unless told otherwise: 2 techniques x 2 tactics x 5 personalities.
pub const DEFAULT_SCENARIO: &str = "03-seller-all-personalities-matrix.json";

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// A scenario file (the shipped layout or an API body); defaults to a shipped scenario.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// At least this many runs: the batch repeats its combinations to reach it.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// In-process workers; 0 leaves the batch to external `arian-worker` processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

pub async fn run(config: Config, args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        args.runs <= arian_core::domain::batch::MAX_BATCH_RUNS,
        "--runs must be at most {}",
        arian_core::domain::batch::MAX_BATCH_RUNS
    );
    anyhow::ensure!(args.workers <= 64, "--workers must be at most 64");
    let scenario_json = load_scenario(args.scenario.as_ref())?;
    let sqlite_path =
        std::env::temp_dir().join(format!("arian-demo-{}.sqlite", std::process::id()));
    let services = startup::connect(&config, &sqlite_path.to_string_lossy()).await?;
    if services.embedded && args.workers == 0 {
        anyhow::bail!(
            "--workers 0 needs DATABASE_URL and REDIS_URL: the embedded queue only reaches in-process workers"
        );
    }
    let result = play(&config, &services, &args, scenario_json).await;
    if services.embedded {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", sqlite_path.display()));
        }
    }
    let summary = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_table(&summary);
    }
    Ok(())
}

fn load_scenario(path: Option<&PathBuf>) -> anyhow::Result<Value> {
    let text = match path {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => SHIPPED
            .iter()
            .find(|(name, _)| *name == DEFAULT_SCENARIO)
            .map(|(_, text)| text.to_string())
            .context("shipped scenario")?,
    };
    let value: Value = serde_json::from_str(&text).context("the scenario is not valid JSON")?;
    let input = input_from_file(&value).context("the scenario does not have the expected shape")?;
    Ok(serde_json::to_value(input)?)
}

async fn play(
    config: &Config,
    services: &Services,
    args: &DemoArgs,
    scenario: Value,
) -> anyhow::Result<Value> {
    let secret = SecretString::from(format!("{:064x}", rand::random::<u128>()));
    let state = startup::app_state(config, services, TokenKeys::new(&secret)?);
    let workers = startup::spawn_workers(config, services, args.workers)?;

    let username = format!("demo-{:08x}", rand::random::<u32>());
    let user = state
        .store
        .create_user(&username, "demo user without password login")
        .await?;
    let negotiation = service::create_negotiation(&state, &user.id, scenario)
        .await
        .map_err(|e| anyhow::anyhow!("the scenario was rejected: {e}"))?;
    let probe = service::create_batch(
        &state,
        &user.id,
        &negotiation.id,
        BatchBody {
            repetitions: Some(1),
            ..Default::default()
        },
        Some("probe".into()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let combinations = probe.batch.total_simulations.max(1) as usize;
    let repetitions = args.runs.div_ceil(combinations).max(1) as u32;
    let batch = if repetitions == 1 {
        probe.batch
    } else {
        let body = BatchBody {
            repetitions: Some(repetitions),
            ..Default::default()
        };
        service::create_batch(&state, &user.id, &negotiation.id, body, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .batch
    };
    let started = Instant::now();
    service::start_batch(&state, &batch)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let total = batch.total_simulations as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} runs {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let counts = state.store.run_counts(&batch.id).await?;
        bar.set_position(counts.finished());
        if counts.finished() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish_with_message("done");
    let elapsed = started.elapsed();
    workers.shutdown().await;

    let batch = state
        .store
        .batch_unscoped(&batch.id)
        .await?
        .context("the batch disappeared")?;
    let rows = state.store.batch_results(&batch.id).await?;
    let name = |id: &str| {
        state
            .catalog
            .technique(id)
            .or_else(|| state.catalog.tactic(id))
            .map_or_else(|| id.to_string(), |e| e.name_en.clone())
    };
    let rows_json: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "technique": name(&r.technique_id), "tactic": name(&r.tactic_id),
                "technique_id": r.technique_id, "tactic_id": r.tactic_id,
                "runs": r.runs, "completed": r.completed, "failed": r.failed, "deals": r.deals,
                "avg_deal_value": r.avg_deal_value, "avg_rounds": r.avg_rounds,
                "tokens": r.tokens, "cost_usd": r.cost,
            })
        })
        .collect();
    Ok(json!({
        "scenario": negotiation.title,
        "mode": if services.embedded { "embedded" } else { "distributed" },
        "model": config.llm.model,
        "batch_id": batch.id,
        "status": batch.status,
        "total_runs": batch.total_simulations,
        "completed_runs": batch.completed_count,
        "failed_runs": batch.failed_count,
        "deals": rows.iter().map(|r| r.deals).sum::<i64>(),
        "total_tokens": rows.iter().map(|r| r.tokens).sum::<i64>(),
        "total_cost_usd": batch.actual_cost,
        "estimated_cost_usd": batch.estimated_cost,
        "elapsed_secs": elapsed.as_secs_f64(),
        "rows": rows_json,
    }))
}

fn print_table(summary: &Value) {
    println!(
        "\n{} ({} runs, {} mode, model {})",
        summary["scenario"].as_str().unwrap_or_default(),
        summary["total_runs"],
        summary["mode"].as_str().unwrap_or_default(),
        summary["model"].as_str().unwrap_or_default()
    );
    println!(
        "{:<24} {:<28} {:>5} {:>6} {:>14} {:>7} {:>8} {:>10}",
        "technique", "tactic", "runs", "deals", "avg deal", "rounds", "tokens", "cost USD"
    );
    for row in summary["rows"].as_array().into_iter().flatten() {
        let text = |k: &str| {
            row[k]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(27)
                .collect::<String>()
        };
        let number = |k: &str, digits: usize| {
            row[k]
                .as_f64()
                .map_or("-".to_string(), |v| format!("{v:.digits$}"))
        };
        println!(
            "{:<24} {:<28} {:>5} {:>6} {:>14} {:>7} {:>8} {:>10}",
            text("technique"),
            text("tactic"),
            row["runs"].to_string(),
            row["deals"].to_string(),
            number("avg_deal_value", 2),
            number("avg_rounds", 1),
            row["tokens"].to_string(),
            number("cost_usd", 4)
        );
    }
    println!(
        "\ncompleted {}/{} runs, {} deals, {} tokens, {:.4} USD in {:.1}s",
        summary["completed_runs"],
        summary["total_runs"],
        summary["deals"],
        summary["total_tokens"],
        summary["total_cost_usd"].as_f64().unwrap_or_default(),
        summary["elapsed_secs"].as_f64().unwrap_or_default()
    );
}
