//! Outages of the shared engines: Redis restarted or paused, PostgreSQL connections killed.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_without_persistence_loses_no_run() -> anyhow::Result<()> {
    let mut redis = OwnRedis::start()?;
    let rig = Rig::new(Backing::distributed_on(&redis.url()).await?, SLOW, &[]).await?;
    let mut a = rig.worker()?;
    let mut b = rig.worker()?;
    let queue_id = rig
        .start_batch(json!({"repetitions": 3, "maxConcurrent": 20}))
        .await?;
    let q = queue_id.clone();
    eventually(Duration::from_secs(30), "some completed runs", || async {
        Ok(rig.scalar(&format!("SELECT COUNT(*) FROM simulation_runs WHERE queue_id = '{q}' AND status = 'completed'")).await? >= 3)
    })
    .await?;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart()?;
    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    assert!(
        a.is_alive() && b.is_alive(),
        "workers survive a Redis restart"
    );
    let ledger = rig
        .ledger("redis-restart-without-persistence", &queue_id)
        .await?;
    assert_clean(&ledger, 18);
    assert_eq!(ledger.completed, 18);
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_redis_answers_503_and_workers_ride_it_out() -> anyhow::Result<()> {
    let redis = OwnRedis::start()?;
    let rig = Rig::new(Backing::distributed_on(&redis.url()).await?, SLOW, &[]).await?;
    let mut a = rig.worker()?;
    let queue_id = rig.start_batch(json!({"maxConcurrent": 20})).await?;

    let (code, created) = rig
        .app
        .post(&rig.token, "/api/negotiations", &scenario_body("01"))
        .await?;
    assert_eq!(code, 201);
    let id = created["data"]["id"].as_str().unwrap_or_default();
    let (_, second) = rig
        .app
        .post(
            &rig.token,
            &format!("/api/simulations/queue/{id}"),
            &json!({}),
        )
        .await?;
    let second_id = second["queueId"].as_str().unwrap_or_default().to_string();

    let client = redis::Client::open(redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(6000)
        .arg("ALL")
        .query_async(&mut conn)
        .await?;
    let asked = Instant::now();
    let response = rig
        .app
        .http
        .post(
            rig.app
                .url(&format!("/api/simulations/queue/{second_id}/start")),
        )
        .bearer_auth(&rig.token)
        .send()
        .await?;
    assert_eq!(response.status(), 503, "enqueue while Redis is paused");
    println!(
        "redis paused: start answered 503 after {:?}",
        asked.elapsed()
    );
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "answered in {:?}",
        asked.elapsed()
    );

    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    rig.drain(&second_id, Duration::from_secs(60)).await?;
    assert!(a.is_alive(), "the worker survives a paused Redis");
    for (name, id) in [
        ("redis-paused (running batch)", &queue_id),
        ("redis-paused (batch started during the pause)", &second_id),
    ] {
        let ledger = rig.ledger(name, id).await?;
        assert_clean(&ledger, 6);
        assert_eq!(ledger.completed, 6);
    }
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_postgres_connections_never_complete_a_run_without_results() -> anyhow::Result<()> {
    let backing = Backing::distributed().await?;
    let Backing::Distributed { database, .. } = &backing else {
        unreachable!("distributed backing")
    };
    let database = database.clone();
    let rig = Rig::new(backing, SLOW, &[]).await?;
    let _a = rig.worker()?;
    let _b = rig.worker()?;
    let queue_id = rig
        .start_batch(json!({"repetitions": 2, "maxConcurrent": 20}))
        .await?;
    let q = queue_id.clone();
    eventually(Duration::from_secs(20), "turns stored", || async {
        Ok(rig.scalar(&format!("SELECT COUNT(*) FROM run_turns t JOIN simulation_runs r ON r.id = t.run_id WHERE r.queue_id = '{q}'")).await? >= 6)
    })
    .await?;
    let admin = Database::connect(format!("{}/test", postgres_server())).await?;
    for _ in 0..2 {
        admin
            .execute_unprepared(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"))
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    let ledger = rig.ledger("postgres-connections-killed", &queue_id).await?;
    assert_clean(&ledger, 12);
    let without_results = rig
        .scalar(&format!(
            "SELECT COUNT(*) FROM simulation_runs r WHERE queue_id = '{queue_id}' AND status = 'completed' AND \
             (total_rounds = 0 OR (outcome = 'DEAL_ACCEPTED' AND NOT EXISTS (SELECT 1 FROM product_results p WHERE p.run_id = r.id)))"
        ))
        .await?;
    assert_eq!(without_results, 0);
    rig.backing.cleanup().await;
    Ok(())
}
