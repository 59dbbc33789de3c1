//! A batch from HTTP to results, distributed over PostgreSQL and Redis and on the embedded
//! default, with exactly-once effects checked in the database.

use std::collections::HashSet;
use std::time::Duration;

use arian_core::queue::RunJob;
use arian_tests::{Backing, TestApp, scenario_body};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

/// Registers, creates the negotiation, queues `repetitions` x its combinations, starts it and
/// waits for the batch; returns the token, the queue id and the final status.
async fn play_batch(app: &TestApp, repetitions: u32) -> anyhow::Result<(String, String, Value)> {
    let token = app.register(&format!("user{}", rand_name())).await?;
    let (code, created) = app
        .post(&token, "/api/negotiations", &scenario_body("01"))
        .await?;
    assert_eq!(code, 201, "{created}");
    let negotiation_id = created["data"]["id"]
        .as_str()
        .expect("negotiation id")
        .to_string();
    let (code, batch) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{negotiation_id}"),
            &json!({"repetitions": repetitions}),
        )
        .await?;
    assert_eq!(code, 201, "{batch}");
    assert_eq!(batch["totalSimulations"], json!(6 * repetitions));
    assert!(batch["estimatedCost"].as_f64().unwrap_or_default() > 0.0);
    let queue_id = batch["queueId"].as_str().expect("queue id").to_string();
    let (code, started) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{queue_id}/start"),
            &json!({}),
        )
        .await?;
    assert_eq!(code, 200, "{started}");
    let status = app
        .wait_for_batch(&token, &queue_id, Duration::from_secs(60))
        .await?;
    Ok((token, queue_id, status))
}

fn rand_name() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default()
}

