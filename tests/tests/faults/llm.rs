//! The LLM service misbehaving: failures and backoff, the shared breaker, budgets, rate limits.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_llm_backs_off_exponentially_then_fails_the_run() -> anyhow::Result<()> {
    // Call-level retries off: this scenario measures the job-level backoff alone.
    let settings = [
        ("RETRY_BASE_MS", "300"),
        ("RETRY_FACTOR", "2"),
        ("MAX_ATTEMPTS", "3"),
        ("LLM_RETRY_MAX", "0"),
    ];
    let rig = Rig::new(
        Backing::distributed().await?,
        Behaviour::Fail { status: 503 },
        &settings,
    )
    .await?;
    let _a = rig.worker()?;
    let body =
        json!({"techniques": ["technique.logisches_ueberzeugen"], "tactics": ["tactic.zeitdruck"]});
    let queue_id = rig.start_batch(body).await?;
    rig.drain(&queue_id, Duration::from_secs(30)).await?;
    let runs = rig
        .app
        .services
        .store
        .runs_of_batch(&queue_id, 0, 10)
        .await?;
    let run = &runs[0];
    assert_eq!(run.status, RunStatus::Failed.as_str());
    let reason = run.last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("503") && reason.contains("3 attempts"),
        "{reason}"
    );
    let times = rig.llm.call_times(&run.id);
    assert_eq!(times.len(), 3, "one call per attempt");
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    println!("retry gaps after 503: {gaps:?} (base 0.3 s, factor 2, jitter up to 25 %)");
    for (gap, base) in gaps.iter().zip([0.3, 0.6]) {
        assert!(
            *gap >= base && *gap <= base * 1.25 + 0.4,
            "gap {gap} for base {base}"
        );
    }
    let ledger = rig.ledger("failing-llm", &queue_id).await?;
    assert_clean(&ledger, 1);
    assert_eq!(ledger.failed, 1);

    // The provider recovers; retry puts the failed run back with a fresh attempt budget.
    rig.llm.set_behaviour(SLOW);
    let (code, retried) = rig
        .app
        .post(
            &rig.token,
            &format!("/api/simulations/queue/{queue_id}/retry"),
            &json!({}),
        )
        .await?;
    assert_eq!(
        (code, retried["retriedCount"].as_u64()),
        (200, Some(1)),
        "{retried}"
    );
    rig.drain(&queue_id, Duration::from_secs(30)).await?;
    let ledger = rig.ledger("failing-llm-then-retry", &queue_id).await?;
    assert_clean(&ledger, 1);
    assert_eq!(ledger.completed, 1);
    let batch = rig
        .app
        .services
        .store
        .batch_unscoped(&queue_id)
        .await?
        .expect("batch");
    assert_eq!(
        (
            batch.status.as_str(),
            batch.completed_count,
            batch.failed_count
        ),
        ("completed", 1, 0)
    );
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_outage_opens_the_shared_breaker_and_the_batch_resumes_by_itself()
-> anyhow::Result<()> {
    let settings = [
        ("BREAKER_FAILURE_THRESHOLD", "5"),
        ("BREAKER_OPEN_SECS", "2"),
        ("LLM_RETRY_BASE_MS", "50"),
        ("MAX_ATTEMPTS", "3"),
    ];
    let rig = Rig::new(
        Backing::distributed().await?,
        Behaviour::Fail { status: 503 },
        &settings,
    )
    .await?;
    let (_a, metrics_a) = rig.worker_with_metrics()?;
    let (_b, metrics_b) = rig.worker_with_metrics()?;
    let queue_id = rig
        .start_batch(json!({"repetitions": 2, "maxConcurrent": 20}))
        .await?;

    // Down for six seconds: the breaker opens after five failures across both workers, then
    // lets one probe through every two seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let calls_while_down = rig.llm.total_calls();
    println!("breaker: {calls_while_down} calls reached the provider during a 6 s outage");
    // Five failures open it; calls already in flight (two workers x 3) and one probe per open
    // period (2 s) may still reach the provider.
    assert!(
        calls_while_down <= 5 + 6 + 3,
        "{calls_while_down} calls while the provider was down"
    );
    let failed = rig
        .app
        .services
        .store
        .run_counts(&queue_id)
        .await?
        .get(RunStatus::Failed);
    assert_eq!(failed, 0, "no run fails while the circuit is open");

    let mut opened = 0.0;
    for url in [&metrics_a, &metrics_b] {
        let text = rig.app.http.get(url.as_str()).send().await?.text().await?;
        opened += text
            .lines()
            .filter(|l| {
                l.starts_with("arian_llm_circuit_transitions_total") && l.contains("to=\"open\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    assert!(
        opened >= 1.0,
        "the breaker opening shows in the workers' metrics"
    );
    let back = Instant::now();
    rig.llm.set_behaviour(SLOW);
    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    println!(
        "breaker: the batch finished {:?} after the provider came back",
        back.elapsed()
    );
    let ledger = rig.ledger("provider-outage-breaker", &queue_id).await?;
    assert_clean(&ledger, 12);
    assert_eq!(ledger.completed, 12);
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_stops_the_batch_within_one_turn_per_run_in_flight() -> anyhow::Result<()> {
    let settings = [
        ("NEGOTIATION_MODEL", "gpt-4o"),
        ("WORKER_CONCURRENCY", "25"),
    ];
    let behaviour = Behaviour::Negotiate {
        delay: Duration::from_millis(50),
    };
    let rig = Rig::new(Backing::distributed().await?, behaviour, &settings).await?;
    let _a = rig.worker()?;
    let _b = rig.worker()?;
    let budget = 0.50;
    let queue_id = rig
        .start_batch(json!({"repetitions": 20, "maxConcurrent": 50, "budgetUsd": budget}))
        .await?;
    rig.drain(&queue_id, Duration::from_secs(60)).await?;

    let batch = rig
        .app
        .services
        .store
        .batch_unscoped(&queue_id)
        .await?
        .expect("batch");
    assert_eq!(
        (batch.status.as_str(), batch.stop_reason.as_deref()),
        ("stopped", Some("budget_exhausted"))
    );
    let spent: f64 = {
        let db = rig.app.services.store.connection();
        let sql = format!(
            "SELECT CAST(SUM(t.cost) AS DOUBLE PRECISION), CAST(MAX(t.cost) AS DOUBLE PRECISION) FROM run_turns t JOIN simulation_runs r ON r.id = t.run_id WHERE r.queue_id = '{queue_id}'"
        );
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?
            .expect("a row");
        let (spent, biggest): (f64, f64) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
        println!(
            "budget {budget:.2} USD: spent {spent:.4} USD (batch actual_cost {:.4}), largest turn {biggest:.5} USD",
            batch.actual_cost
        );
        assert!(
            spent <= budget + 50.0 * biggest,
            "overshoot beyond one turn per run in flight"
        );
        assert!(
            (batch.actual_cost - spent).abs() < 1e-9,
            "the batch cost is the sum of its stored turns"
        );
        spent
    };
    assert!(
        spent > budget * 0.5,
        "the budget was used, not refused early: {spent}"
    );
    let ledger = rig.ledger("budget-0.50-usd", &queue_id).await?;
    assert_clean(&ledger, 120);
    assert!(ledger.stopped > 0 && ledger.completed > 0, "{ledger:?}");
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_rate_limits_keep_three_workers_just_under_the_provider_limit() -> anyhow::Result<()>
{
    // CI runs 1200/min over 60 runs; ARIAN_RATE_RPM=600 ARIAN_RATE_RUNS=300 replays the
    // issue's figures (about two minutes).
    let env = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let per_minute = env("ARIAN_RATE_RPM", 1200);
    let runs = env("ARIAN_RATE_RUNS", 60);
    let rpm_text = per_minute.to_string();
    let settings = [
        ("LLM_RPM_LIMIT", rpm_text.as_str()),
        ("WORKER_CONCURRENCY", "3"),
    ];
    let behaviour = Behaviour::Limited {
        per_minute,
        delay: Duration::from_millis(20),
    };
    let rig = Rig::new(Backing::distributed().await?, behaviour, &settings).await?;
    let _workers = [rig.worker()?, rig.worker()?, rig.worker()?];
    let queue_id = rig
        .start_batch(json!({"repetitions": runs.div_ceil(6), "maxConcurrent": 60}))
        .await?;
    let expected_secs = u64::from(runs) * 4 * 60 / u64::from(per_minute.max(1));
    rig.drain(&queue_id, Duration::from_secs(90.max(expected_secs * 2)))
        .await?;

    let served = rig.llm.served();
    let rejected = rig.llm.rejected();
    let span = served
        .last()
        .zip(served.first())
        .map(|(last, first)| (*last - *first).as_secs_f64())
        .unwrap_or_default();
    // The first second's burst is the provider's allowance too; count the steady rate after it.
    let allowed = f64::from(per_minute) / 60.0;
    let achieved = (served.len() as f64 - allowed) / span;
    let rejected_share = f64::from(rejected) / (served.len() as f64 + f64::from(rejected));
    println!(
        "rate limit {per_minute}/min: {} calls in {span:.1} s, {achieved:.2}/s of {allowed:.0}/s allowed ({:.1} %), {rejected} answered 429 ({:.2} %)",
        served.len(),
        achieved / allowed * 100.0,
        rejected_share * 100.0
    );
    assert!(achieved >= 0.95 * allowed, "achieved {achieved:.2}/s");
    assert!(rejected_share < 0.01, "{rejected} calls answered 429");
    let ledger = rig.ledger("shared-rate-limit", &queue_id).await?;
    let total = u64::from(runs.div_ceil(6) * 6);
    assert_clean(&ledger, total);
    assert_eq!(ledger.completed, total);
    rig.backing.cleanup().await;
    Ok(())
}
