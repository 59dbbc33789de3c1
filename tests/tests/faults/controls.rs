//! Batch controls and input faults: idempotency races, poison jobs, pause/resume/stop, max_concurrent.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_identical_requests_with_one_key_make_one_batch() -> anyhow::Result<()> {
    let rig = Rig::new(Backing::distributed().await?, SLOW, &[]).await?;
    let (_, created) = rig
        .app
        .post(&rig.token, "/api/negotiations", &scenario_body("01"))
        .await?;
    let id = created["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let url = rig.app.url(&format!("/api/simulations/queue/{id}"));
    let requests = (0..50).map(|_| {
        rig.app
            .http
            .post(&url)
            .bearer_auth(&rig.token)
            .header("idempotency-key", "same-key")
            .json(&json!({"repetitions": 2}))
            .send()
    });
    let mut queue_ids = std::collections::HashSet::new();
    for response in futures::future::join_all(requests).await {
        let response = response?;
        assert!(response.status().is_success(), "{}", response.status());
        let body: Value = response.json().await?;
        queue_ids.insert(body["queueId"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(queue_ids.len(), 1, "{queue_ids:?}");
    let batches = rig
        .scalar(&format!(
            "SELECT COUNT(*) FROM simulation_queue WHERE negotiation_id = '{id}'"
        ))
        .await?;
    assert_eq!(batches, 1);
    let runs = rig
        .scalar(&format!(
            "SELECT COUNT(*) FROM simulation_runs WHERE negotiation_id = '{id}'"
        ))
        .await?;
    assert_eq!(runs, 12);
    let other = rig
        .app
        .http
        .post(&url)
        .bearer_auth(&rig.token)
        .header("idempotency-key", "same-key")
        .json(&json!({"repetitions": 3}))
        .send()
        .await?;
    assert_eq!(other.status(), 422);
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_payloads_land_in_the_dead_letters_and_workers_live_on() -> anyhow::Result<()> {
    let backing = Backing::distributed().await?;
    let Backing::Distributed {
        redis_prefix,
        redis_url,
        ..
    } = &backing
    else {
        unreachable!("distributed backing")
    };
    let (prefix, url) = (redis_prefix.clone(), redis_url.clone());
    let rig = Rig::new(
        backing,
        Behaviour::Negotiate {
            delay: Duration::from_millis(20),
        },
        &[],
    )
    .await?;
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    for (id, payload) in [
        ("garbage-1", "{not json"),
        ("garbage-2", r#"{"v": 99, "run_id": "x", "batch_id": "y"}"#),
    ] {
        let _: () = redis::pipe()
            .hset(format!("{prefix}:jobs"), id, payload)
            .lpush(format!("{prefix}:ready"), id)
            .query_async(&mut conn)
            .await?;
    }
    let mut a = rig.worker()?;
    let queue_id = rig.start_batch(json!({"maxConcurrent": 20})).await?;
    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    assert!(a.is_alive());
    let counts = rig.app.services.queue.counts().await?;
    assert_eq!(counts.dead, 2, "{counts:?}");
    let ledger = rig.ledger("garbage-payloads", &queue_id).await?;
    assert_clean(&ledger, 6);
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_resume_and_stop_act_on_runs_in_flight() -> anyhow::Result<()> {
    let rig = Rig::new(Backing::distributed().await?, SLOW, &[]).await?;
    let _a = rig.worker()?;
    let _b = rig.worker()?;
    let queue_id = rig
        .start_batch(json!({"repetitions": 2, "maxConcurrent": 20}))
        .await?;
    let q = queue_id.clone();
    let turns_of = |q: String| {
        let rig = &rig;
        async move {
            rig.scalar(&format!("SELECT COUNT(*) FROM run_turns t JOIN simulation_runs r ON r.id = t.run_id WHERE r.queue_id = '{q}'")).await
        }
    };
    eventually(Duration::from_secs(20), "turns stored", || async {
        Ok(turns_of(q.clone()).await? >= 4)
    })
    .await?;

    let (code, _) = rig
        .app
        .post(
            &rig.token,
            &format!("/api/simulations/queue/{queue_id}/pause"),
            &json!({}),
        )
        .await?;
    assert_eq!(code, 200);
    let q = queue_id.clone();
    eventually(
        Duration::from_secs(1),
        "running runs to park within a second",
        || async {
            Ok(rig
            .scalar(&format!(
                "SELECT COUNT(*) FROM simulation_runs WHERE queue_id = '{q}' AND status = 'running'"
            ))
            .await?
            == 0)
        },
    )
    .await?;
    let calls = rig.llm.total_calls();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.llm.total_calls(), calls, "no LLM call while paused");

    let (code, _) = rig
        .app
        .post(
            &rig.token,
            &format!("/api/simulations/queue/{queue_id}/resume"),
            &json!({}),
        )
        .await?;
    assert_eq!(code, 200);
    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    let ledger = rig.ledger("pause-then-resume", &queue_id).await?;
    assert_clean(&ledger, 12);
    assert_eq!(ledger.completed, 12);

    let second = rig
        .start_batch(json!({"repetitions": 2, "maxConcurrent": 20}))
        .await?;
    eventually(Duration::from_secs(20), "turns stored", || async {
        Ok(turns_of(second.clone()).await? >= 4)
    })
    .await?;
    let (code, _) = rig
        .app
        .post(
            &rig.token,
            &format!("/api/simulations/queue/{second}/stop"),
            &json!({}),
        )
        .await?;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let calls = rig.llm.total_calls();
    let statuses = rig.app.services.store.run_counts(&second).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rig.llm.total_calls(),
        calls,
        "no LLM call for a stopped batch after its current turns"
    );
    assert_eq!(
        rig.app.services.store.run_counts(&second).await?,
        statuses,
        "nothing overwrites stopped"
    );
    let batch = rig
        .app
        .services
        .store
        .batch_unscoped(&second)
        .await?
        .expect("batch");
    assert_eq!(batch.status, "stopped");
    let ledger = rig.ledger("stop-with-runs-in-flight", &second).await?;
    assert_clean(&ledger, 12);
    assert!(ledger.stopped > 0, "{ledger:?}");
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_concurrent_holds_across_all_workers() -> anyhow::Result<()> {
    let rig = Rig::new(
        Backing::distributed().await?,
        Behaviour::Negotiate {
            delay: Duration::from_millis(100),
        },
        &[("WORKER_CONCURRENCY", "4")],
    )
    .await?;
    let _workers = [rig.worker()?, rig.worker()?, rig.worker()?];
    let queue_id = rig
        .start_batch(json!({"repetitions": 2, "maxConcurrent": 2}))
        .await?;
    let mut most_running = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let counts = rig.app.services.store.run_counts(&queue_id).await?;
        most_running = most_running.max(counts.get(RunStatus::Running));
        if counts.finished() == counts.total() {
            break;
        }
        assert!(Instant::now() < deadline, "the batch did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "max_concurrent 2: at most {most_running} runs leased, {} in LLM calls at once",
        rig.llm.max_in_flight()
    );
    assert!(most_running <= 2, "{most_running} runs ran at once");
    assert!(
        rig.llm.max_in_flight() <= 2,
        "{} runs called the LLM at once",
        rig.llm.max_in_flight()
    );
    let ledger = rig.ledger("max-concurrent-2", &queue_id).await?;
    assert_clean(&ledger, 12);
    rig.backing.cleanup().await;
    Ok(())
}
