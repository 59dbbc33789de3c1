//! The queue benchmark (not a test): enqueue rate, no-op drain rate through apalis, a full drain
//! of 100 000 simulated runs by two worker processes with their peak RSS, and idle pickup
//! latency. Prints one JSON object; `bench/run.sh` puts it beside the anchors' figures.
//!
//! Usage: queue-bench [--runs N] [--workers N] [--pickups N]   (release build recommended)

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use apalis::prelude::*;
use arian_core::queue::{AckOutcome, JobQueue, RedisQueue, RunJob};
use arian_tests::{Backing, TestApp, scenario_body};
use serde_json::{Value, json};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let runs = arg("--runs", 100_000);
    let workers = arg("--workers", 2);
    let pickups = arg("--pickups", 200);

    let backing = Backing::distributed().await?;
    let result = bench(&backing, runs, workers, pickups).await;
    backing.cleanup().await;
    println!("{}", serde_json::to_string_pretty(&result?)?);
    Ok(())
}

async fn bench(
    backing: &Backing,
    runs: usize,
    workers: usize,
    pickups: usize,
) -> anyhow::Result<Value> {
    let Backing::Distributed {
        redis_prefix,
        redis_url,
        ..
    } = backing
    else {
        anyhow::bail!("needs the distributed backing")
    };
    let enqueue = enqueue_rate(redis_url, &format!("{redis_prefix}-enqueue"), runs).await?;
    eprintln!("enqueue: {enqueue}");
    let mut noop = Vec::new();
    for concurrency in [10, 100] {
        let figure = noop_drain(
            backing,
            redis_url,
            &format!("{redis_prefix}-noop{concurrency}"),
            runs,
            concurrency,
        )
        .await?;
        eprintln!("no-op drain c={concurrency}: {figure}");
        noop.push(figure);
    }
    let full = full_drain(backing, runs, workers, pickups).await?;
    eprintln!("full drain: {full}");
    Ok(
        json!({"runs": runs, "workers": workers, "enqueue": enqueue, "noop_drain": noop, "full": full}),
    )
}

fn jobs(n: usize) -> Vec<RunJob> {
    (0..n)
        .map(|i| RunJob::new(format!("bench-run-{i}"), "bench-batch"))
        .collect()
}

/// Jobs per second into Redis, in one bulk call (chunks of 500 per script, like a batch start).
async fn enqueue_rate(url: &str, prefix: &str, n: usize) -> anyhow::Result<Value> {
    let queue = RedisQueue::connect(url, prefix, 4)?;
    let jobs = jobs(n);
    let started = Instant::now();
    let added = queue.enqueue(&jobs).await?;
    let secs = started.elapsed().as_secs_f64();
    let again = queue.enqueue(&jobs[..1000.min(n)]).await?;
    clear(url, prefix).await;
    Ok(
        json!({"jobs": added, "secs": secs, "jobs_per_s": n as f64 / secs, "duplicates_accepted": again}),
    )
}

