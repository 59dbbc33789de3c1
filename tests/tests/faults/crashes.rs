//! Crashes and restarts of workers: SIGKILL at three points, late workers, SIGTERM.

use super::*;

/// Kills worker A with SIGKILL once `ready` says so, lets B and a replacement drain the batch.
async fn sigkill_scenario(name: &str, status: &str, turns: i64) -> anyhow::Result<()> {
    let rig = Rig::new(Backing::distributed().await?, SLOW, &[]).await?;
    let mut a = rig.worker()?;
    let _b = rig.worker()?;
    let queue_id = rig
        .start_batch(json!({"repetitions": 2, "maxConcurrent": 20}))
        .await?;
    let pid = a.pid();
    eventually(
        Duration::from_secs(20),
        "worker A to reach the kill point",
        || async { Ok(rig.leased_by(pid, &queue_id, status, turns).await? > 0) },
    )
    .await?;
    a.sigkill();
    let _c = rig.worker()?;
    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    let ledger = rig.ledger(name, &queue_id).await?;
    assert_clean(&ledger, 12);
    assert_eq!(ledger.completed, 12);
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_before_the_first_turn_loses_nothing() -> anyhow::Result<()> {
    sigkill_scenario("sigkill-before-first-turn", "running", 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_after_turn_two_resumes_from_the_checkpoint() -> anyhow::Result<()> {
    sigkill_scenario("sigkill-after-turn-2", "running", 2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_after_the_final_commit_never_runs_again() -> anyhow::Result<()> {
    sigkill_scenario("sigkill-after-final-commit", "completed", 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_started_mid_batch_never_take_live_runs() -> anyhow::Result<()> {
    let rig = Rig::new(Backing::distributed().await?, SLOW, &[]).await?;
    let _a = rig.worker()?;
    let queue_id = rig
        .start_batch(json!({"repetitions": 2, "maxConcurrent": 20}))
        .await?;
    let q = queue_id.clone();
    eventually(Duration::from_secs(20), "runs in flight", || async {
        Ok(rig
            .scalar(&format!(
                "SELECT COUNT(*) FROM simulation_runs WHERE queue_id = '{q}' AND status = 'running'"
            ))
            .await?
            >= 3)
    })
    .await?;
    let _b = rig.worker()?;
    let _c = rig.worker()?;
    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    let ledger = rig.ledger("workers-started-mid-batch", &queue_id).await?;
    assert_clean(&ledger, 12);
    let retaken = rig
        .scalar(&format!(
            "SELECT COUNT(*) FROM simulation_runs WHERE queue_id = '{queue_id}' AND attempt > 1"
        ))
        .await?;
    assert_eq!(retaken, 0, "no live run was delivered to a second worker");
    rig.backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_hands_runs_over_and_exits_cleanly() -> anyhow::Result<()> {
    let rig = Rig::new(Backing::distributed().await?, SLOW, &[]).await?;
    let mut a = rig.worker()?;
    let _b = rig.worker()?;
    let queue_id = rig
        .start_batch(json!({"repetitions": 2, "maxConcurrent": 20}))
        .await?;
    let pid = a.pid();
    eventually(Duration::from_secs(20), "worker A mid-run", || async {
        Ok(rig.leased_by(pid, &queue_id, "running", 1).await? > 0)
    })
    .await?;
    let sent = Instant::now();
    a.signal("TERM");
    let code = tokio::task::spawn_blocking(move || a.wait_exit(Duration::from_secs(8))).await?;
    assert_eq!(code, Some(0), "the worker exits 0 after SIGTERM");
    println!(
        "sigterm: worker exited {:?} after the signal",
        sent.elapsed()
    );
    rig.drain(&queue_id, Duration::from_secs(60)).await?;
    let ledger = rig.ledger("sigterm-with-runs-in-flight", &queue_id).await?;
    assert_clean(&ledger, 12);
    assert_eq!(ledger.completed, 12);
    rig.backing.cleanup().await;
    Ok(())
}
