//! The fault suite: real worker processes against real PostgreSQL and Redis and an LLM double
//! that keeps a ledger per `(run, turn)`. After every fault the batch drains with nothing lost
//! and nothing paid twice.

use std::time::{Duration, Instant};

use arian_core::domain::RunStatus;
use arian_tests::fault::{Behaviour, LedgerLlm, OwnRedis, WorkerProcess, eventually};
use arian_tests::{Backing, TestApp, postgres_server, scenario_body};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

const WORKER: &str = env!("CARGO_BIN_EXE_worker-under-test");
const SLOW: Behaviour = Behaviour::Negotiate {
    delay: Duration::from_millis(200),
};

struct Rig {
    backing: Backing,
    app: TestApp,
    llm: LedgerLlm,
    token: String,
    worker_vars: Vec<(String, String)>,
}

impl Rig {
    async fn new(
        backing: Backing,
        behaviour: Behaviour,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut settings = vec![
            ("LEASE_TIMEOUT_SECS", "2"),
            ("RECONCILE_INTERVAL_SECS", "1"),
            ("MAX_ATTEMPTS", "5"),
            ("WORKER_CONCURRENCY", "3"),
            ("SHUTDOWN_TIMEOUT_SECS", "5"),
            ("LOG_FORMAT", "pretty"),
            ("RUST_LOG", "warn"),
        ];
        for (k, v) in extra {
            settings.retain(|(name, _)| name != k);
            settings.push((k, v));
        }
        let app = TestApp::spawn(backing.config(&settings)).await?;
        let llm = LedgerLlm::start(app.services.store.clone(), behaviour).await;
        let mut worker_vars = backing.vars(&settings);
        worker_vars.extend([
            ("LLM_PROVIDER".to_string(), "openai".to_string()),
            ("LLM_API_KEY".to_string(), "sk-test".to_string()),
            ("LLM_BASE_URL".to_string(), llm.base_url.clone()),
        ]);
        let token = app
            .register(&format!("fault{}", std::process::id()))
            .await?;
        Ok(Self {
            backing,
            app,
            llm,
            token,
            worker_vars,
        })
    }

    fn worker(&self) -> anyhow::Result<WorkerProcess> {
        WorkerProcess::spawn(WORKER, &self.worker_vars)
    }

    /// A worker that serves Prometheus metrics on a free port; returns the metrics URL too.
    fn worker_with_metrics(&self) -> anyhow::Result<(WorkerProcess, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut vars = self.worker_vars.clone();
        vars.push(("METRICS_ADDR".into(), format!("127.0.0.1:{port}")));
        Ok((
            WorkerProcess::spawn(WORKER, &vars)?,
            format!("http://127.0.0.1:{port}/metrics"),
        ))
    }

    /// Creates a negotiation from scenario 01 and a batch with `body`, then starts it.
    async fn start_batch(&self, body: Value) -> anyhow::Result<String> {
        self.app.start_batch(&self.token, &body).await
    }

    async fn drain(&self, queue_id: &str, limit: Duration) -> anyhow::Result<()> {
        let store = &self.app.services.store;
        eventually(limit, "the batch to drain", || async move {
            let counts = store.run_counts(queue_id).await?;
            Ok(counts.total() == counts.finished())
        })
        .await
    }

    async fn scalar(&self, sql: &str) -> anyhow::Result<i64> {
        let db = self.app.services.store.connection();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                sql.to_string(),
            ))
            .await?;
        Ok(row
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or_default())
    }

    /// Runs of the batch leased by the worker with `pid` that have at least `turns` stored.
    async fn leased_by(
        &self,
        pid: u32,
        queue_id: &str,
        status: &str,
        turns: i64,
    ) -> anyhow::Result<i64> {
        self.scalar(&format!(
            "SELECT COUNT(*) FROM simulation_runs r WHERE queue_id = '{queue_id}' AND status = '{status}' \
             AND lease_owner LIKE '%-{pid}-%' AND (SELECT COUNT(*) FROM run_turns t WHERE t.run_id = r.id) >= {turns}"
        ))
        .await
    }

    async fn ledger(
        &self,
        scenario: &str,
        queue_id: &str,
    ) -> anyhow::Result<arian_tests::fault::Ledger> {
        arian_tests::fault::Ledger::read(scenario, &self.app.services.store, queue_id, &self.llm)
            .await
    }
}

/// Every run ended in exactly one final state; none was lost or paid twice.
fn assert_clean(ledger: &arian_tests::fault::Ledger, accepted: u64) {
    assert_eq!(ledger.accepted, accepted, "{ledger:?}");
    assert_eq!(ledger.lost, 0, "{ledger:?}");
    assert_eq!(ledger.duplicated, 0, "{ledger:?}");
    assert_eq!(
        ledger.completed + ledger.failed + ledger.stopped,
        accepted,
        "{ledger:?}"
    );
}

mod controls;
mod crashes;
mod llm;
mod outages;