/// Checks in the database that every run completed once, with turns, results and cost, and
/// that the batch counters agree with the runs. Returns the workers that finished runs.
async fn assert_exactly_once(
    app: &TestApp,
    queue_id: &str,
    total: i64,
) -> anyhow::Result<HashSet<String>> {
    let db = app.services.store.connection();
    let backend = db.get_database_backend();
    let p = if matches!(backend, sea_orm::DbBackend::Postgres) {
        "$1"
    } else {
        "?"
    };
    let query = |sql: String| Statement::from_sql_and_values(backend, sql, [queue_id.into()]);

    let runs = db
        .query_all_raw(query(format!(
            "SELECT id, status, outcome, total_rounds, cost, lease_owner, \
             (SELECT COUNT(*) FROM run_turns t WHERE t.run_id = r.id) AS turns, \
             (SELECT MAX(turn) FROM run_turns t WHERE t.run_id = r.id) AS last_turn \
             FROM simulation_runs r WHERE queue_id = {p}"
        )))
        .await?;
    assert_eq!(runs.len() as i64, total);
    let mut workers = HashSet::new();
    for run in &runs {
        let id: String = run.try_get("", "id")?;
        assert_eq!(
            run.try_get::<String>("", "status")?,
            "completed",
            "run {id}"
        );
        assert!(
            run.try_get::<Option<String>>("", "outcome")?.is_some(),
            "run {id} has an outcome"
        );
        assert!(
            run.try_get::<i32>("", "total_rounds")? > 0,
            "run {id} played rounds"
        );
        assert!(run.try_get::<f64>("", "cost")? > 0.0, "run {id} has a cost");
        let turns: i64 = run.try_get("", "turns")?;
        let last_turn: Option<i32> = run.try_get("", "last_turn")?;
        assert!(turns > 0, "run {id} stored turns");
        assert_eq!(
            Some(turns as i32),
            last_turn,
            "run {id}: turns are 1..n, none twice, none missing"
        );
        workers.insert(
            run.try_get::<Option<String>>("", "lease_owner")?
                .unwrap_or_default(),
        );
    }

    let batch = db
        .query_one_raw(query(format!(
            "SELECT b.completed_count, b.failed_count, b.total_simulations, b.actual_cost, \
             (SELECT SUM(cost) FROM simulation_runs r WHERE r.queue_id = b.id) AS run_cost, \
             (SELECT SUM(t.cost) FROM run_turns t JOIN simulation_runs r ON r.id = t.run_id WHERE r.queue_id = b.id) AS turn_cost \
             FROM simulation_queue b WHERE b.id = {p}"
        )))
        .await?
        .expect("the batch row");
    assert_eq!(batch.try_get::<i32>("", "completed_count")? as i64, total);
    assert_eq!(batch.try_get::<i32>("", "failed_count")?, 0);
    let actual: f64 = batch.try_get("", "actual_cost")?;
    let run_cost: f64 = batch.try_get("", "run_cost")?;
    let turn_cost: f64 = batch.try_get("", "turn_cost")?;
    assert!(
        (actual - run_cost).abs() < 1e-9 && (run_cost - turn_cost).abs() < 1e-9,
        "{actual} {run_cost} {turn_cost}"
    );

    let deals_without_results = db
        .query_one_raw(query(format!(
            "SELECT COUNT(*) AS n FROM simulation_runs r WHERE r.queue_id = {p} AND r.outcome = 'DEAL_ACCEPTED' \
             AND (r.deal_value IS NULL OR NOT EXISTS (SELECT 1 FROM product_results pr WHERE pr.run_id = r.id) \
                  OR NOT EXISTS (SELECT 1 FROM dimension_results dr WHERE dr.run_id = r.id))"
        )))
        .await?
        .expect("a count");
    assert_eq!(
        deals_without_results.try_get::<i64>("", "n")?,
        0,
        "every deal has its results"
    );
    Ok(workers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distributed_batch_completes_every_run_exactly_once_across_two_workers()
-> anyhow::Result<()> {
    let backing = Backing::distributed().await?;
    let config = backing.config(&[("SIMULATED_LATENCY_MS", "15"), ("WORKER_CONCURRENCY", "2")]);
    let app = TestApp::spawn(config).await?;
    let workers = app.workers(2)?;

    let (token, queue_id, status) = play_batch(&app, 2).await?;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["completedCount"], 12);
    assert_eq!(status["progressPercentage"], 100.0);
    let finishers = assert_exactly_once(&app, &queue_id, 12).await?;
    assert_eq!(finishers.len(), 2, "both workers took part: {finishers:?}");

    let (code, results) = app
        .get(
            &token,
            &format!("/api/simulations/queue/{queue_id}/results"),
        )
        .await?;
    assert_eq!(code, 200);
    assert_eq!(results["data"]["rows"].as_array().map(Vec::len), Some(6));

    let (_, runs) = app
        .get(&token, &format!("/api/simulations/queue/{queue_id}/runs"))
        .await?;
    let run_id = runs["data"][0]["id"]
        .as_str()
        .expect("a run id")
        .to_string();
    let (code, detail) = app
        .get(&token, &format!("/api/simulation-runs/{run_id}"))
        .await?;
    assert_eq!(code, 200);
    assert!(
        !detail["data"]["turns"]
            .as_array()
            .expect("turns")
            .is_empty()
    );

    workers.shutdown().await;
    backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_default_plays_the_same_flow_on_sqlite() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let workers = app.workers(1)?;
    let (_, queue_id, status) = play_batch(&app, 2).await?;
    assert_eq!(status["status"], "completed", "{status}");
    assert_exactly_once(&app, &queue_id, 12).await?;
    workers.shutdown().await;
    backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_duplicate_deliveries_never_run_a_completed_run_again() -> anyhow::Result<()> {
    let backing = Backing::distributed().await?;
    let app = TestApp::spawn(backing.config(&[])).await?;
    let workers = app.workers(1)?;
    let (token, queue_id, status) = play_batch(&app, 1).await?;
    assert_eq!(status["status"], "completed");
    let before = app.services.store.run_counts(&queue_id).await?;
    let (_, runs) = app
        .get(&token, &format!("/api/simulations/queue/{queue_id}/runs"))
        .await?;
    let turns_before: Vec<usize> = count_turns(&app, &runs).await?;

    // Deliver every run again, and start the batch again.
    let jobs: Vec<RunJob> = runs["data"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| RunJob::new(r["id"].as_str().unwrap_or_default(), queue_id.clone()))
        .collect();
    assert_eq!(app.services.queue.enqueue(&jobs).await?, 6);
    let (code, _) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{queue_id}/start"),
            &json!({}),
        )
        .await?;
    assert_eq!(code, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.services.queue.counts().await?.waiting + app.services.queue.counts().await?.running
        > 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "duplicates were never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(app.services.store.run_counts(&queue_id).await?, before);
    assert_eq!(count_turns(&app, &runs).await?, turns_before);
    let batch = app
        .services
        .store
        .batch_unscoped(&queue_id)
        .await?
        .expect("batch");
    assert_eq!(batch.completed_count, 6);
    workers.shutdown().await;
    backing.cleanup().await;
    Ok(())
}

async fn count_turns(app: &TestApp, runs: &Value) -> anyhow::Result<Vec<usize>> {
    let mut counts = Vec::new();
    for run in runs["data"].as_array().expect("runs") {
        counts.push(
            app.services
                .store
                .turns(run["id"].as_str().unwrap_or_default())
                .await?
                .len(),
        );
    }
    Ok(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_attempt_cannot_overwrite_the_attempt_that_took_over() -> anyhow::Result<()> {
    use arian_core::domain::Outcome;
    use arian_core::engine::Evaluation;
    use arian_core::store::{LeaseOutcome, RunTotals};

    let backing = Backing::distributed().await?;
    let app = TestApp::spawn(backing.config(&[])).await?;
    let token = app.register(&format!("stale{}", rand_name())).await?;
    let (_, created) = app
        .post(&token, "/api/negotiations", &scenario_body("01"))
        .await?;
    let negotiation_id = created["data"]["id"].as_str().expect("id");
    let (_, batch) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{negotiation_id}"),
            &json!({}),
        )
        .await?;
    let queue_id = batch["queueId"].as_str().expect("queue id");
    let store = &app.services.store;
    let run_id = store.start_batch(queue_id).await?.remove(0);

    let lease = |worker: &'static str, ttl: Duration| {
        let run_id = run_id.clone();
        async move {
            let outcome = store.lease_run(&run_id, queue_id, worker, ttl).await?;
            Ok::<_, anyhow::Error>(match outcome {
                LeaseOutcome::Leased(leased) => Some(*leased),
                _ => None,
            })
        }
    };
    let first = lease("worker-a", Duration::from_millis(1))
        .await?
        .expect("first lease");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = lease("worker-b", Duration::from_secs(30))
        .await?
        .expect("takeover after expiry");
    assert_eq!(second.attempt, first.attempt + 1);
    let third = lease("worker-c", Duration::from_secs(30)).await?;
    assert!(third.is_none(), "a live lease is not taken");

    let empty = Evaluation {
        deal_value: None,
        products: vec![],
        dimensions: vec![],
    };
    let stale = store
        .complete_run(
            &first,
            Outcome::WalkAway,
            RunTotals::default(),
            None,
            &empty,
        )
        .await;
    assert!(stale.is_err(), "the stale attempt is fenced off");
    store
        .complete_run(
            &second,
            Outcome::WalkAway,
            RunTotals::default(),
            None,
            &empty,
        )
        .await?;
    let run = store.run_unscoped(&run_id).await?.expect("run");
    assert_eq!(
        (run.status.as_str(), run.lease_owner.as_deref()),
        ("completed", Some("worker-b"))
    );
    backing.cleanup().await;
    Ok(())
}
