//! Fault-test tools: worker processes to kill, a Redis server to restart, an LLM double that
//! keeps a ledger of calls per `(run, turn)`, and the ledger check after a drain.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arian_core::store::Store;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use crate::fake_llm::{completion, negotiating_turn};

/// How the LLM double answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Plays along (a deal on turn 4), each call taking `delay`.
    Negotiate { delay: Duration },
    /// Answers every call with this status.
    Fail { status: u16 },
    /// Plays along, but enforces `per_minute` requests (a bucket of one second's worth) and
    /// answers 429 with `Retry-After: 1` above it.
    Limited { per_minute: u32, delay: Duration },
}

#[derive(Default)]
struct Book {
    calls: HashMap<(String, u32), u32>,
    /// Calls for a turn that was already stored: a turn paid twice.
    stored_again: Vec<(String, u32)>,
    times: HashMap<String, Vec<Instant>>,
    in_flight: HashSet<String>,
    max_in_flight: usize,
    bucket: Option<(f64, Instant)>,
    rejected: u32,
    served: Vec<Instant>,
}

#[derive(Clone)]
struct Shared {
    store: Store,
    behaviour: Arc<Mutex<Behaviour>>,
    book: Arc<Mutex<Book>>,
}

/// An OpenAI-compatible double that checks every call against the stored turns.
pub struct LedgerLlm {
    pub base_url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl LedgerLlm {
    pub async fn start(store: Store, behaviour: Behaviour) -> Self {
        let shared = Shared {
            store,
            behaviour: Arc::new(Mutex::new(behaviour)),
            book: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the LLM double");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            shared,
            server,
        }
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        if let Ok(mut current) = self.shared.behaviour.lock() {
            *current = behaviour;
        }
    }

    pub fn total_calls(&self) -> u32 {
        self.book(|b| b.calls.values().sum())
    }

    /// Turns requested again after they were stored.
    pub fn paid_twice(&self) -> usize {
        self.book(|b| b.stored_again.len())
    }

    /// Turns requested more than once, stored or not (a crash mid-call re-asks an unstored turn).
    pub fn requested_again(&self) -> usize {
        self.book(|b| b.calls.values().filter(|n| **n > 1).count())
    }

    pub fn call_times(&self, run_id: &str) -> Vec<Instant> {
        self.book(|b| b.times.get(run_id).cloned().unwrap_or_default())
    }

    /// Calls answered 429 by the enforced limit.
    pub fn rejected(&self) -> u32 {
        self.book(|b| b.rejected)
    }

    /// When each call that got an answer arrived.
    pub fn served(&self) -> Vec<Instant> {
        self.book(|b| b.served.clone())
    }

    /// The most runs that had a call in flight at one time.
    pub fn max_in_flight(&self) -> usize {
        self.book(|b| b.max_in_flight)
    }

    fn book<T>(&self, read: impl FnOnce(&Book) -> T) -> T {
        let book = self.shared.book.lock().expect("the ledger lock");
        read(&book)
    }
}

impl Drop for LedgerLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let run_id = header("x-arian-run-id");
    let turn: u32 = header("x-arian-turn").parse().unwrap_or(0);
    let stored = shared
        .store
        .turns(&run_id)
        .await
        .map(|t| t.iter().any(|r| r.turn == turn))
        .unwrap_or(false);
    {
        let mut book = shared.book.lock().expect("the ledger lock");
        *book.calls.entry((run_id.clone(), turn)).or_default() += 1;
        if stored {
            book.stored_again.push((run_id.clone(), turn));
        }
        book.times
            .entry(run_id.clone())
            .or_default()
            .push(Instant::now());
        book.in_flight.insert(run_id.clone());
        book.max_in_flight = book.max_in_flight.max(book.in_flight.len());
    }
    let behaviour = *shared.behaviour.lock().expect("the behaviour lock");
    if let Behaviour::Limited { per_minute, .. } = behaviour {
        let mut book = shared.book.lock().expect("the ledger lock");
        let rate = f64::from(per_minute) / 60.0;
        let now = Instant::now();
        let (tokens, last) = book.bucket.unwrap_or((rate, now));
        let tokens = (tokens + rate * (now - last).as_secs_f64()).min(rate.max(1.0));
        if tokens < 1.0 {
            book.bucket = Some((tokens, now));
            book.rejected += 1;
            book.in_flight.remove(&run_id);
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
        }
        book.bucket = Some((tokens - 1.0, now));
        book.served.push(now);
    }
    let response = match behaviour {
        Behaviour::Negotiate { delay } | Behaviour::Limited { delay, .. } => {
            tokio::time::sleep(delay).await;
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            completion(&negotiating_turn(&request).to_string(), 300, 120)
        }
        Behaviour::Fail { status } => StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
    };
    if let Ok(mut book) = shared.book.lock() {
        book.in_flight.remove(&run_id);
    }
    response
}

/// A worker process started from the test build of the worker command.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    pub fn spawn(binary: &str, vars: &[(String, String)]) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in vars {
            command.env(k, v);
        }
        // ARIAN_TEST_WORKER_LOG=<file> keeps the workers' logs for debugging a fault test.
        if let Ok(path) = std::env::var("ARIAN_TEST_WORKER_LOG") {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            command.stderr(file);
            if let Ok(filter) = std::env::var("ARIAN_TEST_WORKER_RUST_LOG") {
                command.env("RUST_LOG", filter);
            }
        }
        Ok(Self {
            child: command.spawn()?,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
    }

    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit, at most `limit`; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis server of the test's own, without persistence, that can be killed and restarted.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut redis = Self { port, child: None };
        redis.restart()?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port, with no data.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let dir = std::env::temp_dir();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(Path::new(&dir))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!("redis-server did not start on port {}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What became of every run of a batch after a drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub accepted: u64,
    pub completed: u64,
    pub failed: u64,
    pub stopped: u64,
    /// Runs not in a final state.
    pub lost: u64,
    /// Turns paid twice plus completions counted more than once.
    pub duplicated: u64,
}

impl Ledger {
    /// Reads the ledger of `batch_id` and prints it (and appends it to the ledger file that
    /// `.ci/run` shows).
    pub async fn read(
        scenario: &str,
        store: &Store,
        batch_id: &str,
        llm: &LedgerLlm,
    ) -> anyhow::Result<Self> {
        use arian_core::domain::RunStatus;
        let counts = store.run_counts(batch_id).await?;
        let batch = store
            .batch_unscoped(batch_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no batch"))?;
        let completed = counts.get(RunStatus::Completed);
        let failed = counts.get(RunStatus::Failed);
        let stopped = counts.get(RunStatus::Stopped);
        let counted =
            batch.completed_count as u64 + batch.failed_count as u64 + batch.stopped_count as u64;
        let extra_counts = counted.abs_diff(completed + failed + stopped);
        let ledger = Ledger {
            accepted: counts.total(),
            completed,
            failed,
            stopped,
            lost: counts.total() - counts.finished(),
            duplicated: llm.paid_twice() as u64 + extra_counts,
        };
        let line = format!(
            "ledger {scenario}: accepted={} completed={} failed={} stopped={} lost={} duplicated={} (llm calls={}, unstored turns asked again={})",
            ledger.accepted,
            ledger.completed,
            ledger.failed,
            ledger.stopped,
            ledger.lost,
            ledger.duplicated,
            llm.total_calls(),
            llm.requested_again() - llm.paid_twice().min(llm.requested_again()),
        );
        println!("{line}");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fault-ledger.txt");
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            use std::io::Write;
            let _ = writeln!(file, "{line}");
        }
        Ok(ledger)
    }
}

/// Polls until `condition` holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await? {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