/// Jobs per second drained through apalis with Arian's backend and a handler that only acks.
async fn noop_drain(
    backing: &Backing,
    url: &str,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Value> {
    let config = backing.config(&[("REDIS_PREFIX", prefix)]);
    let services = arian_core::services::connect(&config, "unused.sqlite").await?;
    services.queue.enqueue(&jobs(n)).await?;
    let (stop, stopping) = watch::channel(false);
    let llm = arian_core::llm::provider_from_config(&config.llm)?;
    let deps = Arc::new(arian_worker::deps_from_config(
        &config, &services, llm, stopping,
    ));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let worker = WorkerBuilder::new("bench-noop")
        .backend(arian_worker::backend::queue_backend(deps.clone())?)
        .data(deps.clone())
        .data(done.clone())
        .concurrency(concurrency)
        .build(ack_only);
    let counter = done.clone();
    worker
        .run_until(async move {
            while counter.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = started.elapsed().as_secs_f64();
    drop(stop);
    clear(url, prefix).await;
    Ok(json!({"concurrency": concurrency, "jobs": n, "secs": secs, "jobs_per_s": n as f64 / secs}))
}

async fn ack_only(
    job: RunJob,
    deps: Data<Arc<arian_worker::WorkerDeps>>,
    done: Data<Arc<AtomicUsize>>,
) -> Result<(), BoxDynError> {
    deps.queue.ack(job.id(), AckOutcome::Completed).await?;
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A batch of `n` simulated runs (zero latency) through the API, drained by worker processes;
/// then idle pickup latency with single-run batches.
async fn full_drain(
    backing: &Backing,
    n: usize,
    workers: usize,
    pickups: usize,
) -> anyhow::Result<Value> {
    let config = backing.config(&[("SIMULATED_LATENCY_MS", "0")]);
    let app = TestApp::spawn(config).await?;
    let token = app.register("bench").await?;
    let (_, created) = app
        .post(&token, "/api/negotiations", &scenario_body("01"))
        .await?;
    let negotiation = created["data"]["id"]
        .as_str()
        .context("negotiation id")?
        .to_string();

    // 2 techniques x 5 tactics, repeated: exactly n runs when n is a multiple of 10.
    let tactics = [
        "tactic.reziprozitaet",
        "tactic.framing_effekt",
        "tactic.zeitdruck",
        "tactic.kontrasteffekt",
        "tactic.sozialer_beweis",
    ];
    let body = json!({"tactics": tactics, "repetitions": n.div_ceil(10), "maxConcurrent": 10000});
    let started = Instant::now();
    let (code, batch) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{negotiation}"),
            &body,
        )
        .await?;
    anyhow::ensure!(code == 201, "batch: {batch}");
    let create_secs = started.elapsed().as_secs_f64();
    let queue_id = batch["queueId"].as_str().context("queue id")?.to_string();
    let total = batch["totalSimulations"].as_u64().unwrap_or_default();
    let started = Instant::now();
    let (code, start) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{queue_id}/start"),
            &json!({}),
        )
        .await?;
    anyhow::ensure!(code == 200, "start: {start}");
    let start_secs = started.elapsed().as_secs_f64();

    let binary = std::env::current_exe()?.with_file_name("worker-under-test");
    let mut vars = backing.vars(&[
        ("WORKER_CONCURRENCY", "32"),
        ("LOG_FORMAT", "pretty"),
        ("RUST_LOG", "error"),
    ]);
    vars.push(("SIMULATED_LATENCY_MS".into(), "0".into()));
    let mut children = Vec::new();
    for _ in 0..workers {
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .envs(vars.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        children.push(
            command
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?,
        );
    }
    let drain_started = Instant::now();
    let mut peak_rss_kib = 0;
    loop {
        let counts = app.services.store.run_counts(&queue_id).await?;
        peak_rss_kib =
            peak_rss_kib.max(children.iter().map(|c| rss_kib(c.id())).max().unwrap_or(0));
        anyhow::ensure!(
            children
                .iter_mut()
                .all(|c| matches!(c.try_wait(), Ok(None))),
            "a worker died"
        );
        if counts.finished() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let counts = app.services.store.run_counts(&queue_id).await?;

    let mut latencies = Vec::with_capacity(pickups);
    let body = json!({"techniques": ["technique.legitimieren"], "tactics": ["tactic.zeitdruck"]});
    for _ in 0..pickups {
        let (_, small) = app
            .post(
                &token,
                &format!("/api/simulations/queue/{negotiation}"),
                &body,
            )
            .await?;
        let small_id = small["queueId"].as_str().context("queue id")?.to_string();
        let run_id = app.services.store.start_batch(&small_id).await?.remove(0);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let enqueued = chrono::Utc::now();
        app.services
            .queue
            .enqueue(&[RunJob::new(run_id.clone(), small_id)])
            .await?;
        let picked = loop {
            if let Some(at) = app
                .services
                .store
                .run_unscoped(&run_id)
                .await?
                .and_then(|r| r.started_at)
            {
                break at;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push((picked - enqueued).num_microseconds().unwrap_or_default() as f64 / 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    for child in &mut children {
        peak_rss_kib = peak_rss_kib.max(rss_kib(child.id()));
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
    Ok(json!({
        "runs": total,
        "completed": counts.get(arian_core::domain::RunStatus::Completed),
        "failed": counts.get(arian_core::domain::RunStatus::Failed),
        "batch_create_secs": create_secs,
        "start_enqueue_secs": start_secs,
        "drain_secs": drain_secs,
        "drain_runs_per_s": total as f64 / drain_secs,
        "worker_peak_rss_mib": peak_rss_kib as f64 / 1024.0,
        "idle_pickup_ms": {"samples": latencies.len(), "p50": percentile(0.5), "p99": percentile(0.99), "max": latencies.last()},
    }))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn clear(url: &str, prefix: &str) {
    if let Ok(client) = redis::Client::open(url)
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    }
}
